package jsonwire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

var validCorpus = []string{
	``, ` `, `1`, `-0`, `-01`, `01`, `1.`, `.5`, `1.5e`, `1e+5`, `1E-05`, `-1.25e3`, `2.`, `-`, `+1`,
	`"x"`, `"\u00e9\n\/"`, `"\u00g0"`, `"\x"`, "\"a\x01b\"", "\"\xff\xfe\"", `"unterminated`, `"\"`,
	`true`, `tru`, `truex`, `null`, `nul`, `false`, `[]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{"a":1,}`,
	`{"a" 1}`, `{a:1}`, `{"a":}`, `{"a":1}{}`, ` {"a" : [ 1 , {"b":null} ] } `, `[[[[]]]]`, `[[[[]]]`,
	`{"jsonrpc":"2.0","method":"x","params":[1,2,{"k":"v"}],"id":-1.5e10}`, "\t[\r\n]\n", `[1]]`, `"a"b`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
}

// The oracle is the strict library (strict_test.go), not
// encoding/json.Valid, which accepts invalid UTF-8.
func TestValidJSON(t *testing.T) {
	for _, s := range validCorpus {
		assert.Equal(t, libraryValid([]byte(s)), Valid([]byte(s)), "%.60q", s)
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range validCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if want, got := libraryValid([]byte(s)), Valid([]byte(s)); want != got {
			t.Fatalf("Valid(%q) = %v, the library says %v", s, got, want)
		}
	})
}

var objectCorpus = []string{
	`{}`, ` { } `, `{"a":1}`, `{"jsonrpc":"2.0","method":"x","params":{"id":"y","n":[1,{"m":2}]},"id":7}`,
	` {"a" : "b" , "c":null}`, `{"a":1,"a":2}`, `{"a\u0062":1}`, `{"a":"\"q\""}`, `{"\\":1}`,
	`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8}`, `{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9}`,
	`[{"a":1}]`, `"x"`, `{"a":1`, `{"a":{"b":{"c":1}}}`,
}

// ValidObject agrees with Valid, and the members it finds are the ones
// Members finds in a second pass.
func checkValidObject(t *testing.T, s string) {
	b := []byte(s)
	valid, spans, ok := ValidObject(b)
	if valid != Valid(b) {
		t.Fatalf("ValidObject(%q) valid = %v, Valid says %v", s, valid, !valid)
	}
	if !ok {
		return
	}
	got := spans.AppendTo(nil, b)
	want, err := Members(nil, b)
	if err == ErrDuplicateKey {
		if !Duplicate(got) {
			t.Fatalf("ValidObject(%q): duplicate keys not seen in %q", s, got)
		}
		return
	}
	if err != nil || len(got) != len(want) {
		t.Fatalf("ValidObject(%q) = %q; Members = %q, %v", s, got, want, err)
	}
	for i := range got {
		if string(got[i].Key) != string(want[i].Key) || string(got[i].Value) != string(want[i].Value) {
			t.Fatalf("ValidObject(%q) Member %d = %q, Members says %q", s, i, got[i], want[i])
		}
	}
}

func TestValidObject(t *testing.T) {
	for _, s := range append(objectCorpus, validCorpus...) {
		checkValidObject(t, s)
	}
	for s, wantOK := range map[string]bool{
		`{"a":1}`: true, ` {"a" : [1] } `: true, `{}`: true, `{"a":1,"a":2}`: true,
		`{"a\u0062":1}`: false, // an escaped key is left to Members to unescape
		`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9}`: false, // too many
		`[{"a":1}]`: false, `"x"`: false, `{"a":1`: false,
	} {
		_, _, ok := ValidObject([]byte(s))
		assert.Equal(t, wantOK, ok, "%s", s)
	}
}

func FuzzValidObject(f *testing.F) {
	for _, s := range append(objectCorpus, validCorpus...) {
		f.Add(s)
	}
	f.Fuzz(checkValidObject)
}
