package rpc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/ws"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// adminKey is the operator key every test server starts with.
const adminKey = "00112233445566778899aabbccddeeff"

// testServer is a real apikeyd RPC server on 127.0.0.1 over a bbolt file in
// a temp dir, with the test methods server.reboot(name) and server.list().
type testServer struct {
	t     testing.TB
	Store *store.Store
	RPC   *rpc.Server
	URL   string // .../rpc
	Admin string
	Log   *syncBuffer
	// Reboots records the names server.reboot was called with.
	Reboots *[]string
	clock   *atomic.Pointer[time.Time]
	// Transport is what post, call, ok and fail go over (see transport).
	Transport transport
	// handoffs counts the fast path's connections handed to net/http.
	handoffs *atomic.Int64
	// WS is the WebSocket transport served at /ws; set its Idle before
	// connecting.
	WS *ws.Handler
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

type serverOption func(*rpc.Options)

// fixedNow is the clock of test stores: replies carry predictable times.
var fixedNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	return newTestServerWith(t, nil, opts...)
}

// newTestServerWith is newTestServer with more methods, registered by
// register before serving. It serves over the transport that runOver set
// for the test, net/http when none.
func newTestServerWith(t testing.TB, register func(*rpc.Server), opts ...serverOption) *testServer {
	t.Helper()
	return newTestServerOver(t, transportOf(t), register, opts...)
}

// newTestServerOver is newTestServerWith over the transport tr.
func newTestServerOver(t testing.TB, tr transport, register func(*rpc.Server), opts ...serverOption) *testServer {
	t.Helper()
	clock := &atomic.Pointer[time.Time]{}
	clock.Store(&fixedNow)
	st, err := storetest.Open(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{
		NoSync: true,
		Now:    func() time.Time { return *clock.Load() },
		// No background flush in the middle of a test: usage written while
		// a test compares fingerprints would look like a change.
		UsageFlush: time.Hour,
	})
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
	reboots := registerServerMethods(srv)
	if register != nil {
		register(srv)
	}
	mux := http.NewServeMux()
	mux.Handle("/rpc", srv)
	wsHandler := ws.New(srv)
	mux.Handle("/ws", wsHandler)
	ts := &testServer{t: t, Store: st, RPC: srv, Admin: adminKey, Log: logBuf, Reboots: reboots, clock: clock, Transport: tr, handoffs: new(atomic.Int64), WS: wsHandler}
	if tr == overFastPath {
		ts.URL = "http://" + serveFast(t, srv, mux, ts.handoffs) + "/rpc"
	} else {
		hs := httptest.NewServer(mux)
		t.Cleanup(hs.Close)
		ts.URL = hs.URL + "/rpc"
	}
	return ts
}

// advance moves the store's clock forward by d.
func (ts *testServer) advance(d time.Duration) {
	next := ts.clock.Load().Add(d)
	ts.clock.Store(&next)
}

type rebootParams struct {
	Name  string `json:"name" rpc:"required"`
	Force bool   `json:"force"`
}

type serverInfo struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// registerServerMethods registers the embedding test methods: server.reboot
// takes name (position 0), server.list takes nothing, server.panic panics.
func registerServerMethods(srv *rpc.Server) *[]string {
	var mu sync.Mutex
	reboots := &[]string{}
	rpc.Handle(srv, "server.reboot", scope.Update, "Reboot a server.", func(ctx context.Context, p rebootParams) (serverInfo, error) {
		if _, ok := rpc.KeyFromContext(ctx); !ok {
			panic("server.reboot ran without a key")
		}
		mu.Lock()
		*reboots = append(*reboots, p.Name)
		mu.Unlock()
		return serverInfo{Name: p.Name, Status: "rebooting"}, nil
	})
	rpc.Handle(srv, "server.list", scope.Read, "List servers.", func(ctx context.Context, _ struct{}) ([]serverInfo, error) {
		return []serverInfo{{Name: "web1", Status: "running"}, {Name: "web2", Status: "running"}}, nil
	})
	rpc.Handle(srv, "server.panic", scope.Read, "Panic, to test recovery.", func(ctx context.Context, _ struct{}) (struct{}, error) {
		panic("boom")
	})
	return reboots
}

// wireError is an error object as clients see it.
type wireError struct {
	Code    int64  `json:"code"`
	Message string `json:"message"`
	Data    struct {
		ErrorID string `json:"error_id"`
		Field   string `json:"field"`
		Detail  string `json:"detail"`
		// RetryAfterMs is set on rate-limit and quota errors.
		RetryAfterMs int64 `json:"retry_after_ms"`
	} `json:"data"`
}

type wireResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *wireError      `json:"error"`
	ID      json.RawMessage `json:"id"`
}

// post sends body with the key (none when key is "") and returns the HTTP
// status and the reply body. Over WebSocket see postWS; a body without a
// key goes over net/http, since a WebSocket cannot be opened without one.
func (ts *testServer) post(key, body string) (int, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(body))
	require.NoError(ts.t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if ts.Transport == overWebSocket && key != "" {
		return ts.postWS(key, body)
	}
	return ts.do(req)
}

func (ts *testServer) do(req *http.Request) (int, []byte) {
	ts.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	return resp.StatusCode, b
}

// call makes one call with id 1 and returns the decoded response.
func (ts *testServer) call(key, method string, params any) wireResponse {
	ts.t.Helper()
	env := map[string]any{"jsonrpc": "2.0", "method": method, "id": 1}
	if params != nil {
		env["params"] = params
	}
	body, err := json.Marshal(env)
	require.NoError(ts.t, err)
	status, reply := ts.post(key, string(body))
	var r wireResponse
	if ts.Transport == overWebSocket && key != "" && status != http.StatusOK {
		// Over WebSocket the key is presented once, at the upgrade: a key
		// the server refuses (unknown, switched off, outside its ip scope,
		// ...) is refused there, with the error the call would get, and
		// id null, since no call was read.
		require.Contains(ts.t, []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}, status, "reply: %s", reply)
		require.NoError(ts.t, json.Unmarshal(reply, &r), "reply: %s", reply)
		require.NotNil(ts.t, r.Error, "a refused upgrade: %s", reply)
		require.JSONEq(ts.t, "null", string(r.ID), "a refused upgrade: %s", reply)
		return r
	}
	require.Equal(ts.t, http.StatusOK, status, "reply: %s", reply)
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

// fail makes a call that must fail with code and error id, and returns the error.
func (ts *testServer) fail(key, method string, params any, code int64, errorID string) *wireError {
	ts.t.Helper()
	r := ts.call(key, method, params)
	require.NotNil(ts.t, r.Error, "%s succeeded with %s, want code %d", method, r.Result, code)
	require.Equal(ts.t, code, r.Error.Code, "error: %+v", r.Error)
	require.Equal(ts.t, errorID, r.Error.Data.ErrorID, "error: %+v", r.Error)
	require.NotEmpty(ts.t, r.Error.Message)
	return r.Error
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

// digest is a fingerprint of all stored data but the audit trail: equal
// before and after a call means the call changed nothing (failed mutations
// are still audited).
func (ts *testServer) digest() [32]byte {
	ts.t.Helper()
	d, err := ts.Store.Fingerprint()
	require.NoError(ts.t, err)
	return d
}

// unchanged runs f and asserts no stored data changed.
func (ts *testServer) unchanged(f func()) {
	ts.t.Helper()
	before := ts.digest()
	f()
	require.Equal(ts.t, before, ts.digest(), "the store changed")
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}
