package urlstyle_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/apikeyd/apikeyd/rpc/urlstyle"
)

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
	reader := ts.CreateKey(ts.Admin, map[string][]string{"method": {"apikey.info", "apikey.list", "server.list"}}, "reader")
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
