package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStore_Usage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	now := testNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := openStore(t, path, store.Options{NoSync: true, Now: clock, UsageFlush: time.Hour})
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	gone, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)

	// Uses count at once, before any write.
	before := snapshot(t, st)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); st.RecordUse(k.ID) }()
	}
	wg.Wait()
	st.RecordUse(gone.ID)
	assert.Equal(t, before, snapshot(t, st), "recording a use wrote to the file")
	got, err := st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(50), got.UseCount)
	assert.Equal(t, testNow, got.LastUsed)

	// A flush writes them; a deleted key's uses are dropped.
	require.NoError(t, st.DeleteKey(context.Background(), "a", gone.ID, func(store.Key) error { return nil }))
	require.NoError(t, st.FlushUsage())
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	st.RecordUse(k.ID)
	got, err = st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(51), got.UseCount)
	assert.Equal(t, testNow.Add(time.Minute), got.LastUsed)

	// Close writes the rest; reopened, every use is there.
	require.NoError(t, st.Close())
	st = MustOpenStoreAt(t, path)
	got, err = st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(51), got.UseCount)
	assert.Equal(t, testNow.Add(time.Minute), got.LastUsed)
}

func TestStore_UsageOff(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true, UsageFlush: -1})
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	st.RecordUse(k.ID)
	require.NoError(t, st.FlushUsage())
	got, err := st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Zero(t, got.UseCount)
}

// Uses recorded while flushes run are each written once: none falls
// between a flush taking the pending uses and the next.
func TestStore_UsageDuringFlushes(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true, UsageFlush: time.Hour})
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
	require.NoError(t, err)
	const workers, each = 4, 5000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				st.RecordUse(k.ID)
			}
		})
	}
	done := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-done:
				return
			default:
				assert.NoError(t, st.FlushUsage())
			}
		}
	}()
	wg.Wait()
	close(done)
	<-flushed
	require.NoError(t, st.FlushUsage())
	got, err := st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(workers*each), got.UseCount)
}
