package rpc_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzServeHTTP throws arbitrary bodies at the real handler with a valid
// key: it must never panic, must answer every body with valid JSON (or 204
// for notifications only), and must never let a failed call change the
// store. The admin key may legitimately create and delete keys, so the
// store check uses a key whose scopes allow only reads.
func FuzzServeHTTP(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","method":"apikey.list","id":1}`,
		`[{"jsonrpc":"2.0","method":"apikey.info","params":["00112233445566778899aabbccddeeff"],"id":"a"},{"jsonrpc":"2.0","method":"apikey.list"}]`,
		`{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"method":["server.*"]},"comment":"x"},"id":null}`,
		`{"jsonrpc":"2.0","method":"apikey.add_scope","params":{"id":"x","scope_name":"name","value":"v"},"id":-1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","name":"web2"},"id":1e400}`,
		`[]`, `[1,2]`, `{`, `{"jsonrpc":"2.0","m\u0065thod":"apikey.list","id":1}`, "\xff\xfe",
	} {
		f.Add(seed)
	}
	ts := newTestServer(f)
	reader := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.info", "apikey.list", "server.list"}}, "reader")
	f.Fuzz(func(t *testing.T, body string) {
		digest := func() [32]byte {
			d, err := ts.Store.Fingerprint()
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		for _, key := range []string{ts.Admin, reader.Key} {
			before := digest()
			req := httptest.NewRequest(http.MethodPost, "/rpc", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			rec := httptest.NewRecorder()
			ts.RPC.ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusNoContent:
				if rec.Body.Len() != 0 {
					t.Fatalf("204 with a body: %q", rec.Body)
				}
			case http.StatusOK:
				if !json.Valid(rec.Body.Bytes()) {
					t.Fatalf("reply is not JSON: %q", rec.Body)
				}
			default:
				t.Fatalf("status %d for %q", rec.Code, body)
			}
			if key == reader.Key && digest() != before {
				t.Fatalf("a read-only key changed the store with %q", body)
			}
		}
	})
}
