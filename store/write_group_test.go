package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWrites_LoneWriterDoesNotWait: a write with no other writer about
// commits at once. In a synctest bubble the clock moves only when every
// goroutine of the bubble waits, so a write that waited on a timer for a
// group to fill (bbolt's Batch waits MaxBatchDelay) would show it on the
// clock; a write that only syncs the file shows none.
func TestWrites_LoneWriterDoesNotWait(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, filepath.Join(dir, "apikeyd.db"), store.Options{})
		defer func() { require.NoError(t, st.Close()) }()
		for i := range 5 {
			start := time.Now()
			k, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme", Comment: fmt.Sprint(i)})
			require.NoError(t, err)
			assert.Zero(t, time.Since(start), "create %d waited on a timer", i)
			got, err := st.KeyBySecret(secret)
			require.NoError(t, err)
			assert.Equal(t, k.ID, got.ID)
		}
	})
}

// TestWrites_ConcurrentCreates: 64 writers at once on a synced file all
// succeed, and every key is there afterwards, in the file as reopened.
func TestWrites_ConcurrentCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := openStore(t, path, store.Options{})
	const writers, each = 64, 5
	secrets := make([][]string, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme", Comment: fmt.Sprint(w, i)})
				if assert.NoError(t, err) {
					secrets[w] = append(secrets[w], secret)
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, st.Close())

	st = MustOpenStoreAt(t, path)
	keys, err := st.Keys("acme")
	require.NoError(t, err)
	assert.Len(t, keys, writers*each)
	for _, ss := range secrets {
		require.Len(t, ss, each)
		for _, secret := range ss {
			_, err := st.KeyBySecret(secret)
			assert.NoError(t, err)
		}
	}
}
