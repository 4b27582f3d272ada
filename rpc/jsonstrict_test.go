package rpc

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// The hand-written envelope reader (validJSON, validObject, objectMembers,
// arrayElements) stays for speed; these tests hold it to the verdict of
// go-json-experiment/json's jsontext, a well-kept strict decoder: the same
// answer on valid or not (duplicate names aside: they are judged by the
// reader of each object), and the same members, keys unescaped and values
// byte for byte.

// strictCorpus seeds the differential fuzz tests: the cases where a
// lenient reader and a strict one part ways.
var strictCorpus = []string{
	"\"\xff\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xed\xbf\xbf\"", "\"\xf4\x90\x80\x80\"",
	"\"\xf0\x9f\x98\x80\"", "\"\xf0\x9f\x98\"", "\"\xc3\"", "\"\xc3\xa9\"", "\"\xef\xbf\xbd\"", "\"\x7f\"",
	`"\ud800"`, `"\udc00"`, `"\ud800\udc00"`, `"\udbff\udfff"`, `"\ud800\u0041"`, `"\ud800\\udc00"`, `"\ud800\ud800"`,
	`"\ud83d\ude00x"`, `"\uD83D\uDE00"`, `"\ud800"x`, `"\ud800\u"`, `"\ud800\udc0"`, `"\u0000"`, `"\uFFFF"`,
	"{\"\xff\":1}", `{"\ud800":1}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"b":1,"b":2}}`, `{"a":1,"A":2}`,
	`{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"method":["a.b"],"method":["c.d"]}},"id":1}`,
	"{\"jsonrpc\":\"2.0\",\"method\":\"apikey.list\",\"id\":\"\xc0\xaf\"}",
	`[{"jsonrpc":"2.0","method":"x.y","id":1},{"jsonrpc":"2.0","method":"x.y","id":"\ud83d\ude00"}]`,
}

// libraryValid is the library's verdict on b as one JSON value: valid
// UTF-8, valid escapes, nesting within bounds; duplicate names allowed.
func libraryValid(b []byte) bool {
	return jsontext.Value(b).IsValid(jsontext.AllowDuplicateNames(true))
}

// libraryMembers reads the members of the object b with the library, and
// reports whether a name appears twice.
func libraryMembers(b []byte) (members []member, dup bool, err error) {
	d := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, false, errors.New("not an object")
	}
	seen := map[string]bool{}
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil, false, err
		}
		name := tok.String()
		val, err := d.ReadValue()
		if err != nil {
			return nil, false, err
		}
		dup = dup || seen[name]
		seen[name] = true
		members = append(members, member{key: []byte(name), value: bytes.Clone(val)})
	}
	return members, dup, nil
}

// libraryElements reads the elements of the array b with the library.
func libraryElements(b []byte) ([][]byte, error) {
	d := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, errors.New("not an array")
	}
	var out [][]byte
	for d.PeekKind() != ']' {
		val, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		out = append(out, bytes.Clone(val))
	}
	return out, nil
}

// checkStrict holds the envelope reader to the library on b.
func checkStrict(t *testing.T, b []byte) {
	want := libraryValid(b)
	if got := validJSON(b); got != want {
		t.Fatalf("validJSON(%q) = %v, the library says %v", b, got, want)
	}
	valid, spans, ok := validObject(b)
	if valid != want {
		t.Fatalf("validObject(%q) valid = %v, the library says %v", b, valid, want)
	}
	if !want {
		return
	}
	switch b[skipSpace(b, 0)] {
	case '{':
		lib, dup, err := libraryMembers(b)
		if err != nil {
			t.Fatalf("the library cannot read the members of %q, which it calls valid: %v", b, err)
		}
		got, err := objectMembers(nil, b)
		if dup != errors.Is(err, errDuplicateKey) {
			t.Fatalf("objectMembers(%q): error %v; the library finds a duplicate name: %v", b, err, dup)
		}
		if !dup {
			if err != nil {
				t.Fatalf("objectMembers(%q): %v", b, err)
			}
			sameMembers(t, b, "objectMembers", got, lib)
		}
		if ok {
			found := spans.appendTo(nil, b)
			if dup != duplicateKey(found) {
				t.Fatalf("validObject(%q): duplicate %v; the library says %v", b, !dup, dup)
			}
			sameMembers(t, b, "validObject", found, lib)
		}
	case '[':
		lib, err := libraryElements(b)
		if err != nil {
			t.Fatalf("the library cannot read the elements of %q: %v", b, err)
		}
		got, err := arrayElements(nil, b)
		if err != nil || len(got) != len(lib) {
			t.Fatalf("arrayElements(%q) = %q, %v; the library finds %q", b, got, err, lib)
		}
		for i := range got {
			if !bytes.Equal(got[i], lib[i]) {
				t.Fatalf("arrayElements(%q)[%d] = %q; the library says %q", b, i, got[i], lib[i])
			}
		}
	}
}

func sameMembers(t *testing.T, b []byte, who string, got, want []member) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s(%q) finds %d members, the library %d", who, b, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].key, want[i].key) || !bytes.Equal(got[i].value, want[i].value) {
			t.Fatalf("%s(%q) member %d = %q: %q; the library says %q: %q", who, b, i, got[i].key, got[i].value, want[i].key, want[i].value)
		}
	}
}

func strictSeeds() []string {
	return append(append(append([]string{}, strictCorpus...), validCorpus...), objectCorpus...)
}

func TestValidJSON_AgreesWithLibrary(t *testing.T) {
	for _, s := range strictSeeds() {
		checkStrict(t, []byte(s))
	}
}

// FuzzValidJSONStrict is the differential fuzz test of the envelope
// reader against the library. Run it for a while after changing either:
//
//	go test ./rpc -run '^$' -fuzz FuzzValidJSONStrict -fuzztime 3m
//
// The deeply nested seeds stay in the test above: mutated, they make each
// run slow and the fuzzer find less; nesting is a fixed limit, not a
// place where the readers part ways byte by byte.
func FuzzValidJSONStrict(f *testing.F) {
	for _, s := range strictSeeds() {
		if len(s) <= maxFuzzInput {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzInput {
			return
		}
		checkStrict(t, b)
	})
}

const maxFuzzInput = 4 << 10

// TestStrictUnmarshal_Rules: what the strict decoder refuses in nested
// params, and the field it names.
func TestStrictUnmarshal_Rules(t *testing.T) {
	type limit struct {
		Limit    int64 `json:"limit"`
		Interval int64 `json:"interval_seconds"`
	}
	for _, tc := range []struct {
		name, in string
		into     any
		wantMsg  string // "" for success
	}{
		{"OK", `{"limit":5,"interval_seconds":60}`, new(limit), ""},
		{"CaseVariant", `{"limit":5,"LIMIT":500}`, new(limit), `rate_limit.LIMIT: no such member`},
		{"Duplicate", `{"limit":5,"limit":500}`, new(limit), `twice`},
		{"EscapedDuplicate", `{"limit":5,"\u006cimit":500}`, new(limit), `twice`},
		{"MapDuplicate", `{"method":["a"],"method":["b"]}`, new(map[string][]string), `twice`},
		{"DeepDuplicate", `[{"a":1},{"b":1,"b":2}]`, new([]map[string]int), `twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := strictUnmarshal([]byte(tc.in), tc.into)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			e := strictParamError("rate_limit", err)
			if e == nil || e.Code != CodeInvalidParams || e.Field != "rate_limit" || !strings.Contains(e.Message, tc.wantMsg) {
				t.Fatalf("strictParamError(%v) = %+v, want invalid params naming rate_limit and %q", err, e, tc.wantMsg)
			}
		})
	}
}

// BenchmarkScan_ValidJSON is the envelope check alone, on the hot
// request and on one with non-ASCII text and escapes.
func BenchmarkScan_ValidJSON(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"info", `{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"01a206e5-740b-7604-8209-7c48d77d06bd"},"id":1}`},
		{"utf8", `{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"Zürich café — 東京 \ud83d\ude00 \u00e9","scopes":{"method":["server.*"]}},"id":"é"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(bc.body)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !validJSON(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
