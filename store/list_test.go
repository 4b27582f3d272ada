package store_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// walkKeys pages through q one key at a time by position and returns the
// ids seen.
func walkKeys(t *testing.T, st *store.Store, q store.KeyQuery) []string {
	t.Helper()
	var seen []string
	for range 100 {
		p, err := st.ListKeys(q)
		require.NoError(t, err)
		for _, k := range p.Keys {
			seen = append(seen, k.ID)
		}
		if p.Next == nil {
			return seen
		}
		q.After = p.Next
	}
	t.Fatal("the walk does not end")
	return nil
}

// TestStore_ListKeysNeighbours walks accounts whose index ranges touch
// ("a", "ab", "b"), both ways, by position: each walk sees its own keys
// only, each once, whatever the page size.
func TestStore_ListKeysNeighbours(t *testing.T) {
	st := MustOpenStore(t)
	want := map[string][]string{}
	for i := 0; i < 5; i++ {
		for _, acct := range []string{"a", "ab", "b"} {
			k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: acct})
			require.NoError(t, err)
			want[acct] = append(want[acct], k.ID)
		}
	}
	for acct, ids := range want {
		slices.Sort(ids)
		for _, size := range []int{1, 2, 5, 6} {
			p, err := st.ListKeys(store.KeyQuery{Account: acct, Limit: size})
			require.NoError(t, err)
			assert.Equal(t, 5, p.Total)
			assert.Equal(t, ids, walkKeys(t, st, store.KeyQuery{Account: acct, Limit: size}), "account %s size %d", acct, size)
			rev := slices.Clone(ids)
			slices.Reverse(rev)
			assert.Equal(t, rev, walkKeys(t, st, store.KeyQuery{Account: acct, Limit: size, Desc: true}), "account %s size %d desc", acct, size)
			// Filtered walks take the other path through the index.
			every := func(*store.Key) bool { return true }
			assert.Equal(t, rev, walkKeys(t, st, store.KeyQuery{Account: acct, Limit: size, Desc: true, Match: every}))
		}
	}
	p, err := st.ListKeys(store.KeyQuery{Account: "nobody", Limit: 10, Desc: true})
	require.NoError(t, err)
	assert.Empty(t, p.Keys)
	assert.Zero(t, p.Total)

	for _, q := range []store.KeyQuery{
		{Account: "a", Limit: 0},
		{Account: "a", Limit: 1, Offset: -1},
		{Account: "a", Limit: 1, Sort: "secret"},
	} {
		_, err := st.ListKeys(q)
		assert.ErrorIs(t, err, store.ErrBadQuery)
	}
}

// TestStore_KeyCounts proves list totals follow creates and deletes, and
// that a file written before key counts existed is counted on open.
func TestStore_KeyCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := openStore(t, path, store.Options{NoSync: true})
	_, _, _, err := st.CreateAccount(context.Background(), "a", "") // with its first key
	require.NoError(t, err)
	_, err = st.CreateServiceAccount(context.Background(), "a", "ci", "", true)
	require.NoError(t, err)
	var ids []string
	for i := 0; i < 4; i++ {
		nk := store.NewKey{Account: "a"}
		if i%2 == 0 {
			nk.Owner = store.ServiceAccountOwner("a", "ci")
		}
		k, _, err := st.CreateKey(context.Background(), nk)
		require.NoError(t, err)
		ids = append(ids, k.ID)
	}
	require.NoError(t, st.DeleteKey(context.Background(), "a", ids[0], func(store.Key) error { return nil }))
	total := func(st *store.Store, owner string, byOwner bool) int {
		p, err := st.ListKeys(store.KeyQuery{Account: "a", Owner: owner, OwnerSet: byOwner, Limit: 1})
		require.NoError(t, err)
		return p.Total
	}
	assert.Equal(t, 4, total(st, "", false))
	assert.Equal(t, 1, total(st, store.ServiceAccountOwner("a", "ci"), true))
	assert.Equal(t, 3, total(st, "", true))
	require.NoError(t, st.Close())

	db := openRaw(t, path)
	require.NoError(t, db.Update(func(tx kv.Tx) error { return tx.DeleteBucket([]byte("key_counts")) }))
	require.NoError(t, db.Close())

	st = MustOpenStoreAt(t, path)
	assert.Equal(t, 4, total(st, "", false))
	assert.Equal(t, 1, total(st, store.ServiceAccountOwner("a", "ci"), true))
}

// TestStore_SchemaMigration opens a version-1 file whose key counts are
// wrong (as a version-1 build would leave them): it is counted anew and
// raised to the current version, which a version-1 build then refuses.
func TestStore_SchemaMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := openStore(t, path, store.Options{NoSync: true})
	for range 3 {
		_, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
		require.NoError(t, err)
	}
	require.NoError(t, st.Close())

	db := openRaw(t, path)
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		if err := tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("1")); err != nil {
			return err
		}
		return tx.Bucket([]byte("key_counts")).Put([]byte("a"), []byte{9})
	}))
	require.NoError(t, db.Close())

	st = MustOpenStoreAt(t, path)
	p, err := st.ListKeys(store.KeyQuery{Account: "a", Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 3, p.Total)
	require.NoError(t, st.Close())
	db = openRaw(t, path)
	defer db.Close()
	require.NoError(t, db.View(func(tx kv.Tx) error {
		assert.Equal(t, "3", string(tx.Bucket([]byte("meta")).Get([]byte("schema"))))
		return nil
	}))
}
