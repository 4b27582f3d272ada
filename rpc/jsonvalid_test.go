package rpc

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

// The oracle is the strict library (jsonstrict_test.go), not
// encoding/json.Valid, which accepts invalid UTF-8.
func TestValidJSON(t *testing.T) {
	for _, s := range validCorpus {
		assert.Equal(t, libraryValid([]byte(s)), validJSON([]byte(s)), "%.60q", s)
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range validCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if want, got := libraryValid([]byte(s)), validJSON([]byte(s)); want != got {
			t.Fatalf("validJSON(%q) = %v, the library says %v", s, got, want)
		}
	})
}

var objectCorpus = []string{
	`{}`, ` { } `, `{"a":1}`, `{"jsonrpc":"2.0","method":"x","params":{"id":"y","n":[1,{"m":2}]},"id":7}`,
	` {"a" : "b" , "c":null}`, `{"a":1,"a":2}`, `{"a\u0062":1}`, `{"a":"\"q\""}`, `{"\\":1}`,
	`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8}`, `{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9}`,
	`[{"a":1}]`, `"x"`, `{"a":1`, `{"a":{"b":{"c":1}}}`,
}

// validObject agrees with validJSON, and the members it finds are the ones
// objectMembers finds in a second pass.
func checkValidObject(t *testing.T, s string) {
	b := []byte(s)
	valid, spans, ok := validObject(b)
	if valid != validJSON(b) {
		t.Fatalf("validObject(%q) valid = %v, validJSON says %v", s, valid, !valid)
	}
	if !ok {
		return
	}
	got := spans.appendTo(nil, b)
	want, err := objectMembers(nil, b)
	if err == errDuplicateKey {
		if !duplicateKey(got) {
			t.Fatalf("validObject(%q): duplicate keys not seen in %q", s, got)
		}
		return
	}
	if err != nil || len(got) != len(want) {
		t.Fatalf("validObject(%q) = %q; objectMembers = %q, %v", s, got, want, err)
	}
	for i := range got {
		if string(got[i].key) != string(want[i].key) || string(got[i].value) != string(want[i].value) {
			t.Fatalf("validObject(%q) member %d = %q, objectMembers says %q", s, i, got[i], want[i])
		}
	}
}

func TestValidObject(t *testing.T) {
	for _, s := range append(objectCorpus, validCorpus...) {
		checkValidObject(t, s)
	}
	for s, wantOK := range map[string]bool{
		`{"a":1}`: true, ` {"a" : [1] } `: true, `{}`: true, `{"a":1,"a":2}`: true,
		`{"a\u0062":1}`: false, // an escaped key is left to objectMembers to unescape
		`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9}`: false, // too many
		`[{"a":1}]`: false, `"x"`: false, `{"a":1`: false,
	} {
		_, _, ok := validObject([]byte(s))
		assert.Equal(t, wantOK, ok, "%s", s)
	}
}

func FuzzValidObject(f *testing.F) {
	for _, s := range append(objectCorpus, validCorpus...) {
		f.Add(s)
	}
	f.Fuzz(checkValidObject)
}
