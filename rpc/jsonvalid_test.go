package rpc

import (
	"encoding/json"
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

func TestValidJSON(t *testing.T) {
	for _, s := range validCorpus {
		assert.Equal(t, json.Valid([]byte(s)), validJSON([]byte(s)), "%.60q", s)
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range validCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if want, got := json.Valid([]byte(s)), validJSON([]byte(s)); want != got {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", s, got, want)
		}
	})
}
