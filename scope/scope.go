package scope

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scope type names, as clients spell them in scopes dictionaries and in
// apikey.add_scope's scope_name.
const (
	TypeMethod = "method"
	TypeName   = "name"
	TypeAccess = "access"
	TypeIP     = "ip"
)

// Access classes, the REST key API's key_scope: every method declares one,
// and an "access" scope lists the classes a key may use.
const (
	Read   = "READ"
	Create = "CREATE"
	Update = "UPDATE"
	Delete = "DELETE"
	Manage = "MANAGE" // managing keys and other identities
)

// AccessClasses lists every access class.
var AccessClasses = []string{Read, Create, Update, Delete, Manage}

// AccessLevels are filebin's access_level presets, as access scopes.
var AccessLevels = map[string][]string{
	"basic":  {Create},
	"apikey": {Read, Create, Update, Delete},
	"full":   AccessClasses,
}

// MaxValueLen is the longest scope value accepted, in characters (Memset's limit).
const MaxValueLen = 50

// MaxValues is the most values one scope type may hold. It bounds the work of
// a check and the size of a key record.
const MaxValues = 100

// Types lists the scope types this version knows, in display order.
var Types = []string{TypeMethod, TypeName, TypeAccess, TypeIP}

// Scopes are a key's restrictions. Types AND, values within a type OR, and a
// type with no values does not restrict. The zero value restricts nothing.
//
// Scopes held by a key are always normalised: values valid, sorted and unique.
type Scopes struct {
	Method []string `json:"method,omitempty"`
	Name   []string `json:"name,omitempty"`
	Access []string `json:"access,omitempty"`
	// IP holds CIDR ranges (IPv4 or IPv6) the client must call from.
	IP []string `json:"ip,omitempty"`
}

// Call is what the checker needs to know of one call.
type Call struct {
	// Method is the dotted method name, exactly as dispatch will run it.
	Method string
	// TakesName says whether the method has a "name" parameter.
	TakesName bool
	// Name is the value of the "name" parameter; HasName says whether the
	// call supplied one as a string.
	Name    string
	HasName bool
	// Access is the method's access class.
	Access string
	// ClientIP is the address the call came from; the zero Addr if unknown,
	// which no ip scope allows.
	ClientIP netip.Addr
}

// Error is a validation error: Field names what was wrong, Reason says why.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

// Denial says why Check refused a call. Its Reason is for the log; clients
// are told only Type: which restriction refused the call ("method", "name",
// "access" or "ip"), never the key's scope values.
type Denial struct{ Type, Reason string }

func (d *Denial) Error() string { return "scope denies call: " + d.Reason }

// IsUnrestricted reports whether s restricts nothing.
func (s Scopes) IsUnrestricted() bool {
	return len(s.Method) == 0 && len(s.Name) == 0 && len(s.Access) == 0 && len(s.IP) == 0
}

// Values returns the values of scope type typ, or nil for an unknown type.
func (s Scopes) Values(typ string) []string {
	switch typ {
	case TypeMethod:
		return s.Method
	case TypeName:
		return s.Name
	case TypeAccess:
		return s.Access
	case TypeIP:
		return s.IP
	}
	return nil
}

// With returns a copy of s whose values of typ are vals (not validated).
func (s Scopes) With(typ string, vals []string) Scopes {
	out := s.Clone()
	out.Set(typ, vals)
	return out
}

// Set replaces, in place, the values of type typ with vals, which s then
// holds without copying. An unknown type changes nothing.
func (s *Scopes) Set(typ string, vals []string) {
	switch typ {
	case TypeMethod:
		s.Method = vals
	case TypeName:
		s.Name = vals
	case TypeAccess:
		s.Access = vals
	case TypeIP:
		s.IP = vals
	}
}

// Equal reports whether s and o hold the same values, in the same order.
func (s Scopes) Equal(o Scopes) bool {
	return slices.Equal(s.Method, o.Method) && slices.Equal(s.Name, o.Name) && slices.Equal(s.Access, o.Access) &&
		slices.Equal(s.IP, o.IP)
}

// Clone returns a deep copy of s.
func (s Scopes) Clone() Scopes {
	return Scopes{Method: slices.Clone(s.Method), Name: slices.Clone(s.Name), Access: slices.Clone(s.Access), IP: slices.Clone(s.IP)}
}

// ValidType returns an *Error unless typ is a known scope type.
func ValidType(field, typ string) error {
	if slices.Contains(Types, typ) {
		return nil
	}
	return &Error{Field: field, Reason: fmt.Sprintf("unknown scope type %q (want one of %s)", typ, strings.Join(Types, ", "))}
}

// ValidValue returns an *Error unless v is an acceptable value of type typ.
func ValidValue(field, typ, v string) error {
	if err := ValidType(field, typ); err != nil {
		return err
	}
	n := utf8.RuneCountInString(v)
	switch {
	case !utf8.ValidString(v):
		return &Error{Field: field, Reason: "must be valid UTF-8"}
	case n == 0:
		return &Error{Field: field, Reason: "must not be empty"}
	case n > MaxValueLen:
		return &Error{Field: field, Reason: fmt.Sprintf("must be at most %d characters, got %d", MaxValueLen, n)}
	}
	if typ == TypeIP {
		if _, err := ParseIPRange(v); err != nil {
			return &Error{Field: field, Reason: fmt.Sprintf("%q is not an IP address or CIDR range (like 192.0.2.0/24 or 2001:db8::/32)", v)}
		}
		return nil
	}
	if typ == TypeAccess {
		if !slices.Contains(AccessClasses, v) {
			return &Error{Field: field, Reason: fmt.Sprintf("%q is not an access class (want one of %s)", v, strings.Join(AccessClasses, ", "))}
		}
		return nil
	}
	if typ == TypeMethod {
		if !validMethodPattern(v) {
			return &Error{Field: field, Reason: fmt.Sprintf("%q is not a method name (like server.reboot) or namespace wildcard (like server.*)", v)}
		}
		return nil
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return &Error{Field: field, Reason: "must not contain control characters"}
		}
	}
	return nil
}

// validMethodPattern accepts method names, two or more dotted segments of
// [a-z0-9_] (as the method table has them), and namespace wildcards: one or
// more segments followed by ".*".
func validMethodPattern(v string) bool {
	v, wildcard := strings.CutSuffix(v, ".*")
	if v == "" || !wildcard && !strings.Contains(v, ".") {
		return false
	}
	for seg := range strings.SplitSeq(v, ".") {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Normalize validates every value of s and returns a copy with each type's
// values sorted and unique. field prefixes the names in errors ("scopes").
func Normalize(field string, s Scopes) (Scopes, error) {
	var out Scopes
	for _, typ := range Types {
		vals := s.Values(typ)
		if len(vals) > MaxValues {
			return Scopes{}, &Error{Field: field + "." + typ, Reason: fmt.Sprintf("must hold at most %d values, got %d", MaxValues, len(vals))}
		}
		for i, v := range vals {
			if err := ValidValue(fmt.Sprintf("%s.%s[%d]", field, typ, i), typ, v); err != nil {
				return Scopes{}, err
			}
		}
		norm := slices.Clone(vals)
		if typ == TypeIP {
			for i, v := range norm {
				p, _ := ParseIPRange(v)
				norm[i] = p.String()
			}
		}
		slices.Sort(norm)
		norm = slices.Compact(norm)
		if len(norm) == 0 {
			norm = nil
		}
		out = out.With(typ, norm)
	}
	return out, nil
}

// MatchMethod reports whether the method scope value pattern allows method.
// A pattern is a method name or a namespace wildcard "ns.*", which allows
// every method below ns.
func MatchMethod(pattern, method string) bool {
	if ns, ok := strings.CutSuffix(pattern, ".*"); ok {
		return len(method) > len(ns)+1 && method[len(ns)] == '.' && strings.HasPrefix(method, ns)
	}
	return pattern == method
}

// Check applies s to call and returns nil when it is allowed or a *Denial.
//
// Memset's rules: a key with method values may call only a method that one of
// them matches; a key with name values may call only methods that take a name
// parameter, with one of those values. Then ours: a key with access values
// may call only methods of those classes. All set types must hold.
func Check(s Scopes, call Call) error {
	if len(s.IP) > 0 && !slices.ContainsFunc(s.IP, func(r string) bool {
		p, err := netip.ParsePrefix(r)
		return err == nil && call.ClientIP.IsValid() && p.Contains(call.ClientIP.Unmap())
	}) {
		return &Denial{Type: "ip", Reason: fmt.Sprintf("client address %s is outside the key's ip scope", call.ClientIP)}
	}
	if len(s.Access) > 0 && !slices.Contains(s.Access, call.Access) {
		return &Denial{Type: "access", Reason: fmt.Sprintf("%s is of access class %q, outside the key's access scope", call.Method, call.Access)}
	}
	if len(s.Method) > 0 && !slices.ContainsFunc(s.Method, func(p string) bool { return MatchMethod(p, call.Method) }) {
		return &Denial{Type: "method", Reason: fmt.Sprintf("method %s is outside the key's method scope", call.Method)}
	}
	if len(s.Name) > 0 {
		if !call.TakesName {
			return &Denial{Type: "name", Reason: fmt.Sprintf("key has a name scope and %s takes no name", call.Method)}
		}
		if !call.HasName || !slices.Contains(s.Name, call.Name) {
			return &Denial{Type: "name", Reason: "name is outside the key's name scope"}
		}
	}
	return nil
}

// Covers reports whether every call that inner allows, outer allows too: the
// "no escalation" test, judged on the key that would result from a change.
// For each type that outer restricts, inner must restrict it too, and each of
// inner's values must be allowed by one of outer's. (Covers is sufficient,
// not exact: types are judged one by one, so a combination that happens to
// allow nothing may still be refused.)
func Covers(outer, inner Scopes) bool {
	same := func(o, i string) bool { return o == i }
	return coversType(outer.Method, inner.Method, methodCovers) &&
		coversType(outer.Name, inner.Name, same) &&
		coversType(outer.Access, inner.Access, same) &&
		coversType(outer.IP, inner.IP, ipCovers)
}

func coversType(outer, inner []string, covers func(o, i string) bool) bool {
	if len(outer) == 0 {
		return true
	}
	if len(inner) == 0 {
		return false
	}
	for _, i := range inner {
		if !slices.ContainsFunc(outer, func(o string) bool { return covers(o, i) }) {
			return false
		}
	}
	return true
}

// ParseIPRange reads an ip scope value: a CIDR range, or a single address
// (a /32 or /128). The result is masked, so "10.1.2.3/8" reads as 10.0.0.0/8.
func ParseIPRange(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		q := netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked()
		if !q.IsValid() {
			return netip.Prefix{}, fmt.Errorf("not an IP range: %q", v)
		}
		return q, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("not an IP range: %q", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits is how many prefix bits an IPv4-mapped IPv6 address spends on
// the mapping.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// ipCovers reports whether range o contains all of range i.
func ipCovers(o, i string) bool {
	op, err1 := netip.ParsePrefix(o)
	ip, err2 := netip.ParsePrefix(i)
	return err1 == nil && err2 == nil && op.Bits() <= ip.Bits() && op.Contains(ip.Addr())
}

// methodCovers reports whether method pattern o allows all that pattern i does.
func methodCovers(o, i string) bool {
	if o == i {
		return true
	}
	if strings.HasSuffix(o, ".*") {
		// o = "a.*" covers "a.b" and "a.b.*" but not "a.*" (equal, handled) or "ab.c".
		return MatchMethod(o, strings.TrimSuffix(i, ".*"))
	}
	return false
}

// FromMap builds Scopes from a scopes dictionary as clients send it, such as
// {"method": ["server.*"], "name": ["web1"]}, and normalises it. Type names
// must match exactly: an unknown or mis-cased type is an error, never ignored.
// field names the dictionary in errors.
func FromMap(field string, m map[string][]string) (Scopes, error) {
	var s Scopes
	for _, typ := range slices.Sorted(maps.Keys(m)) {
		vals := m[typ]
		if err := ValidType(field+"."+typ, typ); err != nil {
			return Scopes{}, err
		}
		s = s.With(typ, vals)
	}
	return Normalize(field, s)
}
