package jsonwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// This file reads the members of a JSON object exactly as sent. encoding/json
// matches struct fields without regard to case and keeps the last of
// duplicate keys; for the request envelope and for params that is a hazard
// (authorize one "method", dispatch another), so apikeyd reads objects with
// these helpers: keys are compared byte for byte after unescaping, and a
// duplicate key is an error. Input must already be valid JSON (json.Valid).

// Member is one key and its raw value, both slices of the input.
type Member struct {
	Key   []byte // unescaped
	Value []byte
}

// ErrDuplicateKey is returned by Members and MembersLimit when a name
// appears twice in an object.
var ErrDuplicateKey = errors.New("duplicate key")

// ErrTooManyMembers is returned by MembersLimit.
var ErrTooManyMembers = errors.New("too many members")

// smallObject is the member count up to which duplicates are found by
// comparing with every earlier key; beyond it, with a set, so that a huge
// object costs time in proportion to its size, not its square.
const smallObject = 8

// Members returns the members of the JSON object b, in order. It
// appends to dst to let callers reuse storage.
func Members(dst []Member, b []byte) ([]Member, error) {
	return MembersLimit(dst, b, 0)
}

// MembersLimit is Members refusing, with ErrTooManyMembers,
// an object of more than limit members (0: no limit) as soon as it sees
// one too many.
func MembersLimit(dst []Member, b []byte, limit int) ([]Member, error) {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return dst, errors.New("not an object")
	}
	start := len(dst)
	var seen map[string]struct{}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return dst, nil
	}
	for i < len(b) {
		kEnd := SkipString(b, i)
		key := b[i+1 : kEnd-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(b[i:kEnd], &s); err != nil {
				return dst, err
			}
			key = []byte(s)
		}
		i = SkipSpace(b, kEnd)
		i = SkipSpace(b, i+1) // the colon
		vEnd := SkipValue(b, i)
		n := len(dst) - start
		if limit > 0 && n == limit {
			return dst, ErrTooManyMembers
		}
		switch {
		case n < smallObject:
			for _, m := range dst[start:] {
				if bytes.Equal(m.Key, key) {
					return dst, ErrDuplicateKey
				}
			}
		case seen == nil:
			seen = make(map[string]struct{}, 2*smallObject)
			for _, m := range dst[start:] {
				seen[string(m.Key)] = struct{}{}
			}
			fallthrough
		default:
			if _, dup := seen[string(key)]; dup {
				return dst, ErrDuplicateKey
			}
			seen[string(key)] = struct{}{}
		}
		dst = append(dst, Member{Key: key, Value: b[i:vEnd]})
		i = SkipSpace(b, vEnd)
		if i < len(b) && b[i] == '}' {
			return dst, nil
		}
		i = SkipSpace(b, i+1) // the comma
	}
	return dst, errors.New("unterminated object")
}

// Elements returns the raw elements of the JSON array b.
func Elements(dst [][]byte, b []byte) ([][]byte, error) {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return dst, errors.New("not an array")
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return dst, nil
	}
	for i < len(b) {
		end := SkipValue(b, i)
		dst = append(dst, b[i:end])
		i = SkipSpace(b, end)
		if i < len(b) && b[i] == ']' {
			return dst, nil
		}
		i = SkipSpace(b, i+1)
	}
	return dst, errors.New("unterminated array")
}

func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// SkipString returns the index just past the string starting at b[i] == '"'.
func SkipString(b []byte, i int) int {
	// Each byte is searched once: the next quote is looked for again only
	// when the one found turns out to be escaped. (Searching from every
	// backslash made a string of escapes cost O(n^2).)
	for i++; i < len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			break
		}
		q += i
		for {
			e := bytes.IndexByte(b[i:q], '\\')
			if e < 0 {
				return q + 1
			}
			i += e + 2 // past the backslash and the byte it escapes
			if i > q { // it escaped that quote
				break
			}
		}
	}
	return len(b)
}

// SkipValue returns the index just past the value starting at b[i].
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = SkipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
		i++
	}
	return i
}

// Kind names the type of the raw JSON value v by its first byte.
func Kind(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	switch c := v[0]; c {
	case '"', '{', '[', 'n', 't', 'f':
		return c
	}
	return '0' // a number
}

// RawBytes is RawString without a copy when v holds no escapes: the
// result may alias v.
func RawBytes(v []byte) ([]byte, bool) {
	if Kind(v) != '"' {
		return nil, false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner, true
	}
	s, ok := RawString(v)
	return []byte(s), ok
}

// RawString returns the string value of the raw JSON string v.
func RawString(v []byte) (string, bool) {
	if Kind(v) != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// safeJSONByte marks the ASCII bytes AppendString copies as they are.
var safeJSONByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendString appends s as a JSON string, as encoding/json would write
// it (HTML characters escaped, invalid UTF-8 as U+FFFD).
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && safeJSONByte[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			switch r {
			case utf8.RuneError:
				dst = append(dst, `\ufffd`...)
			default:
				dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Duplicate reports whether two of a few members have the same key: for
// the members of a Spans, whose keys hold no escapes.
func Duplicate(members []Member) bool {
	for i := 1; i < len(members); i++ {
		for _, m := range members[:i] {
			if bytes.Equal(m.Key, members[i].Key) {
				return true
			}
		}
	}
	return false
}
