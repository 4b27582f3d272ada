package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/h1"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// transport is how a test server's calls reach it.
type transport string

const (
	// overNetHTTP serves with rpc.Server.ServeHTTP under net/http.
	overNetHTTP transport = "nethttp"
	// overFastPath serves with h1.ServeConn, handing what it does not
	// serve itself to net/http, as apikeyd does in production (--fast-path).
	// ts.URL points at it, so requests a test makes itself take it too.
	overFastPath transport = "fastpath"
	// overWebSocket makes each call with a key on a WebSocket opened with
	// that key (GET /ws). Requests a test makes itself, and calls without
	// a key, go over net/http: a WebSocket cannot be opened without a key.
	overWebSocket transport = "websocket"
)

// transports lists every transport, the default first.
var transports = []transport{overNetHTTP, overFastPath, overWebSocket}

var (
	transportMu   sync.Mutex
	transportRuns = map[string]transport{} // test name → its transport
)

// runOver runs f as subtest name of t with every test server it starts
// (newTestServer, newTestServerWith) serving over tr.
func runOver(t *testing.T, tr transport, name string, f func(*testing.T)) {
	t.Run(name, func(t *testing.T) {
		transportMu.Lock()
		transportRuns[t.Name()] = tr
		transportMu.Unlock()
		t.Cleanup(func() {
			transportMu.Lock()
			delete(transportRuns, t.Name())
			transportMu.Unlock()
		})
		f(t)
	})
}

// transportOf returns the transport runOver set for tb or a test it runs
// in, and net/http otherwise.
func transportOf(tb testing.TB) transport {
	transportMu.Lock()
	defer transportMu.Unlock()
	name := tb.Name()
	for run, tr := range transportRuns {
		if name == run || strings.HasPrefix(name, run+"/") {
			return tr
		}
	}
	return overNetHTTP
}

// serveFast serves srv with h1.ServeConn on 127.0.0.1, handing the connections
// it does not serve to net/http with handler, as cmd/apikeyd's fast path
// does, and counting them in handoffs. It returns the address. lim, if
// given, is the net/http server it hands them to, whose limits h1.ServeConn
// keeps too (default: a 1 MiB head and no timeouts).
func serveFast(tb testing.TB, srv *rpc.Server, handler http.Handler, handoffs *atomic.Int64, with ...*http.Server) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	hl := &chanListener{addr: l.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	hs := &http.Server{MaxHeaderBytes: 1 << 20}
	if len(with) > 0 {
		hs = with[0]
	}
	hs.Handler = handler
	go func() { _ = hs.Serve(hl) }()
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{} // open, and h1.ServeConn's
	hooks := h1.Hooks{Idle: func() bool { return false }, Active: func() {}, Closing: func() bool { return false }}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if conns == nil { // closed
				mu.Unlock()
				_ = c.Close()
				return
			}
			conns[c] = true
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				hc := h1.ServeConn(context.Background(), srv, c, hs, hooks)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				if hc != nil {
					handoffs.Add(1)
					select {
					case hl.ch <- hc:
						return
					case <-hl.done:
					}
				}
				_ = c.Close()
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = l.Close()
		_ = hs.Close()
		_ = hl.Close()
		mu.Lock()
		for c := range conns { // clients keep idle connections open
			_ = c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// wsURL is the address of ts's WebSocket endpoint.
func (ts *testServer) wsURL() string {
	return "ws" + strings.TrimPrefix(strings.TrimSuffix(ts.URL, "/rpc"), "http") + "/ws"
}

// postWS sends body as one message on a WebSocket opened with key, and
// returns what post returns over HTTP, as far as a WebSocket has it: a
// WebSocket has no status per message, so a reply is reported as 200 and
// no reply (notifications only) as 204. A refused upgrade is returned as
// it came: its HTTP status and its body, a JSON-RPC error with id null,
// since the key is refused before any call is read.
func (ts *testServer) postWS(key, body string) (int, []byte) {
	ts.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(), http.Header{"Authorization": {"Bearer " + key}})
	if err != nil {
		require.NotNil(ts.t, resp, "dial: %v", err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(ts.t, err)
		return resp.StatusCode, b
	}
	defer c.Close()
	require.NoError(ts.t, c.WriteMessage(websocket.TextMessage, []byte(body)))
	// A reply is awaited for as long as a call may take; when none is due,
	// briefly, to catch one sent anyway.
	wait := 10 * time.Second
	if !wantsReply([]byte(body)) {
		wait = 300 * time.Millisecond
	}
	require.NoError(ts.t, c.SetReadDeadline(time.Now().Add(wait)))
	_, msg, err := c.ReadMessage()
	if err != nil {
		var ne net.Error
		if wait < time.Second && errors.As(err, &ne) && ne.Timeout() {
			return http.StatusNoContent, nil
		}
		require.NoError(ts.t, err, "no reply on the WebSocket")
	}
	return http.StatusOK, msg
}

// wantsReply reports whether a body is due a reply: anything but a
// request, or a batch of requests, that are all notifications.
func wantsReply(body []byte) bool {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return true
	}
	notification := func(v any) bool {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		_, hasID := m["id"]
		method, _ := m["method"].(string)
		return !hasID && m["jsonrpc"] == "2.0" && method != ""
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if !notification(e) {
				return true
			}
		}
		return len(arr) == 0
	}
	return !notification(v)
}

// TestHarness_Transports: the test server serves what its transport says.
// Over the fast path a plain call is h1.ServeConn's, not handed to net/http;
// over WebSocket a call with a key goes on a connection opened with it.
func TestHarness_Transports(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServerOver(t, tr, nil)
			k := ts.createKey(ts.Admin, map[string][]string{"method": {"server.reboot"}}, "c")
			ts.ok(k.Key, "server.reboot", map[string]any{"name": "web1"}, nil)
			require.Equal(t, []string{"web1"}, *ts.Reboots)
			ts.fail(k.Key, "server.list", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
			status, body := ts.post(k.Key, `{"jsonrpc":"2.0","method":"server.reboot","params":["web2"]}`)
			require.Equal(t, http.StatusNoContent, status, "notification: %s", body)
			require.Zero(t, ts.handoffs.Load(), "no connection was handed to net/http")
			if tr == overWebSocket {
				status, body := ts.post("ffffffffffffffffffffffffffffffff", `{"jsonrpc":"2.0","method":"server.list","id":1}`)
				require.Equal(t, http.StatusUnauthorized, status, "the upgrade is refused: %s", body)
				require.Contains(t, string(body), `"invalid_key"`)
			}
		})
	}
	t.Run("runOver", func(t *testing.T) {
		for _, tr := range transports {
			runOver(t, tr, string(tr), func(t *testing.T) {
				require.Equal(t, tr, newTestServer(t).Transport)
				t.Run("nested", func(t *testing.T) { require.Equal(t, tr, transportOf(t)) })
			})
		}
		require.Equal(t, overNetHTTP, transportOf(t))
	})
}

// endToEnd are the tests that drive the server through its public surface
// only, one call after another: each runs over every transport. Their
// own runs are the net/http ones; TestEndToEnd_Transports runs them again
// over the fast path and over WebSocket. Tests of what only one transport
// has (HTTP headers and statuses, URL style, the WebSocket's own
// behaviour, h1.ServeConn against net/http) are not listed: they test that
// transport directly.
var endToEnd = []struct {
	name string
	test func(*testing.T)
	// notOver says, per transport, why the test does not apply to it.
	notOver map[transport]string
}{
	{name: "APIKey_AddDeleteScope", test: TestAPIKey_AddDeleteScope},
	{name: "APIKey_Authentication", test: TestAPIKey_Authentication},
	{name: "APIKey_Create", test: TestAPIKey_Create},
	{name: "APIKey_Delete", test: TestAPIKey_Delete},
	{name: "APIKey_IDs", test: TestAPIKey_IDs},
	{name: "APIKey_List", test: TestAPIKey_List},
	{name: "APIKey_NoEscalation", test: TestAPIKey_NoEscalation},
	{name: "AccessClasses", test: TestAccessClasses},
	{name: "Access_AgreeLimits", test: TestAccess_AgreeLimits},
	{name: "Access_NoEscalation", test: TestAccess_NoEscalation},
	{name: "Account_Errors", test: TestAccount_Errors},
	{name: "Account_Lifecycle", test: TestAccount_Lifecycle},
	{name: "Audit", test: TestAudit},
	{name: "Audit_Errors", test: TestAudit_Errors},
	{name: "Audit_LoginInUsersAccount", test: TestAudit_LoginInUsersAccount},
	{name: "Discover_OnlyWhatTheKeyCouldCall", test: TestDiscover_OnlyWhatTheKeyCouldCall},
	{name: "Discover_OpenRPC", test: TestDiscover_OpenRPC},
	{name: "Gateway_Catalog", test: TestGateway_Catalog, notOver: notOverFastPath},
	{name: "Gateway_ErrorsPassThrough", test: TestGateway_ErrorsPassThrough, notOver: notOverFastPath},
	{name: "Gateway_Forwards", test: TestGateway_Forwards, notOver: notOverFastPath},
	{name: "Gateway_Replies", test: TestGateway_Replies, notOver: notOverFastPath},
	{name: "Harness", test: TestHarness},
	{name: "Holders", test: TestHolders},
	{name: "IDEcho", test: TestIDEcho, notOver: map[transport]string{overWebSocket: "it reads the id at the end of the reply, " +
		"where jsonrpc2's Conn does not write it; TestIDEcho_Transports checks the id itself"}},
	{name: "InvalidRequests", test: TestInvalidRequests},
	{name: "Lifecycle_NamesAndUpdate", test: TestLifecycle_NamesAndUpdate},
	{name: "Lifecycle_Rotate", test: TestLifecycle_Rotate},
	{name: "Lifecycle_Validity", test: TestLifecycle_Validity},
	{name: "Lifecycle_Verify", test: TestLifecycle_Verify},
	{name: "Limits_NoEscape", test: TestLimits_NoEscape},
	{name: "Limits_Quota", test: TestLimits_Quota},
	{name: "Limits_QuotaRefill", test: TestLimits_QuotaRefill},
	{name: "Limits_QuotaSurvivesOtherChanges", test: TestLimits_QuotaSurvivesOtherChanges},
	{name: "Limits_RateLimit", test: TestLimits_RateLimit},
	{name: "Limits_RefusalsNotAudited", test: TestLimits_RefusalsNotAudited},
	{name: "Limits_UpdateBadInput", test: TestLimits_UpdateBadInput},
	{name: "Limits_Verify", test: TestLimits_Verify},
	{name: "List_Holders", test: TestList_Holders},
	{name: "Scopes_EndToEnd", test: TestScopes_EndToEnd},
	{name: "Security_LimitedKeyShedsLimitsByRotate", test: TestSecurity_LimitedKeyShedsLimitsByRotate},
	{name: "Security_ListOwnerCountsOtherAccounts", test: TestSecurity_ListOwnerCountsOtherAccounts},
	{name: "Security_ScopedKeyEscalatesThroughUsers", test: TestSecurity_ScopedKeyEscalatesThroughUsers},
	{name: "ServiceAccount_Errors", test: TestServiceAccount_Errors},
	{name: "ServiceAccount_Lifecycle", test: TestServiceAccount_Lifecycle},
	{name: "SpecExamples", test: TestSpecExamples},
	{name: "User_Errors", test: TestUser_Errors},
	{name: "User_LoginAndKeys", test: TestUser_LoginAndKeys},
	{name: "User_OtherAccounts", test: TestUser_OtherAccounts},
}

var notOverFastPath = map[transport]string{overFastPath: "gateway mode serves every connection with net/http " +
	"(h1.ServeConn hands each over at once), so the fast path never answers a gateway's calls"}

// TestEndToEnd_Transports runs the end-to-end tests over the fast path and
// over WebSocket, a subtest per transport and test.
func TestEndToEnd_Transports(t *testing.T) {
	for _, tr := range []transport{overFastPath, overWebSocket} {
		t.Run(string(tr), func(t *testing.T) {
			for _, e := range endToEnd {
				if why := e.notOver[tr]; why != "" {
					t.Logf("%s: not over %s: %s", e.name, tr, why)
					continue
				}
				runOver(t, tr, e.name, e.test)
			}
		})
	}
}

// TestIDEcho_Transports: every transport echoes the id as sent, byte for
// byte, wherever in the reply it writes it.
func TestIDEcho_Transports(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServerOver(t, tr, nil)
			for _, id := range []string{
				`1`, `0`, `-1`, `-9223372036854775809`, `18446744073709551616`, `9223372036854775807`,
				`1.5`, `1e3`, `"1"`, `""`, `"ünïcødé"`, `"ünïcødé \u00e9 \"quoted\""`, `"a<b>&c"`, `"\/"`, `" "`, `null`,
			} {
				for _, method := range []string{"server.list", "no.such"} {
					status, body := ts.post(ts.Admin, `{"jsonrpc":"2.0","method":"`+method+`","id":`+id+`}`)
					require.Equal(t, http.StatusOK, status)
					var r map[string]json.RawMessage
					require.NoError(t, json.Unmarshal(body, &r), "reply: %s", body)
					assert.Equal(t, id, string(r["id"]), "%s: reply %s", method, body)
				}
			}
		})
	}
}
