package ws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/ws"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// adminKey is the operator key every test server starts with.
const adminKey = "00112233445566778899aabbccddeeff"

// testServer is a real apikeyd RPC server over a bbolt file in a temp dir,
// served by net/http on 127.0.0.1 at URL (.../rpc), with the methods
// server.reboot(name, force) and server.list(). WS is its WebSocket
// transport, which serveWS serves.
type testServer struct {
	t     testing.TB
	Store *store.Store
	RPC   *rpc.Server
	WS    *ws.Handler
	URL   string // .../rpc
	Admin string
	Log   *syncBuffer
	// Reboots records the names server.reboot was called with.
	Reboots *[]string
}

func newTestServer(t testing.TB, opts ...func(*rpc.Options)) *testServer {
	t.Helper()
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := store.Open(filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{
		NoSync: true, Now: func() time.Time { return fixed }, UsageFlush: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	_, created, err := st.Bootstrap(adminKey)
	require.NoError(t, err)
	require.True(t, created)
	logBuf := &syncBuffer{}
	o := rpc.Options{Logger: zerolog.New(logBuf).Level(zerolog.DebugLevel)}
	for _, opt := range opts {
		opt(&o)
	}
	srv := rpc.New(st, o)
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
	return &testServer{t: t, Store: st, RPC: srv, WS: ws.New(srv), URL: hs.URL + "/rpc", Admin: adminKey, Log: logBuf, Reboots: reboots}
}

type rebootParams struct {
	Name  string `json:"name" rpc:"required"`
	Force bool   `json:"force"`
}

type serverInfo struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// wireError is an error object as clients see it.
type wireError struct {
	Code    int64  `json:"code"`
	Message string `json:"message"`
	Data    struct {
		ErrorID string `json:"error_id"`
	} `json:"data"`
}

type wireResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *wireError      `json:"error"`
	ID      json.RawMessage `json:"id"`
}

// post sends body over HTTP with the key and returns the HTTP status and
// the reply body.
func (ts *testServer) post(key, body string) (int, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(body))
	require.NoError(ts.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	return resp.StatusCode, reply
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
	status, reply := ts.post(key, string(body))
	require.Equal(ts.t, http.StatusOK, status, "reply: %s", reply)
	var r wireResponse
	require.NoError(ts.t, json.Unmarshal(reply, &r), "reply: %s", reply)
	require.Equal(ts.t, "2.0", r.JSONRPC)
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

// serveWS serves ts.WS at /ws on 127.0.0.1 and returns the server
// and the ws:// address. Register extra methods before calling it.
func serveWS(t *testing.T, ts *testServer) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/ws", ts.WS)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// dialWS opens a WebSocket to url with the given Authorization header (none
// when auth is "").
func dialWS(t *testing.T, url, auth string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(url, h)
	if ws != nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}
