package rpc_test

import (
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAccount_Lifecycle(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", map[string]any{"name": "acme", "comment": "Acme Ltd"}, &acme)
	assert.Equal(t, "acme", acme.Name)
	assert.Equal(t, "Acme Ltd", acme.Comment)
	assert.Equal(t, 1, acme.Keys)
	assert.Equal(t, fixedNow, acme.Created)
	assert.Regexp(t, reSecretShape, acme.FirstKey.Key)
	assert.True(t, acme.FirstKey.Scopes.IsUnrestricted())

	// The first key works in its own account, and sees only that account.
	tenant := acme.FirstKey.Key
	var keys []rpc.KeyInfo
	ts.ok(tenant, "apikey.list", nil, &keys)
	require.Len(t, keys, 1)
	assert.Equal(t, acme.FirstKey.ID, keys[0].ID)
	sub := ts.createKey(tenant, map[string][]string{"method": {"server.list"}}, "acme panel")
	ts.ok(sub.Key, "server.list", nil, nil)

	// Neither account reaches the other's keys, by id or by secret.
	var adminKeys []rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.list", nil, &adminKeys)
	for _, id := range []string{sub.ID, sub.Key} {
		for _, m := range idMethods(id) {
			ts.unchanged(func() { ts.fail(ts.Admin, m.method, m.params, rpc.CodeNotFound, rpc.ErrIDKeyNotFound) })
		}
	}
	for _, id := range []string{adminKeys[0].ID, ts.Admin} {
		for _, m := range idMethods(id) {
			ts.unchanged(func() { ts.fail(tenant, m.method, m.params, rpc.CodeNotFound, rpc.ErrIDKeyNotFound) })
		}
	}

	var info rpc.AccountInfo
	ts.ok(ts.Admin, "account.info", []any{"acme"}, &info)
	assert.Equal(t, 2, info.Keys)
	ts.ok(ts.Admin, "account.update", map[string]any{"name": "acme", "comment": "Acme plc"}, &info)
	assert.Equal(t, "Acme plc", info.Comment)
	ts.unchanged(func() {
		ts.ok(ts.Admin, "account.update", map[string]any{"name": "acme", "comment": "Acme plc"}, &info)
	})

	var all []rpc.AccountInfo
	ts.ok(ts.Admin, "account.list", nil, &all)
	require.Len(t, all, 2)
	assert.Equal(t, "acme", all[0].Name)
	assert.Equal(t, "operator", all[1].Name)

	// Deleting the account removes its keys: they stop authenticating.
	ts.ok(ts.Admin, "account.delete", map[string]any{"name": "acme"}, nil)
	for _, k := range []string{tenant, sub.Key} {
		ts.fail(k, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	}
	ts.fail(ts.Admin, "account.info", []any{"acme"}, rpc.CodeNotFound, rpc.ErrIDAccountNotFound)
	n, err := ts.Store.CountKeys()
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the operator key is left")

	// The name is free again.
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
}

func TestAccount_Errors(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)

	t.Run("ErrOperatorOnly", func(t *testing.T) {
		for _, method := range []string{"account.create", "account.info", "account.list", "account.update", "account.delete"} {
			var params any = map[string]any{"name": "acme"}
			if method == "account.list" {
				params = nil
			}
			ts.unchanged(func() {
				ts.fail(acme.FirstKey.Key, method, params, rpc.CodeForbidden, rpc.ErrIDOperatorOnly)
			})
		}
	})
	t.Run("ErrScope", func(t *testing.T) {
		// An operator key limited by scopes is limited here too.
		reader := ts.createKey(ts.Admin, map[string][]string{"method": {"account.info", "account.list"}}, "reader")
		ts.ok(reader.Key, "account.list", nil, nil)
		named := ts.createKey(ts.Admin, map[string][]string{"method": {"account.*"}, "name": {"acme"}}, "acme only")
		ts.ok(named.Key, "account.info", []any{"acme"}, nil)
		ts.unchanged(func() {
			ts.fail(reader.Key, "account.delete", []any{"acme"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
			ts.fail(named.Key, "account.delete", []any{"operator"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
			ts.fail(named.Key, "account.list", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
		})
	})
	t.Run("ErrExists", func(t *testing.T) {
		ts.unchanged(func() {
			ts.fail(ts.Admin, "account.create", []any{"acme"}, rpc.CodeConflict, rpc.ErrIDAccountExists)
			ts.fail(ts.Admin, "account.create", []any{"operator"}, rpc.CodeConflict, rpc.ErrIDAccountExists)
		})
	})
	t.Run("ErrOperatorAccount", func(t *testing.T) {
		ts.unchanged(func() {
			ts.fail(ts.Admin, "account.delete", []any{"operator"}, rpc.CodeConflict, rpc.ErrIDOperatorAccount)
		})
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, method := range []string{"account.info", "account.update", "account.delete"} {
			ts.unchanged(func() {
				ts.fail(ts.Admin, method, []any{"nobody"}, rpc.CodeNotFound, rpc.ErrIDAccountNotFound)
			})
		}
	})
	for _, tt := range []struct {
		name   string
		params any
		field  string
	}{
		{"ErrNameMissing", map[string]any{}, "name"},
		{"ErrNameEmpty", []any{""}, "name"},
		{"ErrNameTooLong", []any{strings.Repeat("a", 65)}, "name"},
		{"ErrNameChars", []any{"acme corp"}, "name"},
		{"ErrNameSlash", []any{"acme/x"}, "name"},
		{"ErrNameUnicode", []any{"äcme"}, "name"},
		{"ErrNameNul", []any{"acme\x00"}, "name"},
		{"ErrNameType", []any{42}, "name"},
		{"ErrCommentTooLong", []any{"beta", strings.Repeat("c", 256)}, "comment"},
		{"ErrCommentType", []any{"beta", false}, "comment"},
		{"ErrUnknownParam", map[string]any{"name": "beta", "owner": "x"}, "owner"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				e := ts.fail(ts.Admin, "account.create", tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
				assert.Equal(t, tt.field, e.Data.Field)
			})
		})
	}
	t.Run("OKNameLimits", func(t *testing.T) {
		ts.ok(ts.Admin, "account.create", []any{strings.Repeat("a", 64)}, nil)
		ts.ok(ts.Admin, "account.create", []any{"A-b_c.9"}, nil)
	})
}
