package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLimiter_Forgets: memory holds limits only for keys used lately that
// still exist: full buckets are pruned, deleted keys' quotas dropped at the
// next flush, however the key went.
func TestLimiter_Forgets(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := Open(filepath.Join(t.TempDir(), "apikeyd.db"), Options{NoSync: true, Now: func() time.Time { return now }, UsageFlush: time.Hour})
	require.NoError(t, err)
	defer st.Close()
	_, _, _, err = st.CreateAccount(context.Background(), "acme", "")
	require.NoError(t, err)
	k, _, err := st.CreateKey(context.Background(), NewKey{Account: "acme", Rate: RateLimit{Limit: 2, Interval: time.Minute}, Quota: &Quota{Remaining: 9}})
	require.NoError(t, err)
	_, err = st.Spend(&k)
	require.NoError(t, err)

	st.limits.prune(now)
	assert.Len(t, st.limits.buckets, 1, "a bucket not yet full again stays")
	st.limits.prune(now.Add(30 * time.Second))
	assert.Empty(t, st.limits.buckets, "a full bucket is as good as none")

	require.NoError(t, st.DeleteAccount(context.Background(), "acme", func(Key) error { return nil }))
	assert.Len(t, st.limits.quotas, 1)
	require.NoError(t, st.FlushUsage())
	assert.Empty(t, st.limits.quotas, "the deleted key's quota is gone")
}
