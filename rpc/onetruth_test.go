package rpc_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One truth per key: every secret a key answers to, current or retained
// after apikey.rotate, reaches the key's one state, and every write to the
// key, its holder or its account changes what each of those secrets can do
// before the write returns. Each test warms the authentication cache with
// the retained secret first, as an attacker holding it would.

// rotated creates an unrestricted key as creator (of the account itself),
// rotates it keeping the old secret for an hour, and uses the old secret
// once. It returns the key, and the old and new secrets.
func rotated(ts *testServer, creator string, params map[string]any) (id, old, cur string) {
	ts.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	var k rpc.NewKeyInfo
	ts.ok(creator, "apikey.create", params, &k)
	var r rpc.NewKeyInfo
	ts.ok(k.Key, "apikey.rotate", map[string]any{"id": k.ID, "retain_period_minutes": 60}, &r)
	require.NotEqual(ts.t, k.Key, r.Key)
	mustAuth(ts, k.Key) // warm the cache with the retained secret
	mustAuth(ts, r.Key)
	return k.ID, k.Key, r.Key
}

// mustAuth asserts secret authenticates, and returns its key as the key
// itself sees it.
func mustAuth(ts *testServer, secret string) rpc.KeyInfo {
	ts.t.Helper()
	var info rpc.KeyInfo
	ts.ok(secret, "apikey.info", map[string]any{"id": secret}, &info)
	return info
}

// mustNotAuth asserts secret authenticates nothing.
func mustNotAuth(ts *testServer, secret string) {
	ts.t.Helper()
	ts.fail(secret, "apikey.info", map[string]any{"id": secret}, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail(secret, "apikey.create", map[string]any{"comment": "escape"}, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
}

// tenant creates account name from the operator key and returns its first
// (unrestricted) key's secret.
func tenant(ts *testServer, name string) string {
	ts.t.Helper()
	var a rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", map[string]any{"name": name}, &a)
	return a.FirstKey.Key
}

func TestOneTruth_RetainedSecretAfterDelete(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	id, old, cur := rotated(ts, root, nil)
	ts.ok(root, "apikey.delete", map[string]any{"id": id}, nil)
	mustNotAuth(ts, old)
	mustNotAuth(ts, cur)
}

func TestOneTruth_RetainedSecretAfterDeactivation(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	id, old, cur := rotated(ts, root, nil)
	ts.ok(root, "apikey.update", map[string]any{"id": id, "active": false}, nil)
	mustNotAuth(ts, old)
	mustNotAuth(ts, cur)

	// The reverse: refused while inactive, and so warmed as refused; both
	// secrets work again once the key is switched back on.
	ts.ok(root, "apikey.update", map[string]any{"id": id, "active": true}, nil)
	assert.True(t, mustAuth(ts, old).Active)
	assert.True(t, mustAuth(ts, cur).Active)
}

func TestOneTruth_RetainedSecretAfterExpiryChange(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	id, old, cur := rotated(ts, root, nil)
	soon := fixedNow.Add(60e9).Format("2006-01-02T15:04:05Z07:00")
	ts.ok(root, "apikey.update", map[string]any{"id": id, "expires_at": soon}, nil)
	ts.advance(61e9)
	mustNotAuth(ts, old)
	mustNotAuth(ts, cur)
}

func TestOneTruth_RetainedSecretAfterDeleteScope(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	id, old, cur := rotated(ts, root, map[string]any{"scopes": map[string][]string{"method": {"apikey.*", "server.list"}}})
	assert.Equal(t, []string{"apikey.*", "server.list"}, mustAuth(ts, old).Scopes.Method)
	ts.ok(root, "apikey.delete_scope", map[string]any{"id": id, "scope_name": "method", "value": "apikey.*"}, nil)
	for _, secret := range []string{old, cur} {
		ts.fail(secret, "apikey.info", map[string]any{"id": id}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
		ts.fail(secret, "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"server.list"}}}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
		ts.ok(secret, "server.list", nil, nil)
	}
}

func TestOneTruth_RetainedSecretAfterAddScope(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	id, old, _ := rotated(ts, root, map[string]any{"scopes": map[string][]string{"method": {"apikey.*"}}})
	ts.ok(root, "apikey.add_scope", map[string]any{"id": id, "scope_name": "method", "value": "server.list"}, nil)
	ts.ok(old, "server.list", nil, nil)
}

func TestOneTruth_RetainedSecretAfterUserDelete(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	ts.ok(root, "user.create", map[string]any{"name": "mallory", "password": "correct horse"}, nil)
	var login rpc.NewKeyInfo
	ts.ok("", "user.create_apikey", map[string]any{"username": "mallory@acme", "password": "correct horse", "access_level": "full"}, &login)
	full := map[string]any{"scopes": map[string][]string{"access": {"CREATE", "DELETE", "MANAGE", "READ", "UPDATE"}}}
	_, old, cur := rotated(ts, login.Key, full)
	var again rpc.NewKeyInfo // the login key itself, rotated
	ts.ok(login.Key, "apikey.rotate", map[string]any{"id": login.ID, "retain_period_minutes": 60}, &again)
	mustAuth(ts, login.Key)
	ts.ok(root, "user.delete", map[string]any{"name": "mallory"}, nil)
	for _, secret := range []string{old, cur, login.Key, again.Key} {
		mustNotAuth(ts, secret)
	}
	// A user of the same name later holds none of them.
	ts.ok(root, "user.create", map[string]any{"name": "mallory", "password": "another horse"}, nil)
	for _, secret := range []string{old, cur, login.Key, again.Key} {
		mustNotAuth(ts, secret)
	}
}

func TestOneTruth_RetainedSecretAfterServiceAccountSwitchedOff(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	ts.ok(root, "service_account.create", map[string]any{"name": "ci"}, nil)
	_, old, cur := rotated(ts, root, map[string]any{"service_account": "ci"})
	ts.ok(root, "service_account.update", map[string]any{"name": "ci", "active": false}, nil)
	mustNotAuth(ts, old)
	mustNotAuth(ts, cur)

	ts.ok(root, "service_account.update", map[string]any{"name": "ci", "active": true}, nil)
	mustAuth(ts, old)
	mustAuth(ts, cur)

	ts.ok(root, "service_account.delete", map[string]any{"name": "ci"}, nil)
	mustNotAuth(ts, old)
	mustNotAuth(ts, cur)
	// A service account of the same name later holds none of them.
	ts.ok(root, "service_account.create", map[string]any{"name": "ci"}, nil)
	mustNotAuth(ts, old)
	mustNotAuth(ts, cur)
}

func TestOneTruth_RetainedSecretAfterAccountDelete(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	id, old, cur := rotated(ts, root, nil)
	ts.ok(ts.Admin, "account.delete", map[string]any{"name": "acme"}, nil)
	mustNotAuth(ts, old)
	mustNotAuth(ts, cur)
	mustNotAuth(ts, root)

	// A later account of the same name is a stranger to the old secrets.
	newRoot := tenant(ts, "acme")
	var mine rpc.NewKeyInfo
	ts.ok(newRoot, "apikey.create", map[string]any{"comment": "new tenant's"}, &mine)
	mustNotAuth(ts, old)
	mustNotAuth(ts, cur)
	ts.fail(old, "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail(newRoot, "apikey.info", map[string]any{"id": id}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
}

// A retained secret past its grace period stops, even when cached, and a
// second rotation stops the first retained secret at once.
func TestOneTruth_RetainedSecretGraceAndSecondRotation(t *testing.T) {
	ts := newTestServer(t)
	root := tenant(ts, "acme")
	id, old, cur := rotated(ts, root, nil)
	var again rpc.NewKeyInfo
	ts.ok(root, "apikey.rotate", map[string]any{"id": id, "retain_period_minutes": 60}, &again)
	mustNotAuth(ts, old)
	mustAuth(ts, cur)
	mustAuth(ts, again.Key)
	ts.advance(61 * 60e9)
	mustNotAuth(ts, cur)
	mustAuth(ts, again.Key)
}
