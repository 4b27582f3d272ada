package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openUsersStore(t *testing.T, opts Options) (*Store, *time.Time, *sync.Mutex) {
	t.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	opts.NoSync, opts.UsageFlush = true, time.Hour
	opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st, err := Open(filepath.Join(t.TempDir(), "apikeyd.db"), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	for _, a := range []string{"acme", "beta"} {
		_, _, _, err = st.CreateAccount(context.Background(), a, "")
		require.NoError(t, err)
	}
	return st, &now, &mu
}

// TestUsers_Legacy: a user stored by an older version under a name without
// '@' logs in by that name or by <name>@<account>, is found within its
// account, keeps its keys' owner, and holds its name in its account.
func TestUsers_Legacy(t *testing.T) {
	st, _, _ := openUsersStore(t, Options{})
	legacy := userRecord{Name: "bob", Account: "acme", Hash: hashPassword("correct horse"), Created: time.Unix(1, 0).UTC()}
	require.NoError(t, st.update(context.Background(), func(tx kv.Tx) error {
		return tx.Bucket(bucketUsers).Put([]byte("bob"), legacy.marshal())
	}))
	k, _, err := st.CreateKey(context.Background(), NewKey{Account: "acme", Owner: UserOwner("bob")})
	require.NoError(t, err)

	for _, login := range []string{"bob", "bob@acme"} {
		u, err := st.Login(context.Background(), login, "correct horse", "10.0.0.1")
		require.NoError(t, err, login)
		assert.Equal(t, User{Name: "bob", Account: "acme", Login: "bob", Created: legacy.Created}, u)
		assert.Equal(t, k.Owner, UserOwner(u.Login), "the keys it held before")
	}
	_, err = st.Login(context.Background(), "bob@beta", "correct horse", "10.0.0.1")
	assert.ErrorIs(t, err, ErrLoginFailed, "not a user of beta")

	u, err := st.UserByName("acme", "bob")
	require.NoError(t, err)
	assert.Equal(t, "bob", u.Login)
	_, err = st.UserByName("beta", "bob")
	assert.ErrorIs(t, err, ErrUserNotFound)
	_, err = st.CreateUser(context.Background(), "acme", "bob", "another horse")
	assert.ErrorIs(t, err, ErrUserExists, "the name is taken in its account")
	nb, err := st.CreateUser(context.Background(), "beta", "bob", "another horse")
	require.NoError(t, err, "and free in another")
	assert.Equal(t, "bob@beta", nb.Login)

	users, err := st.Users("acme")
	require.NoError(t, err)
	assert.Equal(t, []User{u}, users)

	require.NoError(t, st.DeleteUser(context.Background(), "acme", "bob", func(Key) error { return nil }))
	_, err = st.Key("acme", k.ID)
	assert.ErrorIs(t, err, ErrNotFound, "its keys went with it")
	_, err = st.Login(context.Background(), "bob@beta", "another horse", "10.0.0.1")
	require.NoError(t, err, "beta's bob is untouched")
}

// TestUsers_Ceiling: failures from many addresses, each below its own
// limit, lock the name for every address once they reach the ceiling.
func TestUsers_Ceiling(t *testing.T) {
	st, _, _ := openUsersStore(t, Options{MaxLoginFailures: 5, MaxUserLoginFailures: 6})
	_, err := st.CreateUser(context.Background(), "acme", "alice", "correct horse")
	require.NoError(t, err)
	for i := range 5 {
		_, err := st.Login(context.Background(), "alice@acme", "wrong horse", "10.0.0."+string(rune('1'+i)))
		require.ErrorIs(t, err, ErrLoginFailed)
	}
	_, err = st.Login(context.Background(), "alice@acme", "wrong horse", "10.0.1.1")
	var locked *LockedError
	require.ErrorAs(t, err, &locked, "the sixth failure reaches the ceiling")
	assert.Equal(t, 15*time.Minute, locked.RetryAfter)
	runs, _ := st.HashStats()
	_, err = st.Login(context.Background(), "alice@acme", "correct horse", "192.0.2.7")
	require.ErrorAs(t, err, &locked, "every address is locked out")
	after, _ := st.HashStats()
	assert.Equal(t, runs, after, "without hashing")

	_, err = st.UnlockUser("acme", "alice")
	require.NoError(t, err)
	_, err = st.Login(context.Background(), "alice@acme", "correct horse", "192.0.2.7")
	require.NoError(t, err)
}

// TestUsers_GuessesInFlight: guesses in flight count toward the limits, so
// the ceiling can never be passed by guesses that arrive together; a right
// password whose user's throttling is cleared while it is hashed (a new
// password, say) is refused: the hash it checked may be stale.
func TestUsers_GuessesInFlight(t *testing.T) {
	g := &loginGuard{max: 5, userMax: 2, lockout: 15 * time.Minute, users: map[string]*userLogins{}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	t1, err := g.begin("alice@acme", "10.0.0.1", now)
	require.NoError(t, err)
	g.clear("alice@acme")
	assert.ErrorIs(t, g.end(t1, true, now), ErrLoginFailed)

	right, err := g.begin("alice@acme", "10.0.0.1", now)
	require.NoError(t, err)
	wrong, err := g.begin("alice@acme", "10.0.0.2", now)
	require.NoError(t, err)
	_, err = g.begin("alice@acme", "10.0.0.3", now)
	assert.ErrorIs(t, err, ErrBusy, "two in flight could reach the ceiling of two")
	require.NoError(t, g.end(wrong, false, now))
	_, err = g.begin("alice@acme", "10.0.0.3", now)
	assert.ErrorIs(t, err, ErrBusy, "one failed and one in flight: still at the ceiling")
	require.NoError(t, g.end(right, true, now))
	assert.Zero(t, g.users["alice@acme"].inflight)

	last, err := g.begin("alice@acme", "10.0.0.3", now)
	require.NoError(t, err)
	var locked *LockedError
	require.ErrorAs(t, g.end(last, false, now), &locked, "the second failure reaches the ceiling")
	_, err = g.begin("alice@acme", "10.0.0.4", now)
	require.ErrorAs(t, err, &locked)
	assert.False(t, errors.Is(err, ErrBusy))
}
