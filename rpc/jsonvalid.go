package rpc

import "math"

// validJSON reports whether b is one valid JSON value, surrounded by
// optional whitespace: the same answer as encoding/json.Valid (a fuzz test
// holds them equal), in a fraction of its time. Like encoding/json, it
// accepts invalid UTF-8 inside strings and limits nesting to 10000 levels.
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

// plainByte marks the bytes a JSON string may hold as they are: not a
// quote, a backslash or a control character.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
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
				if len(v.b)-v.i < 5 {
					return false
				}
				for _, h := range v.b[v.i+1 : v.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				v.i += 5
			default:
				return false
			}
		default:
			v.i++
		}
	}
	return false
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
