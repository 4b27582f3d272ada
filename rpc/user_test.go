package rpc_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func login(username, password, level string) map[string]any {
	return map[string]any{"username": username, "password": password, "access_level": level}
}

func TestUser_LoginAndKeys(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	tenant := acme.FirstKey.Key

	var u rpc.UserInfo
	ts.ok(tenant, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, &u)
	assert.Equal(t, "alice", u.Name)
	assert.Equal(t, "alice@acme", u.Login, "a user logs in as <name>@<account>")
	var users []rpc.UserInfo
	ts.ok(tenant, "user.list", nil, &users)
	assert.Equal(t, []rpc.UserInfo{u}, users)
	ts.ok(ts.Admin, "user.list", nil, &users)
	assert.Empty(t, users, "the operator account has no users; alice is acme's")

	// The one call without a key: log in and get a key of a preset level.
	var k rpc.NewKeyInfo
	ts.ok("", "user.create_apikey", login("alice@acme", "correct horse", "apikey"), &k)
	assert.Regexp(t, reSecretShape, k.Key)
	assert.Equal(t, []string{"CREATE", "DELETE", "READ", "UPDATE"}, k.Scopes.Access)
	assert.Equal(t, "user:alice@acme", k.Owner)
	var basic rpc.NewKeyInfo
	ts.ok("", "user.create_apikey", map[string]any{"username": "alice@acme", "password": "correct horse", "access_level": "basic", "comment": "uploads"}, &basic)
	assert.Equal(t, []string{"CREATE"}, basic.Scopes.Access)

	// The key lives in alice's account.
	var info rpc.KeyInfo
	ts.ok(tenant, "apikey.info", []any{k.ID}, &info)
	assert.Equal(t, k.KeyInfo, info)
	ts.fail(ts.Admin, "apikey.info", []any{k.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)

	// user.apikeys in filebin's shape; "key" is the id, never the secret.
	full := ts.createUserKey("alice@acme", "correct horse", "full")
	r := ts.call(full.Key, "user.apikeys", nil)
	require.Nil(t, r.Error)
	assert.NotContains(t, string(r.Result), k.Key)
	var listed map[string]map[string]rpc.FilebinKey
	require.NoError(t, json.Unmarshal(r.Result, &listed))
	require.Len(t, listed["apikeys"], 3)
	assert.Equal(t, "apikey", listed["apikeys"][k.ID].AccessLevel)
	assert.Equal(t, "basic", listed["apikeys"][basic.ID].AccessLevel)
	assert.Equal(t, "uploads", listed["apikeys"][basic.ID].Comment)
	assert.Equal(t, basic.ID, listed["apikeys"][basic.ID].Key)
	ts.ok(tenant, "user.apikeys", map[string]any{"username": "alice"}, &listed)
	assert.Len(t, listed["apikeys"], 3)

	// user.delete_apikey, filebin's delete_key.
	var deleted map[string]map[string]rpc.FilebinKey
	ts.ok(full.Key, "user.delete_apikey", map[string]any{"delete_key": basic.Key}, &deleted)
	assert.Contains(t, deleted["deleted_keys"], basic.ID)
	ts.fail(basic.Key, "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.unchanged(func() {
		// Not the account's own key, which alice does not hold.
		ts.fail(full.Key, "user.delete_apikey", []any{acme.FirstKey.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
		// The "apikey" level deletes its own user's keys, but not the full
		// one, which reaches beyond it (MANAGE).
		ts.fail(k.Key, "user.delete_apikey", []any{full.ID}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})

	// A new password; the old one fails.
	ts.ok(tenant, "user.set_password", map[string]any{"name": "alice", "password": "battery staple"}, nil)
	ts.fail("", "user.create_apikey", login("alice@acme", "correct horse", "basic"), rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)
	ts.createUserKey("alice@acme", "battery staple", "basic")

	// Deleting the user deletes the keys it holds.
	ts.ok(tenant, "user.delete", []any{"alice"}, nil)
	ts.fail(k.Key, "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail("", "user.create_apikey", login("alice@acme", "battery staple", "basic"), rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)
	ts.ok(tenant, "apikey.info", []any{acme.FirstKey.ID}, nil)
}

func (ts *testServer) createUserKey(user, password, level string) rpc.NewKeyInfo {
	ts.t.Helper()
	var k rpc.NewKeyInfo
	ts.ok("", "user.create_apikey", login(user, password, level), &k)
	return k
}

func TestUser_Errors(t *testing.T) {
	ts := newTestServer(t)
	var acme, beta rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	ts.ok(ts.Admin, "account.create", []any{"beta"}, &beta)
	ts.ok(acme.FirstKey.Key, "user.create", []any{"alice", "correct horse"}, nil)

	t.Run("ErrExists", func(t *testing.T) {
		// Names are unique within an account (TestLogin_NamesPerAccount:
		// not across accounts).
		ts.unchanged(func() {
			ts.fail(acme.FirstKey.Key, "user.create", []any{"alice", "another one"}, rpc.CodeConflict, rpc.ErrIDUserExists)
		})
	})
	t.Run("ErrOtherAccount", func(t *testing.T) {
		// beta cannot see, change or delete acme's user.
		ts.unchanged(func() {
			ts.fail(beta.FirstKey.Key, "user.delete", []any{"alice"}, rpc.CodeNotFound, rpc.ErrIDUserNotFound)
			ts.fail(beta.FirstKey.Key, "user.set_password", []any{"alice", "hijacked!"}, rpc.CodeNotFound, rpc.ErrIDUserNotFound)
			ts.fail(beta.FirstKey.Key, "user.delete", []any{"nobody"}, rpc.CodeNotFound, rpc.ErrIDUserNotFound)
		})
		var users []rpc.UserInfo
		ts.ok(beta.FirstKey.Key, "user.list", nil, &users)
		assert.Empty(t, users)
	})
	for _, tt := range []struct {
		name, method string
		params       any
		field        string
	}{
		{"ErrPasswordEmpty", "user.create", []any{"bob", ""}, "password"},
		{"ErrPasswordShort", "user.create", []any{"bob", "1234567"}, "password"},
		{"ErrPasswordLong", "user.create", []any{"bob", strings.Repeat("p", 257)}, "password"},
		{"ErrPasswordType", "user.create", []any{"bob", 12345678}, "password"},
		{"ErrPasswordMissing", "user.create", map[string]any{"name": "bob"}, "password"},
		{"ErrNameChars", "user.create", []any{"bob smith", "long enough"}, "name"},
		{"ErrNameEmpty", "user.create", []any{"", "long enough"}, "name"},
		{"ErrNameLong", "user.create", []any{strings.Repeat("b", 65), "long enough"}, "name"},
		{"ErrSetPasswordShort", "user.set_password", []any{"alice", "short"}, "password"},
		{"ErrDeleteName", "user.delete", []any{"a/b"}, "name"},
		{"ErrAccessLevel", "user.create_apikey", login("alice", "correct horse", "admin"), "access_level"},
		{"ErrAccessLevelMissing", "user.create_apikey", map[string]any{"username": "alice", "password": "correct horse"}, "access_level"},
		{"ErrCommentLong", "user.create_apikey", map[string]any{"username": "alice", "password": "correct horse", "access_level": "basic", "comment": strings.Repeat("c", 256)}, "comment"},
		{"ErrDeleteKeyShape", "user.delete_apikey", []any{"no pe"}, "delete_key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				e := ts.fail(acme.FirstKey.Key, tt.method, tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
				assert.Equal(t, tt.field, e.Data.Field)
			})
		})
	}
	t.Run("ErrLoginNeedsNoKeyButChecksInput", func(t *testing.T) {
		ts.unchanged(func() {
			ts.fail("", "user.create_apikey", login("", "x", "basic"), rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)
			ts.fail("", "user.create", []any{"mallory", "long enough"}, rpc.CodeUnauthenticated, rpc.ErrIDMissingKey)
		})
	})
}

// TestUser_HashCap: concurrent logins never run more argon2id hashes at once
// than the store allows.
func TestUser_HashCap(t *testing.T) {
	ts := newTestServer(t)
	// Four users, two logins each: fewer in flight per user than the
	// login throttle admits at once.
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		ts.ok(ts.Admin, "user.create", []any{name, "correct horse"}, nil)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts.createUserKey([]string{"alice", "bob", "carol", "dave"}[i%4]+"@operator", "correct horse", "basic")
		}()
	}
	wg.Wait()
	runs, peak := ts.Store.HashStats()
	assert.GreaterOrEqual(t, runs, int64(9))
	assert.LessOrEqual(t, peak, int64(2), "the default cap is 2")
}

// TestUser_OtherAccounts: keys and users of another account are as absent.
func TestUser_OtherAccounts(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	ts.ok(acme.FirstKey.Key, "user.create", []any{"alice", "correct horse"}, nil)
	alice := ts.createUserKey("alice@acme", "correct horse", "full")

	// The operator's delete_apikey cannot reach acme's keys: the error is
	// the one for a key that never existed.
	missing := ts.fail(ts.Admin, "user.delete_apikey", []any{"01890a5d-ac96-774b-bcce-b302099a8057"}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
	for _, ref := range []string{alice.ID, alice.Key, acme.FirstKey.ID} {
		ts.unchanged(func() {
			e := ts.fail(ts.Admin, "user.delete_apikey", []any{ref}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
			assert.Equal(t, *missing, *e)
		})
	}
	// The operator account has no user alice: acme's is not reachable.
	ts.fail(ts.Admin, "user.apikeys", []any{"alice"}, rpc.CodeNotFound, rpc.ErrIDUserNotFound)

	// Deleting the account deletes its users: the login fails and the
	// name is free.
	ts.ok(ts.Admin, "account.delete", []any{"acme"}, nil)
	ts.fail(alice.Key, "user.apikeys", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail("", "user.create_apikey", login("alice@acme", "correct horse", "basic"), rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)
	ts.ok(ts.Admin, "user.create", []any{"alice", "another horse"}, nil)
}
