package rpc_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/apikeyd/apikeyd/rpc"
)

// TestInvalidKey_Message: a key of the right form that the server does not
// accept is not blamed for its form, and the message never says which of
// unknown, switched off or expired it is.
func TestInvalidKey_Message(t *testing.T) {
	ts := newTestServer(t)
	off := ts.createKey(ts.Admin, nil, "off")
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": off.ID, "active": false}, nil)

	ts.unchanged(func() {
		malformed := ts.fail("not-a-key", "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
		assert.Contains(t, malformed.Message, "32 lowercase hex digits")

		unknown := ts.fail("ffffffffffffffffffffffffffffffff", "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
		inactive := ts.fail(off.Key, "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
		assert.NotContains(t, unknown.Message, "hex digits", "a well-formed key is not blamed for its form")
		assert.NotEqual(t, malformed.Message, unknown.Message)
		assert.Equal(t, unknown.Message, inactive.Message, "unknown and switched off look the same")
		assert.Equal(t, unknown.Data, inactive.Data)
	})
}

// TestScopeDenied_NamesRestriction: scope_denied says which of the key's
// restrictions refused the call, without listing the key's scope values.
func TestScopeDenied_NamesRestriction(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		restriction string
		scopes      map[string][]string
		method      string
		params      any
	}{
		{"method", map[string][]string{"method": {"apikey.info"}}, "apikey.list", nil},
		{"access", map[string][]string{"access": {"READ"}}, "apikey.create", map[string]any{"comment": "x"}},
		{"name", map[string][]string{"name": {"web1"}}, "server.reboot", map[string]any{"name": "web2"}},
		{"ip", map[string][]string{"ip": {"10.9.8.0/24"}}, "apikey.list", nil},
	} {
		t.Run(tc.restriction, func(t *testing.T) {
			k := ts.createKey(ts.Admin, tc.scopes, "scoped "+tc.restriction)
			ts.unchanged(func() {
				e := ts.fail(k.Key, tc.method, tc.params, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
				assert.Equal(t, "this key's "+tc.restriction+" scope does not allow this call", e.Message)
				assert.Equal(t, tc.restriction, e.Data.Detail)
				for _, v := range tc.scopes[tc.restriction] {
					assert.NotContains(t, e.Message, v, "the key's scope values are not listed")
				}
			})
		})
	}
}

// TestUserAPIKeys_UnknownUser: user.apikeys naming a user the account does
// not have is user_not_found, as documented, not an empty list.
func TestUserAPIKeys_UnknownUser(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(ts.Admin, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, nil)
	var got map[string]map[string]rpc.FilebinKey
	ts.ok(ts.Admin, "user.apikeys", map[string]any{"username": "alice"}, &got)
	assert.Empty(t, got["apikeys"])
	ts.unchanged(func() {
		ts.fail(ts.Admin, "user.apikeys", map[string]any{"username": "nobody"}, rpc.CodeNotFound, rpc.ErrIDUserNotFound)
	})
}

// TestAPIKeyCreate_EmptyName: a name is 1 to 64 characters; "" is refused
// as invalid_params naming name, and no key is stored. Leaving name out
// still creates a key without a name.
func TestAPIKeyCreate_EmptyName(t *testing.T) {
	ts := newTestServer(t)
	ts.unchanged(func() {
		e := ts.fail(ts.Admin, "apikey.create", map[string]any{"comment": "x", "name": ""}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
		assert.Equal(t, "name", e.Data.Field)
	})
	var k rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"comment": "no name"}, &k)
	assert.Empty(t, k.Name)
}

// TestAPIKey_IDByHolderAndName: a key of the account itself names a key
// of one of its users or service accounts as "<owner>/<name>", owner as
// replies show it; a held key reaches only its own holder's keys that way,
// and another account's holder is not found.
func TestAPIKey_IDByHolderAndName(t *testing.T) {
	ts := newTestServer(t)
	var acme, beta rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	ts.ok(ts.Admin, "account.create", []any{"beta"}, &beta)
	own := acme.FirstKey.Key
	ts.ok(own, "user.create", []any{"alice", "correct horse"}, nil)
	ts.ok(own, "service_account.create", map[string]any{"name": "ci"}, nil)
	alice := ts.createUserKey("alice@acme", "correct horse", "full")

	var acctKey, aliceKey, saKey rpc.NewKeyInfo
	ts.ok(own, "apikey.create", map[string]any{"name": "deploy"}, &acctKey)
	ts.ok(alice.Key, "apikey.create", map[string]any{"name": "deploy", "scopes": alice.Scopes}, &aliceKey)
	ts.ok(own, "apikey.create", map[string]any{"name": "deploy", "service_account": "ci"}, &saKey)
	ts.ok(beta.FirstKey.Key, "apikey.create", map[string]any{"name": "deploy"}, nil)

	info := func(key, id string) rpc.KeyInfo {
		var k rpc.KeyInfo
		ts.ok(key, "apikey.info", map[string]any{"id": id}, &k)
		return k
	}
	assert.Equal(t, acctKey.ID, info(own, "deploy").ID, "a bare name is the caller's own holder's")
	assert.Equal(t, acctKey.ID, info(own, "account/deploy").ID)
	assert.Equal(t, aliceKey.ID, info(own, "user:alice@acme/deploy").ID)
	assert.Equal(t, saKey.ID, info(own, "sa:acme/ci/deploy").ID)
	assert.Equal(t, aliceKey.ID, info(alice.Key, "deploy").ID)
	assert.Equal(t, aliceKey.ID, info(alice.Key, "user:alice@acme/deploy").ID)

	ts.unchanged(func() {
		for _, tc := range []struct{ key, id string }{
			{alice.Key, "sa:acme/ci/deploy"}, // another holder of the account
			{alice.Key, "account/deploy"},    // the account's own keys
			{own, "user:bob@acme/deploy"},    // no such user
			{own, "user:alice@beta/deploy"},  // another account's holder
			{own, "account/nothing"},         // no such name
			{beta.FirstKey.Key, "sa:acme/ci/deploy"},
		} {
			ts.fail(tc.key, "apikey.info", map[string]any{"id": tc.id}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
			ts.fail(tc.key, "apikey.delete", map[string]any{"id": tc.id}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
		}
		for _, id := range []string{"user:/deploy", "sa:acme/ci/", "robot:x/deploy", "/deploy", "user:alice@acme/de ploy"} {
			e := ts.fail(own, "apikey.info", map[string]any{"id": id}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
			assert.Equal(t, "id", e.Data.Field)
		}
	})

	// The same form works for changes.
	ts.ok(own, "apikey.update", map[string]any{"id": "sa:acme/ci/deploy", "comment": "by holder and name"}, nil)
	assert.Equal(t, "by holder and name", info(own, saKey.ID).Comment)
	ts.ok(own, "apikey.delete", map[string]any{"id": "user:alice@acme/deploy"}, nil)
	ts.fail(own, "apikey.info", map[string]any{"id": aliceKey.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
}
