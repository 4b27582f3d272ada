package rpc_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/gateway"
	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upstreamCatalog is the fake upstream's OpenRPC document: vm.* and dns.*
// methods, with access classes; vm.secret exists upstream but is not in it.
const upstreamCatalog = `{
  "openrpc": "1.3.2",
  "info": {"title": "panel", "version": "1"},
  "methods": [
    {"name": "vm.list", "summary": "List virtual machines.", "params": [], "result": {"name": "vms", "schema": {"type": "array"}}, "x-access": "READ"},
    {"name": "vm.reboot", "params": [{"name": "name", "required": true, "schema": {"type": "string"}}, {"name": "force", "schema": {"type": "boolean"}}], "result": {"name": "status", "schema": {"type": "object"}}, "x-access": "UPDATE"},
    {"name": "vm.fail", "params": [], "result": {"name": "r", "schema": {}}, "x-access": "READ"},
    {"name": "vm.slow", "params": [], "result": {"name": "r", "schema": {}}, "x-access": "READ"},
    {"name": "vm.garbage", "params": [], "result": {"name": "r", "schema": {}}, "x-access": "READ"},
    {"name": "vm.http500", "params": [], "result": {"name": "r", "schema": {}}, "x-access": "READ"},
    {"name": "dns.set", "paramStructure": "by-position", "params": [{"name": "zone", "required": true}, {"name": "record"}, {"name": "ttl"}], "result": {"name": "r", "schema": {}}, "x-access": "UPDATE"},
    {"name": "dns.unannotated", "params": [], "result": {"name": "r", "schema": {}}}
  ]
}`

// fakeUpstream is a JSON-RPC 2.0 service on 127.0.0.1 that records what it
// is sent.
type fakeUpstream struct {
	URL     string
	mu      sync.Mutex
	calls   []upstreamCall
	release chan struct{} // vm.slow waits on it
}

type upstreamCall struct {
	Method string
	Params json.RawMessage
	Header http.Header
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	u := &fakeUpstream{release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		close(u.release)
		srv.Close()
	})
	u.URL = srv.URL + "/rpc"
	return u
}

func (u *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
		ID     json.RawMessage `json:"id"`
	}
	body, _ := io.ReadAll(r.Body)
	if json.Unmarshal(body, &req) != nil {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	u.calls = append(u.calls, upstreamCall{req.Method, req.Params, r.Header.Clone()})
	u.mu.Unlock()
	reply := func(member string, v string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0",%q:%s,"id":%s}`, member, v, req.ID)
	}
	switch req.Method {
	case "rpc.discover":
		reply("result", upstreamCatalog)
	case "vm.list":
		reply("result", `[{"name":"web1"},{"name":"web2"}]`)
	case "vm.reboot", "dns.set", "dns.unannotated", "vm.secret":
		reply("result", fmt.Sprintf(`{"method":%q,"params":%s}`, req.Method, orNull(req.Params)))
	case "vm.fail":
		reply("error", `{"code":-32000,"message":"the panel is in maintenance","data":{"reason":"maintenance","until":"tonight"}}`)
	case "vm.slow":
		select {
		case <-u.release:
		case <-time.After(5 * time.Second):
		}
		reply("result", `"late"`)
	case "vm.garbage":
		_, _ = w.Write([]byte("<html>oops</html>"))
	case "vm.http500":
		http.Error(w, "boom", http.StatusInternalServerError)
	default:
		reply("error", `{"code":-32601,"message":"Method not found"}`)
	}
}

func orNull(raw json.RawMessage) string {
	if raw == nil {
		return "null"
	}
	return string(raw)
}

func (u *fakeUpstream) received() []upstreamCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamCall(nil), u.calls...)
}

// newGateway starts a test server forwarding the fake upstream's catalog.
func newGateway(t *testing.T, timeout time.Duration) (*testServer, *fakeUpstream) {
	ts := newTestServer(t)
	up := newFakeUpstream(t)
	catalog, err := gateway.ParseCatalog([]byte(upstreamCatalog))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(ts.RPC, &gateway.Upstream{URL: up.URL, Token: "upstream-token", Timeout: timeout}, catalog))
	return ts, up
}

func TestGateway_Forwards(t *testing.T) {
	ts, up := newGateway(t, 2*time.Second)
	k := ts.createKey(ts.Admin, map[string][]string{"method": {"vm.*"}, "name": {"web1"}}, "web1 only")

	var res struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	ts.ok(k.Key, "vm.reboot", map[string]any{"name": "web1", "force": true}, &res)
	assert.Equal(t, "vm.reboot", res.Method)
	assert.JSONEq(t, `{"name":"web1","force":true}`, string(res.Params))
	// Positional params reach the upstream by name, as the catalog names them.
	ts.ok(k.Key, "vm.reboot", []any{"web1"}, &res)
	assert.JSONEq(t, `{"name":"web1"}`, string(res.Params))

	calls := up.received()
	require.Len(t, calls, 2)
	h := calls[0].Header
	assert.Equal(t, "Bearer upstream-token", h.Get("Authorization"), "the caller's key is never passed on")
	assert.NotContains(t, fmt.Sprint(h), k.Key)
	assert.Equal(t, "operator", h.Get(gateway.HeaderAccount))
	assert.Equal(t, k.ID, h.Get(gateway.HeaderKeyID))
	assert.Empty(t, h.Get(gateway.HeaderOwner))

	// Scopes hold before anything is forwarded; so does deny by default.
	ts.fail(k.Key, "vm.reboot", map[string]any{"name": "web2"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	ts.fail(k.Key, "vm.list", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied) // takes no name
	ts.fail(ts.Admin, "vm.secret", nil, rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound)
	ts.fail(k.Key, "vm.reboot", map[string]any{"name": "web1", "extra": 1}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
	ts.fail(k.Key, "vm.reboot", map[string]any{}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	ts.fail(ts.Admin, "vm.reboot", map[string]any{}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
	assert.Len(t, up.received(), 2, "refused calls never reach the upstream")

	// Access classes come from the catalog; unannotated means MANAGE.
	reader := ts.createKey(ts.Admin, map[string][]string{"access": {"READ"}}, "")
	ts.ok(reader.Key, "vm.list", nil, nil)
	ts.fail(reader.Key, "vm.reboot", map[string]any{"name": "web1"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	ts.fail(reader.Key, "dns.unannotated", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	user := ts.createKey(ts.Admin, map[string][]string{"access": {"READ", "CREATE", "UPDATE", "DELETE"}}, "")
	ts.fail(user.Key, "dns.unannotated", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	ts.ok(ts.Admin, "dns.unannotated", nil, nil)

	// By-position methods get an array in catalog order, absent middles null.
	ts.ok(ts.Admin, "dns.set", map[string]any{"zone": "example.com", "ttl": 60}, &res)
	assert.JSONEq(t, `["example.com",null,60]`, string(res.Params))

	// Forwarded mutations are audited like built-in ones.
	var page struct {
		Records []struct {
			Method, Target, Outcome, Actor string
		} `json:"records"`
	}
	ts.ok(ts.Admin, "audit.list", map[string]any{"method": "vm.reboot"}, &page)
	outcomes := []string{}
	for _, r := range page.Records {
		if r.Actor == k.ID {
			outcomes = append(outcomes, r.Outcome+" "+r.Target)
		}
	}
	assert.ElementsMatch(t, []string{"ok web1", "ok web1", "scope_denied web2", "invalid_params ", "scope_denied "}, outcomes)
	assert.Len(t, page.Records, 7, "and the admin's and the reader's refusals")
}

func TestGateway_Batch(t *testing.T) {
	ts, _ := newGateway(t, 2*time.Second)
	body := `[
		{"jsonrpc":"2.0","method":"vm.list","id":"a"},
		{"jsonrpc":"2.0","method":"apikey.list","params":{"size":1},"id":"b"},
		{"jsonrpc":"2.0","method":"vm.fail","id":"c"},
		{"jsonrpc":"2.0","method":"vm.reboot","params":{"name":"web9"}},
		{"jsonrpc":"2.0","method":"vm.secret","id":"d"}
	]`
	status, reply := ts.post(ts.Admin, body)
	require.Equal(t, http.StatusOK, status)
	var out []wireResponse
	require.NoError(t, json.Unmarshal(reply, &out), "%s", reply)
	require.Len(t, out, 4, "the notification gets no reply")
	assert.JSONEq(t, `[{"name":"web1"},{"name":"web2"}]`, string(out[0].Result))
	assert.Contains(t, string(out[1].Result), `"total":1`)
	require.NotNil(t, out[2].Error)
	assert.Equal(t, int64(-32000), out[2].Error.Code, "the upstream's error goes through as it gave it")
	assert.Equal(t, "the panel is in maintenance", out[2].Error.Message)
	assert.Contains(t, string(reply), `"data":{"reason":"maintenance","until":"tonight"}`)
	require.NotNil(t, out[3].Error)
	assert.Equal(t, int64(rpc.CodeMethodNotFound), out[3].Error.Code)
}

func TestGateway_UpstreamFailures(t *testing.T) {
	ts, _ := newGateway(t, 300*time.Millisecond)

	// A slow upstream: the caller gets a timeout, not a hang, and other
	// calls go on meanwhile.
	var wg sync.WaitGroup
	var slowTook atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		r := ts.call(ts.Admin, "vm.slow", nil)
		slowTook.Store(int64(time.Since(start)))
		if assert.NotNil(t, r.Error) {
			assert.Equal(t, int64(rpc.CodeUpstreamTimeout), r.Error.Code)
			assert.Equal(t, rpc.ErrIDUpstreamTimeout, r.Error.Data.ErrorID)
		}
	}()
	for i := 0; i < 5; i++ {
		ts.ok(ts.Admin, "apikey.list", map[string]any{"size": 1}, nil)
		ts.ok(ts.Admin, "vm.list", nil, nil)
	}
	wg.Wait()
	assert.Less(t, time.Duration(slowTook.Load()), 2*time.Second)

	ts.fail(ts.Admin, "vm.garbage", nil, rpc.CodeUpstreamBadReply, rpc.ErrIDUpstreamBadReply)
	e := ts.fail(ts.Admin, "vm.http500", nil, rpc.CodeUpstreamUnavailable, rpc.ErrIDUpstreamUnavailable)
	assert.Contains(t, e.Data.Detail, "500")

	// An upstream that is not there at all.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := "http://" + l.Addr().String() + "/rpc"
	require.NoError(t, l.Close())
	down := newTestServer(t)
	catalog, err := gateway.ParseCatalog([]byte(upstreamCatalog))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(down.RPC, &gateway.Upstream{URL: gone, Timeout: time.Second}, catalog))
	down.fail(down.Admin, "vm.list", nil, rpc.CodeUpstreamUnavailable, rpc.ErrIDUpstreamUnavailable)
	down.ok(down.Admin, "apikey.list", map[string]any{"size": 1}, nil)
	assert.NotContains(t, down.Log.String(), down.Admin)
}

func TestGateway_Catalog(t *testing.T) {
	up := newFakeUpstream(t)
	u := &gateway.Upstream{URL: up.URL}
	doc, err := u.Discover(t.Context())
	require.NoError(t, err)
	catalog, err := gateway.ParseCatalog(doc)
	require.NoError(t, err)
	require.Len(t, catalog, 8)
	assert.Equal(t, "vm.reboot", catalog[1].Name)
	assert.Equal(t, "UPDATE", catalog[1].Access)
	assert.Equal(t, []rpc.Param{{Name: "name", Required: true}, {Name: "force"}}, catalog[1].Params)
	assert.Equal(t, "MANAGE", catalog[7].Access)

	// Forwarded methods are in rpc.discover, with the upstream's schemas.
	ts := newTestServer(t)
	require.NoError(t, gateway.Forward(ts.RPC, u, catalog))
	schema := openRPCSchema(t)
	d := ts.discover(t, schema, ts.Admin)
	var reboot rpc.OpenRPCMethod
	for _, m := range d.Methods {
		if m.Name == "vm.reboot" {
			reboot = m
		}
	}
	assert.Equal(t, "UPDATE", reboot.XAccess)
	assert.True(t, reboot.XTakesName)
	assert.JSONEq(t, `{"type":"object"}`, string(reboot.Result.Schema))

	// A name already served is refused, and nothing is registered.
	err = gateway.Forward(ts.RPC, u, []gateway.CatalogMethod{{Name: "vm.other", Access: "READ"}, {Name: "server.reboot", Access: "UPDATE"}})
	assert.ErrorContains(t, err, "server.reboot")
	ts.fail(ts.Admin, "vm.other", nil, rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound)
}

// TestGateway_Replies feeds the gateway every shape of upstream reply: only
// a JSON-RPC 2.0 response to the id apikeyd sent passes.
func TestGateway_Replies(t *testing.T) {
	var body atomic.Pointer[string]
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, *body.Load())
	}))
	t.Cleanup(up.Close)
	ts := newTestServer(t)
	catalog, err := gateway.ParseCatalog([]byte(`{"methods":[{"name":"vm.x","params":[],"x-access":"READ"}]}`))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(ts.RPC, &gateway.Upstream{URL: up.URL, MaxReplyBytes: 1024}, catalog))
	for _, tt := range []struct {
		name, reply string
		result      string // "" when the call must fail with bad_reply
	}{
		{"Result", `{"jsonrpc":"2.0","result":{"a":[1,2]},"id":1}`, `{"a":[1,2]}`},
		{"NullResult", `{"jsonrpc":"2.0","result":null,"id":1}`, `null`},
		{"Spaced", ` { "id" : 1 , "result" : "ok" , "jsonrpc" : "2.0" } `, `"ok"`},
		{"ErrorNullResult", `{"jsonrpc":"2.0","result":7,"error":null,"id":1}`, `7`},
		{"WrongID", `{"jsonrpc":"2.0","result":1,"id":2}`, ""},
		{"StringID", `{"jsonrpc":"2.0","result":1,"id":"1"}`, ""},
		{"NoID", `{"jsonrpc":"2.0","result":1}`, ""},
		{"Version1", `{"jsonrpc":"1.0","result":1,"id":1}`, ""},
		{"NoVersion", `{"result":1,"id":1}`, ""},
		{"Both", `{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"x"},"id":1}`, ""},
		{"Neither", `{"jsonrpc":"2.0","id":1}`, ""},
		{"ErrorNoMessage", `{"jsonrpc":"2.0","error":{"code":5},"id":1}`, ""},
		{"ErrorNotObject", `{"jsonrpc":"2.0","error":"bad","id":1}`, ""},
		{"DuplicateKey", `{"jsonrpc":"2.0","result":1,"result":2,"id":1}`, ""},
		{"Array", `[{"jsonrpc":"2.0","result":1,"id":1}]`, ""},
		{"Truncated", `{"jsonrpc":"2.0","result":{"a":`, ""},
		{"Empty", ``, ""},
		{"TooLarge", `{"jsonrpc":"2.0","result":"` + strings.Repeat("x", 2000) + `","id":1}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body.Store(&tt.reply)
			r := ts.call(ts.Admin, "vm.x", nil)
			if tt.result == "" {
				require.NotNil(t, r.Error, "passed: %s", r.Result)
				assert.Equal(t, int64(rpc.CodeUpstreamBadReply), r.Error.Code)
				assert.Equal(t, rpc.ErrIDUpstreamBadReply, r.Error.Data.ErrorID)
				return
			}
			require.Nil(t, r.Error, "%+v", r.Error)
			assert.JSONEq(t, tt.result, string(r.Result))
		})
	}
}

// TestGateway_ErrorsPassThrough: an upstream's error reaches the caller as
// the upstream gave it, over JSON-RPC and in the URL style, whose status
// for it is 400 whatever its code.
func TestGateway_ErrorsPassThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","error":{"code":-32001,"message":"nope"},"id":1}`)
	}))
	t.Cleanup(up.Close)
	ts := newTestServer(t)
	catalog, err := gateway.ParseCatalog([]byte(`{"methods":[{"name":"vm.x","params":[],"x-access":"READ"}]}`))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(ts.RPC, &gateway.Upstream{URL: up.URL}, catalog))

	_, body := ts.post(ts.Admin, `{"jsonrpc":"2.0","method":"vm.x","id":1}`)
	assert.JSONEq(t, `{"jsonrpc":"2.0","error":{"code":-32001,"message":"nope"},"id":1}`, string(body), "no data added")

	status, h, body := urlCall(t, http.MethodGet, urlServer(t, ts)+"vm.x", ts.Admin, nil)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Empty(t, h.Get("WWW-Authenticate"), "apikeyd authenticated the call; the upstream's -32001 is its own")
	assert.Equal(t, urlstyle.Error{ErrorType: rpc.ErrIDUpstreamError, ErrorCode: -32001, Error: "nope"}, urlError(t, body))
}

// TestGateway_BatchWithinWriteTimeout: a batch of slow forwarded calls ends
// within Options.RequestTimeout, with a timeout for each call still
// waiting, instead of outlasting the HTTP write timeout and getting no
// reply at all.
func TestGateway_BatchWithinWriteTimeout(t *testing.T) {
	ts := newTestServer(t, func(o *rpc.Options) { o.RequestTimeout = 1500 * time.Millisecond })
	up := newFakeUpstream(t)
	catalog, err := gateway.ParseCatalog([]byte(upstreamCatalog))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(ts.RPC, &gateway.Upstream{URL: up.URL, Timeout: 600 * time.Millisecond}, catalog))
	hs := httptest.NewUnstartedServer(ts.RPC)
	hs.Config.WriteTimeout = 2 * time.Second
	hs.Start()
	t.Cleanup(hs.Close)

	body := `[` + strings.Repeat(`{"jsonrpc":"2.0","method":"vm.slow","id":1},`, 4) + `{"jsonrpc":"2.0","method":"vm.list","id":2}]`
	req, err := http.NewRequest(http.MethodPost, hs.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ts.Admin)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "a reply, not a cut connection")
	defer resp.Body.Close()
	var out []wireResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	assert.Less(t, time.Since(start), 2*time.Second)
	require.Len(t, out, 5)
	for _, r := range out {
		require.NotNil(t, r.Error)
		assert.Equal(t, rpc.ErrIDUpstreamTimeout, r.Error.Data.ErrorID)
	}
}

// A call that finds every connection to the upstream busy is refused as
// unavailable, never sent (so it is safe to retry), not reported as a
// timeout that may have taken effect.
func TestGateway_PoolFull(t *testing.T) {
	ts := newTestServer(t)
	up := newFakeUpstream(t)
	catalog, err := gateway.ParseCatalog([]byte(upstreamCatalog))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(ts.RPC, &gateway.Upstream{URL: up.URL, Timeout: 2 * time.Second, MaxConns: 1}, catalog))

	slow := make(chan *wireError, 1)
	go func() {
		r := ts.call(ts.Admin, "vm.slow", nil)
		slow <- r.Error
	}()
	require.Eventually(t, func() bool { return len(up.received()) == 1 }, 5*time.Second, 10*time.Millisecond)

	e := ts.fail(ts.Admin, "vm.list", nil, rpc.CodeUpstreamUnavailable, rpc.ErrIDUpstreamUnavailable)
	assert.Contains(t, e.Data.Detail, "too many calls in flight")
	assert.Len(t, up.received(), 1, "the refused call never reached the upstream")

	up.release <- struct{}{} // the slow call ends; its connection is free again
	assert.Nil(t, <-slow)
	ts.ok(ts.Admin, "vm.list", nil, nil)
}

// Requests of every size reach the upstream whole: small ones, sent as
// their reply is awaited, and ones too large to keep, sent as written.
func TestGateway_RequestSizes(t *testing.T) {
	ts, up := newGateway(t, 2*time.Second)
	for _, size := range []int{1, 60 << 10, 200 << 10} {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			name := strings.Repeat("w", size)
			var res struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
				} `json:"params"`
			}
			ts.ok(ts.Admin, "vm.reboot", map[string]any{"name": name}, &res)
			assert.Equal(t, "vm.reboot", res.Method)
			assert.Equal(t, name, res.Params.Name)
			calls := up.received()
			assert.JSONEq(t, fmt.Sprintf(`{"name":%q}`, name), string(calls[len(calls)-1].Params))
		})
	}
}

// A call on a kept-alive connection that the upstream has since closed
// fails at once, as unavailable, not when its time is up; the next call
// gets a new connection.
func TestGateway_UpstreamClosedIdleConnection(t *testing.T) {
	up := &fakeUpstream{release: make(chan struct{})}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(up.serve))
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Start()
	t.Cleanup(func() {
		close(up.release)
		srv.Close()
	})
	ts := newTestServer(t)
	catalog, err := gateway.ParseCatalog([]byte(upstreamCatalog))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(ts.RPC, &gateway.Upstream{URL: srv.URL + "/rpc", Timeout: 5 * time.Second}, catalog))

	ts.ok(ts.Admin, "vm.list", nil, nil)
	time.Sleep(200 * time.Millisecond) // the upstream closes the idle connection
	start := time.Now()
	ts.fail(ts.Admin, "vm.list", nil, rpc.CodeUpstreamUnavailable, rpc.ErrIDUpstreamUnavailable)
	assert.Less(t, time.Since(start), time.Second)
	ts.ok(ts.Admin, "vm.list", nil, nil)
}
