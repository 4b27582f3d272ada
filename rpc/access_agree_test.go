package rpc_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/gateway"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// agreeCatalog is the upstream of TestAccess_Agree: forwarded methods of
// three classes, one taking a name, one with no x-access (MANAGE).
const agreeCatalog = `{
  "openrpc": "1.3.2",
  "info": {"title": "panel", "version": "1"},
  "methods": [
    {"name": "vm.list", "params": [], "result": {"name": "r", "schema": {}}, "x-access": "READ"},
    {"name": "vm.reboot", "params": [{"name": "name", "required": true, "schema": {"type": "string"}}], "result": {"name": "r", "schema": {}}, "x-access": "UPDATE"},
    {"name": "dns.unannotated", "params": [], "result": {"name": "r", "schema": {}}}
  ]
}`

// agreeUpstream answers rpc.discover with agreeCatalog and every other
// call with a result.
func agreeUpstream(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		result := `{"forwarded":true}`
		if req.Method == "rpc.discover" {
			result = agreeCatalog
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","result":%s,"id":%s}`, result, req.ID)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/rpc"
}

// agreeSubject is one key of the matrix: a secret and what it is.
type agreeSubject struct {
	what   string
	secret string
	names  []string // its name scope
}

// authzRefusals maps the error ids by which the chain refuses a call
// before running it to the apikey.verify codes that say the same.
var authzRefusals = map[string][]string{
	rpc.ErrIDInvalidKey:     {"not_found", "inactive", "expired", "not_yet_valid", "rotated", "holder_inactive"},
	rpc.ErrIDMissingKey:     {"not_found"},
	rpc.ErrIDScopeDenied:    {rpc.ErrIDScopeDenied},
	rpc.ErrIDOperatorOnly:   {rpc.ErrIDOperatorOnly},
	rpc.ErrIDHeldKey:        {rpc.ErrIDHeldKey},
	rpc.ErrIDRateLimited:    {rpc.ErrIDRateLimited},
	rpc.ErrIDQuotaExhausted: {rpc.ErrIDQuotaExhausted},
}

// TestAccess_Agree is generated from the method table: for every method,
// built-in, embedded and forwarded, under keys of every scope type, holder
// state, validity and account, it makes the real call over HTTP and asks
// apikey.verify, from an operator key, the same question. The chain
// refuses the call (invalid_key, scope_denied, operator_only, ...) exactly
// when verify answers valid=false with the matching code; the call gets
// past authorization (whatever it answers then: invalid_params, not_found,
// a result) exactly when verify answers valid=true. rpc.discover and
// system.list_methods list exactly the methods verify says the key could
// call, and a WebSocket upgrade is taken exactly when verify allows
// rpc.discover. A method added to the table is covered here as it is.
func TestAccess_Agree(t *testing.T) {
	ts := newTestServer(t)
	catalog, err := gateway.ParseCatalog([]byte(agreeCatalog))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(ts.RPC, &gateway.Upstream{URL: agreeUpstream(t), Timeout: 5 * time.Second}, catalog))

	subjects := agreeSubjects(t, ts)
	methods := ts.RPC.Methods()
	require.NotEmpty(t, methods)
	forwarded := 0
	for _, m := range methods {
		if strings.HasPrefix(m.Name, "vm.") || strings.HasPrefix(m.Name, "dns.") {
			forwarded++
		}
	}
	require.Equal(t, 3, forwarded, "the forwarded methods are in the table")

	verify := func(secret, method string, name *string) rpc.Verification {
		t.Helper()
		p := map[string]any{"key": secret, "method": method, "ip": "127.0.0.1"}
		if name != nil {
			p["name"] = *name
		}
		var v rpc.Verification
		ts.ok(ts.Admin, "apikey.verify", p, &v)
		return v
	}
	seen := map[string]int{} // outcomes, to show the matrix reached each
	for _, sub := range subjects {
		t.Run(sub.what, func(t *testing.T) {
			for _, m := range methods {
				for _, name := range nameVariants(m) {
					label := m.Name
					params := map[string]any{}
					if name != nil {
						label += "(" + *name + ")"
						params["name"] = *name
					}
					r := ts.call(sub.secret, m.Name, params)
					v := verify(sub.secret, m.Name, name)
					refusal := ""
					if r.Error != nil && authzRefusals[r.Error.Data.ErrorID] != nil {
						refusal = r.Error.Data.ErrorID
					}
					if refusal == "" {
						seen["allowed"]++
						assert.True(t, v.Valid, "%s: the call got past authorization (%s), verify says %s",
							label, outcome(r), v.Code)
						continue
					}
					seen[refusal]++
					assert.False(t, v.Valid, "%s: the call was refused with %s, verify says valid", label, refusal)
					assert.Contains(t, authzRefusals[refusal], v.Code, "%s: the call was refused with %s", label, refusal)
				}
			}

			// Discovery lists what verify says the key could call (with
			// one of its names, when it has a name scope).
			var want []string
			for _, m := range methods {
				var name *string
				if len(sub.names) > 0 && slices.ContainsFunc(m.Params, func(p rpc.Param) bool { return p.Name == "name" }) {
					name = &sub.names[0]
				}
				if verify(sub.secret, m.Name, name).Valid {
					want = append(want, m.Name)
				}
			}
			sort.Strings(want)
			discoverable := verify(sub.secret, "rpc.discover", nil).Valid
			r := ts.call(sub.secret, "system.list_methods", nil)
			if !discoverable {
				require.NotNil(t, r.Error, "verify refuses discovery, the call is answered")
			} else {
				require.Nil(t, r.Error, "verify allows discovery, the call fails: %+v", r.Error)
				var list []rpc.MethodSummary
				require.NoError(t, json.Unmarshal(r.Result, &list))
				var got []string
				for _, m := range list {
					got = append(got, m.Name)
				}
				assert.Equal(t, want, got, "system.list_methods")
				var doc rpc.OpenRPC
				ts.ok(sub.secret, "rpc.discover", nil, &doc)
				got = got[:0]
				for _, m := range doc.Methods {
					got = append(got, m.Name)
				}
				assert.Equal(t, want, got, "rpc.discover")
			}

			// The WebSocket upgrade is decided as rpc.discover is.
			status := wsUpgradeStatus(t, ts, sub.secret)
			assert.Equal(t, discoverable, status == http.StatusSwitchingProtocols, "WebSocket upgrade answered %d", status)
		})
	}
	t.Logf("outcomes over %d keys and %d methods: %v", len(subjects), len(methods), seen)
	for _, o := range []string{"allowed", rpc.ErrIDInvalidKey, rpc.ErrIDScopeDenied, rpc.ErrIDOperatorOnly} {
		assert.Positive(t, seen[o], "no call ended %s: the matrix misses a case", o)
	}
}

// nameVariants are the name params a call of m is made with: none, and for
// a method that takes a name, one inside the name scopes of the matrix and
// one outside.
func nameVariants(m rpc.Method) []*string {
	out := []*string{nil}
	if slices.ContainsFunc(m.Params, func(p rpc.Param) bool { return p.Name == "name" }) {
		in, out2 := "web1", "web2"
		out = append(out, &in, &out2)
	}
	return out
}

func outcome(r wireResponse) string {
	if r.Error != nil {
		return r.Error.Data.ErrorID
	}
	return "a result"
}

// wsUpgradeStatus tries a WebSocket upgrade with secret and returns the
// HTTP status it got.
func wsUpgradeStatus(t *testing.T, ts *testServer, secret string) int {
	t.Helper()
	u := "ws" + strings.TrimPrefix(ts.URL, "http")
	u = strings.TrimSuffix(u, "/rpc") + "/ws"
	h := http.Header{"Authorization": {"Bearer " + secret}}
	c, resp, err := websocket.DefaultDialer.Dial(u, h)
	if err == nil {
		_ = c.Close()
	}
	require.NotNil(t, resp, "dial: %v", err)
	return resp.StatusCode
}

// agreeSubjects makes the keys of the matrix, in the operator account and
// in another: every scope type, every holder state, every validity. The
// clock then stands two hours on, where each key is what its name says.
func agreeSubjects(t *testing.T, ts *testServer) []agreeSubject {
	t.Helper()
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", map[string]any{"name": "acme"}, &acme)
	at := func(d time.Duration) string { return fixedNow.Add(d).Format(time.RFC3339) }
	var out []agreeSubject
	for _, acct := range []struct{ name, key string }{{"operator", ts.Admin}, {"acme", acme.FirstKey.Key}} {
		add := func(what string, params map[string]any) rpc.NewKeyInfo {
			var k rpc.NewKeyInfo
			ts.ok(acct.key, "apikey.create", params, &k)
			var names []string
			if sc, ok := params["scopes"].(map[string][]string); ok {
				names = sc["name"]
			}
			out = append(out, agreeSubject{what: acct.name + "/" + what, secret: k.Key, names: names})
			return k
		}
		scoped := func(what string, sc map[string][]string) {
			add(what, map[string]any{"scopes": sc})
		}
		// Scopes of every type.
		scoped("unrestricted", map[string][]string{})
		scoped("method exact", map[string][]string{"method": {"server.reboot", "apikey.list"}})
		scoped("method wildcard", map[string][]string{"method": {"apikey.*", "vm.*"}})
		scoped("method other", map[string][]string{"method": {"dns.nothing"}})
		scoped("method discovery", map[string][]string{"method": {"rpc.discover"}})
		scoped("name", map[string][]string{"name": {"web1"}})
		scoped("method and name", map[string][]string{"method": {"server.*", "vm.*", "account.*"}, "name": {"web1"}})
		for _, class := range []string{"READ", "CREATE", "UPDATE", "DELETE", "MANAGE"} {
			scoped("access "+class, map[string][]string{"access": {class}})
		}
		scoped("ip in", map[string][]string{"ip": {"127.0.0.0/8"}})
		scoped("ip out", map[string][]string{"ip": {"192.0.2.0/24"}})
		scoped("ip out, method", map[string][]string{"ip": {"192.0.2.0/24"}, "method": {"server.list"}})
		// Limits: each call and each verification spends one.
		add("quota", map[string]any{"quota": map[string]any{"remaining": 1000000}})

		// Holders: a user's keys (by login), a service account's, active
		// and switched off.
		user := "alice-" + acct.name
		ts.ok(acct.key, "user.create", map[string]any{"name": user, "password": "correct horse"}, nil)
		for _, level := range []string{"basic", "apikey", "full"} {
			var k rpc.NewKeyInfo
			ts.ok("", "user.create_apikey", map[string]any{"username": user + "@" + acct.name, "password": "correct horse", "access_level": level}, &k)
			out = append(out, agreeSubject{what: acct.name + "/user " + level, secret: k.Key})
		}
		for _, sa := range []string{"robots", "robots-off"} {
			ts.ok(acct.key, "service_account.create", map[string]any{"name": sa}, nil)
			add("service account "+sa, map[string]any{"service_account": sa})
			add("service account "+sa+", scoped", map[string]any{"service_account": sa, "scopes": map[string][]string{"method": {"server.*"}}})
		}
		ts.ok(acct.key, "service_account.update", map[string]any{"name": "robots-off", "active": false}, nil)

		// Validity.
		off := add("inactive", map[string]any{})
		ts.ok(acct.key, "apikey.update", map[string]any{"id": off.ID, "active": false}, nil)
		add("expired", map[string]any{"expires_at": at(time.Hour)})
		add("not yet valid", map[string]any{"not_before": at(10 * time.Hour)})
		add("valid window", map[string]any{"not_before": at(time.Hour), "expires_at": at(10 * time.Hour)})
		for _, retain := range []struct {
			what    string
			minutes int
		}{{"within grace", 600}, {"past grace", 60}} {
			k := add("rotated, new secret "+retain.what, map[string]any{})
			var rot rpc.NewKeyInfo
			ts.ok(acct.key, "apikey.rotate", map[string]any{"id": k.ID, "retain_period_minutes": retain.minutes}, &rot)
			out[len(out)-1].secret = rot.Key
			out = append(out, agreeSubject{what: acct.name + "/retained secret " + retain.what, secret: k.Key})
		}

		// Changes after a secret was used: every path sees them at once.
		used := add("used, then switched off", map[string]any{})
		ts.ok(used.Key, "apikey.info", map[string]any{"id": used.ID}, nil)
		ts.ok(acct.key, "apikey.update", map[string]any{"id": used.ID, "active": false}, nil)
		ts.ok(acct.key, "service_account.create", map[string]any{"name": "robots-later"}, nil)
		held := add("used, then its holder switched off", map[string]any{"service_account": "robots-later"})
		ts.ok(held.Key, "apikey.info", map[string]any{"id": held.ID}, nil)
		ts.ok(acct.key, "service_account.update", map[string]any{"name": "robots-later", "active": false}, nil)
		// A retained secret used (so cached) before its key was switched
		// off answers to the key's one state, as its current secret does.
		old := add("rotated, used, then switched off", map[string]any{})
		var rot rpc.NewKeyInfo
		ts.ok(acct.key, "apikey.rotate", map[string]any{"id": old.ID, "retain_period_minutes": 600}, &rot)
		ts.ok(old.Key, "apikey.info", map[string]any{"id": old.ID}, nil)
		ts.ok(acct.key, "apikey.update", map[string]any{"id": old.ID, "active": false}, nil)
		out[len(out)-1].secret = rot.Key
		out = append(out, agreeSubject{what: acct.name + "/retained secret used, then switched off", secret: old.Key})
	}
	out = append(out, agreeSubject{what: "unknown key", secret: "0123456789abcdef0123456789abcdef"})
	ts.advance(2 * time.Hour)
	return out
}

// TestAccess_AgreeLimits: a key's limits are spent before its scopes are
// read, by the call and by apikey.verify alike, so the two agree on a key
// out of quota whether or not its scopes allow the call.
func TestAccess_AgreeLimits(t *testing.T) {
	ts := newTestServer(t)
	var k rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"server.list"}},
		"quota": map[string]any{"remaining": 2}}, &k)
	verify := func(method string) rpc.Verification {
		t.Helper()
		var v rpc.Verification
		ts.ok(ts.Admin, "apikey.verify", map[string]any{"key": k.Key, "method": method}, &v)
		return v
	}
	zero := int64(0)
	ts.fail(k.Key, "server.reboot", []any{"web1"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	assert.Equal(t, rpc.Verification{Code: rpc.ErrIDScopeDenied, KeyID: k.ID, Remaining: &zero}, verify("server.reboot"),
		"a denied verification spends, as the denied call did")
	ts.fail(k.Key, "server.reboot", []any{"web1"}, rpc.CodeRateLimited, rpc.ErrIDQuotaExhausted)
	assert.Equal(t, rpc.ErrIDQuotaExhausted, verify("server.reboot").Code, "out of quota, before its scopes are read")
	ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDQuotaExhausted)
	assert.Equal(t, rpc.ErrIDQuotaExhausted, verify("server.list").Code)
	// Methods that need no key spend nothing and look at no key.
	assert.Equal(t, rpc.Verification{Valid: true, Code: "open", KeyID: k.ID}, verify("user.create_apikey"))
	ts.fail(k.Key, "user.create_apikey", map[string]any{"username": "nobody", "password": "x", "access_level": "basic"},
		rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)
}
