package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv/kvtest"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openNode opens a store over a new node of c.
func openNode(t *testing.T, c *kvtest.Cluster) (*store.Store, *kvtest.Node) {
	t.Helper()
	n := c.Node()
	st, err := store.OpenDB(n, store.Options{Now: func() time.Time { return testNow }, UsageFlush: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st, n
}

// A store over an engine that is not a file has none of a file's
// features, says so, and closes its engine.
func TestOpenDB_NotFile(t *testing.T) {
	st, n := openNode(t, kvtest.NewCluster(t))
	_, _, _, err := st.CreateAccount(context.Background(), "a", "")
	require.NoError(t, err)
	_, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	_, err = st.KeyBySecret(secret)
	require.NoError(t, err)

	assert.Empty(t, st.Path())
	_, err = st.Size()
	assert.ErrorIs(t, err, store.ErrNotFile)
	// Its backup is a data file all the same, which opens and
	// authenticates the key.
	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(backup)
	require.NoError(t, err)
	_, err = st.WriteTo(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	restored, err := store.Open(backup, store.Options{})
	require.NoError(t, err)
	_, err = restored.KeyBySecret(secret)
	assert.NoError(t, err)
	require.NoError(t, restored.Close())
	assert.NoError(t, st.CheckKeys())
	assert.NoError(t, st.Ready())

	require.NoError(t, st.Close())
	assert.True(t, n.Closed(), "Close closes the engine")
}

// A node that cannot vouch for its data refuses to authenticate, a key
// it has cached as well as one it has not, and a login, and authenticates
// again once it has caught up.
func TestStore_StaleRefusesAuthentication(t *testing.T) {
	st, n := openNode(t, kvtest.NewCluster(t))
	_, _, _, err := st.CreateAccount(context.Background(), "a", "")
	require.NoError(t, err)
	_, cachedSecret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	_, uncachedSecret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	_, err = st.AuthKey(cachedSecret)
	require.NoError(t, err)
	_, err = st.CreateUser(context.Background(), "a", "alice", "correct horse")
	require.NoError(t, err)
	login := store.LoginName("alice", "a")

	n.SetStale(true)
	before := st.Stats()
	for name, secret := range map[string]string{"cached": cachedSecret, "uncached": uncachedSecret} {
		_, err := st.AuthKey(secret)
		assert.ErrorIs(t, err, store.ErrStale, name)
		_, err = st.KeyBySecret(secret)
		assert.ErrorIs(t, err, store.ErrStale, name)
		_, _, err = st.InspectSecret(secret)
		assert.ErrorIs(t, err, store.ErrStale, name)
	}
	_, err = st.Login(context.Background(), login, "correct horse", "192.0.2.1")
	assert.ErrorIs(t, err, store.ErrStale)
	after := st.Stats()
	assert.Equal(t, before.AuthCacheHits, after.AuthCacheHits, "the cache was not asked")
	assert.Equal(t, before.AuthCacheMisses, after.AuthCacheMisses, "the engine was not asked")

	n.SetStale(false)
	for _, secret := range []string{cachedSecret, uncachedSecret} {
		_, err := st.AuthKey(secret)
		assert.NoError(t, err)
	}
	_, err = st.Login(context.Background(), login, "correct horse", "192.0.2.1")
	assert.NoError(t, err)
}

// Another node's write reaches this node's authentications at once: its
// cached key state is dropped when the engine tells of the write.
func TestOpenDB_OtherNodesWrites(t *testing.T) {
	c := kvtest.NewCluster(t)
	here, _ := openNode(t, c)
	there, _ := openNode(t, c)
	_, _, _, err := here.CreateAccount(context.Background(), "a", "")
	require.NoError(t, err)
	k, secret, err := here.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	_, err = here.AuthKey(secret) // cached here
	require.NoError(t, err)

	off := false
	_, err = there.UpdateKey(context.Background(), "a", k.ID, func(store.Key) (store.KeyChange, error) {
		return store.KeyChange{Active: &off}, nil
	})
	require.NoError(t, err)
	_, err = here.AuthKey(secret)
	assert.ErrorIs(t, err, store.ErrNotFound, "switched off on another node")

	_, err = there.CreateServiceAccount(context.Background(), "a", "ci", "", false)
	require.NoError(t, err)
	held, heldSecret, err := here.CreateKey(context.Background(), store.NewKey{Account: "a", Owner: store.ServiceAccountOwner("a", "ci")})
	require.NoError(t, err)
	_, _, err = here.InspectSecret(heldSecret)
	require.NoError(t, err)
	on := true
	_, err = there.UpdateServiceAccount(context.Background(), "a", "ci", nil, &on, allowAll)
	require.NoError(t, err)
	got, err := here.AuthKey(heldSecret)
	require.NoError(t, err, "its holder switched on on another node")
	assert.Equal(t, held.ID, got.ID)
}

// Quotas in memory are read again from their records once another node
// has written them.
func TestOpenDB_OtherNodesQuotas(t *testing.T) {
	c := kvtest.NewCluster(t)
	here, _ := openNode(t, c)
	there, _ := openNode(t, c)
	k, _, err := here.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 10}})
	require.NoError(t, err)
	spend := func(st *store.Store, n int) int64 {
		t.Helper()
		key, err := st.Key("a", k.ID)
		require.NoError(t, err)
		var left int64
		for range n {
			left, err = st.Spend(&key)
			require.NoError(t, err)
		}
		return left
	}
	assert.Equal(t, int64(9), spend(here, 1))
	require.NoError(t, here.FlushUsage())
	assert.Equal(t, int64(6), spend(there, 3))
	require.NoError(t, there.FlushUsage())

	got, err := here.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(6), got.Quota.Remaining, "the other node's spending")
	assert.Equal(t, int64(5), spend(here, 1))
}

// A file's store knows its path, and size, also once closed: callers open
// the file again by it.
func TestOpen_Path(t *testing.T) {
	storetest.NeedsFile(t)
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := openStore(t, path, store.Options{NoSync: true})
	assert.Equal(t, path, st.Path())
	size, err := st.Size()
	require.NoError(t, err)
	assert.Positive(t, size)
	require.NoError(t, st.Close())
	assert.Equal(t, path, st.Path())
}
