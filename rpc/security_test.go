package rpc_test

// Attacks found in review, each kept as a test of the defence.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/gateway"
	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecurity_ListOwnerCountsOtherAccounts: apikey.list with an owner filter
// naming another account's user or service account answers with that
// holder's key count in "total" (no items): a cross-tenant leak of the
// existence of users/service accounts and of how many keys they hold.
func TestSecurity_ListOwnerCountsOtherAccounts(t *testing.T) {
	ts := newTestServer(t)
	var acme, beta rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", map[string]any{"name": "acme"}, &acme)
	ts.ok(ts.Admin, "account.create", map[string]any{"name": "beta"}, &beta)
	// acme: a user alice with 3 keys, a service account ci with 2.
	ts.ok(acme.FirstKey.Key, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, nil)
	for range 3 {
		ts.ok("", "user.create_apikey", map[string]any{"username": "alice@acme", "password": "correct horse", "access_level": "basic"}, nil)
	}
	ts.ok(acme.FirstKey.Key, "service_account.create", map[string]any{"name": "ci"}, nil)
	for range 2 {
		ts.ok(acme.FirstKey.Key, "apikey.create", map[string]any{"service_account": "ci"}, nil)
	}

	// beta's key asks about acme's holders.
	var page rpc.KeyList
	ts.ok(beta.FirstKey.Key, "apikey.list", map[string]any{"owner": "user:alice@acme"}, &page)
	assert.Equal(t, 0, page.Total, "beta learns that user alice (of another account) holds %d keys", page.Total)
	ts.ok(beta.FirstKey.Key, "apikey.list", map[string]any{"owner": "sa:acme/ci"}, &page)
	assert.Equal(t, 0, page.Total, "beta learns that acme has a service account ci holding %d keys", page.Total)
	assert.Equal(t, 0, page.TotalPages)
}

// TestSecurity_LimitedKeyShedsLimitsByRotate: a key with a quota may not
// create keys, but it may rotate any unlimited key it covers and so get a
// secret without limits.
func TestSecurity_LimitedKeyShedsLimitsByRotate(t *testing.T) {
	ts := newTestServer(t)
	limited := ts.createLimited(nil, map[string]any{"remaining": 3}) // method: server.list, apikey.*
	sibling := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list"}}, "unlimited sibling")
	ts.fail(limited.Key, "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"server.list"}}},
		rpc.CodeForbidden, rpc.ErrIDEscalation) // as documented

	var rotated rpc.NewKeyInfo
	r := ts.call(limited.Key, "apikey.rotate", map[string]any{"id": sibling.ID})
	if r.Error != nil {
		return // fixed
	}
	require.NoError(t, json.Unmarshal(r.Result, &rotated))
	for range 10 {
		ts.ok(rotated.Key, "server.list", nil, nil) // far past the 3-call quota
	}
	t.Errorf("a key with a 3-call quota obtained an unlimited secret (%s) via apikey.rotate", rotated.ID)
}

// TestSecurity_ScopedKeyEscalatesThroughUsers: a user's password yields
// keys up to access level full with no limits, held by the user. So only a
// key that covers that, has no limits and is the account's own may create
// users or set passwords; otherwise a key limited to user.* (or to a
// quota, or held by a user) would log in to a wider key.
func TestSecurity_ScopedKeyEscalatesThroughUsers(t *testing.T) {
	ts := newTestServer(t)
	var narrow, metered rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"user.*"}}}, &narrow)
	ts.ok(ts.Admin, "apikey.create", map[string]any{"quota": map[string]any{"remaining": 50}}, &metered)
	ts.ok(ts.Admin, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, nil)
	alice := ts.createUserKey("alice@operator", "correct horse", "full")
	for key, id := range map[string]string{narrow.Key: rpc.ErrIDEscalation, metered.Key: rpc.ErrIDEscalation, alice.Key: rpc.ErrIDHeldKey} {
		ts.unchanged(func() {
			ts.fail(key, "user.create", map[string]any{"name": "mallory", "password": "long enough"}, rpc.CodeForbidden, id)
			ts.fail(key, "user.set_password", map[string]any{"name": "alice", "password": "long enough"}, rpc.CodeForbidden, id)
		})
	}
	ts.fail("", "user.create_apikey", map[string]any{"username": "mallory@operator", "password": "long enough", "access_level": "full"},
		rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)
	// A limited operator key makes no accounts, whose first keys are
	// unlimited.
	ts.unchanged(func() {
		ts.fail(metered.Key, "account.create", map[string]any{"name": "acme"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})
	// The account's own unrestricted key still may.
	ts.ok(ts.Admin, "user.set_password", map[string]any{"name": "alice", "password": "battery staple"}, nil)
}

// TestSecurity_URLStyleXFFFirstLineOnly: behind a trusted proxy that adds its
// own X-Forwarded-For line (HAProxy's option forwardfor does), /rpc reads
// every line but the URL style reads only the first, which the client
// wrote: the client picks its address and passes an ip scope.
func TestSecurity_URLStyleXFFFirstLineOnly(t *testing.T) {
	ts := newTestServer(t, func(o *rpc.Options) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	office := ts.createKey(ts.Admin, map[string][]string{"ip": {"10.0.0.0/8"}}, "office only")
	headers := []string{"10.1.2.3", "203.0.113.9"} // forged by the client, then added by the proxy

	req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(`{"jsonrpc":"2.0","method":"server.list","id":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+office.Key)
	for _, h := range headers {
		req.Header.Add("X-Forwarded-For", h)
	}
	_, body := ts.do(req)
	assert.Contains(t, string(body), "scope_denied", "/rpc: denied, as it should be")

	base := urlServer(t, ts)
	req, _ = http.NewRequest(http.MethodGet, base+"server.list", nil)
	req.SetBasicAuth(office.Key, "")
	for _, h := range headers {
		req.Header.Add("X-Forwarded-For", h)
	}
	status, body := ts.do(req)
	assert.Equal(t, http.StatusForbidden, status, "URL style let a client at 203.0.113.9 through an ip scope of 10.0.0.0/8: %s", body)
}

// TestSecurity_URLStyleCrossSiteGET: URL style runs mutating methods on GET
// and on form POSTs, with no Origin check: a page on another site can make
// a browser that has the key cached as Basic credentials (the 401 carries
// WWW-Authenticate: Basic, which makes browsers prompt and cache) delete
// keys. /ws refuses cross-site Origins for exactly this reason.
func TestSecurity_URLStyleCrossSiteGET(t *testing.T) {
	ts := newTestServer(t)
	victim := ts.createKey(ts.Admin, nil, "victim")
	base := urlServer(t, ts)
	req, _ := http.NewRequest(http.MethodGet, base+"apikey.delete?id="+url.QueryEscape(victim.ID), nil)
	req.SetBasicAuth(ts.Admin, "")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	status, body := ts.do(req)
	assert.NotEqual(t, http.StatusOK, status, "a cross-site GET deleted a key: %s", body)
}

// TestSecurity_URLStyleOrigins: what a browser on this host, or a script,
// sends passes; what another site makes a browser send does not.
func TestSecurity_URLStyleOrigins(t *testing.T) {
	ts := newTestServer(t)
	base := urlServer(t, ts)
	host := strings.TrimPrefix(strings.TrimSuffix(base, urlstyle.Prefix), "http://")
	for _, tt := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"Script", nil, http.StatusOK},
		{"SameOrigin", map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"Typed", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusOK},
		{"OtherSite", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"SameSite", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"NullOrigin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"OtherPort", map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				req, _ := http.NewRequest(http.MethodPost, base+"apikey.delete?id=01890a5d-ac96-774b-bcce-b302099a8057", nil)
				req.SetBasicAuth(ts.Admin, "")
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				status, body := ts.do(req)
				if tt.status == http.StatusOK { // reached the method, which found no such key
					assert.Equal(t, http.StatusNotFound, status, "%s", body)
					return
				}
				assert.Equal(t, tt.status, status, "%s", body)
				assert.Equal(t, rpc.ErrIDCrossSite, urlError(t, body).ErrorType)
			})
		})
	}
}

// TestSecurity_QuadraticMembers: jsonwire.Members checks duplicates in O(n^2);
// a 1 MiB request object of ~100k distinct members, sent with no key, costs
// ~15 s of CPU before it is refused as an invalid request.
func TestSecurity_QuadraticMembers(t *testing.T) {
	ts := newTestServer(t)
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","method":"apikey.list","id":1`)
	for i := 0; b.Len() < 1<<20-32; i++ {
		fmt.Fprintf(&b, `,"%x":0`, i)
	}
	b.WriteString(`}`)
	start := time.Now()
	status, reply := ts.post("", b.String()) // no key at all
	d := time.Since(start)
	t.Logf("status %d, %d bytes body, took %s, reply %.120s", status, b.Len(), d, reply)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if d > time.Second {
		t.Errorf("one unauthenticated request took %s of server CPU", d)
	}
}

// TestSecurity_QuadraticEscapes: a string scanner that looks for the closing
// quote again after every backslash is O(n^2) on a string of escapes; a
// 1 MiB one, sent with no key, cost seconds of CPU.
func TestSecurity_QuadraticEscapes(t *testing.T) {
	ts := newTestServer(t)
	for _, esc := range []string{`\n`, `\"`, `\\`} {
		var b strings.Builder
		b.WriteString(`{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"`)
		for b.Len() < 1<<20-64 {
			b.WriteString(esc)
		}
		b.WriteString(`"},"id":1}`)
		start := time.Now()
		status, reply := ts.post("", b.String()) // no key at all
		d := time.Since(start)
		t.Logf("%s: status %d, took %s, reply %.120s", esc, status, d, reply)
		require.Equal(t, http.StatusOK, status)
		assert.Contains(t, string(reply), `"error"`)
		if d > time.Second {
			t.Errorf("%s: one unauthenticated request took %s of server CPU", esc, d)
		}
	}
}

// TestSecurity_WSUpgradeIgnoresIPScopeAndLimits: the upgrade checks what it
// can before any call. A key whose ip scope excludes the client gets no
// connection; no key holds more than its share of connections, however
// spent its quota; a refused upgrade is audited like a refused call.
func TestSecurity_WSUpgradeIgnoresIPScopeAndLimits(t *testing.T) {
	ts := newTestServer(t)
	_, url := serveWS(t, ts)
	elsewhere := ts.createKey(ts.Admin, map[string][]string{"ip": {"10.0.0.0/8"}}, "not from 127.0.0.1")
	spent := ts.createLimited(nil, map[string]any{"remaining": 0})
	ts.fail(elsewhere.Key, "server.list", nil, -32003, rpc.ErrIDScopeDenied)
	ts.fail(spent.Key, "server.list", nil, -32029, rpc.ErrIDQuotaExhausted)

	_, resp, err := dialWS(t, url, "Bearer "+elsewhere.Key)
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp.Body.Close()

	var open []*websocket.Conn
	for range rpc.WSMaxPerKey {
		ws, resp, err := dialWS(t, url, "Bearer "+spent.Key)
		require.NoError(t, err)
		resp.Body.Close()
		open = append(open, ws)
	}
	_, resp, err = dialWS(t, url, "Bearer "+spent.Key)
	require.Error(t, err, "one connection more than a key may hold")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	resp.Body.Close()
	// Closing one frees its slot.
	require.NoError(t, open[0].Close())
	require.Eventually(t, func() bool {
		ws, resp, err := dialWS(t, url, "Bearer "+spent.Key)
		if err != nil {
			resp.Body.Close()
			return false
		}
		resp.Body.Close()
		return ws.Close() == nil
	}, 5*time.Second, 20*time.Millisecond)

	// Refused upgrades are in the audit trail.
	_, resp, err = dialWS(t, url, "Bearer ffffffffffffffffffffffffffffffff")
	require.Error(t, err)
	resp.Body.Close()
	require.NoError(t, ts.Store.FlushAudit()) // one without a key is counted, then written
	var page rpc.AuditPage
	ts.ok(ts.Admin, "audit.list", map[string]any{"method": "(websocket upgrade)"}, &page)
	outcomes := []string{}
	for _, r := range page.Records {
		outcomes = append(outcomes, r.Outcome)
	}
	for _, want := range []string{rpc.ErrIDScopeDenied, rpc.ErrIDTooManyConnections, rpc.ErrIDInvalidKey} {
		assert.Contains(t, outcomes, want)
	}
}

// TestSecurity_WSIdle: a connection whose peer neither sends nor answers
// pings is closed after the idle time; one that answers pings is not.
func TestSecurity_WSIdle(t *testing.T) {
	ts := newTestServer(t)
	ts.WS.Idle = 300 * time.Millisecond
	_, url := serveWS(t, ts)
	deaf, resp, err := dialWS(t, url, "Bearer "+ts.Admin)
	require.NoError(t, err)
	resp.Body.Close()
	live, resp, err := dialWS(t, url, "Bearer "+ts.Admin)
	require.NoError(t, err)
	resp.Body.Close()
	liveErr := make(chan error, 1)
	go func() { _, _, err := live.ReadMessage(); liveErr <- err }() // reading answers pings

	time.Sleep(time.Second) // more than three idle times
	_ = deaf.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _, err = deaf.ReadMessage()
	assert.Error(t, err, "the deaf connection is closed")
	select {
	case err := <-liveErr:
		t.Fatalf("the live connection was closed: %v", err)
	default:
	}
	require.NoError(t, live.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","method":"server.list","id":1}`)))
	select {
	case err := <-liveErr:
		assert.NoError(t, err, "the live connection answers")
	case <-time.After(2 * time.Second):
		t.Fatal("no reply on the live connection")
	}
}

// TestSecurity_UpstreamRedirectFollowed: a 307 from the upstream must not
// be followed, which would re-post the call, the X-Apikeyd-* headers and
// the upstream token to wherever it points.
func TestSecurity_UpstreamRedirectFollowed(t *testing.T) {
	var got http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","result":"elsewhere","id":1}`))
	}))
	defer other.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x", http.StatusTemporaryRedirect)
	}))
	defer up.Close()

	ts := newTestServer(t)
	cat, err := gateway.ParseCatalog([]byte(`{"methods":[{"name":"vm.list","x-access":"READ"}]}`))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(ts.RPC, &gateway.Upstream{URL: up.URL + "/rpc", Token: "upstream-secret"}, cat))
	r := ts.call(ts.Admin, "vm.list", nil)
	require.NotNil(t, r.Error, "a redirect is not followed")
	assert.Equal(t, int64(rpc.CodeUpstreamUnavailable), r.Error.Code)
	assert.Contains(t, r.Error.Data.Detail, "307")
	assert.Nil(t, got, "the redirect target saw the call, the caller's identity and the token")
}
