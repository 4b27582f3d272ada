// Package rpctest is the small test harness the transport packages
// (rpc/ws, rpc/urlstyle) and rpc's own tests share: a real apikeyd RPC
// server over a bbolt file in a temp dir, served on 127.0.0.1, and the
// clients of each way in. It is for tests only.
package rpctest

import (
	"bytes"
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
	"github.com/apikeyd/apikeyd/rpc/ws"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// AdminKey is the operator key every test server starts with.
const AdminKey = "00112233445566778899aabbccddeeff"

// Server is a real apikeyd RPC server over a bbolt file in a temp dir,
// served by net/http on 127.0.0.1 at URL (.../rpc), with the methods
// server.reboot(name, force) and server.list(). WS is its WebSocket
// transport, which ServeWS serves.
type Server struct {
	T     testing.TB
	Store *store.Store
	RPC   *rpc.Server
	WS    *ws.Handler
	URL   string // .../rpc
	Admin string
	Log   *SyncBuffer
	// Reboots records the names server.reboot was called with.
	Reboots *[]string
}

// RebootParams are server.reboot's params.
type RebootParams struct {
	Name  string `json:"name" rpc:"required"`
	Force bool   `json:"force"`
}

// ServerInfo is the result of server.reboot, and an item of server.list's.
type ServerInfo struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// Clock is the time of the stores New opens.
var Clock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// New starts a Server; opts change its rpc.Options before it is made.
func New(t testing.TB, opts ...func(*rpc.Options)) *Server {
	t.Helper()
	st, err := storetest.Open(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{
		NoSync: true, Now: func() time.Time { return Clock }, UsageFlush: time.Hour})
	require.NoError(t, err)
	return NewOn(t, st, opts...)
}

// NewOn is New over st, a new store (over another engine, say), which it
// closes when the test ends.
func NewOn(t testing.TB, st *store.Store, opts ...func(*rpc.Options)) *Server {
	t.Helper()
	t.Cleanup(func() { _ = st.Close() })
	_, created, err := st.Bootstrap(AdminKey)
	require.NoError(t, err)
	require.True(t, created)
	logBuf := &SyncBuffer{}
	o := rpc.Options{Logger: zerolog.New(logBuf).Level(zerolog.DebugLevel)}
	for _, opt := range opts {
		opt(&o)
	}
	srv := rpc.New(st, o)
	var mu sync.Mutex
	reboots := &[]string{}
	rpc.Handle(srv, "server.reboot", scope.Update, "Reboot a server.", func(ctx context.Context, p RebootParams) (ServerInfo, error) {
		mu.Lock()
		*reboots = append(*reboots, p.Name)
		mu.Unlock()
		return ServerInfo{Name: p.Name, Status: "rebooting"}, nil
	})
	rpc.Handle(srv, "server.list", scope.Read, "List servers.", func(ctx context.Context, _ struct{}) ([]ServerInfo, error) {
		return []ServerInfo{{Name: "web1", Status: "running"}, {Name: "web2", Status: "running"}}, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/rpc", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &Server{T: t, Store: st, RPC: srv, WS: ws.New(srv), URL: hs.URL + "/rpc", Admin: AdminKey, Log: logBuf, Reboots: reboots}
}

// SyncBuffer is a bytes.Buffer safe for the logger and the test to share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WireError is an error object as clients see it.
type WireError struct {
	Code    int64  `json:"code"`
	Message string `json:"message"`
	Data    struct {
		ErrorID string `json:"error_id"`
	} `json:"data"`
}

// WireResponse is a response as clients see it.
type WireResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *WireError      `json:"error"`
	ID      json.RawMessage `json:"id"`
}

// Post sends body over HTTP with the key and returns the HTTP status and
// the reply body.
func (ts *Server) Post(key, body string) (int, []byte) {
	ts.T.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(body))
	require.NoError(ts.T, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.T, err)
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	require.NoError(ts.T, err)
	return resp.StatusCode, reply
}

// Call makes one JSON-RPC call with id 1 over HTTP and returns its response.
func (ts *Server) Call(key, method string, params any) WireResponse {
	ts.T.Helper()
	env := map[string]any{"jsonrpc": "2.0", "method": method, "id": 1}
	if params != nil {
		env["params"] = params
	}
	body, err := json.Marshal(env)
	require.NoError(ts.T, err)
	status, reply := ts.Post(key, string(body))
	require.Equal(ts.T, http.StatusOK, status, "reply: %s", reply)
	var r WireResponse
	require.NoError(ts.T, json.Unmarshal(reply, &r), "reply: %s", reply)
	require.Equal(ts.T, "2.0", r.JSONRPC)
	require.True(ts.T, (r.Error == nil) != (r.Result == nil), "exactly one of result and error: %s", reply)
	return r
}

// OK makes a call that must succeed and decodes its result into out.
func (ts *Server) OK(key, method string, params, out any) {
	ts.T.Helper()
	r := ts.Call(key, method, params)
	require.Nil(ts.T, r.Error, "%s failed: %+v", method, r.Error)
	if out != nil {
		require.NoError(ts.T, json.Unmarshal(r.Result, out))
	}
}

// CreateKey creates a key as key with the given scopes and returns its
// reply (id and secret in Key).
func (ts *Server) CreateKey(key string, scopes map[string][]string, comment string) rpc.NewKeyInfo {
	ts.T.Helper()
	var out rpc.NewKeyInfo
	params := map[string]any{"comment": comment}
	if scopes != nil {
		params["scopes"] = scopes
	}
	ts.OK(key, "apikey.create", params, &out)
	return out
}

// Unchanged runs f and asserts no stored data changed (the audit trail
// aside: failed mutations are still audited).
func (ts *Server) Unchanged(f func()) {
	ts.T.Helper()
	before, err := ts.Store.Fingerprint()
	require.NoError(ts.T, err)
	f()
	after, err := ts.Store.Fingerprint()
	require.NoError(ts.T, err)
	require.Equal(ts.T, before, after, "the store changed")
}

// ServeWS serves h at /ws on 127.0.0.1 and returns the server and the
// ws:// address. Register extra methods before calling it.
func ServeWS(t testing.TB, h *ws.Handler) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// DialWS opens a WebSocket to url with the given Authorization header (none
// when auth is "").
func DialWS(t testing.TB, url, auth string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if c != nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, resp, err
}

// URLServer serves srv's methods in Memset's URL style on 127.0.0.1 and
// returns the URL of its prefix.
func URLServer(t testing.TB, srv *rpc.Server) string {
	mux := http.NewServeMux()
	mux.Handle(urlstyle.Prefix, urlstyle.Handler(srv))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL + urlstyle.Prefix
}

// URLCall makes a URL-style call with the key as the Basic user name, as
// Memset's scripts do, and returns the status, headers and body.
func URLCall(t testing.TB, method, target, key string, form url.Values) (int, http.Header, []byte) {
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

// URLError decodes a URL-style error reply.
func URLError(t testing.TB, body []byte) urlstyle.Error {
	t.Helper()
	var e urlstyle.Error
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.NotEmpty(t, e.Error)
	return e
}
