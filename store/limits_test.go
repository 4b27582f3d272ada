package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStore_QuotaConcurrent spends a quota from many goroutines at once:
// exactly as many calls succeed as the quota held, and it ends at zero.
func TestStore_QuotaConcurrent(t *testing.T) {
	st := MustOpenStore(t)
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 1000}})
	require.NoError(t, err)

	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				left, err := st.Spend(&k)
				var le *store.LimitError
				switch {
				case err == nil:
					assert.GreaterOrEqual(t, left, int64(0))
					ok.Add(1)
				case errors.As(err, &le):
					assert.True(t, le.Quota)
					limited.Add(1)
				default:
					t.Errorf("spend: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1000), ok.Load())
	assert.Equal(t, int64(2200), limited.Load())
	got, err := st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(0), got.Quota.Remaining)
}

// TestStore_QuotaPersists proves spent calls reach the file with the
// background flush, before any Close, and survive a reopen.
func TestStore_QuotaPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := MustOpenStoreAt(t, path)
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 10}})
	require.NoError(t, err)
	before := snapshot(t, st)
	for i := 0; i < 3; i++ {
		left, err := st.Spend(&k)
		require.NoError(t, err)
		assert.Equal(t, int64(9-i), left)
	}
	if !storetest.Etcd() { // on etcd a call leases a block of the quota, a write (quotalease.go)
		assert.Equal(t, before, snapshot(t, st), "spending wrote to the file on the call path")
	}

	// What a flush wrote is in a copy of the file taken while running.
	require.NoError(t, st.FlushUsage())
	backup := filepath.Join(t.TempDir(), "copy.db")
	f, err := os.Create(backup)
	require.NoError(t, err)
	_, err = st.WriteTo(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	got, err := openFile(t, backup).Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(7), got.Quota.Remaining)

	// Close writes the rest.
	_, err = st.Spend(&k)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	st = MustOpenStoreAt(t, path)
	got, err = st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(6), got.Quota.Remaining)
	assert.True(t, got.HasQuota)
}

// TestStore_QuotaReplaced proves a quota set by UpdateKey wins over calls
// spent in memory against the old one, even by a stale copy of the key.
func TestStore_QuotaReplaced(t *testing.T) {
	st := MustOpenStore(t)
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 5}})
	require.NoError(t, err)
	_, err = st.Spend(&k)
	require.NoError(t, err)
	q := &store.Quota{Remaining: 100}
	_, err = st.UpdateKey(context.Background(), "a", k.ID, func(store.Key) (store.KeyChange, error) {
		return store.KeyChange{Quota: &q}, nil
	})
	require.NoError(t, err)
	_, err = st.Spend(&k) // k is the key as it was before the update
	require.NoError(t, err)
	require.NoError(t, st.FlushUsage())
	got, err := st.Key("a", k.ID)
	require.NoError(t, err)
	want := int64(100)
	if storetest.Etcd() {
		// The call finds no block of the old quota left, and leases
		// from the new one (quotalease.go).
		want = 99
	}
	assert.Equal(t, want, got.Quota.Remaining)

	// Removing the quota removes it.
	var none *store.Quota
	_, err = st.UpdateKey(context.Background(), "a", k.ID, func(store.Key) (store.KeyChange, error) {
		return store.KeyChange{Quota: &none}, nil
	})
	require.NoError(t, err)
	got, err = st.Key("a", k.ID)
	require.NoError(t, err)
	assert.False(t, got.HasQuota)
	left, err := st.Spend(&got)
	require.NoError(t, err)
	assert.Equal(t, int64(-1), left)
}

// TestStore_RateLimit walks a token bucket through a fake clock.
func TestStore_RateLimit(t *testing.T) {
	now := testNow
	var mu sync.Mutex
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Rate: store.RateLimit{Limit: 2, Interval: 10 * time.Second}})
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		_, err := st.Spend(&k)
		require.NoError(t, err)
	}
	_, err = st.Spend(&k)
	var le *store.LimitError
	require.ErrorAs(t, err, &le)
	assert.False(t, le.Quota)
	assert.Equal(t, 5*time.Second, le.RetryAfter)
	assert.ErrorIs(t, err, store.ErrLimited)

	advance(2 * time.Second)
	_, err = st.Spend(&k)
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 3*time.Second, le.RetryAfter)
	advance(3 * time.Second)
	_, err = st.Spend(&k)
	require.NoError(t, err)

	// An idle bucket fills up to its limit, no further.
	advance(time.Hour)
	for i := 0; i < 2; i++ {
		_, err := st.Spend(&k)
		require.NoError(t, err)
	}
	_, err = st.Spend(&k)
	require.ErrorAs(t, err, &le)
}

func TestStore_QuotaRefill(t *testing.T) {
	now := time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }

	monthly, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 1, Refill: store.RefillMonthly, RefillAmount: 3}})
	require.NoError(t, err)
	daily, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 0, Refill: store.RefillDaily, RefillAmount: 2}})
	require.NoError(t, err)

	_, err = st.Spend(&monthly)
	require.NoError(t, err)
	var le *store.LimitError
	_, err = st.Spend(&monthly)
	require.ErrorAs(t, err, &le)
	assert.True(t, le.Quota)
	assert.Equal(t, time.Hour, le.RetryAfter, "until the first of February")
	_, err = st.Spend(&daily)
	require.ErrorAs(t, err, &le)
	assert.Equal(t, time.Hour, le.RetryAfter)

	set(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	for i := 0; i < 3; i++ {
		left, err := st.Spend(&monthly)
		require.NoError(t, err)
		assert.Equal(t, int64(2-i), left)
	}
	_, err = st.Spend(&monthly)
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 28*24*time.Hour, le.RetryAfter)
	for i := 0; i < 2; i++ {
		_, err := st.Spend(&daily)
		require.NoError(t, err)
	}
	_, err = st.Spend(&daily)
	require.ErrorAs(t, err, &le)

	// A refill is written with the quota: reopened, it is not refilled again.
	require.NoError(t, st.FlushUsage())
	got, err := st.Key("a", monthly.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(0), got.Quota.Remaining)
	assert.Equal(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), got.Quota.LastRefill.UTC())
}

func TestValidLimits(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    store.RateLimit
		q    *store.Quota
		ok   bool
	}{
		{"none", store.RateLimit{}, nil, true},
		{"rate", store.RateLimit{Limit: 10, Interval: time.Second}, nil, true},
		{"rate day", store.RateLimit{Limit: 1_000_000, Interval: 24 * time.Hour}, nil, true},
		{"rate negative", store.RateLimit{Limit: -1, Interval: time.Second}, nil, false},
		{"rate huge", store.RateLimit{Limit: 1_000_001, Interval: time.Second}, nil, false},
		{"rate no interval", store.RateLimit{Limit: 1}, nil, false},
		{"rate long interval", store.RateLimit{Limit: 1, Interval: 25 * time.Hour}, nil, false},
		{"quota", store.RateLimit{}, &store.Quota{Remaining: 0}, true},
		{"quota negative", store.RateLimit{}, &store.Quota{Remaining: -1}, false},
		{"quota daily", store.RateLimit{}, &store.Quota{Refill: "daily", RefillAmount: 1}, true},
		{"quota daily no amount", store.RateLimit{}, &store.Quota{Refill: "daily"}, false},
		{"quota weekly", store.RateLimit{}, &store.Quota{Refill: "weekly", RefillAmount: 1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := store.ValidLimits(tt.r, tt.q)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// TestStore_QuotaSurvivesOtherChanges: changing anything but the quota
// keeps the calls spent since the last flush spent.
func TestStore_QuotaSurvivesOtherChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := MustOpenStoreAt(t, path)
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 10}})
	require.NoError(t, err)
	for range 6 {
		_, err := st.Spend(&k)
		require.NoError(t, err)
	}
	comment := "renamed"
	got, err := st.UpdateKey(context.Background(), "a", k.ID, func(store.Key) (store.KeyChange, error) {
		return store.KeyChange{Comment: &comment}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, int64(4), got.Quota.Remaining, "update's reply")
	got, err = st.UpdateScopes(context.Background(), "a", k.ID, func(store.Key) (scope.Scopes, error) {
		return scope.Scopes{Method: []string{"server.list"}}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, int64(4), got.Quota.Remaining, "add_scope's reply")
	got, _, err = st.RotateKey(context.Background(), "a", k.ID, 0, func(store.Key) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, int64(4), got.Quota.Remaining, "rotate's reply")
	// The key as authentication now finds it spends on from 4.
	fresh, err := st.Key("a", k.ID)
	require.NoError(t, err)
	for i := range 4 {
		left, err := st.Spend(&fresh)
		require.NoError(t, err)
		assert.Equal(t, int64(3-i), left)
	}
	_, err = st.Spend(&fresh)
	assert.ErrorIs(t, err, store.ErrLimited)
	require.NoError(t, st.Close())
	got, err = MustOpenStoreAt(t, path).Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(0), got.Quota.Remaining)
}

// TestStore_QuotaShowsRefill: a refill that is due shows in the key, as the
// next call would find it, before any call.
func TestStore_QuotaShowsRefill(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	opts := store.Options{NoSync: true, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	st := openStore(t, path, opts)
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 1, Refill: store.RefillDaily, RefillAmount: 5}})
	require.NoError(t, err)
	_, err = st.Spend(&k)
	require.NoError(t, err)
	got, err := st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(0), got.Quota.Remaining)
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	got, err = st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(5), got.Quota.Remaining, "in memory")
	require.NoError(t, st.Close())
	st = openStore(t, path, opts)
	defer st.Close()
	got, err = st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(5), got.Quota.Remaining, "from the record")
}

// TestStore_QuotaStaleCopy: a call that authenticated with a copy of the
// key read before apikey.update set a new quota spends from the new one;
// no call is lost, so no more than the quota passes.
func TestStore_QuotaStaleCopy(t *testing.T) {
	st := MustOpenStore(t)
	old, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 100}})
	require.NoError(t, err)
	_, err = st.Spend(&old)
	require.NoError(t, err)
	q := &store.Quota{Remaining: 10}
	_, err = st.UpdateKey(context.Background(), "a", old.ID, func(store.Key) (store.KeyChange, error) { return store.KeyChange{Quota: &q}, nil })
	require.NoError(t, err)
	fresh, err := st.Key("a", old.ID)
	require.NoError(t, err)
	for range 3 {
		_, err := st.Spend(&fresh)
		require.NoError(t, err)
	}
	_, err = st.Spend(&old)
	require.NoError(t, err)
	left, err := st.Spend(&fresh)
	require.NoError(t, err)
	assert.Equal(t, int64(5), left, "five calls since the new quota of ten")
}

// TestStore_RateBurst: a burst is exactly the limit, for limits that do not
// divide the interval into whole nanoseconds too.
func TestStore_RateBurst(t *testing.T) {
	st := MustOpenStore(t) // the clock stands still: no token comes back
	for _, limit := range []int64{1, 3, 7, 1000, 700_000} {
		k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Rate: store.RateLimit{Limit: limit, Interval: time.Second}})
		require.NoError(t, err)
		var passed int64
		for range limit + 10 {
			if _, err := st.Spend(&k); err == nil {
				passed++
			}
		}
		assert.Equal(t, limit, passed, "limit %d", limit)
	}
}

// TestStore_QuotaFlushLoop: the background flush writes spent quota to the
// file by itself, with no call to FlushUsage or Close.
func TestStore_QuotaFlushLoop(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true, UsageFlush: 20 * time.Millisecond})
	defer st.Close()
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a", Quota: &store.Quota{Remaining: 10}})
	require.NoError(t, err)
	for range 4 {
		_, err := st.Spend(&k)
		require.NoError(t, err)
	}
	dir := t.TempDir()
	require.Eventually(t, func() bool {
		path := filepath.Join(dir, time.Now().Format("150405.000000000")+".db")
		f, err := os.Create(path)
		require.NoError(t, err)
		_, err = st.WriteTo(f)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		cp := openFileWith(t, path, store.Options{NoSync: true, UsageFlush: -1})
		defer cp.Close()
		got, err := cp.Key("a", k.ID)
		require.NoError(t, err)
		return got.Quota.Remaining == 6
	}, 5*time.Second, 25*time.Millisecond)
}
