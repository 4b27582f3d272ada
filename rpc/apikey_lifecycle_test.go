package rpc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLifecycle_NamesAndUpdate(t *testing.T) {
	ts := newTestServer(t)
	var k rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"name": "deploy", "description": "used by the deploy job",
		"scopes": map[string][]string{"method": {"server.*"}}}, &k)
	assert.Equal(t, "deploy", k.Name)
	assert.Equal(t, "used by the deploy job", k.Description)
	assert.True(t, k.Active)

	// The name works wherever an id does.
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.info", []any{"deploy"}, &info)
	assert.Equal(t, k.ID, info.ID)
	ts.ok(ts.Admin, "apikey.add_scope", []any{"deploy", "name", "web1"}, &info)
	assert.Equal(t, []string{"web1"}, info.Scopes.Name)

	ts.unchanged(func() {
		ts.fail(ts.Admin, "apikey.create", map[string]any{"name": "deploy"}, rpc.CodeConflict, rpc.ErrIDKeyNameTaken)
	})
	other := ts.createKey(ts.Admin, nil, "other")
	ts.unchanged(func() {
		ts.fail(ts.Admin, "apikey.update", map[string]any{"id": other.ID, "name": "deploy"}, rpc.CodeConflict, rpc.ErrIDKeyNameTaken)
	})

	// Rename, describe, comment; the old name is free again.
	var renamed rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": "deploy", "name": "release", "description": "", "comment": "renamed"}, &renamed)
	assert.Equal(t, "release", renamed.Name)
	assert.Empty(t, renamed.Description)
	assert.Equal(t, "renamed", renamed.Comment)
	ts.fail(ts.Admin, "apikey.info", []any{"deploy"}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": other.ID, "name": "deploy"}, nil)
	ts.unchanged(func() { ts.ok(ts.Admin, "apikey.update", []any{"release"}, nil) })

	// Switched off, a key fails exactly like an unknown one; back on, it works.
	ts.ok(k.Key, "server.reboot", []any{"web1"}, nil)
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": "release", "active": false}, &info)
	assert.False(t, info.Active)
	unknown := ts.fail("ffffffffffffffffffffffffffffffff", "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	off := ts.fail(k.Key, "server.reboot", []any{"web1"}, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	assert.Equal(t, *unknown, *off)
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": "release", "active": true}, nil)
	ts.ok(k.Key, "server.reboot", []any{"web1"}, nil)

	for _, tt := range []struct {
		name   string
		params map[string]any
		field  string
	}{
		{"ErrNameChars", map[string]any{"id": other.ID, "name": "a b"}, "name"},
		{"ErrNameLikeSecret", map[string]any{"id": other.ID, "name": "0123456789abcdef0123456789abcdef"}, "name"},
		{"ErrNameLikeID", map[string]any{"id": other.ID, "name": "01890a5d-ac96-774b-bcce-b302099a8057"}, "name"},
		{"ErrDescriptionLong", map[string]any{"id": other.ID, "description": strings.Repeat("d", 65536)}, "description"},
		{"ErrCommentLong", map[string]any{"id": other.ID, "comment": strings.Repeat("c", 256)}, "comment"},
		{"ErrActiveType", map[string]any{"id": other.ID, "active": "yes"}, "active"},
		{"ErrExpiryPast", map[string]any{"id": other.ID, "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"},
		{"ErrExpiryFormat", map[string]any{"id": other.ID, "expires_at": "tomorrow"}, "expires_at"},
		{"ErrNotBeforeFormat", map[string]any{"id": other.ID, "not_before": "2026-13-01T00:00:00Z"}, "not_before"},
		{"ErrExpiryBeforeStart", map[string]any{"id": other.ID, "not_before": "2027-01-01T00:00:00Z", "expires_at": "2026-06-01T00:00:00Z"}, "expires_at"},
		{"ErrIDShape", map[string]any{"id": "a b"}, "id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				e := ts.fail(ts.Admin, "apikey.update", tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
				assert.Equal(t, tt.field, e.Data.Field)
			})
		})
	}
	t.Run("ErrCreateExpiryPast", func(t *testing.T) {
		ts.unchanged(func() {
			ts.fail(ts.Admin, "apikey.create", map[string]any{"expires_at": "2026-01-02T03:04:05Z"}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
		})
	})
	t.Run("ErrEscalation", func(t *testing.T) {
		narrow := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.*"}}, "narrow")
		ts.unchanged(func() {
			ts.fail(narrow.Key, "apikey.update", map[string]any{"id": other.ID, "active": false}, rpc.CodeForbidden, rpc.ErrIDEscalation)
			ts.fail(narrow.Key, "apikey.rotate", []any{other.ID}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		})
	})
}

func TestLifecycle_Validity(t *testing.T) {
	ts := newTestServer(t)
	var later, expiring rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"not_before": "2026-01-02T04:00:00Z"}, &later)
	ts.ok(ts.Admin, "apikey.create", map[string]any{"expires_at": "2026-01-02T05:00:00Z"}, &expiring)
	require.NotNil(t, expiring.ExpiresAt)
	assert.Equal(t, time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC), *expiring.ExpiresAt)

	ts.fail(later.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.ok(expiring.Key, "server.list", nil, nil)
	ts.advance(time.Hour) // 04:04
	ts.ok(later.Key, "server.list", nil, nil)
	ts.ok(expiring.Key, "server.list", nil, nil)
	ts.advance(time.Hour) // 05:04
	ts.fail(expiring.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)

	// Extending the expiry revives it; clearing it too.
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": expiring.ID, "expires_at": "2026-01-03T00:00:00Z"}, nil)
	ts.ok(expiring.Key, "server.list", nil, nil)
	var cleared rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": expiring.ID, "expires_at": ""}, &cleared)
	assert.Nil(t, cleared.ExpiresAt)
}

func TestLifecycle_Rotate(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list", "apikey.*"}}, "rotating")
	var r rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.rotate", map[string]any{"id": k.ID, "retain_period_minutes": 30}, &r)
	assert.Equal(t, k.ID, r.ID)
	assert.NotEqual(t, k.Key, r.Key)
	assert.Regexp(t, reSecretShape, r.Key)
	require.NotNil(t, r.LastRotated)
	assert.Equal(t, fixedNow, *r.LastRotated)

	ts.ok(r.Key, "server.list", nil, nil)
	ts.ok(k.Key, "server.list", nil, nil) // within the grace period
	ts.advance(29 * time.Minute)
	ts.ok(k.Key, "server.list", nil, nil)
	ts.advance(time.Minute)
	ts.fail(k.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.ok(r.Key, "server.list", nil, nil)

	// Without a grace period the old secret stops at once; so does one
	// rotated out earlier, when the key is rotated again.
	var r2, r3 rpc.NewKeyInfo
	ts.ok(r.Key, "apikey.rotate", map[string]any{"id": k.ID, "retain_period_minutes": 60}, &r2)
	ts.ok(r.Key, "server.list", nil, nil)
	ts.ok(ts.Admin, "apikey.rotate", []any{k.ID}, &r3)
	ts.fail(r.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail(r2.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.ok(r3.Key, "server.list", nil, nil)

	// The rotated key is still found by id; deleting it ends every secret.
	ts.ok(ts.Admin, "apikey.info", []any{r3.Key}, nil)
	ts.ok(ts.Admin, "apikey.delete", []any{k.ID}, nil)
	ts.fail(r3.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)

	for _, v := range []any{-1, 10081, "ten", 1.5} {
		other := ts.createKey(ts.Admin, nil, "x")
		ts.unchanged(func() {
			e := ts.fail(ts.Admin, "apikey.rotate", map[string]any{"id": other.ID, "retain_period_minutes": v}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
			assert.Equal(t, "retain_period_minutes", e.Data.Field)
		})
	}
	ts.unchanged(func() {
		ts.fail(ts.Admin, "apikey.rotate", []any{"01890a5d-ac96-774b-bcce-b302099a8057"}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
	})
}

func TestLifecycle_Verify(t *testing.T) {
	ts := newTestServer(t)
	reboot := ts.createKey(ts.Admin, map[string][]string{"method": {"server.reboot"}, "name": {"web1"}}, "reboot web1")
	verify := func(key, method, name string) rpc.Verification {
		t.Helper()
		var v rpc.Verification
		params := map[string]any{"key": key, "method": method}
		if name != "" {
			params["name"] = name
		}
		ts.ok(ts.Admin, "apikey.verify", params, &v)
		return v
	}
	assert.Equal(t, rpc.Verification{Valid: true, Code: "valid", KeyID: reboot.ID}, verify(reboot.Key, "server.reboot", "web1"))
	assert.Equal(t, rpc.Verification{Code: "scope_denied", KeyID: reboot.ID}, verify(reboot.Key, "server.reboot", "web2"))
	assert.Equal(t, rpc.Verification{Code: "scope_denied", KeyID: reboot.ID}, verify(reboot.Key, "server.list", ""))
	assert.Equal(t, rpc.Verification{Code: "not_found"}, verify("ffffffffffffffffffffffffffffffff", "server.list", ""))

	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": reboot.ID, "active": false}, nil)
	assert.Equal(t, rpc.Verification{Code: "inactive", KeyID: reboot.ID}, verify(reboot.Key, "server.reboot", "web1"))
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": reboot.ID, "active": true, "expires_at": "2026-01-02T04:00:00Z"}, nil)
	ts.advance(2 * time.Hour)
	assert.Equal(t, rpc.Verification{Code: "expired", KeyID: reboot.ID}, verify(reboot.Key, "server.reboot", "web1"))

	// Another account's key is not found for a tenant, whatever it is.
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	var v rpc.Verification
	ts.ok(acme.FirstKey.Key, "apikey.verify", map[string]any{"key": ts.Admin, "method": "apikey.list"}, &v)
	assert.Equal(t, rpc.Verification{Code: "not_found"}, v)
	// The operator verifies keys of every account.
	assert.True(t, verify(acme.FirstKey.Key, "apikey.list", "").Valid)
	assert.Equal(t, "operator_only", verify(acme.FirstKey.Key, "account.list", "").Code)

	for _, tt := range []struct {
		params map[string]any
		field  string
	}{
		{map[string]any{"key": "nope", "method": "server.list"}, "key"},
		{map[string]any{"key": reboot.ID, "method": "server.list"}, "key"},
		{map[string]any{"key": reboot.Key, "method": "no.such"}, "method"},
		{map[string]any{"key": reboot.Key}, "method"},
	} {
		e := ts.fail(ts.Admin, "apikey.verify", tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
		assert.Equal(t, tt.field, e.Data.Field)
	}
}
