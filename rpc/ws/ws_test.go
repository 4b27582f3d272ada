package ws_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/gorilla/websocket"
	"github.com/sourcegraph/jsonrpc2"
	jsonrpc2ws "github.com/sourcegraph/jsonrpc2/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wsClient dials url with key and returns a sourcegraph/jsonrpc2 client over
// the connection, and the connection.
func wsClient(t *testing.T, url, key string, opts ...jsonrpc2.ConnOpt) (*jsonrpc2.Conn, *websocket.Conn) {
	t.Helper()
	ws, resp, err := dialWS(t, url, "Bearer "+key)
	require.NoError(t, err)
	_ = resp.Body.Close()
	opts = append(opts, jsonrpc2.SetLogger(log.New(io.Discard, "", 0)))
	conn := jsonrpc2.NewConn(context.Background(), jsonrpc2ws.NewObjectStream(ws), noRequests{}, opts...)
	t.Cleanup(func() { _ = conn.Close() })
	return conn, ws
}

// noRequests is the client's handler: the server sends no requests.
type noRequests struct{}

func (noRequests) Handle(context.Context, *jsonrpc2.Conn, *jsonrpc2.Request) {}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requireRPCError asserts that err is a JSON-RPC error with code and
// data.error_id, as the jsonrpc2 client hands it over.
func requireRPCError(t *testing.T, err error, code int64, errorID string) {
	t.Helper()
	var e *jsonrpc2.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, code, e.Code, "error: %v", e)
	require.NotNil(t, e.Data, "error without data: %v", e)
	var data struct {
		ErrorID string `json:"error_id"`
	}
	require.NoError(t, json.Unmarshal(*e.Data, &data))
	assert.Equal(t, errorID, data.ErrorID)
}

// wsRefusal reads the JSON-RPC error body of a refused upgrade.
func wsRefusal(t *testing.T, resp *http.Response) wireResponse {
	t.Helper()
	require.NotNil(t, resp)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var r wireResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.NotNil(t, r.Error)
	return r
}

func TestWS_CallsMatchHTTP(t *testing.T) {
	ts := newTestServer(t)
	_, url := serveWS(t, ts)
	k := ts.CreateKey(ts.Admin, nil, "ws")
	conn, _ := wsClient(t, url, k.Key)
	ctx := callCtx(t)

	for _, c := range []struct {
		method string
		params any
	}{
		{"server.list", nil},
		{"server.reboot", []any{"web1"}},
		{"server.reboot", map[string]any{"name": "web2", "force": true}},
	} {
		var viaWS json.RawMessage
		require.NoError(t, conn.Call(ctx, c.method, c.params, &viaWS), c.method)
		viaHTTP := ts.Call(k.Key, c.method, c.params)
		require.Nil(t, viaHTTP.Error)
		assert.JSONEq(t, string(viaHTTP.Result), string(viaWS), c.method)
	}

	// The key's own info: the same but for use_count, which each call,
	// over either transport, moves on.
	var viaWS, viaHTTP rpc.KeyInfo
	require.NoError(t, conn.Call(ctx, "apikey.info", map[string]any{"id": k.ID}, &viaWS))
	ts.OK(k.Key, "apikey.info", map[string]any{"id": k.ID}, &viaHTTP)
	assert.Equal(t, k.ID, viaWS.ID)
	assert.Positive(t, viaWS.UseCount)
	viaWS.UseCount, viaHTTP.UseCount = 0, 0
	assert.Equal(t, viaHTTP, viaWS)

	// Basic, with the key as user name, works as over HTTP.
	ws, resp, err := dialWS(t, url, "Basic "+base64.StdEncoding.EncodeToString([]byte(k.Key+":x")))
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	basic := jsonrpc2.NewConn(ctx, jsonrpc2ws.NewObjectStream(ws), noRequests{}, jsonrpc2.SetLogger(log.New(io.Discard, "", 0)))
	defer basic.Close()
	var list []map[string]string
	require.NoError(t, basic.Call(ctx, "server.list", nil, &list))
	assert.Len(t, list, 2)
}

func TestWS_Scopes(t *testing.T) {
	ts := newTestServer(t)
	_, url := serveWS(t, ts)
	k := ts.CreateKey(ts.Admin, map[string][]string{"method": {"server.reboot"}, "name": {"web1"}}, "web1 only")
	conn, _ := wsClient(t, url, k.Key)
	ctx := callCtx(t)

	var out map[string]string
	require.NoError(t, conn.Call(ctx, "server.reboot", map[string]any{"name": "web1"}, &out))
	assert.Equal(t, map[string]string{"name": "web1", "status": "rebooting"}, out)

	ts.Unchanged(func() {
		err := conn.Call(ctx, "server.reboot", map[string]any{"name": "web2"}, &out)
		requireRPCError(t, err, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
		err = conn.Call(ctx, "server.list", nil, &out)
		requireRPCError(t, err, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	})
	assert.Equal(t, []string{"web1"}, *ts.Reboots)
}

func TestWS_UpgradeRefused(t *testing.T) {
	ts := newTestServer(t)
	hs, url := serveWS(t, ts)

	for _, c := range []struct {
		name, auth, errorID string
	}{
		{"no key", "", rpc.ErrIDMissingKey},
		{"unknown scheme", "Token " + ts.Admin, rpc.ErrIDInvalidKey},
		{"malformed key", "Bearer not-a-key", rpc.ErrIDInvalidKey},
		{"bad base64", "Basic !!!", rpc.ErrIDInvalidKey},
		{"unknown key", "Bearer ffffffffffffffffffffffffffffffff", rpc.ErrIDInvalidKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws, resp, err := dialWS(t, url, c.auth)
			require.ErrorIs(t, err, websocket.ErrBadHandshake)
			assert.Nil(t, ws)
			require.NotNil(t, resp)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
			r := wsRefusal(t, resp)
			assert.Equal(t, int64(rpc.CodeUnauthenticated), r.Error.Code)
			assert.Equal(t, c.errorID, r.Error.Data.ErrorID)
			assert.Equal(t, json.RawMessage("null"), r.ID)
		})
	}
	assert.NotContains(t, ts.Log.String(), ts.Admin, "a key was logged")

	t.Run("other origin", func(t *testing.T) {
		h := http.Header{"Authorization": {"Bearer " + ts.Admin}, "Origin": {"https://evil.example"}}
		_, resp, err := websocket.DefaultDialer.Dial(url, h)
		require.ErrorIs(t, err, websocket.ErrBadHandshake)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Equal(t, rpc.ErrIDInvalidRequest, wsRefusal(t, resp).Error.Data.ErrorID)

		h.Set("Origin", hs.URL) // same host
		ws, resp, err := websocket.DefaultDialer.Dial(url, h)
		require.NoError(t, err)
		_ = resp.Body.Close()
		_ = ws.Close()
	})

	t.Run("not an upgrade", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, hs.URL+"/ws", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+ts.Admin)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, rpc.ErrIDInvalidRequest, wsRefusal(t, resp).Error.Data.ErrorID)

		req.Method = http.MethodPost
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, http.MethodGet, resp.Header.Get("Allow"))
		assert.Equal(t, rpc.ErrIDHTTPMethod, wsRefusal(t, resp).Error.Data.ErrorID)
	})
}

func TestWS_KeyDeletedWhileConnected(t *testing.T) {
	ts := newTestServer(t)
	_, url := serveWS(t, ts)
	k := ts.CreateKey(ts.Admin, nil, "doomed")
	conn, _ := wsClient(t, url, k.Key)
	ctx := callCtx(t)

	require.NoError(t, conn.Call(ctx, "server.list", nil, nil))
	ts.OK(ts.Admin, "apikey.delete", map[string]any{"id": k.ID}, nil)
	err := conn.Call(ctx, "server.list", nil, nil)
	requireRPCError(t, err, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
}

func TestWS_ManyCallsInFlight(t *testing.T) {
	const n = 50
	ts := newTestServer(t)
	// server.gate answers only once n calls are waiting in it: the test
	// passes only if the connection runs n calls at once.
	var waiting atomic.Int32
	all := make(chan struct{})
	rpc.Handle(ts.RPC, "server.gate", scope.Read, "Wait for the others.", func(ctx context.Context, p struct {
		Name string `json:"name"`
	}) (serverInfo, error) {
		if waiting.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
			return serverInfo{Name: p.Name, Status: "through"}, nil
		case <-ctx.Done():
			return serverInfo{}, ctx.Err()
		case <-time.After(3 * time.Second):
			return serverInfo{}, errors.New("not all calls arrived")
		}
	})
	_, url := serveWS(t, ts)
	conn, _ := wsClient(t, url, ts.Admin)
	ctx := callCtx(t)

	var wg sync.WaitGroup
	errs := make([]error, n)
	got := make([]serverInfo, n)
	for i := range n {
		wg.Go(func() {
			var opts []jsonrpc2.CallOption
			if i%2 == 0 {
				opts = append(opts, jsonrpc2.StringID())
			}
			errs[i] = conn.Call(ctx, "server.gate", map[string]any{"name": fmt.Sprintf("web%d", i)}, &got[i], opts...)
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "call %d", i)
		assert.Equal(t, serverInfo{Name: fmt.Sprintf("web%d", i), Status: "through"}, got[i], "call %d got another call's reply", i)
	}
}

func TestWS_DisconnectMidCallLeaksNothing(t *testing.T) {
	storetest.SkipOnEtcd(t, "the etcd client starts and ends goroutines of its own")
	const conns, callsPerConn = 4, 5
	ts := newTestServer(t)
	// server.wait runs until its context is canceled, as it must be when
	// the client goes away.
	var entered, canceled atomic.Int32
	rpc.Handle(ts.RPC, "server.wait", scope.Read, "Wait for the end.", func(ctx context.Context, _ struct{}) (struct{}, error) {
		entered.Add(1)
		select {
		case <-ctx.Done():
			canceled.Add(1)
			return struct{}{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return struct{}{}, nil
		}
	})
	hs, url := serveWS(t, ts)
	http.DefaultClient.CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	var calls sync.WaitGroup
	var nets []net.Conn
	for range conns {
		conn, ws := wsClient(t, url, ts.Admin)
		nets = append(nets, ws.NetConn())
		for range callsPerConn {
			calls.Go(func() { _ = conn.Call(context.Background(), "server.wait", nil, nil) })
			calls.Go(func() { _ = conn.Call(context.Background(), "server.list", nil, nil) })
		}
	}
	require.Eventually(t, func() bool { return entered.Load() == conns*callsPerConn },
		2*time.Second, 5*time.Millisecond, "calls did not start")

	for _, c := range nets {
		require.NoError(t, c.Close()) // no close frame: the client just vanishes
	}
	calls.Wait() // the client's calls fail as the connection drops
	hs.CloseClientConnections()

	deadline := time.Now().Add(4 * time.Second)
	n := runtime.NumGoroutine()
	for n > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > baseline {
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	assert.LessOrEqual(t, n, baseline, "goroutines leaked")
	assert.Equal(t, int32(conns*callsPerConn), canceled.Load(), "calls' contexts were not all canceled")
}

func TestWS_NotificationAndUnknownMethod(t *testing.T) {
	ts := newTestServer(t)
	_, url := serveWS(t, ts)
	var stray atomic.Int32
	conn, _ := wsClient(t, url, ts.Admin, jsonrpc2.OnRecv(func(req *jsonrpc2.Request, resp *jsonrpc2.Response) {
		if resp != nil && req == nil {
			stray.Add(1) // a reply to nothing the client asked
		}
	}))
	ctx := callCtx(t)

	require.NoError(t, conn.Notify(ctx, "server.reboot", map[string]any{"name": "web9"}))
	require.Eventually(t, func() bool { return strings.Contains(ts.Log.String(), `"notification":true`) },
		2*time.Second, 5*time.Millisecond, "the notification did not run")
	err := conn.Call(ctx, "server.nonesuch", nil, nil)
	requireRPCError(t, err, rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound)
	require.NoError(t, conn.Call(ctx, "server.list", nil, nil))
	time.Sleep(50 * time.Millisecond) // room for a stray reply to arrive
	assert.Zero(t, stray.Load(), "a notification was answered")
}

// TestWS_RawMessages sends each message over a bare WebSocket and as an
// HTTP body: the replies must be the same, ids included, whether jsonrpc2
// carries the message or the transport answers it itself.
func TestWS_RawMessages(t *testing.T) {
	ts := newTestServer(t, func(o *rpc.Options) { o.MaxBatch = 2; o.MaxBodyBytes = 1024 })
	_, url := serveWS(t, ts)
	ws, _, err := dialWS(t, url, "Bearer "+ts.Admin)
	require.NoError(t, err)

	list := func(id string) string { return `{"jsonrpc":"2.0","method":"server.list","id":` + id + `}` }
	for _, body := range []string{
		list("7"),
		list(`"seven"`),
		list(`"\u00e9<>"`),
		list("0"),
		list("-1"),
		list("1.5"),
		list("1e3"),
		list("null"),
		list("18446744073709551616"),
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","force":true},"id":3}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","name":"web2"},"id":3}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1"},"id":3,"method":"server.list"}`,
		`{"jsonrpc":"1.0","method":"server.list","id":4}`,
		`{"jsonrpc":"2.0","method":"server.list","id":5,"meta":{}}`,
		`{"jsonrpc":"2.0","result":1,"id":6}`,
		`{"jsonrpc":"2.0","method":"nope.nope","id":8}`,
		"[" + list("1") + "," + list(`"b"`) + "]",
		"[" + list("1") + "," + list("2") + "," + list("3") + "]",
		"[]",
		`{`,
		`"hello"`,
	} {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(body)))
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(3*time.Second)))
		_, viaWS, err := ws.ReadMessage()
		require.NoError(t, err, body)
		status, viaHTTP := ts.Post(ts.Admin, body)
		require.Equal(t, http.StatusOK, status, body)
		assert.JSONEq(t, string(viaHTTP), string(viaWS), body)
	}

	// A notification in a batch gets no reply there either.
	require.NoError(t, ws.WriteMessage(websocket.TextMessage,
		[]byte(`[{"jsonrpc":"2.0","method":"server.list"},`+list("9")+`]`)))
	_, reply, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.JSONEq(t, `[{"jsonrpc":"2.0","result":[{"name":"web1","status":"running"},{"name":"web2","status":"running"}],"id":9}]`, string(reply))

	// A message over MaxBodyBytes ends the connection with 1009.
	big := `{"jsonrpc":"2.0","method":"server.list","id":1,"params":{"pad":"` + strings.Repeat("x", 1100) + `"}}`
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(big)))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseMessageTooBig, ce.Code)
}
