package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv/kvtest"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Reads reuse read transactions; these tests show that a read never sees
// the file as it was before a write that has returned.
func TestStore_ReadAfterWrite(t *testing.T) {
	st := MustOpenStore(t)
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Comment: "first"})
	require.NoError(t, err)

	for i := range 20 {
		got, err := st.Key("a", k.ID) // the transaction is kept for the next read
		require.NoError(t, err)
		want := fmt.Sprintf("v%d", i-1)
		if i == 0 {
			want = "first"
		}
		assert.Equal(t, want, got.Comment, "read %d", i)
		_, err = st.UpdateKey(context.Background(), "a", k.ID, func(store.Key) (store.KeyChange, error) {
			c := fmt.Sprintf("v%d", i)
			return store.KeyChange{Comment: &c}, nil
		})
		require.NoError(t, err)
	}

	_, err = st.UpdateScopes(context.Background(), "a", k.ID, func(store.Key) (scope.Scopes, error) {
		return scope.Scopes{}.With(scope.TypeMethod, []string{"server.list"}), nil
	})
	require.NoError(t, err)
	got, err := st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"server.list"}, got.Scopes.Values(scope.TypeMethod))

	require.NoError(t, st.DeleteKey(context.Background(), "a", k.ID, func(store.Key) error { return nil }))
	_, err = st.Key("a", k.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "a deleted key is gone for the next read")
	_, err = st.KeyBySecret(strings.Repeat("0", 32))
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// Many readers keep many transactions; writes that grow the file (and so
// must wait for every read transaction to end) still finish.
func TestStore_WritesGrowFileUnderReads(t *testing.T) {
	storetest.NeedsFile(t)
	st := MustOpenStore(t)
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	before, err := st.Size()
	require.NoError(t, err)

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 8 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := st.Key("a", k.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	kvtest.Within(t, 60*time.Second, "writes while reading", func() {
		long := strings.Repeat("x", 255)
		for i := range 300 {
			_, _, err := st.CreateKey(context.Background(), store.NewKey{Account: fmt.Sprintf("acct-%d", i), Comment: long})
			require.NoError(t, err)
		}
	})
	close(stop)
	readers.Wait()
	after, err := st.Size()
	require.NoError(t, err)
	assert.Greater(t, after, 2*before, "the writes grew the file")

	kvtest.Within(t, 10*time.Second, "Close", func() { require.NoError(t, st.Close()) })
	_, err = st.Key("a", k.ID)
	assert.Error(t, err, "reads fail after Close")
}

// Concurrent writers and readers: each writer reads its own write back at
// once, however the read transactions are shared.
func TestStore_ReadYourWritesConcurrently(t *testing.T) {
	st := MustOpenStore(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			acct := fmt.Sprintf("w%d", w)
			k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: acct})
			if !assert.NoError(t, err) {
				return
			}
			for i := range 50 {
				c := fmt.Sprintf("%d", i)
				_, err := st.UpdateKey(context.Background(), acct, k.ID, func(store.Key) (store.KeyChange, error) {
					return store.KeyChange{Comment: &c}, nil
				})
				if !assert.NoError(t, err) {
					return
				}
				got, err := st.Key(acct, k.ID)
				if !assert.NoError(t, err) || !assert.Equal(t, c, got.Comment) {
					return
				}
			}
		})
	}
	kvtest.Within(t, 60*time.Second, "readers and writers", wg.Wait)
}

// Authenticating a key from the auth cache, the call every request makes,
// allocates nothing.
func TestStore_CachedAuthAllocatesNothing(t *testing.T) {
	st := MustOpenStore(t)
	_, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	_, err = st.AuthKey(secret) // now cached
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := st.AuthKey(secret); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
