package rpc_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// escWorld is an account, acme, with a caller of every kind and targets
// wider than each of them.
type escWorld struct {
	ts   *testServer
	acct rpc.NewKeyInfo // acme's first key: unrestricted, of the account itself
	// callers by kind
	callers map[string]rpc.NewKeyInfo
	// targets
	wide      rpc.NewKeyInfo // an unrestricted key of the account itself
	victimKey rpc.NewKeyInfo // user victim's key, access level full
	botsKey   rpc.NewKeyInfo // service account bots' key, unrestricted
}

// Caller kinds of the matrix (besides the operator and an unrestricted key
// of the account, which nothing is wider than).
const (
	kindNarrow  = "narrowed scopes"
	kindExpires = "expiring"
	kindRate    = "rate-limited"
	kindQuota   = "quota"
	kindUser    = "user-held"
	kindSA      = "service-account-held"
)

var escKinds = []string{kindNarrow, kindExpires, kindRate, kindQuota, kindUser, kindSA}

// holderKind reports whether callers of kind are held by a user or service
// account.
func holderKind(kind string) bool { return kind == kindUser || kind == kindSA }

// in returns an RFC 3339 time d after the test clock's start.
func in(d time.Duration) string { return fixedNow.Add(d).Format(time.RFC3339) }

func newEscWorld(t *testing.T) *escWorld {
	t.Helper()
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	w := &escWorld{ts: ts, acct: acme.FirstKey, callers: map[string]rpc.NewKeyInfo{}}
	a := w.acct.Key
	create := func(params map[string]any) rpc.NewKeyInfo {
		var k rpc.NewKeyInfo
		ts.ok(a, "apikey.create", params, &k)
		return k
	}
	w.callers[kindNarrow] = create(map[string]any{"scopes": map[string][]string{"method": {"apikey.*", "user.*", "service_account.*"}}})
	w.callers[kindExpires] = create(map[string]any{"expires_at": in(time.Hour)})
	w.callers[kindRate] = create(map[string]any{"rate_limit": map[string]any{"limit": 1000, "interval_seconds": 60}})
	w.callers[kindQuota] = create(map[string]any{"quota": map[string]any{"remaining": 1000}})
	ts.ok(a, "user.create", []any{"carol", "correct horse"}, nil)
	w.callers[kindUser] = ts.createUserKey("carol@acme", "correct horse", "full")
	ts.ok(a, "service_account.create", []any{"robot"}, nil)
	w.callers[kindSA] = create(map[string]any{"service_account": "robot"})

	w.wide = create(map[string]any{"comment": "wide"})
	ts.ok(a, "user.create", []any{"victim", "correct horse"}, nil)
	w.victimKey = ts.createUserKey("victim@acme", "correct horse", "full")
	ts.ok(a, "service_account.create", []any{"bots"}, nil)
	w.botsKey = create(map[string]any{"service_account": "bots"})
	return w
}

// on returns ts reporting to t, for subtests.
func (ts *testServer) on(t testing.TB) *testServer {
	sub := *ts
	sub.t = t
	return &sub
}

// TestEscalation_Matrix: every mutating method on keys and holders, under
// a caller of every kind, aimed at a target wider than the caller, is
// refused (escalation_denied, or key_not_found where the target belongs to
// another holder and must not be visible), and the store is unchanged.
func TestEscalation_Matrix(t *testing.T) {
	w := newEscWorld(t)
	ts := w.ts
	type want struct {
		code int64
		id   string
	}
	denied := want{rpc.CodeForbidden, rpc.ErrIDEscalation}
	hidden := want{rpc.CodeNotFound, rpc.ErrIDKeyNotFound}
	// keyTarget: a key of another holder is hidden from holder-held callers.
	keyTarget := func(kind string) want {
		if holderKind(kind) {
			return hidden
		}
		return denied
	}
	always := func(string) want { return denied }
	// holderWrite: a held key may call no method that manages holders
	// (AccountKeysOnly), whatever the target.
	holderWrite := func(kind string) want {
		if holderKind(kind) {
			return want{rpc.CodeForbidden, rpc.ErrIDHeldKey}
		}
		return denied
	}
	for _, tt := range []struct {
		method string
		params func(kind string) any
		want   func(kind string) want
	}{
		// Keys.
		{"apikey.create", func(kind string) any {
			switch kind {
			case kindSA: // as wide as itself, but for another holder
				return map[string]any{"service_account": "bots"}
			case kindExpires: // a key that outlives its creator
				return map[string]any{"expires_at": in(2 * time.Hour)}
			}
			return map[string]any{}
		}, always},
		{"apikey.update", func(string) any { return map[string]any{"id": w.wide.ID, "comment": "mine"} }, keyTarget},
		{"apikey.update", func(string) any { return map[string]any{"id": w.wide.ID, "active": false} }, keyTarget},
		{"apikey.update", func(string) any { return map[string]any{"id": w.wide.ID, "expires_at": in(time.Minute)} }, keyTarget},
		{"apikey.rotate", func(string) any { return map[string]any{"id": w.wide.ID} }, keyTarget},
		{"apikey.delete", func(string) any { return map[string]any{"id": w.wide.ID} }, keyTarget},
		{"apikey.add_scope", func(string) any { return []any{w.wide.ID, "name", "web1"} }, keyTarget},
		{"apikey.delete_scope", func(string) any { return []any{w.wide.ID, "method", "server.list"} }, keyTarget},
		{"user.delete_apikey", func(string) any { return []any{w.wide.ID} }, keyTarget},
		{"user.delete_apikey", func(string) any { return []any{w.victimKey.ID} }, keyTarget},
		{"user.delete_apikey", func(string) any { return []any{w.botsKey.ID} }, keyTarget},
		// Holders, with their keys.
		{"user.delete", func(string) any { return []any{"victim"} }, holderWrite},
		{"user.set_password", func(string) any { return []any{"victim", "hijacked!"} }, holderWrite},
		{"user.create", func(string) any { return []any{"mallory", "long enough"} }, holderWrite},
		{"service_account.update", func(string) any { return map[string]any{"name": "bots", "active": false} }, holderWrite},
		{"service_account.update", func(string) any { return map[string]any{"name": "bots", "description": "mine"} }, holderWrite},
		{"service_account.delete", func(string) any { return []any{"bots"} }, holderWrite},
	} {
		for _, kind := range escKinds {
			t.Run(tt.method+"/"+kind, func(t *testing.T) {
				ts := ts.on(t)
				ts.unchanged(func() {
					wt := tt.want(kind)
					ts.fail(w.callers[kind].Key, tt.method, tt.params(kind), wt.code, wt.id)
				})
			})
		}
	}
	// The targets still work.
	for _, k := range []rpc.NewKeyInfo{w.wide, w.victimKey, w.botsKey} {
		ts.ok(k.Key, "apikey.info", []any{k.ID}, nil)
	}
}

// TestEscalation_HolderKeysWriteNoHolders: a key held by a user or a
// service account may create, change or delete no user and no service
// account, not even its own holder.
func TestEscalation_HolderKeysWriteNoHolders(t *testing.T) {
	w := newEscWorld(t)
	ts := w.ts
	for _, kind := range []string{kindUser, kindSA} {
		k := w.callers[kind].Key
		ts.unchanged(func() {
			ts.fail(k, "service_account.create", []any{"mine"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
			ts.fail(k, "service_account.update", map[string]any{"name": "robot", "active": false}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
			ts.fail(k, "service_account.delete", []any{"robot"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
			ts.fail(k, "user.delete", []any{"carol"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
			ts.fail(k, "user.set_password", []any{"carol", "long enough"}, rpc.CodeForbidden, rpc.ErrIDHeldKey)
		})
	}
}

// TestEscalation_Expiry: a child never outlives its creator, and a key
// cannot clear or extend its own expiry.
func TestEscalation_Expiry(t *testing.T) {
	w := newEscWorld(t)
	ts := w.ts
	exp := w.callers[kindExpires]
	ts.unchanged(func() {
		// No expiry, or a later one: refused.
		e := ts.fail(exp.Key, "apikey.create", map[string]any{"comment": "forever"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		assert.Contains(t, e.Message, "expir")
		ts.fail(exp.Key, "apikey.create", map[string]any{"expires_at": in(time.Hour + time.Second)}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		// Its own expiry: neither cleared nor extended.
		ts.fail(exp.Key, "apikey.update", map[string]any{"id": exp.ID, "expires_at": ""}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(exp.Key, "apikey.update", map[string]any{"id": exp.ID, "expires_at": in(2 * time.Hour)}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		// A password would log in to keys that never expire.
		ts.fail(exp.Key, "user.create", []any{"mallory", "long enough"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})

	// Within its window: allowed.
	var child rpc.NewKeyInfo
	ts.ok(exp.Key, "apikey.create", map[string]any{"expires_at": in(time.Hour), "comment": "child"}, &child)
	require.NotNil(t, child.ExpiresAt)
	assert.Equal(t, fixedNow.Add(time.Hour), *child.ExpiresAt)
	ts.ok(exp.Key, "apikey.create", map[string]any{"expires_at": in(time.Minute), "not_before": in(30 * time.Second)}, nil)
	// The child may not be extended past its creator either.
	ts.unchanged(func() {
		ts.fail(exp.Key, "apikey.update", map[string]any{"id": child.ID, "expires_at": ""}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})
	ts.ok(exp.Key, "apikey.update", map[string]any{"id": child.ID, "comment": "renamed"}, nil)
	var info rpc.KeyInfo
	ts.ok(exp.Key, "apikey.update", map[string]any{"id": exp.ID, "expires_at": in(30 * time.Minute)}, &info)
	assert.Equal(t, fixedNow.Add(30*time.Minute), *info.ExpiresAt, "a key may shorten its own life")
	// The child, at 60 minutes, now outlives its creator's 30: it is
	// beyond its creator's reach, as any wider key.
	ts.unchanged(func() {
		ts.fail(exp.Key, "apikey.rotate", []any{child.ID}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})
	// Keys whose window lies within: rotate, delete.
	var short rpc.NewKeyInfo
	ts.ok(exp.Key, "apikey.create", map[string]any{"expires_at": in(10 * time.Minute)}, &short)
	ts.ok(exp.Key, "apikey.rotate", []any{short.ID}, nil)
	ts.ok(exp.Key, "apikey.delete", []any{short.ID}, nil)

	// An unrestricted key may clear any expiry.
	var cleared rpc.KeyInfo
	ts.ok(w.acct.Key, "apikey.update", map[string]any{"id": exp.ID, "expires_at": ""}, &cleared)
	assert.Nil(t, cleared.ExpiresAt)
}

// TestEscalation_Attacks: the attacks of the issue, each refused, through
// user.* and service_account.*.
func TestEscalation_Attacks(t *testing.T) {
	w := newEscWorld(t)
	ts := w.ts
	a := w.acct.Key
	// A key scoped only to user.delete and service_account.*.
	var narrow rpc.NewKeyInfo
	ts.ok(a, "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"user.delete", "service_account.*"}}}, &narrow)
	// Any user can log in at access level full.
	carol := w.callers[kindUser]
	for k, id := range map[string]string{narrow.Key: rpc.ErrIDEscalation, carol.Key: rpc.ErrIDHeldKey,
		w.callers[kindSA].Key: rpc.ErrIDHeldKey, w.callers[kindQuota].Key: rpc.ErrIDEscalation} {
		ts.unchanged(func() {
			ts.fail(k, "user.delete", []any{"victim"}, rpc.CodeForbidden, id)
			ts.fail(k, "service_account.delete", []any{"bots"}, rpc.CodeForbidden, id)
			ts.fail(k, "service_account.update", map[string]any{"name": "bots", "active": false}, rpc.CodeForbidden, id)
		})
	}
	// Switched off by the operator, a service account stays off.
	ts.ok(a, "service_account.update", map[string]any{"name": "bots", "active": false}, nil)
	ts.unchanged(func() {
		ts.fail(narrow.Key, "service_account.update", map[string]any{"name": "bots", "active": true}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})
	ts.fail(w.botsKey.Key, "apikey.info", []any{w.botsKey.ID}, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.ok(w.victimKey.Key, "apikey.info", []any{w.victimKey.ID}, nil)
}

// TestEscalation_WithinAuthority: callers act on keys and holders that lie
// within their authority.
func TestEscalation_WithinAuthority(t *testing.T) {
	t.Run("Operator", func(t *testing.T) {
		ts := newTestServer(t)
		ts.ok(ts.Admin, "user.create", []any{"dave", "correct horse"}, nil)
		ts.createUserKey("dave@operator", "correct horse", "full")
		ts.ok(ts.Admin, "service_account.create", []any{"ci"}, nil)
		var k rpc.NewKeyInfo
		ts.ok(ts.Admin, "apikey.create", map[string]any{"service_account": "ci"}, &k)
		ts.ok(ts.Admin, "service_account.update", map[string]any{"name": "ci", "active": false}, nil)
		ts.ok(ts.Admin, "service_account.update", map[string]any{"name": "ci", "active": true}, nil)
		ts.ok(ts.Admin, "apikey.rotate", []any{k.ID}, nil)
		ts.ok(ts.Admin, "service_account.delete", []any{"ci"}, nil)
		ts.ok(ts.Admin, "user.delete", []any{"dave"}, nil)
	})
	t.Run("AccountUnrestricted", func(t *testing.T) {
		w := newEscWorld(t)
		ts := w.ts
		ts.ok(w.acct.Key, "apikey.update", map[string]any{"id": w.wide.ID, "active": false}, nil)
		ts.ok(w.acct.Key, "service_account.update", map[string]any{"name": "bots", "active": false}, nil)
		ts.ok(w.acct.Key, "service_account.delete", []any{"bots"}, nil)
		ts.ok(w.acct.Key, "user.delete", []any{"victim"}, nil)
		ts.fail(w.victimKey.Key, "apikey.info", []any{w.victimKey.ID}, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	})
	t.Run("Narrowed", func(t *testing.T) {
		w := newEscWorld(t)
		ts := w.ts
		n := w.callers[kindNarrow].Key
		var child rpc.NewKeyInfo
		ts.ok(n, "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"apikey.info"}}}, &child)
		ts.ok(n, "apikey.add_scope", []any{child.ID, "method", "apikey.list"}, nil)
		ts.ok(n, "apikey.update", map[string]any{"id": child.ID, "active": false}, nil)
		ts.ok(n, "apikey.rotate", []any{child.ID}, nil)
		// A holder whose keys all lie within the caller's scopes.
		ts.ok(w.acct.Key, "service_account.create", []any{"minor"}, nil)
		ts.ok(w.acct.Key, "apikey.create", map[string]any{"service_account": "minor", "scopes": map[string][]string{"method": {"apikey.info"}}}, nil)
		ts.ok(n, "service_account.update", map[string]any{"name": "minor", "active": false}, nil)
		ts.ok(n, "service_account.delete", []any{"minor"}, nil)
		ts.ok(w.acct.Key, "user.create", []any{"keyless", "correct horse"}, nil)
		ts.ok(n, "user.delete", []any{"keyless"}, nil)
		ts.ok(n, "apikey.delete", []any{child.ID}, nil)
	})
	t.Run("Limited", func(t *testing.T) {
		w := newEscWorld(t)
		ts := w.ts
		for _, kind := range []string{kindRate, kindQuota} {
			k := w.callers[kind]
			// Itself, without touching its limits.
			ts.ok(k.Key, "apikey.update", map[string]any{"id": k.ID, "comment": "me"}, nil)
			var rotated rpc.NewKeyInfo
			ts.ok(k.Key, "apikey.rotate", []any{k.ID}, &rotated)
			ts.ok(rotated.Key, "apikey.delete", []any{k.ID}, nil)
		}
	})
	t.Run("HolderHeld", func(t *testing.T) {
		w := newEscWorld(t)
		ts := w.ts
		carol := w.callers[kindUser]
		var child rpc.NewKeyInfo
		ts.ok(carol.Key, "apikey.create", map[string]any{"scopes": map[string][]string{"access": {"READ"}}}, &child)
		assert.Equal(t, "user:carol@acme", child.Owner)
		ts.ok(carol.Key, "apikey.rotate", []any{child.ID}, nil)
		ts.ok(carol.Key, "user.delete_apikey", []any{child.ID}, nil)
		robot := w.callers[kindSA]
		ts.ok(robot.Key, "apikey.create", map[string]any{"service_account": "robot", "expires_at": in(time.Hour)}, &child)
		ts.ok(robot.Key, "apikey.update", map[string]any{"id": child.ID, "expires_at": ""}, nil)
		ts.ok(robot.Key, "apikey.delete", []any{child.ID}, nil)
	})
}

// TestUser_APIKeyLevel: filebin's "apikey" access level lists and deletes
// its own user's keys, within its reach, and no one else's.
func TestUser_APIKeyLevel(t *testing.T) {
	w := newEscWorld(t)
	ts := w.ts
	ts.ok(w.acct.Key, "user.create", []any{"erin", "correct horse"}, nil)
	mgr := ts.createUserKey("erin@acme", "correct horse", "apikey")
	basic := ts.createUserKey("erin@acme", "correct horse", "basic")
	full := ts.createUserKey("erin@acme", "correct horse", "full")

	var listed map[string]map[string]rpc.FilebinKey
	ts.ok(mgr.Key, "user.apikeys", nil, &listed)
	assert.Len(t, listed["apikeys"], 3)
	for _, k := range []rpc.NewKeyInfo{mgr, basic, full} {
		assert.Contains(t, listed["apikeys"], k.ID)
	}
	ts.ok(mgr.Key, "user.apikeys", []any{"erin"}, &listed)
	assert.Len(t, listed["apikeys"], 3)

	ts.unchanged(func() {
		// No one else's keys.
		ts.fail(mgr.Key, "user.apikeys", []any{"victim"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(mgr.Key, "user.delete_apikey", []any{w.victimKey.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
		ts.fail(mgr.Key, "user.delete_apikey", []any{w.acct.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
		// Its own user's full key reaches beyond it (MANAGE).
		ts.fail(mgr.Key, "user.delete_apikey", []any{full.ID}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		// The basic level has only CREATE.
		ts.fail(basic.Key, "user.apikeys", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
		ts.fail(basic.Key, "user.delete_apikey", []any{basic.ID}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	})
	var deleted map[string]map[string]rpc.FilebinKey
	ts.ok(mgr.Key, "user.delete_apikey", []any{basic.ID}, &deleted)
	assert.Contains(t, deleted["deleted_keys"], basic.ID)
	ts.fail(basic.Key, "apikey.info", []any{basic.ID}, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.ok(mgr.Key, "user.apikeys", nil, &listed)
	assert.Len(t, listed["apikeys"], 2)

	// Keys of the account itself manage other holders' keys only with
	// MANAGE, as before.
	var reader, deleter rpc.NewKeyInfo
	ts.ok(w.acct.Key, "apikey.create", map[string]any{"scopes": map[string][]string{"access": {"READ"}}}, &reader)
	ts.ok(w.acct.Key, "apikey.create", map[string]any{"scopes": map[string][]string{"access": {"DELETE"}}}, &deleter)
	ts.unchanged(func() {
		ts.fail(reader.Key, "user.apikeys", []any{"erin"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
		ts.fail(deleter.Key, "user.delete_apikey", []any{deleter.ID}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	})
	ts.ok(w.acct.Key, "user.apikeys", []any{"erin"}, &listed)
	assert.Len(t, listed["apikeys"], 2)
	ts.ok(mgr.Key, "user.delete_apikey", []any{mgr.ID}, nil)
}

// TestEscalation_HolderRace: the keys of a holder are judged in the
// transaction that deletes it, so a wide key added while a narrow caller
// deletes the holder is never deleted with it.
func TestEscalation_HolderRace(t *testing.T) {
	w := newEscWorld(t)
	ts := w.ts
	narrow := w.callers[kindNarrow].Key
	for round := range 20 {
		ts.ok(w.acct.Key, "service_account.create", []any{"racer"}, nil)
		// A key within the narrow caller, so the holder starts deletable.
		ts.ok(w.acct.Key, "apikey.create", map[string]any{"service_account": "racer", "scopes": map[string][]string{"method": {"apikey.info"}}}, nil)
		var wide wireResponse
		var deleted wireResponse
		done := make(chan struct{})
		go func() {
			defer close(done)
			wide = ts.call(w.acct.Key, "apikey.create", map[string]any{"service_account": "racer"})
		}()
		deleted = ts.call(narrow, "service_account.delete", []any{"racer"})
		<-done
		if deleted.Error != nil {
			require.Equal(t, rpc.ErrIDEscalation, deleted.Error.Data.ErrorID, "round %d", round)
			require.Nil(t, wide.Error, "round %d: only the wide key can have refused the delete", round)
		}
		if wide.Error == nil {
			var k rpc.NewKeyInfo
			require.NoError(t, json.Unmarshal(wide.Result, &k))
			// Whatever the order, the narrow caller deleted no wide key.
			ts.ok(w.acct.Key, "apikey.info", []any{k.ID}, nil)
			ts.ok(w.acct.Key, "apikey.delete", []any{k.ID}, nil)
		}
		r := ts.call(w.acct.Key, "service_account.delete", []any{"racer"})
		if r.Error != nil {
			require.Equal(t, rpc.ErrIDServiceAccountNotFound, r.Error.Data.ErrorID)
		}
	}
}

// TestEscalation_Accounts: account.create hands out an unrestricted first
// key that never expires, and account.delete deletes every key of the
// account, so both judge those keys against the caller like any other
// key: an operator key that is narrowed, expiring, limited or held may
// neither create an account nor delete one holding wider keys.
func TestEscalation_Accounts(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	create := func(params map[string]any) string {
		var k rpc.NewKeyInfo
		ts.ok(ts.Admin, "apikey.create", params, &k)
		return k.Key
	}
	ts.ok(ts.Admin, "service_account.create", []any{"ops"}, nil)
	callers := map[string]string{
		"narrow":  create(map[string]any{"scopes": map[string][]string{"method": {"account.*"}}}),
		"expires": create(map[string]any{"expires_at": in(time.Hour)}),
		"rate":    create(map[string]any{"rate_limit": map[string]any{"limit": 1000, "interval_seconds": 60}}),
		"quota":   create(map[string]any{"quota": map[string]any{"remaining": 1000}}),
		"held":    create(map[string]any{"service_account": "ops"}),
	}
	for kind, key := range callers {
		t.Run(kind, func(t *testing.T) {
			ts := ts.on(t)
			id := rpc.ErrIDEscalation
			if kind == "held" {
				id = rpc.ErrIDHeldKey // account.* takes a key of the account itself
			}
			ts.unchanged(func() {
				ts.fail(key, "account.create", []any{"beta"}, rpc.CodeForbidden, id)
				ts.fail(key, "account.delete", []any{"acme"}, rpc.CodeForbidden, id)
			})
			ts.ok(acme.FirstKey.Key, "apikey.info", []any{acme.FirstKey.ID}, nil) // acme's keys still work
		})
	}

	// An account left with keys within the caller may be deleted by it.
	narrow := create(map[string]any{"scopes": map[string][]string{"method": {"account.*", "server.list"}}})
	var inner rpc.NewKeyInfo
	ts.ok(acme.FirstKey.Key, "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"server.list"}}}, &inner)
	ts.unchanged(func() {
		ts.fail(narrow, "account.delete", []any{"acme"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})
	ts.ok(acme.FirstKey.Key, "apikey.delete", []any{acme.FirstKey.ID}, nil)
	ts.ok(narrow, "account.delete", []any{"acme"}, nil)
	ts.fail(inner.Key, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.ok(ts.Admin, "account.create", []any{"beta"}, nil) // a full operator key may
}
