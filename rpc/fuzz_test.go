package rpc_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc/urlstyle"
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

// FuzzServeURL throws arbitrary paths and queries at Memset's URL style: it
// must never panic, must answer with JSON and a status of the documented
// set, and a read-only key must never change the store.
func FuzzServeURL(f *testing.F) {
	for _, seed := range []string{
		"apikey.list?size=2", "apikey.info?id=00112233445566778899aabbccddeeff", "server.reboot/web1?force=1",
		"apikey.create?scopes=%7B%22method%22%3A%5B%22x.y%22%5D%7D", "apikey.list?created=gt:2026-01-01T00:00:00Z&created=lt:x",
		"server.reboot/web1?name=web1&name=web2", "no.such/x", "apikey.update?active=2&id=a", "%ff%fe?%zz=1", "a/b/c?&&=",
	} {
		f.Add(seed)
	}
	ts := newTestServer(f)
	reader := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.info", "apikey.list", "server.list"}}, "reader")
	allowed := map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 409: true, 429: true}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.Parse(urlstyle.Prefix + target)
		if err != nil {
			t.Skip()
		}
		before, err := ts.Store.Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = u
		req.SetBasicAuth(reader.Key, "")
		rec := httptest.NewRecorder()
		urlstyle.Handler(ts.RPC).ServeHTTP(rec, req)
		if !allowed[rec.Code] || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d, body %q for %q", rec.Code, rec.Body, target)
		}
		if after, _ := ts.Store.Fingerprint(); after != before {
			t.Fatalf("a read-only key changed the store with %q", target)
		}
	})
}
