package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// paramTarget is one real params struct of the method table, decoded the
// way a call decodes it (readParams, then Typed's decode) and, as the
// oracle, by the strict library alone.
type paramTarget struct {
	method Method
	strict func(raw []byte) error // jsonv2 into a fresh value of the struct
}

func newParamTarget[P any](name string) paramTarget {
	return paramTarget{
		method: Typed(Method{Name: name}, func(context.Context, P) (struct{}, error) { return struct{}{}, nil }),
		strict: func(raw []byte) error {
			var v P
			return strictUnmarshal(raw, &v)
		},
	}
}

// fuzzSeeds returns the shared seed bodies in testdata/fuzzseeds at the
// top of the repository, one file a seed (see its README).
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	dir := filepath.Join("..", "testdata", "fuzzseeds")
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		f.Fatal("no seeds in", dir)
	}
	return out
}

// FuzzParamsDecode decodes arbitrary params objects into the params structs
// of several real methods. Invariants: no panic; params are accepted exactly
// when the strict library (go-json-experiment/json, unknown members
// refused) decodes them and every required param is present and not null;
// and every refusal is an invalid-params error (-32602, invalid_params)
// that names a param of the method.
func FuzzParamsDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":"00112233445566778899aabbccddeeff"}`,
		`{"id":"x","scope_name":"method","value":"server.*"}`,
		`{"scopes":{"method":["a.b"],"name":["web*"]},"comment":"c","rate_limit":{"limit":5,"duration_ms":1000}}`,
		`{"scopes":{"method":["a"],"method":["b"]}}`, `{"scopes":{"Method":["a"]}}`,
		`{"id":"a","name":null,"active":true,"expires_at":"2027-01-01T00:00:00Z"}`,
		`{"id":"a","retain_period_minutes":1e400}`, `{"id":"a","retain_period_minutes":-0.5}`,
		`{"name":"contains:x","size":20,"page":1,"created":["gt:2026-01-01T00:00:00Z"]}`,
		`{"key":"k","method":"m","name":"\ud800"}`, `{"id":"\u00e9\uD83D\uDE00"}`, `{"id":"a","id":"b"}`,
		`{"name":"x","active":"yes"}`, `{"id":null}`, `{}`, `{"nope":1}`,
	} {
		f.Add([]byte(s))
	}
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
		var env struct {
			Params jsontext.Value `json:"params"`
		}
		if jsonv2.Unmarshal(b, &env) == nil && len(env.Params) > 0 {
			f.Add([]byte(env.Params))
		}
	}
	targets := []paramTarget{
		newParamTarget[createParams]("apikey.create"),
		newParamTarget[idParams]("apikey.info"),
		newParamTarget[scopeParams]("apikey.add_scope"),
		newParamTarget[updateParams]("apikey.update"),
		newParamTarget[rotateParams]("apikey.rotate"),
		newParamTarget[verifyParams]("apikey.verify"),
		newParamTarget[listParams]("apikey.list"),
		newParamTarget[serviceAccountCreateParams]("service_account.create"),
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The envelope refuses what is not valid JSON before params are
		// read, and only objects have names to hold to the strict library.
		if !jsonwire.Valid(raw) || jsonwire.Kind(raw) != '{' {
			return
		}
		for _, tg := range targets {
			m := &tg.method
			var p Params
			err := readParams(&p, m, raw, nil)
			if err == nil {
				_, err = m.Handler(context.Background(), &p)
			}
			want := tg.strict(raw)
			if want == nil {
				want = missingRequired(raw, m.Params)
			}
			if (err == nil) != (want == nil) {
				t.Fatalf("%s: decode says %v, the strict library says %v, for %s", m.Name, err, want, raw)
			}
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidParams || e.ID != ErrIDInvalidParams {
				t.Fatalf("%s: refusal is not invalid_params: %#v for %s", m.Name, err, raw)
			}
			if e.Field == "" {
				if strings.Contains(e.Message, "appears twice") {
					continue // a top-level name twice: the message says so
				}
				t.Fatalf("%s: refusal names no field: %q for %s", m.Name, e.Message, raw)
			}
			if !namesParam(e.Field, m.Params) && !isUnknownKey(raw, e.Field, m.Params) {
				t.Fatalf("%s: refusal names %q, not a param of the method, for %s", m.Name, e.Field, raw)
			}
		}
	})
}

// missingRequired is the oracle's rule for rpc:"required": the strict
// library has no such notion, and a call counts null as absent.
func missingRequired(raw []byte, params []Param) error {
	var members map[string]jsontext.Value
	if err := jsonv2.Unmarshal(raw, &members); err != nil {
		return err
	}
	for _, p := range params {
		v, ok := members[p.Name]
		if p.Required && (!ok || v.Kind() == 'n') {
			return errors.New(p.Name + " is required")
		}
	}
	return nil
}

// namesParam reports whether field is a param of the method, or a member
// or element within one (scopes.method, created[1]).
func namesParam(field string, params []Param) bool {
	head := field
	if i := strings.IndexAny(head, ".["); i >= 0 {
		head = head[:i]
	}
	for _, p := range params {
		if p.Name == head {
			return true
		}
	}
	return false
}

// isUnknownKey reports whether field is how a refusal names a top-level key
// of raw that the method does not take.
func isUnknownKey(raw []byte, field string, params []Param) bool {
	if field == "(a long or invalid key)" || field == "(an empty key)" {
		return true
	}
	var members map[string]json.RawMessage // lenient: a name may repeat below
	if json.Unmarshal(raw, &members) != nil {
		return false
	}
	_, ok := members[field]
	return ok && !namesParam(field, params)
}
