package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rotatedKey creates a key in account acme (held by owner, if set), rotates
// it keeping the old secret for an hour, and authenticates both secrets,
// the old one first, so that the cache holds the key as the old secret
// found it.
func rotatedKey(t *testing.T, st *store.Store, owner string, scopes scope.Scopes) (id, old, cur string) {
	t.Helper()
	k, old, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: owner, Scopes: scopes})
	require.NoError(t, err)
	_, cur, err = st.RotateKey(context.Background(), "acme", k.ID, time.Hour, func(store.Key) error { return nil })
	require.NoError(t, err)
	for _, s := range []string{old, cur} {
		_, err := st.KeyBySecret(s)
		require.NoError(t, err)
	}
	return k.ID, old, cur
}

func acmeStore(t *testing.T) *store.Store {
	t.Helper()
	st := MustOpenStore(t)
	_, _, _, err := st.CreateAccount(context.Background(), "acme", "")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, st.CheckKeys()) })
	return st
}

func assertRefused(t *testing.T, st *store.Store, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		_, err := st.KeyBySecret(s)
		assert.ErrorIs(t, err, store.ErrNotFound)
	}
}

func TestOneTruth_KeyWrites(t *testing.T) {
	t.Run("Delete", func(t *testing.T) {
		st := acmeStore(t)
		id, old, cur := rotatedKey(t, st, "", scope.Scopes{})
		require.NoError(t, st.DeleteKey(context.Background(), "acme", id, func(store.Key) error { return nil }))
		assertRefused(t, st, old, cur)
	})
	t.Run("DeleteByRetainedSecret", func(t *testing.T) {
		st := acmeStore(t)
		_, old, cur := rotatedKey(t, st, "", scope.Scopes{})
		require.NoError(t, st.DeleteKey(context.Background(), "acme", old, func(store.Key) error { return nil }))
		assertRefused(t, st, old, cur)
	})
	t.Run("SwitchOffAndOn", func(t *testing.T) {
		st := acmeStore(t)
		id, old, cur := rotatedKey(t, st, "", scope.Scopes{})
		off, on := false, true
		_, err := st.UpdateKey(context.Background(), "acme", id, func(store.Key) (store.KeyChange, error) { return store.KeyChange{Active: &off}, nil })
		require.NoError(t, err)
		assertRefused(t, st, old, cur) // and now cached as refused
		_, err = st.UpdateKey(context.Background(), "acme", id, func(store.Key) (store.KeyChange, error) { return store.KeyChange{Active: &on}, nil })
		require.NoError(t, err)
		for _, s := range []string{old, cur} {
			k, err := st.KeyBySecret(s)
			require.NoError(t, err)
			assert.True(t, k.Active)
		}
	})
	t.Run("Scopes", func(t *testing.T) {
		st := acmeStore(t)
		id, old, cur := rotatedKey(t, st, "", scope.Scopes{Method: []string{"apikey.*", "server.list"}})
		_, err := st.UpdateScopes(context.Background(), "acme", id, func(store.Key) (scope.Scopes, error) {
			return scope.Scopes{Method: []string{"server.list"}}, nil
		})
		require.NoError(t, err)
		for _, s := range []string{old, cur} {
			k, err := st.KeyBySecret(s)
			require.NoError(t, err)
			assert.Equal(t, []string{"server.list"}, k.Scopes.Method)
		}
	})
	t.Run("RotateAgain", func(t *testing.T) {
		st := acmeStore(t)
		id, old, cur := rotatedKey(t, st, "", scope.Scopes{})
		_, next, err := st.RotateKey(context.Background(), "acme", id, 0, func(store.Key) error { return nil })
		require.NoError(t, err)
		assertRefused(t, st, old, cur)
		_, err = st.KeyBySecret(next)
		assert.NoError(t, err)
	})
}

func TestOneTruth_HolderAndAccountWrites(t *testing.T) {
	ctx := context.Background()
	t.Run("UserDelete", func(t *testing.T) {
		st := acmeStore(t)
		_, err := st.CreateUser(ctx, "acme", "alice", "correct horse")
		require.NoError(t, err)
		_, old, cur := rotatedKey(t, st, store.UserOwner(store.LoginName("alice", "acme")), scope.Scopes{})
		require.NoError(t, st.DeleteUser(context.Background(), "acme", "alice", allowAll))
		assertRefused(t, st, old, cur)
		_, err = st.CreateUser(ctx, "acme", "alice", "another horse")
		require.NoError(t, err)
		assertRefused(t, st, old, cur)
	})
	t.Run("ServiceAccountOffOnDelete", func(t *testing.T) {
		st := acmeStore(t)
		_, err := st.CreateServiceAccount(context.Background(), "acme", "ci", "", true)
		require.NoError(t, err)
		_, old, cur := rotatedKey(t, st, store.ServiceAccountOwner("acme", "ci"), scope.Scopes{})
		off, on := false, true
		_, err = st.UpdateServiceAccount(context.Background(), "acme", "ci", nil, &off, allowAll)
		require.NoError(t, err)
		assertRefused(t, st, old, cur)
		_, status, err := st.InspectSecret(old)
		require.NoError(t, err)
		assert.Equal(t, store.StatusHolderInactive, status)
		_, err = st.UpdateServiceAccount(context.Background(), "acme", "ci", nil, &on, allowAll)
		require.NoError(t, err)
		for _, s := range []string{old, cur} {
			_, err := st.KeyBySecret(s)
			assert.NoError(t, err)
		}
		require.NoError(t, st.DeleteServiceAccount(context.Background(), "acme", "ci", allowAll))
		assertRefused(t, st, old, cur)
		_, err = st.CreateServiceAccount(context.Background(), "acme", "ci", "", true)
		require.NoError(t, err)
		assertRefused(t, st, old, cur)
	})
	t.Run("AccountDelete", func(t *testing.T) {
		st := acmeStore(t)
		_, err := st.CreateUser(ctx, "acme", "alice", "correct horse")
		require.NoError(t, err)
		_, err = st.CreateServiceAccount(context.Background(), "acme", "ci", "", false)
		require.NoError(t, err)
		_, old, cur := rotatedKey(t, st, "", scope.Scopes{})
		_, uold, ucur := rotatedKey(t, st, store.UserOwner(store.LoginName("alice", "acme")), scope.Scopes{})
		_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: store.ServiceAccountOwner("acme", "ci"), Name: "deploy"})
		require.NoError(t, err)
		require.NoError(t, st.DeleteAccount(context.Background(), "acme", allowAll))
		assertRefused(t, st, old, cur, uold, ucur)
		require.NoError(t, st.CheckKeys())

		_, _, _, err = st.CreateAccount(context.Background(), "acme", "a later tenant")
		require.NoError(t, err)
		assertRefused(t, st, old, cur, uold, ucur)
		keys, err := st.Keys("acme")
		require.NoError(t, err)
		assert.Len(t, keys, 1, "only the new account's first key")
		held, err := st.KeysOf("acme", store.UserOwner(store.LoginName("alice", "acme")))
		require.NoError(t, err)
		assert.Empty(t, held)
		a, err := st.Account("acme")
		require.NoError(t, err)
		assert.Equal(t, 1, a.Keys)
	})
}

// No key is written for a holder, or by a key, that is gone by the time
// the write commits: such a key would outlive what it depends on.
func TestOneTruth_NoOrphans(t *testing.T) {
	ctx := context.Background()
	st := acmeStore(t)
	_, err := st.CreateServiceAccount(context.Background(), "acme", "ci", "", true)
	require.NoError(t, err)
	require.NoError(t, st.DeleteServiceAccount(context.Background(), "acme", "ci", allowAll))
	_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: store.ServiceAccountOwner("acme", "ci")})
	assert.ErrorIs(t, err, store.ErrServiceAccountNotFound)

	_, err = st.CreateUser(ctx, "acme", "alice", "correct horse")
	require.NoError(t, err)
	require.NoError(t, st.DeleteUser(context.Background(), "acme", "alice", allowAll))
	_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: store.UserOwner(store.LoginName("alice", "acme"))})
	assert.ErrorIs(t, err, store.ErrUserNotFound)

	_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: "robot:r2"})
	assert.ErrorIs(t, err, store.ErrNotFound)

	// A tenant's key asks for a key while the operator deletes the tenant.
	by, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme"})
	require.NoError(t, err)
	require.NoError(t, st.DeleteAccount(context.Background(), "acme", allowAll))
	_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", By: by.ID})
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, _, _, err = st.CreateAccount(context.Background(), "acme", "a later tenant")
	require.NoError(t, err)
	_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", By: by.ID})
	assert.ErrorIs(t, err, store.ErrNotFound)
	keys, err := st.Keys("acme")
	require.NoError(t, err)
	assert.Len(t, keys, 1)
}

// Once a write returns, no lookup authenticates with the state before it,
// however lookups and the write interleave: lookups that read bbolt before
// the commit do not put their copy in the cache.
func TestOneTruth_NoStaleStateAfterWrite(t *testing.T) {
	for round := 0; round < 20; round++ {
		st := acmeStore(t)
		id, old, cur := rotatedKey(t, st, "", scope.Scopes{})
		var deleted atomic.Bool
		var wg sync.WaitGroup
		var stale atomic.Int64
		stop := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					for _, s := range []string{old, cur} {
						after := deleted.Load()
						if _, err := st.KeyBySecret(s); err == nil && after {
							stale.Add(1)
						}
					}
				}
			}()
		}
		time.Sleep(time.Millisecond)
		require.NoError(t, st.DeleteKey(context.Background(), "acme", id, func(store.Key) error { return nil }))
		deleted.Store(true)
		time.Sleep(2 * time.Millisecond)
		close(stop)
		wg.Wait()
		require.Zero(t, stale.Load(), "a secret authenticated after its key's deletion returned")
	}
}

// TestOneTruth_CreatorAsItNowIs: a key asked for by another is written
// only if the asking key, read in the writing transaction, is still
// usable and Check accepts it as it now is: a creator switched off,
// expired, narrowed or whose holder went while the request was under way
// makes nothing.
func TestOneTruth_CreatorAsItNowIs(t *testing.T) {
	st := acmeStore(t)
	count := func() int {
		keys, err := st.Keys("acme")
		require.NoError(t, err)
		return len(keys)
	}
	by, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme", Scopes: scope.Scopes{Method: []string{"apikey.*"}}})
	require.NoError(t, err)
	before := count()

	// Check sees the creator as stored now, and its refusal writes nothing.
	narrowed := errors.New("narrowed")
	_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", By: by.ID, Check: func(k store.Key) error {
		assert.Equal(t, []string{"apikey.*"}, k.Scopes.Method)
		return narrowed
	}})
	require.ErrorIs(t, err, narrowed)
	assert.Equal(t, before, count())

	// A creator switched off meanwhile makes nothing.
	off := false
	_, err = st.UpdateKey(context.Background(), "acme", by.ID, func(store.Key) (store.KeyChange, error) { return store.KeyChange{Active: &off}, nil })
	require.NoError(t, err)
	_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", By: by.ID})
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Equal(t, before, count())

	// Nor one whose service account was switched off.
	_, err = st.CreateServiceAccount(context.Background(), "acme", "ci", "", true)
	require.NoError(t, err)
	held, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: store.ServiceAccountOwner("acme", "ci")})
	require.NoError(t, err)
	_, err = st.UpdateServiceAccount(context.Background(), "acme", "ci", nil, &off, allowAll)
	require.NoError(t, err)
	_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: held.Owner, By: held.ID})
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Equal(t, before+1, count())
}
