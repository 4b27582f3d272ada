package rpc

import (
	"math"
	"unicode/utf8"
)

// validJSON reports whether b is one valid JSON value, surrounded by
// optional whitespace, in a fraction of the time a general decoder takes.
// It is strict where encoding/json is lenient: a string must be valid
// UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF) and a
// \u escape of a surrogate must be one half of a pair, as RFC 8259 and
// RFC 7493 require; otherwise one byte could be read two ways (kept by one
// reader, replaced by U+FFFD by another). Nesting is limited to 10000
// levels. It does not judge member names: a duplicate name is left to the
// reader of the object. A fuzz test (FuzzValidJSONStrict) holds its answer
// to go-json-experiment/json's jsontext with duplicate names allowed.
func validJSON(b []byte) bool {
	v := validator{b: b}
	return v.valid()
}

// validObject is validJSON that also finds the members of b, when b is an
// object, sparing a second pass over it. The members are usable when ok:
// b is an object of at most maxRequestMembers members, none of whose keys
// holds an escape.
func validObject(b []byte) (valid bool, members memberSpans, ok bool) {
	v := validator{b: b, topOK: true}
	valid = v.valid()
	return valid, v.top, valid && v.topOK && v.topObject
}

// memberSpans locates the members of an object in its bytes. It holds
// offsets rather than slices so that it can live on the stack.
type memberSpans struct {
	n     int
	spans [maxRequestMembers]struct{ k0, k1, v0, v1 int32 }
}

// appendTo appends the members of b that m locates to dst.
func (m *memberSpans) appendTo(dst []member, b []byte) []member {
	for _, s := range m.spans[:m.n] {
		dst = append(dst, member{key: b[s.k0:s.k1], value: b[s.v0:s.v1]})
	}
	return dst
}

const maxNesting = 10000

type validator struct {
	b []byte
	i int

	// top locates the members of a top-level object while topOK holds.
	top       memberSpans
	topOK     bool
	topObject bool // the top-level value is an object
	escaped   bool // the last string read held an escape
}

func (v *validator) valid() bool {
	v.space()
	v.topObject = v.i < len(v.b) && v.b[v.i] == '{'
	if !v.value(0) {
		return false
	}
	v.space()
	return v.i == len(v.b)
}

func (v *validator) space() {
	for v.i < len(v.b) {
		switch v.b[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

func (v *validator) value(depth int) bool {
	if v.i >= len(v.b) {
		return false
	}
	switch c := v.b[v.i]; {
	case c == '{':
		return v.object(depth + 1)
	case c == '[':
		return v.array(depth + 1)
	case c == '"':
		return v.string()
	case c == '-' || c >= '0' && c <= '9':
		return v.number()
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	}
	return false
}

func (v *validator) literal(lit string) bool {
	if len(v.b)-v.i < len(lit) || string(v.b[v.i:v.i+len(lit)]) != lit {
		return false
	}
	v.i += len(lit)
	return true
}

func (v *validator) object(depth int) bool {
	if depth > maxNesting {
		return false
	}
	v.i++ // {
	v.space()
	if v.i < len(v.b) && v.b[v.i] == '}' {
		v.i++
		return true
	}
	for {
		kStart := v.i
		if v.i >= len(v.b) || v.b[v.i] != '"' || !v.string() {
			return false
		}
		kEnd, kEscaped := v.i, v.escaped
		v.space()
		if v.i >= len(v.b) || v.b[v.i] != ':' {
			return false
		}
		v.i++
		v.space()
		vStart := v.i
		if !v.value(depth) {
			return false
		}
		if depth == 1 && v.topOK {
			if kEscaped || v.top.n == len(v.top.spans) || len(v.b) > math.MaxInt32 {
				v.topOK = false
			} else {
				v.top.spans[v.top.n] = struct{ k0, k1, v0, v1 int32 }{int32(kStart + 1), int32(kEnd - 1), int32(vStart), int32(v.i)}
				v.top.n++
			}
		}
		v.space()
		if v.i >= len(v.b) {
			return false
		}
		switch v.b[v.i] {
		case ',':
			v.i++
			v.space()
		case '}':
			v.i++
			return true
		default:
			return false
		}
	}
}

func (v *validator) array(depth int) bool {
	if depth > maxNesting {
		return false
	}
	v.i++ // [
	v.space()
	if v.i < len(v.b) && v.b[v.i] == ']' {
		v.i++
		return true
	}
	for {
		if !v.value(depth) {
			return false
		}
		v.space()
		if v.i >= len(v.b) {
			return false
		}
		switch v.b[v.i] {
		case ',':
			v.i++
			v.space()
		case ']':
			v.i++
			return true
		default:
			return false
		}
	}
}

// plainByte marks the bytes a JSON string may hold as they are: ASCII but
// for a quote, a backslash or a control character. Bytes of multi-byte
// UTF-8 sequences are checked one sequence at a time.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (v *validator) string() bool {
	v.i++ // opening quote
	v.escaped = false
	for v.i < len(v.b) {
		b, i := v.b, v.i // locals keep the hot loop in registers
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		v.i = i
		if v.i >= len(v.b) {
			return false
		}
		c := v.b[v.i]
		switch {
		case c == '"':
			v.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			v.escaped = true
			v.i++
			if v.i >= len(v.b) {
				return false
			}
			switch v.b[v.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				v.i++
			case 'u':
				r, ok := hex4(v.b[v.i+1:])
				if !ok {
					return false
				}
				v.i += 5
				switch {
				case r >= 0xdc00 && r <= 0xdfff:
					return false // a low surrogate alone
				case r >= 0xd800 && r <= 0xdbff:
					// A high surrogate must be followed by a low one.
					if len(v.b)-v.i < 6 || v.b[v.i] != '\\' || v.b[v.i+1] != 'u' {
						return false
					}
					lo, ok := hex4(v.b[v.i+2:])
					if !ok || lo < 0xdc00 || lo > 0xdfff {
						return false
					}
					v.i += 6
				}
			default:
				return false
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(v.b[v.i:])
			if r == utf8.RuneError && size == 1 {
				return false // invalid or overlong UTF-8, or a surrogate
			}
			v.i += size
		default:
			v.i++
		}
	}
	return false
}

// hex4 reads the four hexadecimal digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, h := range b[:4] {
		switch {
		case h >= '0' && h <= '9':
			r = r<<4 | rune(h-'0')
		case h >= 'a' && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		case h >= 'A' && h <= 'F':
			r = r<<4 | rune(h-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (v *validator) number() bool {
	if v.b[v.i] == '-' {
		v.i++
	}
	if v.i >= len(v.b) {
		return false
	}
	if v.b[v.i] == '0' {
		v.i++
	} else if !v.digits() {
		return false
	}
	if v.i < len(v.b) && v.b[v.i] == '.' {
		v.i++
		if !v.digits() {
			return false
		}
	}
	if v.i < len(v.b) && (v.b[v.i] == 'e' || v.b[v.i] == 'E') {
		v.i++
		if v.i < len(v.b) && (v.b[v.i] == '+' || v.b[v.i] == '-') {
			v.i++
		}
		if !v.digits() {
			return false
		}
	}
	return true
}

// digits consumes one or more decimal digits.
func (v *validator) digits() bool {
	start := v.i
	for v.i < len(v.b) && v.b[v.i] >= '0' && v.b[v.i] <= '9' {
		v.i++
	}
	return v.i > start
}
