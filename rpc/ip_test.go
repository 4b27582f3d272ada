package rpc_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callFrom sends one call with an X-Forwarded-For header.
func (ts *testServer) callFrom(key, xff, method string) wireResponse {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(`{"jsonrpc":"2.0","method":"`+method+`","id":1}`))
	require.NoError(ts.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	_, body := ts.do(req)
	var r wireResponse
	require.NoError(ts.t, json.Unmarshal(body, &r))
	return r
}

func TestIPScope_Connection(t *testing.T) {
	ts := newTestServer(t)
	local := ts.createKey(ts.Admin, map[string][]string{"ip": {"127.0.0.0/8", "::1"}}, "loopback only")
	office := ts.createKey(ts.Admin, map[string][]string{"ip": {"10.0.0.0/8"}}, "office only")
	assert.Equal(t, []string{"127.0.0.0/8", "::1/128"}, local.Scopes.IP)

	ts.ok(local.Key, "server.list", nil, nil)
	ts.fail(office.Key, "server.list", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	// With no trusted proxies, X-Forwarded-For is not believed.
	assert.Nil(t, ts.callFrom(local.Key, "10.1.2.3", "server.list").Error)
	r := ts.callFrom(office.Key, "10.1.2.3", "server.list")
	require.NotNil(t, r.Error)
	assert.Equal(t, rpc.ErrIDScopeDenied, r.Error.Data.ErrorID)

	ts.unchanged(func() {
		for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "fe80::1%eth0"} {
			ts.fail(ts.Admin, "apikey.create", map[string]any{"scopes": map[string][]string{"ip": {bad}}}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
			ts.fail(ts.Admin, "apikey.add_scope", []any{local.ID, "ip", bad}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
		}
		// A key limited to an ip range cannot make one wider.
		ts.fail(local.Key, "apikey.create", map[string]any{"scopes": map[string][]string{"ip": {"0.0.0.0/0"}}}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})
}

func TestIPScope_TrustedProxies(t *testing.T) {
	ts := newTestServer(t, func(o *rpc.Options) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")}
	})
	office := ts.createKey(ts.Admin, map[string][]string{"ip": {"10.0.0.0/8"}}, "office only")

	for xff, allowed := range map[string]bool{
		"10.1.2.3":                       true,  // the client, as the proxy saw it
		"10.1.2.3, 192.168.1.1":          true,  // through two trusted proxies
		"203.0.113.9":                    false, // a client outside the range
		"10.9.9.9, 203.0.113.9":          false, // a client forging its own header: the rightmost untrusted hop counts
		"not an address":                 false,
		"10.1.2.3, garbage, 192.168.1.1": false,
		"":                               false, // no header: the proxy itself
	} {
		r := ts.callFrom(office.Key, xff, "server.list")
		if allowed {
			assert.Nil(t, r.Error, "X-Forwarded-For %q", xff)
		} else {
			assert.NotNil(t, r.Error, "X-Forwarded-For %q", xff)
		}
	}

	// The audit trail records the client, not the proxy.
	r := ts.callFrom(office.Key, "10.1.2.3", "apikey.create") // refused: an unrestricted key
	require.NotNil(t, r.Error)
	var page rpc.AuditPage
	ts.ok(ts.Admin, "audit.list", map[string]any{"method": "apikey.create", "outcome": "escalation_denied"}, &page)
	require.NotEmpty(t, page.Records)
	assert.Equal(t, "10.1.2.3", page.Records[len(page.Records)-1].SourceIP)

	// apikey.verify takes the address to check.
	var v rpc.Verification
	ts.ok(ts.Admin, "apikey.verify", map[string]any{"key": office.Key, "method": "server.list", "ip": "10.0.0.1"}, &v)
	assert.True(t, v.Valid)
	ts.ok(ts.Admin, "apikey.verify", map[string]any{"key": office.Key, "method": "server.list"}, &v)
	assert.Equal(t, "scope_denied", v.Code)
	ts.fail(ts.Admin, "apikey.verify", map[string]any{"key": office.Key, "method": "server.list", "ip": "nope"}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
}
