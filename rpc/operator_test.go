package rpc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The operator rule: no call may leave the operator account without a full
// operator key (active, no scopes, no expiry, valid already, no rate limit
// or quota, holder present and active).

// keyID returns the public id of the key whose secret is secret, as that key
// sees itself.
func (ts *testServer) keyID(secret string) string {
	ts.t.Helper()
	var info rpc.KeyInfo
	ts.ok(secret, "apikey.info", map[string]any{"id": secret}, &info)
	return info.ID
}

// lastKeyChanges are calls that would take away the full operator key id.
func lastKeyChanges(id string) map[string]struct {
	method string
	params map[string]any
} {
	type call = struct {
		method string
		params map[string]any
	}
	return map[string]call{
		"Delete":      {"apikey.delete", map[string]any{"id": id}},
		"Deactivate":  {"apikey.update", map[string]any{"id": id, "active": false}},
		"Expire":      {"apikey.update", map[string]any{"id": id, "expires_at": "2030-01-01T00:00:00Z"}},
		"NotYetValid": {"apikey.update", map[string]any{"id": id, "not_before": "2027-01-01T00:00:00Z"}},
		"RateLimit":   {"apikey.update", map[string]any{"id": id, "rate_limit": map[string]any{"limit": 1000, "interval_seconds": 1}}},
		"Quota":       {"apikey.update", map[string]any{"id": id, "quota": map[string]any{"remaining": 1000000}}},
		"AddMethod":   {"apikey.add_scope", map[string]any{"id": id, "scope_name": "method", "value": "apikey.*"}},
		"AddAccess":   {"apikey.add_scope", map[string]any{"id": id, "scope_name": "access", "value": "MANAGE"}},
		"AddIP":       {"apikey.add_scope", map[string]any{"id": id, "scope_name": "ip", "value": "127.0.0.0/8"}},
		"FilebinDel":  {"user.delete_apikey", map[string]any{"delete_key": id}},
	}
}

// TestOperator_LastKey: every change that would take away the last full
// operator key is refused with last_operator_key and changes nothing; the
// key goes on working. With a second full operator key, the same call
// passes, and the second key still manages the server.
func TestOperator_LastKey(t *testing.T) {
	for name, c := range lastKeyChanges("ID") {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t)
			id := ts.keyID(ts.Admin)
			params := map[string]any{}
			for k, v := range c.params {
				if v == "ID" {
					v = id
				}
				params[k] = v
			}
			ts.unchanged(func() {
				e := ts.fail(ts.Admin, c.method, params, rpc.CodeConflict, rpc.ErrIDLastOperatorKey)
				assert.Contains(t, e.Message, "full operator key")
			})
			// The guard rolled back the write with the record it carried:
			// the trail holds the refusal only.
			recs := auditAll(ts, ts.Admin, map[string]any{"method": c.method})
			require.Len(t, recs, 1)
			assert.Equal(t, rpc.ErrIDLastOperatorKey, recs[0].Outcome)
			ts.ok(ts.Admin, "account.list", nil, nil) // still the operator

			second := ts.createKey(ts.Admin, nil, "second operator key")
			ts.ok(ts.Admin, c.method, params, nil)
			ts.ok(second.Key, "account.list", nil, nil)
			ts.ok(second.Key, "account.create", map[string]any{"name": "acme"}, nil)
		})
	}
}

// TestOperator_KeysThatDoNotCount: a second operator key that could stop
// working by itself, or is limited in any way, does not stand in for the
// last full one.
func TestOperator_KeysThatDoNotCount(t *testing.T) {
	for name, params := range map[string]map[string]any{
		"Expiring":    {"expires_at": "2099-01-01T00:00:00Z"},
		"NotYetValid": {"not_before": "2027-01-01T00:00:00Z"},
		"MethodScope": {"scopes": map[string][]string{"method": []string{"apikey.*", "account.*", "user.*", "service_account.*"}}},
		"AccessScope": {"scopes": map[string][]string{"access": []string{"READ", "CREATE", "UPDATE", "DELETE", "MANAGE"}}},
		"IPScope":     {"scopes": map[string][]string{"ip": []string{"0.0.0.0/0", "::/0"}}},
		"RateLimit":   {"rate_limit": map[string]any{"limit": 1000000, "interval_seconds": 1}},
		"Quota":       {"quota": map[string]any{"remaining": 1000000}},
	} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t)
			params["comment"] = "not a full operator key"
			ts.ok(ts.Admin, "apikey.create", params, nil)
			ts.unchanged(func() {
				ts.fail(ts.Admin, "apikey.delete", map[string]any{"id": ts.Admin}, rpc.CodeConflict, rpc.ErrIDLastOperatorKey)
			})
		})
	}
	t.Run("Inactive", func(t *testing.T) {
		ts := newTestServer(t)
		second := ts.createKey(ts.Admin, nil, "switched off")
		ts.ok(ts.Admin, "apikey.update", map[string]any{"id": second.ID, "active": false}, nil)
		ts.unchanged(func() {
			ts.fail(ts.Admin, "apikey.delete", map[string]any{"id": ts.Admin}, rpc.CodeConflict, rpc.ErrIDLastOperatorKey)
		})
	})
	t.Run("InactiveServiceAccount", func(t *testing.T) {
		ts := newTestServer(t)
		ts.ok(ts.Admin, "service_account.create", map[string]any{"name": "ops", "active": false}, nil)
		ts.ok(ts.Admin, "apikey.create", map[string]any{"service_account": "ops"}, nil)
		ts.unchanged(func() {
			ts.fail(ts.Admin, "apikey.delete", map[string]any{"id": ts.Admin}, rpc.CodeConflict, rpc.ErrIDLastOperatorKey)
		})
	})
}

// TestOperator_Holders: deleting or switching off the holder of the last
// full operator key is refused as well; while a second one exists, it
// passes.
func TestOperator_Holders(t *testing.T) {
	t.Run("ServiceAccount", func(t *testing.T) {
		ts := newTestServer(t)
		ts.ok(ts.Admin, "service_account.create", map[string]any{"name": "ops"}, nil)
		var held rpc.NewKeyInfo
		ts.ok(ts.Admin, "apikey.create", map[string]any{"service_account": "ops", "comment": "held"}, &held)
		// The service account's key is a full operator key: the account's
		// own key may go.
		ts.ok(ts.Admin, "apikey.delete", map[string]any{"id": ts.Admin}, nil)
		// A held key may not change holders at all (held_key);
		// the store refuses all the same, whoever asks.
		ts.unchanged(func() {
			ts.fail(held.Key, "service_account.update", map[string]any{"name": "ops", "active": false}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
			off := false
			_, err := ts.Store.UpdateServiceAccount(context.Background(), store.OperatorAccount, "ops", nil, &off, func(store.Key) error { return nil })
			require.ErrorIs(t, err, store.ErrLastOperatorKey)
			require.ErrorIs(t, ts.Store.DeleteServiceAccount(context.Background(), store.OperatorAccount, "ops", func(store.Key) error { return nil }), store.ErrLastOperatorKey)
		})
		ts.ok(held.Key, "apikey.list", nil, nil) // still serves

		// Renaming the description alone is no threat.
		desc := "on call"
		_, err := ts.Store.UpdateServiceAccount(context.Background(), store.OperatorAccount, "ops", &desc, nil, func(store.Key) error { return nil })
		require.NoError(t, err)
	})
	t.Run("ServiceAccountWithSecondKey", func(t *testing.T) {
		ts := newTestServer(t)
		ts.ok(ts.Admin, "service_account.create", map[string]any{"name": "ops"}, nil)
		ts.ok(ts.Admin, "apikey.create", map[string]any{"service_account": "ops"}, nil)
		ts.ok(ts.Admin, "service_account.update", map[string]any{"name": "ops", "active": false}, nil)
		ts.ok(ts.Admin, "service_account.delete", map[string]any{"name": "ops"}, nil)
		ts.ok(ts.Admin, "account.list", nil, nil)
	})
	t.Run("User", func(t *testing.T) {
		ts := newTestServer(t)
		ts.ok(ts.Admin, "user.create", map[string]any{"name": "root", "password": "correct horse battery"}, nil)
		// A user's logins are scoped, so only the store can give a user a
		// full operator key today; the rule holds for such a key all the same.
		_, secret, err := ts.Store.CreateKey(context.Background(), store.NewKey{Account: store.OperatorAccount, Owner: store.UserOwner(store.LoginName("root", store.OperatorAccount)), Comment: "held by root"})
		require.NoError(t, err)
		ts.ok(ts.Admin, "apikey.delete", map[string]any{"id": ts.Admin}, nil)
		ts.unchanged(func() {
			ts.fail(secret, "user.delete", map[string]any{"name": "root"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
			require.ErrorIs(t, ts.Store.DeleteUser(context.Background(), store.OperatorAccount, "root", func(store.Key) error { return nil }), store.ErrLastOperatorKey)
		})
		ts.ok(secret, "apikey.list", nil, nil)
	})
	t.Run("UserWithSecondKey", func(t *testing.T) {
		ts := newTestServer(t)
		ts.ok(ts.Admin, "user.create", map[string]any{"name": "root", "password": "correct horse battery"}, nil)
		ts.ok("", "user.create_apikey", map[string]any{"username": "root@operator", "password": "correct horse battery", "access_level": "full"}, nil)
		ts.ok(ts.Admin, "user.delete", map[string]any{"name": "root"}, nil)
		ts.ok(ts.Admin, "account.list", nil, nil)
	})
}

// TestOperator_DeleteScopeAndRotate: delete_scope can only widen a key, and
// a widened key counts; rotating the last full operator key keeps it full
// (the reply holds its new secret).
func TestOperator_DeleteScopeAndRotate(t *testing.T) {
	ts := newTestServer(t)
	narrow := ts.createKey(ts.Admin, map[string][]string{"method": {"account.list"}}, "narrow")
	ts.unchanged(func() {
		ts.fail(ts.Admin, "apikey.delete", map[string]any{"id": ts.Admin}, rpc.CodeConflict, rpc.ErrIDLastOperatorKey)
	})
	ts.ok(ts.Admin, "apikey.delete_scope", map[string]any{"id": narrow.ID, "scope_name": "method", "value": "account.list"}, nil)
	ts.ok(ts.Admin, "apikey.delete", map[string]any{"id": ts.Admin}, nil)

	var rotated rpc.NewKeyInfo
	ts.ok(narrow.Key, "apikey.rotate", map[string]any{"id": narrow.ID}, &rotated)
	require.NotEmpty(t, rotated.Key)
	ts.ok(rotated.Key, "account.list", nil, nil)
	ts.unchanged(func() {
		ts.fail(rotated.Key, "apikey.delete", map[string]any{"id": narrow.ID}, rpc.CodeConflict, rpc.ErrIDLastOperatorKey)
	})
}

// TestOperator_OtherAccounts: the rule is the operator's only; a tenant may
// delete or narrow its own last key.
func TestOperator_OtherAccounts(t *testing.T) {
	ts := newTestServer(t)
	var acct rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", map[string]any{"name": "acme"}, &acct)
	key := acct.FirstKey.Key
	require.NotEmpty(t, key)
	ts.ok(key, "apikey.add_scope", map[string]any{"id": key, "scope_name": "method", "value": "apikey.*"}, nil)
	ts.ok(key, "apikey.delete", map[string]any{"id": key}, nil)
}

// TestOperator_ConcurrentDeletes: the last two full operator keys each
// delete themselves at once. The rule is checked inside each write's transaction, so exactly
// one delete passes, whatever the interleaving or batching of the writes.
func TestOperator_ConcurrentDeletes(t *testing.T) {
	ts := newTestServer(t)
	for round := range 20 {
		a := ts.createKey(ts.Admin, nil, fmt.Sprintf("a%d", round))
		b := ts.createKey(ts.Admin, nil, fmt.Sprintf("b%d", round))
		ts.ok(a.Key, "apikey.delete", map[string]any{"id": ts.Admin}, nil)
		var wg sync.WaitGroup
		replies := make([]wireResponse, 2)
		for i, k := range []rpc.NewKeyInfo{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i] = ts.call(k.Key, "apikey.delete", map[string]any{"id": k.ID})
			}()
		}
		wg.Wait()
		var passed, refused int
		var survivor string
		for i, r := range replies {
			if r.Error == nil {
				passed++
				continue
			}
			require.Equal(t, rpc.ErrIDLastOperatorKey, r.Error.Data.ErrorID, "round %d: %+v", round, r.Error)
			refused++
			survivor = []string{a.Key, b.Key}[i]
		}
		require.Equal(t, 1, passed, "round %d", round)
		require.Equal(t, 1, refused, "round %d", round)
		ok, err := ts.Store.HasFullOperatorKey()
		require.NoError(t, err)
		require.True(t, ok, "round %d", round)
		ts.ok(survivor, "account.list", nil, nil)
		ts.Admin = survivor
	}
}

// TestOperator_AllowedChanges: changes that leave the last full operator
// key full pass: its name, description and comment, a not_before already
// past, no rate limit, a rotation with a grace period.
func TestOperator_AllowedChanges(t *testing.T) {
	ts := newTestServer(t)
	id := ts.keyID(ts.Admin)
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": id, "name": "root", "description": "break glass", "comment": "operator"}, nil)
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": id, "not_before": "2025-01-01T00:00:00Z"}, nil)
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": id, "rate_limit": map[string]any{"limit": 0, "interval_seconds": 1}}, nil)
	var rotated rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.rotate", map[string]any{"id": id, "retain_period_minutes": 5}, &rotated)
	ts.ok(rotated.Key, "account.list", nil, nil)
	ok, err := ts.Store.HasFullOperatorKey()
	require.NoError(t, err)
	assert.True(t, ok)
	ts.unchanged(func() {
		ts.fail(rotated.Key, "apikey.delete", map[string]any{"id": "root"}, rpc.CodeConflict, rpc.ErrIDLastOperatorKey)
	})
}
