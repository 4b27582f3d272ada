package rpc_test

import (
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServiceAccount_Lifecycle(t *testing.T) {
	ts := newTestServer(t)
	var sa rpc.ServiceAccountInfo
	ts.ok(ts.Admin, "service_account.create", map[string]any{"name": "ci", "description": "the build pipeline"}, &sa)
	assert.Equal(t, rpc.ServiceAccountInfo{Name: "ci", Description: "the build pipeline", Active: true, Created: fixedNow}, sa)

	var k rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"comment": "ci key", "service_account": "ci",
		"scopes": map[string][]string{"method": {"server.*"}}}, &k)
	assert.Equal(t, "sa:operator/ci", k.Owner)
	k2 := ts.call(ts.Admin, "apikey.create", []any{nil, "second ci key", "ci"})
	require.Nil(t, k2.Error)
	ts.ok(k.Key, "server.list", nil, nil)
	ts.ok(ts.Admin, "service_account.info", []any{"ci"}, &sa)
	assert.Equal(t, 2, sa.Keys)

	// Deactivating stops every key at once, as if they were unknown ...
	ts.ok(ts.Admin, "service_account.update", map[string]any{"name": "ci", "active": false}, &sa)
	assert.False(t, sa.Active)
	assert.Equal(t, "the build pipeline", sa.Description, "an absent description is left as it was")
	ts.fail(k.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	// ... and reactivating restores them.
	ts.ok(ts.Admin, "service_account.update", map[string]any{"name": "ci", "active": true}, &sa)
	ts.ok(k.Key, "server.list", nil, nil)
	ts.ok(ts.Admin, "service_account.update", map[string]any{"name": "ci", "description": ""}, &sa)
	assert.Empty(t, sa.Description)
	assert.True(t, sa.Active)
	ts.unchanged(func() { ts.ok(ts.Admin, "service_account.update", []any{"ci"}, nil) })

	// A service account created inactive holds keys that never work until
	// it is activated.
	ts.ok(ts.Admin, "service_account.create", map[string]any{"name": "later", "active": false}, &sa)
	var later rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"service_account": "later"}, &later)
	ts.fail(later.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)

	var all []rpc.ServiceAccountInfo
	ts.ok(ts.Admin, "service_account.list", nil, &all)
	require.Len(t, all, 2)
	assert.Equal(t, "ci", all[0].Name)

	// Deleting it deletes its keys; the account's own keys stay.
	ts.ok(ts.Admin, "service_account.delete", []any{"ci"}, nil)
	ts.fail(k.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail(ts.Admin, "service_account.info", []any{"ci"}, rpc.CodeNotFound, rpc.ErrIDServiceAccountNotFound)
	ts.ok(ts.Admin, "apikey.list", nil, nil)
}

func TestServiceAccount_Errors(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	ts.ok(ts.Admin, "service_account.create", []any{"ci"}, nil)

	t.Run("OtherAccount", func(t *testing.T) {
		// Names are per account: acme may have its own "ci", and cannot
		// reach the operator's.
		ts.unchanged(func() {
			for _, m := range []string{"service_account.info", "service_account.update", "service_account.delete"} {
				ts.fail(acme.FirstKey.Key, m, []any{"ci"}, rpc.CodeNotFound, rpc.ErrIDServiceAccountNotFound)
			}
			ts.fail(acme.FirstKey.Key, "apikey.create", map[string]any{"service_account": "ci"}, rpc.CodeNotFound, rpc.ErrIDServiceAccountNotFound)
		})
		ts.ok(acme.FirstKey.Key, "service_account.create", []any{"ci"}, nil)
	})
	t.Run("ErrExists", func(t *testing.T) {
		ts.unchanged(func() {
			ts.fail(ts.Admin, "service_account.create", []any{"ci"}, rpc.CodeConflict, rpc.ErrIDServiceAccountExists)
		})
	})
	for _, tt := range []struct {
		name, method string
		params       any
		field        string
	}{
		{"ErrNameChars", "service_account.create", []any{"c i"}, "name"},
		{"ErrNameLong", "service_account.create", []any{strings.Repeat("s", 65)}, "name"},
		{"ErrNameMissing", "service_account.create", map[string]any{}, "name"},
		{"ErrDescriptionLong", "service_account.create", []any{"x", strings.Repeat("d", 65536)}, "description"},
		{"ErrDescriptionType", "service_account.update", []any{"ci", 5}, "description"},
		{"ErrActiveType", "service_account.update", map[string]any{"name": "ci", "active": "no"}, "active"},
		{"ErrActiveNumber", "service_account.create", map[string]any{"name": "x", "active": 0}, "active"},
		{"ErrKeyOwnerName", "apikey.create", map[string]any{"service_account": "c/i"}, "service_account"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				e := ts.fail(ts.Admin, tt.method, tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
				assert.Equal(t, tt.field, e.Data.Field)
			})
		})
	}
	t.Run("OKDescriptionLimit", func(t *testing.T) {
		ts.ok(ts.Admin, "service_account.create", []any{"big", strings.Repeat("d", 65535)}, nil)
	})
	t.Run("DeleteAccountRemovesServiceAccounts", func(t *testing.T) {
		var k rpc.NewKeyInfo
		ts.ok(acme.FirstKey.Key, "apikey.create", map[string]any{"service_account": "ci"}, &k)
		ts.ok(ts.Admin, "account.delete", []any{"acme"}, nil)
		ts.fail(k.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
		ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
		var all []rpc.ServiceAccountInfo
		ts.ok(acme.FirstKey.Key, "service_account.list", nil, &all)
		assert.Empty(t, all)
	})
}

// TestHolders: a key held by a user or service account makes keys of the
// same holder, sees only them, and cannot mint keys that outlive it.
func TestHolders(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(ts.Admin, "service_account.create", []any{"ci"}, nil)
	ts.ok(ts.Admin, "service_account.create", []any{"backup"}, nil)
	var ci rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"service_account": "ci"}, &ci)

	// A key the service account's key makes is the service account's too.
	minted := ts.createKey(ci.Key, nil, "minted by ci")
	assert.Equal(t, "sa:operator/ci", minted.Owner)
	ts.unchanged(func() {
		ts.fail(ci.Key, "apikey.create", map[string]any{"service_account": "backup"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})

	// It sees only its holder's keys.
	var keys []rpc.KeyInfo
	ts.ok(ci.Key, "apikey.list", nil, &keys)
	require.Len(t, keys, 2)
	for _, k := range keys {
		assert.Equal(t, "sa:operator/ci", k.Owner)
	}
	other := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list"}}, "an account key")
	for _, m := range idMethods(other.ID) {
		ts.unchanged(func() { ts.fail(ci.Key, m.method, m.params, rpc.CodeNotFound, rpc.ErrIDKeyNotFound) })
	}

	// Deactivating the service account stops the minted key as well.
	ts.ok(ts.Admin, "service_account.update", map[string]any{"name": "ci", "active": false}, nil)
	ts.fail(minted.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)

	// Likewise for users.
	ts.ok(ts.Admin, "user.create", []any{"alice", "correct horse"}, nil)
	alice := ts.createUserKey("alice@operator", "correct horse", "full")
	sub := ts.createKey(alice.Key, map[string][]string{"access": {"READ"}}, "alice's reader")
	assert.Equal(t, "user:alice@operator", sub.Owner)
	ts.ok(ts.Admin, "user.delete", []any{"alice"}, nil)
	ts.fail(sub.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
}
