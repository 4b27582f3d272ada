package jsonwire

import (
	"math"
	"unicode/utf8"
)

// Valid reports whether b is one valid JSON value, surrounded by
// optional whitespace, in a fraction of the time a general decoder takes.
// It is strict where encoding/json is lenient: a string must be valid
// UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF) and a
// \u escape of a surrogate must be one half of a pair, as RFC 8259 and
// RFC 7493 require; otherwise one byte could be read two ways (kept by one
// reader, replaced by U+FFFD by another). Nesting is limited to 10000
// levels. It does not judge member names: a duplicate name is left to the
// reader of the object. A fuzz test (FuzzValidJSONStrict) holds its answer
// to go-json-experiment/json's jsontext with duplicate names allowed.
func Valid(b []byte) bool {
	v := validator{b: b}
	return v.valid()
}

// ValidObject is Valid that also finds the members of b, when b is an
// object, sparing a second pass over it. The members are usable when ok:
// b is an object of at most MaxSpans members, none of whose keys
// holds an escape.
func ValidObject(b []byte) (valid bool, members Spans, ok bool) {
	v := validator{b: b, topOK: true}
	valid = v.valid()
	return valid, v.top, valid && v.topOK && v.topObject
}

// Spans locates the members of an object in its bytes. It holds
// offsets rather than slices so that it can live on the stack.
type Spans struct {
	n     int
	spans [MaxSpans]struct{ k0, k1, v0, v1 int32 }
}

// AppendTo appends the members of b that m locates to dst.
func (m *Spans) AppendTo(dst []Member, b []byte) []Member {
	for _, s := range m.spans[:m.n] {
		dst = append(dst, Member{Key: b[s.k0:s.k1], Value: b[s.v0:s.v1]})
	}
	return dst
}

// MaxSpans is the most members Spans locates: those of a JSON-RPC request
// (jsonrpc, method, params, id, and a few to spare for refusing extras).
const MaxSpans = 8

const maxNesting = 10000

type validator struct {
	b []byte
	i int

	// top locates the members of a top-level object while topOK holds.
	top       Spans
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

// string reads a string. It calls no function, so that it runs without a
// stack frame of its own: most strings are short and ASCII, and the
// prologue of a function that calls would cost them a tenth more. Hence
// UTF-8 and \u escapes are checked here by hand, with tables.
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
				h := v.b[v.i+1 : v.i+5]
				d0, d1, d2, d3 := hexValue[h[0]], hexValue[h[1]], hexValue[h[2]], hexValue[h[3]]
				if d0|d1|d2|d3 < 0 {
					return false
				}
				v.i += 5
				if d0 != 0xd || d1 < 8 {
					continue // not a surrogate
				}
				// A surrogate must be a high half (D800-DBFF) followed
				// by an escaped low half (DC00-DFFF).
				if d1 >= 0xc || len(v.b)-v.i < 6 || v.b[v.i] != '\\' || v.b[v.i+1] != 'u' {
					return false
				}
				h = v.b[v.i+2 : v.i+6]
				d0, d1, d2, d3 = hexValue[h[0]], hexValue[h[1]], hexValue[h[2]], hexValue[h[3]]
				if d0|d1|d2|d3 < 0 || d0 != 0xd || d1 < 0xc {
					return false
				}
				v.i += 6
			default:
				return false
			}
		default: // the first byte of a multi-byte sequence, or not UTF-8
			// The ranges of RFC 3629, section 4: no overlong forms, no
			// surrogates, nothing past U+10FFFF.
			size, lo, hi := 0, byte(0x80), byte(0xbf)
			switch {
			case c < 0xc2:
				return false
			case c < 0xe0:
				size = 2
			case c < 0xf0:
				size = 3
				if c == 0xe0 {
					lo = 0xa0
				} else if c == 0xed {
					hi = 0x9f
				}
			case c < 0xf5:
				size = 4
				if c == 0xf0 {
					lo = 0x90
				} else if c == 0xf4 {
					hi = 0x8f
				}
			default:
				return false
			}
			if len(v.b)-v.i < size {
				return false
			}
			seq := v.b[v.i+1 : v.i+size]
			if seq[0] < lo || seq[0] > hi {
				return false
			}
			for _, cc := range seq[1:] {
				if cc < 0x80 || cc > 0xbf {
					return false
				}
			}
			v.i += size
		}
	}
	return false
}

// hexValue maps the bytes of hexadecimal digits to their values, and
// every other byte to -1.
var hexValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = int8(c-'a'+10), int8(c-'a'+10)
	}
	return t
}()

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
