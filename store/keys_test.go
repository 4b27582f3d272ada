package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// MustOpenStore opens a store on a new file in a temp dir, closed at cleanup.
func MustOpenStore(tb testing.TB) *store.Store {
	tb.Helper()
	return MustOpenStoreAt(tb, filepath.Join(tb.TempDir(), "apikeyd.db"))
}

func MustOpenStoreAt(tb testing.TB, path string) *store.Store {
	tb.Helper()
	st := openStore(tb, path, store.Options{NoSync: true, Now: func() time.Time { return testNow }})
	return st
}

func snapshot(tb testing.TB, st *store.Store) [32]byte {
	tb.Helper()
	h := sha256.New()
	_, err := st.WriteTo(h)
	require.NoError(tb, err)
	return [32]byte(h.Sum(nil))
}

func TestStore_CreateKey(t *testing.T) {
	st := MustOpenStore(t)
	scopes := scope.Scopes{Method: []string{"server.*"}, Name: []string{"web1"}}
	k, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme", Scopes: scopes, Comment: "panel"})
	require.NoError(t, err)
	assert.True(t, store.IsSecret(secret))
	assert.True(t, store.IsKeyID(k.ID))
	assert.False(t, store.IsSecret(k.ID), "an id is never mistaken for a secret")
	assert.Equal(t, store.Key{ID: k.ID, Account: "acme", Scopes: scopes, Comment: "panel", Created: testNow, Active: true}, k)

	for _, ref := range []string{k.ID, secret} {
		got, err := st.Key("acme", ref)
		require.NoError(t, err)
		assert.Equal(t, k, got)
	}
	got, err := st.KeyBySecret(secret)
	require.NoError(t, err)
	assert.Equal(t, k, got)

	t.Run("ErrNotFound", func(t *testing.T) {
		for _, ref := range []string{"", "x", secret[:31], "ffffffffffffffffffffffffffffffff", "01890a5d-ac96-774b-bcce-b302099a8057"} {
			_, err := st.Key("acme", ref)
			assert.ErrorIs(t, err, store.ErrNotFound, ref)
		}
		_, err := st.Key("other", k.ID)
		assert.ErrorIs(t, err, store.ErrNotFound, "another account's key")
		_, err = st.Key("other", secret)
		assert.ErrorIs(t, err, store.ErrNotFound)
		_, err = st.KeyBySecret("ffffffffffffffffffffffffffffffff")
		assert.ErrorIs(t, err, store.ErrNotFound)
		_, err = st.KeyBySecret(k.ID)
		assert.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestStore_Keys(t *testing.T) {
	st := MustOpenStore(t)
	var ids []string
	for i := 0; i < 5; i++ {
		k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
		require.NoError(t, err)
		ids = append(ids, k.ID)
		_, _, err = st.CreateKey(context.Background(), store.NewKey{Account: "ab"}) // a prefix of no other account
		require.NoError(t, err)
	}
	keys, err := st.Keys("a")
	require.NoError(t, err)
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
		assert.Equal(t, "a", k.Account)
	}
	assert.Equal(t, ids, got, "oldest first, this account only")
	none, err := st.Keys("nobody")
	require.NoError(t, err)
	assert.NotNil(t, none)
	assert.Empty(t, none)
}

// TestStore_Secrets: secrets are unique, and the file holds their digests,
// never the secrets themselves.
func TestStore_Secrets(t *testing.T) {
	storetest.NeedsFile(t)
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := MustOpenStoreAt(t, path)
	seen := map[string]bool{}
	var secrets []string
	for i := 0; i < 200; i++ {
		_, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
		require.NoError(t, err)
		require.False(t, seen[secret])
		seen[secret] = true
		secrets = append(secrets, secret)
	}
	require.NoError(t, st.Close())
	file, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, s := range secrets {
		assert.False(t, bytes.Contains(file, []byte(s)), "the file holds a secret")
		d := sha256.Sum256([]byte(s))
		assert.True(t, bytes.Contains(file, d[:]), "the file lacks a secret's digest")
	}
}

func TestStore_Reopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := openStore(t, path, store.Options{Now: func() time.Time { return testNow }})
	k, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Scopes: scope.Scopes{Name: []string{"web1"}}, Comment: "kept"})
	require.NoError(t, err)
	gone, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	require.NoError(t, st.DeleteKey(context.Background(), "a", gone.ID, func(store.Key) error { return nil }))
	require.NoError(t, st.Close())

	st = MustOpenStoreAt(t, path)
	got, err := st.KeyBySecret(secret)
	require.NoError(t, err)
	assert.Equal(t, k, got)
	_, err = st.Key("a", gone.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	n, err := st.CountKeys()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestStore_Schema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := MustOpenStoreAt(t, path)
	require.NoError(t, st.Close())

	db := openRaw(t, path)
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("99"))
	}))
	require.NoError(t, db.Close())

	_, err := storetest.Open(t, path, store.Options{})
	require.ErrorIs(t, err, store.ErrSchema)
	assert.Contains(t, err.Error(), "99")
}

func TestStore_Locked(t *testing.T) {
	storetest.NeedsFile(t)
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := MustOpenStoreAt(t, path)
	_, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	start := time.Now()
	_, err = store.Open(path, store.Options{LockTimeout: 200 * time.Millisecond})
	assert.ErrorIs(t, err, store.ErrLocked)
	assert.Less(t, time.Since(start), 2*time.Second)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused open changed the file")
}

func TestStore_Bootstrap(t *testing.T) {
	st := MustOpenStore(t)
	const secret = "00112233445566778899aabbccddeeff"
	_, _, err := st.Bootstrap("short")
	assert.Error(t, err)
	_, _, err = st.Bootstrap("00112233445566778899AABBCCDDEEFF")
	assert.Error(t, err, "upper-case hex is not a secret")

	k, created, err := st.Bootstrap(secret)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "operator", k.Account)
	assert.True(t, k.Scopes.IsUnrestricted())

	before := snapshot(t, st)
	_, created, err = st.Bootstrap("ffeeddccbbaa99887766554433221100")
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, before, snapshot(t, st), "bootstrap of a store with keys wrote")
	got, err := st.KeyBySecret(secret)
	require.NoError(t, err)
	assert.Equal(t, k.ID, got.ID)
}

func TestStore_UpdateScopes(t *testing.T) {
	st := MustOpenStore(t)
	k, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Scopes: scope.Scopes{Name: []string{"web1"}}})
	require.NoError(t, err)
	_, err = st.KeyBySecret(secret) // cached now
	require.NoError(t, err)

	t.Run("ErrRefused", func(t *testing.T) {
		before := snapshot(t, st)
		refusal := errors.New("refused")
		_, err := st.UpdateScopes(context.Background(), "a", k.ID, func(seen store.Key) (scope.Scopes, error) {
			assert.Equal(t, k, seen)
			return scope.Scopes{}, refusal
		})
		assert.ErrorIs(t, err, refusal)
		assert.Equal(t, before, snapshot(t, st))
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := st.UpdateScopes(context.Background(), "b", k.ID, func(store.Key) (scope.Scopes, error) {
			t.Fatal("change ran for another account's key")
			return scope.Scopes{}, nil
		})
		assert.ErrorIs(t, err, store.ErrNotFound)
	})
	t.Run("Unchanged", func(t *testing.T) {
		before := snapshot(t, st)
		got, err := st.UpdateScopes(context.Background(), "a", secret, func(seen store.Key) (scope.Scopes, error) { return seen.Scopes, nil })
		require.NoError(t, err)
		assert.Equal(t, k, got)
		assert.Equal(t, before, snapshot(t, st), "an unchanged key was written")
	})
	t.Run("OK", func(t *testing.T) {
		next := scope.Scopes{Method: []string{"server.reboot"}, Name: []string{"web1"}}
		got, err := st.UpdateScopes(context.Background(), "a", k.ID, func(store.Key) (scope.Scopes, error) { return next, nil })
		require.NoError(t, err)
		assert.Equal(t, next, got.Scopes)
		// Authentication sees the change at once, though the key was cached.
		auth, err := st.KeyBySecret(secret)
		require.NoError(t, err)
		assert.Equal(t, next, auth.Scopes)
	})
}

func TestStore_DeleteKey(t *testing.T) {
	st := MustOpenStore(t)
	k, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	_, err = st.KeyBySecret(secret)
	require.NoError(t, err)

	before := snapshot(t, st)
	refusal := errors.New("refused")
	assert.ErrorIs(t, st.DeleteKey(context.Background(), "a", k.ID, func(store.Key) error { return refusal }), refusal)
	assert.ErrorIs(t, st.DeleteKey(context.Background(), "b", k.ID, func(store.Key) error { return nil }), store.ErrNotFound)
	assert.Equal(t, before, snapshot(t, st))

	require.NoError(t, st.DeleteKey(context.Background(), "a", secret, func(store.Key) error { return nil }))
	_, err = st.KeyBySecret(secret)
	assert.ErrorIs(t, err, store.ErrNotFound, "a deleted key still authenticates")
	_, err = st.Key("a", k.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	keys, err := st.Keys("a")
	require.NoError(t, err)
	assert.Empty(t, keys)
}

// TestStore_Concurrent: concurrent creates all land, with distinct ids;
// concurrent authentication during writes never sees a deleted key after
// its delete returned.
func TestStore_Concurrent(t *testing.T) {
	st := MustOpenStore(t)
	var wg sync.WaitGroup
	ids := make([]string, 50)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
			assert.NoError(t, err)
			ids[i] = k.ID
			for j := 0; j < 20; j++ {
				_, err := st.KeyBySecret(secret)
				assert.NoError(t, err)
			}
			assert.NoError(t, st.DeleteKey(context.Background(), "a", k.ID, func(store.Key) error { return nil }))
			_, err = st.KeyBySecret(secret)
			assert.ErrorIs(t, err, store.ErrNotFound)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range ids {
		assert.False(t, seen[id])
		seen[id] = true
	}
	n, err := st.CountKeys()
	require.NoError(t, err)
	assert.Equal(t, 0, n)
}

func TestStore_WriteTo(t *testing.T) {
	st := MustOpenStore(t)
	k, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Comment: "backed up"})
	require.NoError(t, err)
	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(backup)
	require.NoError(t, err)
	_, err = st.WriteTo(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	copyStore := openFile(t, backup)
	got, err := copyStore.KeyBySecret(secret)
	require.NoError(t, err)
	assert.Equal(t, k, got)
}

func TestStore_RefShapes(t *testing.T) {
	// The reference: what the shapes mean, a byte at a time.
	hex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
	isID := func(s string) bool {
		if len(s) != 36 {
			return false
		}
		for i := range len(s) {
			if dash := i == 8 || i == 13 || i == 18 || i == 23; dash && s[i] != '-' || !dash && !hex(s[i]) {
				return false
			}
		}
		return true
	}
	isSecret := func(s string) bool {
		if len(s) != 32 {
			return false
		}
		for i := range len(s) {
			if !hex(s[i]) {
				return false
			}
		}
		return true
	}
	const id = "01a206e5-740b-7604-8209-7c48d77d06bd"
	const secret = "00112233445566778899aabbccddeeff"
	require.True(t, store.IsKeyID(id))
	require.True(t, store.IsSecret(secret))
	// Every byte value at every position of both shapes.
	for _, good := range []string{id, secret} {
		for i := range len(good) {
			for c := range 256 {
				s := good[:i] + string([]byte{byte(c)}) + good[i+1:]
				require.Equal(t, isID(s), store.IsKeyID(s), "IsKeyID(%q)", s)
				require.Equal(t, isSecret(s), store.IsSecret(s), "IsSecret(%q)", s)
			}
		}
		for _, s := range []string{good[:len(good)-1], good + "0", "", good[1:] + "0"} {
			assert.Equal(t, isID(s), store.IsKeyID(s), "IsKeyID(%q)", s)
			assert.Equal(t, isSecret(s), store.IsSecret(s), "IsSecret(%q)", s)
		}
	}
	assert.False(t, store.IsSecret(id))
	assert.False(t, store.IsKeyID(secret))
}
