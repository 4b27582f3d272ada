package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStore_LastUsedNotBeforeCreated: on the real clock uses are timed by a
// coarse clock that may lag the second a key was created in. A key used
// just after a second begins must still never show last_used_at earlier
// than created, neither before the flush nor after it.
func TestStore_LastUsedNotBeforeCreated(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true, UsageFlush: time.Hour})
	for i := 0; i < 3; i++ {
		// Just after a second begins the coarse clock most likely still
		// holds the second before.
		now := time.Now()
		time.Sleep(now.Truncate(time.Second).Add(time.Second + 5*time.Millisecond).Sub(now))
		k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "a"})
		require.NoError(t, err)
		st.RecordUse(k.ID)
		got, err := st.Key("a", k.ID)
		require.NoError(t, err)
		assert.False(t, got.LastUsed.Before(got.Created), "pending: last used %s, created %s", got.LastUsed, got.Created)
		require.NoError(t, st.FlushUsage())
		got, err = st.Key("a", k.ID)
		require.NoError(t, err)
		assert.Equal(t, int64(1), got.UseCount)
		assert.False(t, got.LastUsed.Before(got.Created), "flushed: last used %s, created %s", got.LastUsed, got.Created)
	}
}
