package rpc_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The seams between one cached state per key, one access decision, no
// escalation, login names per account, audit bounds and the operator
// guard. Each test holds a promise of docs/security.md or DESIGN.md on a
// path between two of those parts.

// TestSeams_AuditTrailOfDeletedAccountReachesNameReuser: an account reads
// only its own audit records, yet the trail is indexed by account name and
// account.delete leaves it: a later account of the same name (another
// tenant) reads the deleted tenant's records: its key ids, user names,
// logins and client addresses.
func TestSeams_AuditTrailOfDeletedAccountReachesNameReuser(t *testing.T) {
	ts := newTestServer(t)
	var old rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &old)
	ts.ok(old.FirstKey.Key, "user.create", []any{"alice", "correct horse"}, nil)
	ts.createUserKey("alice@acme", "correct horse", "full")
	ts.ok(old.FirstKey.Key, "apikey.create", map[string]any{"comment": "old tenant"}, nil)
	ts.ok(ts.Admin, "account.delete", []any{"acme"}, nil)

	ts.advance(time.Minute)
	fresh := tenant(ts, "acme") // another tenant, same name
	var page rpc.AuditPage
	ts.ok(fresh, "audit.list", map[string]any{}, &page)
	for _, r := range page.Records {
		assert.NotEqual(t, old.FirstKey.ID, r.Actor, "the new acme reads a record of the deleted acme: %+v", r)
		assert.NotEqual(t, "user:alice@acme", r.Actor, "the new acme reads a login of the deleted acme: %+v", r)
	}
	assert.Empty(t, page.Records, "a new account's trail holds records made before it existed")
}

// TestSeams_ExpiringOperatorKeyMintsUnexpiringKey: "a child never
// outlives its creator" holds for apikey.*, but account.create only
// refuses limited callers: an operator key that expires in an hour makes
// an account whose first key is unrestricted and never expires, and that
// key works on after its creator has expired.
func TestSeams_ExpiringOperatorKeyMintsUnexpiringKey(t *testing.T) {
	ts := newTestServer(t)
	var e rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"expires_at": in(time.Hour)}, &e)
	// The same key may not make an unexpiring key in its own account.
	ts.fail(e.Key, "apikey.create", map[string]any{}, rpc.CodeForbidden, rpc.ErrIDEscalation)

	r := ts.call(e.Key, "account.create", map[string]any{"name": "acme"})
	if r.Error == nil {
		var a rpc.NewAccountInfo
		require.NoError(t, json.Unmarshal(r.Result, &a))
		ts.advance(2 * time.Hour)
		mustNotAuth(ts, e.Key)
		info := mustAuth(ts, a.FirstKey.Key)
		t.Fatalf("an operator key expiring at %s made account acme with a first key that never expires (expires_at %v) and outlives it",
			in(time.Hour), info.ExpiresAt)
	}
	require.Equal(t, rpc.ErrIDEscalation, r.Error.Data.ErrorID, "error: %+v", r.Error)
}

// TestSeams_HeldOperatorKeyDeletesTenant: a key held by a user or
// service account may create, change or delete no user and no service
// account, not even in its own account. A user of the operator account
// logs in at access level full and gets such a key; account.delete, which
// only checks that the key is of the operator account, lets it delete a
// whole tenant with its users, service accounts and unrestricted keys.
func TestSeams_HeldOperatorKeyDeletesTenant(t *testing.T) {
	ts := newTestServer(t)
	acme := tenant(ts, "acme")
	ts.ok(acme, "user.create", []any{"alice", "correct horse"}, nil)
	ts.ok(acme, "service_account.create", []any{"ci"}, nil)
	ts.ok(ts.Admin, "user.create", []any{"ops", "correct horse"}, nil)
	ops := ts.createUserKey("ops@operator", "correct horse", "full")

	// In its own account the held key may delete no holder...
	ts.fail(ops.Key, "service_account.create", []any{"x"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
	ts.fail(ops.Key, "user.delete", []any{"ops"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
	// ...nor any key wider than itself...
	ts.fail(ops.Key, "apikey.create", map[string]any{}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	// ...nor another tenant's holders and unrestricted keys.
	ts.unchanged(func() {
		ts.fail(ops.Key, "account.delete", []any{"acme"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
	})
	mustAuth(ts, acme)
}

// TestSeams_HeldOperatorKeyMintsKeyThatOutlivesHolder: keys made by a
// held key belong to the same holder, "so that deleting or deactivating
// the holder stops them too". account.create by a service-account-held
// operator key makes an unrestricted key of no holder, which keeps working
// after the service account is switched off and deleted.
func TestSeams_HeldOperatorKeyMintsKeyThatOutlivesHolder(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(ts.Admin, "service_account.create", []any{"ops"}, nil)
	var sa rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"service_account": "ops",
		"scopes": map[string][]string{"method": {"account.*", "apikey.info"}}}, &sa)

	r := ts.call(sa.Key, "account.create", map[string]any{"name": "acme"})
	if r.Error == nil {
		var a rpc.NewAccountInfo
		require.NoError(t, json.Unmarshal(r.Result, &a))
		ts.ok(ts.Admin, "service_account.update", map[string]any{"name": "ops", "active": false}, nil)
		ts.ok(ts.Admin, "service_account.delete", []any{"ops"}, nil)
		mustNotAuth(ts, sa.Key)
		info := mustAuth(ts, a.FirstKey.Key)
		t.Fatalf("a key held by service account ops, scoped to account.* and apikey.info, made an unrestricted key of no holder (scopes %v) that outlives the holder", info.Scopes)
	}
	require.Equal(t, rpc.ErrIDHeldKey, r.Error.Data.ErrorID, "error: %+v", r.Error)
}

// TestSeams_HeldKeyReadsWholeAccountTrail: a key held by a user sees only
// its own holder's keys (apikey.list, apikey.info, user.apikeys), so it
// may not read the account's whole trail either, with the logins, actions
// and client addresses of every other user and key of the account.
func TestSeams_HeldKeyReadsWholeAccountTrail(t *testing.T) {
	ts := newTestServer(t)
	acme := tenant(ts, "acme")
	ts.ok(acme, "user.create", []any{"alice", "correct horse"}, nil)
	ts.ok(acme, "user.create", []any{"bob", "correct horse"}, nil)
	bob := ts.createUserKey("bob@acme", "correct horse", "full")
	alice := ts.createUserKey("alice@acme", "correct horse", "full")
	ts.fail(alice.Key, "apikey.info", map[string]any{"id": bob.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)

	// The trail is the account's: a held key is refused it, by the
	// method table, as it is the holders' own methods.
	ts.fail(alice.Key, "audit.list", map[string]any{}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
	ts.fail(alice.Key, "user.list", nil, rpc.CodeForbidden, rpc.ErrIDHeldKey)
	var v rpc.Verification
	ts.ok(acme, "apikey.verify", map[string]any{"key": alice.Key, "method": "audit.list"}, &v)
	assert.Equal(t, rpc.Verification{Code: rpc.ErrIDHeldKey, KeyID: alice.ID}, v)
}

// TestSeams_RotatedOutSecretNamesItsKeyOnlyInGrace: methods that take an
// id take the key's secret too; a secret rotated out names its key while
// it still authenticates, in its grace period, and not after, as it is
// then no secret of the key.
func TestSeams_RotatedOutSecretNamesItsKeyOnlyInGrace(t *testing.T) {
	ts := newTestServer(t)
	acme := tenant(ts, "acme")
	var k, rot rpc.NewKeyInfo
	ts.ok(acme, "apikey.create", map[string]any{}, &k)
	ts.ok(acme, "apikey.rotate", map[string]any{"id": k.ID, "retain_period_minutes": 60}, &rot)
	var info rpc.KeyInfo
	ts.ok(acme, "apikey.info", map[string]any{"id": k.Key}, &info)
	assert.Equal(t, k.ID, info.ID)

	ts.advance(2 * time.Hour)
	ts.unchanged(func() {
		ts.fail(acme, "apikey.info", map[string]any{"id": k.Key}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
		ts.fail(acme, "apikey.delete", map[string]any{"id": k.Key}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
		ts.fail(acme, "apikey.update", map[string]any{"id": k.Key, "comment": "x"}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
	})
	ts.ok(acme, "apikey.info", map[string]any{"id": rot.Key}, &info)
	assert.Equal(t, k.ID, info.ID)
}
