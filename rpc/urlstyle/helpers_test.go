package urlstyle_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// adminKey is the operator key every test server starts with.
const adminKey = "00112233445566778899aabbccddeeff"

// testServer is a real apikeyd RPC server over a bbolt file in a temp dir,
// served by net/http on 127.0.0.1 at URL (.../rpc), with the methods
// server.reboot(name, force) and server.list().
type testServer struct {
	t     testing.TB
	Store *store.Store
	RPC   *rpc.Server
	URL   string // .../rpc
	Admin string
	// Reboots records the names server.reboot was called with.
	Reboots *[]string
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := store.Open(filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{
		NoSync: true, Now: func() time.Time { return fixed }, UsageFlush: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	_, created, err := st.Bootstrap(adminKey)
	require.NoError(t, err)
	require.True(t, created)
	srv := rpc.New(st, rpc.Options{Logger: zerolog.Nop()})

	type rebootParams struct {
		Name  string `json:"name" rpc:"required"`
		Force bool   `json:"force"`
	}
	type serverInfo struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	var mu sync.Mutex
	reboots := &[]string{}
	rpc.Handle(srv, "server.reboot", scope.Update, "Reboot a server.", func(ctx context.Context, p rebootParams) (serverInfo, error) {
		mu.Lock()
		*reboots = append(*reboots, p.Name)
		mu.Unlock()
		return serverInfo{Name: p.Name, Status: "rebooting"}, nil
	})
	rpc.Handle(srv, "server.list", scope.Read, "List servers.", func(ctx context.Context, _ struct{}) ([]serverInfo, error) {
		return []serverInfo{{Name: "web1", Status: "running"}, {Name: "web2", Status: "running"}}, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/rpc", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &testServer{t: t, Store: st, RPC: srv, URL: hs.URL + "/rpc", Admin: adminKey, Reboots: reboots}
}

type wireResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call makes one JSON-RPC call with id 1 over HTTP and returns its response.
func (ts *testServer) call(key, method string, params any) wireResponse {
	ts.t.Helper()
	env := map[string]any{"jsonrpc": "2.0", "method": method, "id": 1}
	if params != nil {
		env["params"] = params
	}
	body, err := json.Marshal(env)
	require.NoError(ts.t, err)
	req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(string(body)))
	require.NoError(ts.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	require.Equal(ts.t, http.StatusOK, resp.StatusCode, "reply: %s", reply)
	var r wireResponse
	require.NoError(ts.t, json.Unmarshal(reply, &r), "reply: %s", reply)
	require.True(ts.t, (r.Error == nil) != (r.Result == nil), "exactly one of result and error: %s", reply)
	return r
}

// ok makes a call that must succeed and decodes its result into out.
func (ts *testServer) ok(key, method string, params, out any) {
	ts.t.Helper()
	r := ts.call(key, method, params)
	require.Nil(ts.t, r.Error, "%s failed: %+v", method, r.Error)
	if out != nil {
		require.NoError(ts.t, json.Unmarshal(r.Result, out))
	}
}

// createKey creates a key as key with the given scopes and returns its
// reply (id and secret in Key).
func (ts *testServer) createKey(key string, scopes map[string][]string, comment string) rpc.NewKeyInfo {
	ts.t.Helper()
	var out rpc.NewKeyInfo
	params := map[string]any{"comment": comment}
	if scopes != nil {
		params["scopes"] = scopes
	}
	ts.ok(key, "apikey.create", params, &out)
	return out
}

// unchanged runs f and asserts no stored data changed (the audit trail
// aside: failed mutations are still audited).
func (ts *testServer) unchanged(f func()) {
	ts.t.Helper()
	before, err := ts.Store.Fingerprint()
	require.NoError(ts.t, err)
	f()
	after, err := ts.Store.Fingerprint()
	require.NoError(ts.t, err)
	require.Equal(ts.t, before, after, "the store changed")
}

// urlServer serves ts's methods in Memset's URL style on 127.0.0.1.
func urlServer(t *testing.T, ts *testServer) string {
	mux := http.NewServeMux()
	mux.Handle(urlstyle.Prefix, urlstyle.Handler(ts.RPC))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL + urlstyle.Prefix
}

// urlCall makes a URL-style call with the key as the Basic user name, as
// Memset's scripts do, and returns the status, headers and body.
func urlCall(t *testing.T, method, target, key string, form url.Values) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func urlError(t *testing.T, body []byte) urlstyle.Error {
	t.Helper()
	var e urlstyle.Error
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.NotEmpty(t, e.Error)
	return e
}
