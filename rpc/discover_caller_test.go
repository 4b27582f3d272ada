package rpc_test

import (
	"encoding/json"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// paramOf returns the content descriptor of param name of method in doc.
func paramOf(t *testing.T, doc rpc.OpenRPC, method, name string) rpc.OpenRPCContent {
	t.Helper()
	for _, m := range doc.Methods {
		if m.Name != method {
			continue
		}
		for _, p := range m.Params {
			if p.Name == name {
				return p
			}
		}
	}
	t.Fatalf("%s has no param %s in the document", method, name)
	return rpc.OpenRPCContent{}
}

// TestDiscoverExact_ForTheCaller: the constraints that depend on the
// calling key are stated for that key. apikey.verify's method lists the
// methods the key could call, and no others; user.apikeys needs a username
// from a key of the account itself, not from a key a user holds.
func TestDiscoverExact_ForTheCaller(t *testing.T) {
	schema := openRPCSchema(t)
	ts := newTestServer(t)

	admin := ts.discover(t, schema, ts.Admin)
	var verify struct {
		Enum []string `json:"enum"`
	}
	require.NoError(t, json.Unmarshal(paramOf(t, admin, "apikey.verify", "method").Schema, &verify))
	assert.ElementsMatch(t, methodNames(admin), verify.Enum)
	assert.True(t, paramOf(t, admin, "user.apikeys", "username").Required, "a key of the account names the user")

	// A key restricted to apikey.* and server.list sees only those.
	narrow := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.*", "server.list"}}, "")
	doc := ts.discover(t, schema, narrow.Key)
	require.NoError(t, json.Unmarshal(paramOf(t, doc, "apikey.verify", "method").Schema, &verify))
	assert.ElementsMatch(t, methodNames(doc), verify.Enum)
	assert.NotContains(t, verify.Enum, "account.create")
	assert.NotContains(t, verify.Enum, "server.reboot")

	// A user's key may leave username out: it lists its own keys.
	ts.ok(ts.Admin, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, nil)
	alice := ts.createUserKey("alice@operator", "correct horse", "full")
	held := ts.discover(t, schema, alice.Key)
	assert.False(t, paramOf(t, held, "user.apikeys", "username").Required)
	var keys map[string]map[string]rpc.FilebinKey
	ts.ok(alice.Key, "user.apikeys", nil, &keys)
	assert.Contains(t, keys["apikeys"], alice.ID)
	ts.fail(ts.Admin, "user.apikeys", nil, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
}

// TestUserDeleteAPIKey_ByName: user.delete_apikey takes what its schema
// (and validRef) accept: a key name, or a holder and a key name, as
// apikey.delete does; a user's key reaches only its own user's keys.
func TestUserDeleteAPIKey_ByName(t *testing.T) {
	ts := newTestServer(t)
	var deploy rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"name": "deploy"}, &deploy)
	ts.ok(ts.Admin, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, nil)
	alice := ts.createUserKey("alice@operator", "correct horse", "full")
	ts.ok(alice.Key, "apikey.create", map[string]any{"name": "laptop",
		"scopes": map[string][]string{"access": {"READ", "CREATE", "UPDATE", "DELETE", "MANAGE"}}}, nil)

	// A user's key cannot name the account's keys, by name or by holder.
	ts.unchanged(func() {
		ts.fail(alice.Key, "user.delete_apikey", map[string]any{"delete_key": "deploy"}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
		ts.fail(alice.Key, "user.delete_apikey", map[string]any{"delete_key": "account/deploy"}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
	})

	var out map[string]map[string]rpc.FilebinKey
	ts.ok(ts.Admin, "user.delete_apikey", map[string]any{"delete_key": "deploy"}, &out)
	assert.Contains(t, out["deleted_keys"], deploy.ID)
	ts.fail(ts.Admin, "apikey.info", map[string]any{"id": deploy.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)

	ts.ok(alice.Key, "user.delete_apikey", map[string]any{"delete_key": "laptop"}, &out)
	require.Len(t, out["deleted_keys"], 1)
	ts.unchanged(func() {
		ts.fail(ts.Admin, "user.delete_apikey", map[string]any{"delete_key": "user:alice@operator/laptop"}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
	})
}
