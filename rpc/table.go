package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// Method is one row of the method table: everything the dispatcher and the
// scope checker know of a method.
type Method struct {
	// Name is the dotted method name, such as "server.reboot".
	Name string
	// Params lists the parameter names in positional order: a call may
	// send an object with these keys or an array in this order.
	Params []Param
	// Access is the method's access class, one of scope.AccessClasses:
	// READ, CREATE, UPDATE, DELETE or MANAGE. Access scopes restrict by it.
	Access string
	// HeldAccess, when set, is the method's class for a key held by a user
	// or service account, which the handler lets act only on its own
	// holder's keys: filebin's "apikey" level lists (READ) and deletes
	// (DELETE) its own user's keys, which for any other key is MANAGE.
	HeldAccess string
	// Open methods may be called without a key. All others need one.
	Open bool
	// OperatorOnly methods may be called only with keys of the operator
	// account (store.OperatorAccount), whatever their scopes.
	OperatorOnly bool
	// AccountKeysOnly methods may be called only with keys of the account
	// itself, not with keys held by a user or service account, whatever
	// their scopes: a held key reaches only its own holder's keys, and
	// these methods manage or read holders, accounts or the account's
	// whole audit trail.
	AccountKeysOnly bool
	// Mutates says the method changes state: every call of it, success or
	// failure, goes in the audit trail. Handle sets it for every class but
	// READ; built-in reads of class MANAGE leave it unset.
	Mutates bool
	// Summary is one line for docs and discovery.
	Summary string
	// AnyKey methods may be called with any valid key, whatever its method,
	// name and access scopes (its ip scope still applies): they answer
	// only about the key itself, as rpc.discover does.
	AnyKey bool
	// Doc describes params and result for discovery. Typed fills it.
	Doc MethodDoc
	// Handler runs the call once authentication and the scope check passed.
	Handler func(ctx context.Context, p *Params) (any, error)
	// Forwarded says an upstream serves the method (gateway mode, set by
	// rpc/gateway): discovery lists it as the upstream's, and a Call that
	// may run it ends within Options.RequestTimeout.
	Forwarded bool

	paramKeys [][]byte // Params' names, made once by Register
	// appendHandler, when set, is Handler appending its result to dst
	// rather than returning it boxed (typedAppend).
	appendHandler func(ctx context.Context, p *Params, dst []byte) ([]byte, error)
	metrics       *methodMetrics // made by Register; nil when metrics are off
}

// Param describes one parameter.
type Param struct {
	Name     string
	Required bool
}

// TakesName reports whether the method has a "name" parameter, which name
// scopes restrict.
func (m *Method) TakesName() bool { return m.nameIndex() >= 0 }

// accessFor returns the access class of a call of m by key k.
func (m *Method) accessFor(k *store.Key) string {
	if m.HeldAccess != "" && k.Owner != "" {
		return m.HeldAccess
	}
	return m.Access
}

func (m *Method) nameIndex() int {
	return slices.IndexFunc(m.Params, func(p Param) bool { return p.Name == scope.TypeName })
}

// Params are one call's parameters, read by name with exact keys. A handler
// decodes them with Decode; Get returns one raw value. Raw values alias the
// request body: they, and the Params itself, are valid only until the
// handler returns, and are reused for later calls.
type Params struct {
	members []jsonwire.Member // key → raw value
}

// Get returns the raw value of parameter name, or nil when it is absent or
// null. The bytes are valid only until the handler returns.
func (p *Params) Get(name string) json.RawMessage {
	for _, m := range p.members {
		if string(m.Key) == name {
			if jsonwire.Kind(m.Value) == 'n' {
				return nil
			}
			return m.Value
		}
	}
	return nil
}

// name returns the call's "name" parameter when it is a string.
func (p *Params) name() (string, bool) {
	return jsonwire.RawString(p.Get(scope.TypeName))
}

// readParams turns raw params (object, array or nil) into Params for m,
// rejecting unknown keys and surplus positions.
func readParams(p *Params, m *Method, raw json.RawMessage, scratch []jsonwire.Member) error {
	*p = Params{}
	switch jsonwire.Kind(raw) {
	case 0:
		return nil
	case '[':
		var elemScratch [4][]byte
		elems, err := jsonwire.Elements(elemScratch[:0], raw)
		if err != nil {
			return InvalidParam("params", "malformed array")
		}
		if len(elems) > len(m.Params) {
			return &Error{Code: CodeInvalidParams, ID: ErrIDInvalidParams,
				Message: fmt.Sprintf("invalid params: %s takes at most %d positional params, got %d", m.Name, len(m.Params), len(elems))}
		}
		p.members = scratch
		for i, e := range elems {
			p.members = append(p.members, jsonwire.Member{Key: m.paramKeys[i], Value: e})
		}
		return nil
	}
	members, err := jsonwire.Members(scratch, raw)
	if errors.Is(err, jsonwire.ErrDuplicateKey) {
		return &Error{Code: CodeInvalidParams, ID: ErrIDInvalidParams, Message: "invalid params: a parameter appears twice"}
	} else if err != nil {
		return InvalidParam("params", "malformed object")
	}
	for _, mem := range members {
		if !slices.ContainsFunc(m.Params, func(pp Param) bool { return pp.Name == string(mem.Key) }) {
			return unknownParam(m, string(mem.Key))
		}
	}
	p.members = members
	return nil
}

func unknownParam(m *Method, key string) *Error {
	names := make([]string, len(m.Params))
	for i, p := range m.Params {
		names[i] = p.Name
	}
	want := "no params"
	if len(names) > 0 {
		want = "params " + strings.Join(names, ", ")
	}
	shown := key
	if utf8.RuneCountInString(shown) > 64 || !utf8.ValidString(shown) {
		shown = "(a long or invalid key)"
	} else if shown == "" {
		shown = "(an empty key)" // data.field would otherwise be left out
	}
	return &Error{Code: CodeInvalidParams, ID: ErrIDInvalidParams, Field: shown,
		Message: fmt.Sprintf("invalid params: %s takes %s; %q is not one of them", m.Name, want, shown)}
}

// Decode fills the struct that v points to from the params. Fields are
// matched by their json tag, exactly; a field tagged `rpc:"required"` must be
// present and not null. A value of the wrong type is an invalid-params error
// that names the field.
func (p *Params) Decode(v any) error {
	rv := reflect.ValueOf(v).Elem()
	return p.decode(rv, structParams(rv.Type()))
}

func (p *Params) decode(rv reflect.Value, fields []structParam) error {
	for _, f := range fields {
		raw := p.Get(f.Name)
		if raw == nil {
			if f.Required {
				return InvalidParam(f.Name, "is required")
			}
			continue
		}
		field := rv.Field(f.index)
		if field.Kind() == reflect.String {
			// The common case, without encoding/json: the same rawString
			// that read "name" for the scope check.
			str, ok := jsonwire.RawString(raw)
			if !ok {
				return InvalidParam(f.Name, "must be a string")
			}
			field.SetString(str)
			continue
		}
		// Nested values (objects, lists, numbers) go through the strict
		// decoder: a name twice or in another case is refused at any depth.
		if err := strictUnmarshal(raw, field.Addr().Interface()); err != nil {
			if e := strictParamError(f.Name, err); e != nil {
				return e
			}
			return InvalidParam(f.Name, "must be %s", describeType(field.Type()))
		}
	}
	return nil
}

type structParam struct {
	Param
	index int
}

// structParams lists the params of a params struct type, in field order.
func structParams(t reflect.Type) []structParam {
	var out []structParam
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out = append(out, structParam{Param: Param{Name: name, Required: f.Tag.Get("rpc") == "required"}, index: i})
	}
	return out
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ")
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return "an object"
}

// Handle registers fn as method name, of access class access, on s. The
// params struct P declares the
// parameters: each exported field with a json tag is one, in positional
// order, required when tagged `rpc:"required"`. A field tagged json:"name"
// makes the method take a name, which name scopes restrict. The result R is
// encoded as JSON; it must not be nil.
//
// Handle panics if name is taken or malformed, as Register does.
func Handle[P, R any](s *Server, name, access, summary string, fn func(context.Context, P) (R, error)) {
	s.Register(Typed(Method{Name: name, Access: access, Summary: summary, Mutates: access != scope.Read}, fn))
}

// Typed returns m with its Params and Handler made from fn, as Handle does,
// for registering with fields Handle does not set, such as OperatorOnly.
func Typed[P, R any](m Method, fn func(context.Context, P) (R, error)) Method {
	t := reflect.TypeFor[P]()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("rpc: params of %s must be a struct, got %s", m.Name, t))
	}
	fields := structParams(t)
	m.Params = nil
	for _, f := range fields {
		m.Params = append(m.Params, f.Param)
	}
	m.Doc = typeDoc(fields, t, reflect.TypeFor[R]())
	m.Handler = func(ctx context.Context, p *Params) (any, error) {
		var in P
		if err := p.decode(reflect.ValueOf(&in).Elem(), fields); err != nil {
			return nil, err
		}
		return fn(ctx, in)
	}
	return m
}

// typedAppend is Typed for a result that encodes itself: the handler
// appends it to the reply, so that it is never boxed in an interface (for a
// key's info, half the bytes a call allocates).
func typedAppend[P any, R jsonAppender](m Method, fn func(context.Context, P) (R, error)) Method {
	m = Typed(m, fn)
	fields := structParams(reflect.TypeFor[P]())
	m.appendHandler = func(ctx context.Context, p *Params, dst []byte) ([]byte, error) {
		var in P
		if err := p.decode(reflect.ValueOf(&in).Elem(), fields); err != nil {
			return dst, err
		}
		r, err := fn(ctx, in)
		if err != nil {
			return dst, err
		}
		return r.AppendJSON(dst), nil
	}
	return m
}
