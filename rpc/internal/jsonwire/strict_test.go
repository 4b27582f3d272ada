package jsonwire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// The hand-written envelope reader (Valid, ValidObject, Members,
// Elements) stays for speed; these tests hold it to the verdict of
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
func libraryMembers(b []byte) (members []Member, dup bool, err error) {
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
		members = append(members, Member{Key: []byte(name), Value: bytes.Clone(val)})
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
	if got := Valid(b); got != want {
		t.Fatalf("Valid(%q) = %v, the library says %v", b, got, want)
	}
	valid, spans, ok := ValidObject(b)
	if valid != want {
		t.Fatalf("ValidObject(%q) valid = %v, the library says %v", b, valid, want)
	}
	if !want {
		return
	}
	switch b[SkipSpace(b, 0)] {
	case '{':
		lib, dup, err := libraryMembers(b)
		if err != nil {
			t.Fatalf("the library cannot read the members of %q, which it calls valid: %v", b, err)
		}
		got, err := Members(nil, b)
		if dup != errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("Members(%q): error %v; the library finds a duplicate name: %v", b, err, dup)
		}
		if !dup {
			if err != nil {
				t.Fatalf("Members(%q): %v", b, err)
			}
			sameMembers(t, b, "Members", got, lib)
		}
		if ok {
			found := spans.AppendTo(nil, b)
			if dup != Duplicate(found) {
				t.Fatalf("ValidObject(%q): duplicate %v; the library says %v", b, !dup, dup)
			}
			sameMembers(t, b, "ValidObject", found, lib)
		}
	case '[':
		lib, err := libraryElements(b)
		if err != nil {
			t.Fatalf("the library cannot read the elements of %q: %v", b, err)
		}
		got, err := Elements(nil, b)
		if err != nil || len(got) != len(lib) {
			t.Fatalf("Elements(%q) = %q, %v; the library finds %q", b, got, err, lib)
		}
		for i := range got {
			if !bytes.Equal(got[i], lib[i]) {
				t.Fatalf("Elements(%q)[%d] = %q; the library says %q", b, i, got[i], lib[i])
			}
		}
	}
}

func sameMembers(t *testing.T, b []byte, who string, got, want []Member) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s(%q) finds %d members, the library %d", who, b, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Fatalf("%s(%q) Member %d = %q: %q; the library says %q: %q", who, b, i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
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
				if !Valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
