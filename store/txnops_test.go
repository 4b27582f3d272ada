package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/internal/etcdtest"
	"github.com/apikeyd/apikeyd/store/kv/etcdkv"
	"github.com/apikeyd/apikeyd/store/storetest"
)

// The audit trail's background writes on an etcd that keeps its default
// --max-txn-ops (128): no write the store makes by itself may need more
// operations than that, or it fails at every try and its work is never
// done.

// openCapped opens a store on a one-member etcd that takes at most 128
// operations in a transaction, as etcd does unless told otherwise.
func openCapped(t *testing.T, opts store.Options) *store.Store {
	t.Helper()
	c := etcdtest.Start(t, 1, etcdtest.Options{MaxTxnOps: 128})
	db, err := etcdkv.Open(etcdkv.Config{Endpoints: c.Endpoints(), Prefix: "/capped/"})
	require.NoError(t, err)
	st, err := store.OpenDB(db, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestAudit_FailuresFlushUnderTxnCap: failed authentications from many
// sources in one flush interval, which anyone can send without a key, are
// all written: the flush does not fail for good, its counts held in memory
// for ever and the failures missing from the trail.
func TestAudit_FailuresFlushUnderTxnCap(t *testing.T) {
	storetest.OnEtcdAlready(t)
	clock := &auditClock{now: testNow}
	st := openCapped(t, store.Options{Now: clock.Now, UsageFlush: time.Hour})
	const sources = 300
	for i := range sources {
		st.AuditFailure(store.AuditRecord{SourceIP: fmt.Sprintf("198.51.%d.%d", i/256, i%256),
			Method: "apikey.list", Outcome: "invalid_key"})
	}
	require.NoError(t, st.FlushAudit())
	recs, _, err := st.AuditRecords(store.AuditQuery{AllAccounts: true, Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, recs, sources, "one record per source")

	// Counts written before grow in place.
	st.AuditFailure(store.AuditRecord{SourceIP: "198.51.0.0", Method: "apikey.list", Outcome: "invalid_key"})
	require.NoError(t, st.FlushAudit())
	recs, _, err = st.AuditRecords(store.AuditQuery{AllAccounts: true, Limit: 1000})
	require.NoError(t, err)
	require.Len(t, recs, sources)
	for _, r := range recs {
		want := uint64(1)
		if r.SourceIP == "198.51.0.0" {
			want = 2
		}
		assert.Equal(t, want, r.Count, r.SourceIP)
	}
}

// TestAudit_RetentionUnderTxnCap: the background loop deletes records past
// the retention period on etcd too, however many have expired at once.
func TestAudit_RetentionUnderTxnCap(t *testing.T) {
	storetest.OnEtcdAlready(t)
	clock := &auditClock{now: testNow}
	st := openCapped(t, store.Options{Now: clock.Now, UsageFlush: 10 * time.Millisecond, AuditRetention: 48 * time.Hour})
	for range store.AuditPruneBatch + 88 {
		require.NoError(t, st.Audit(store.AuditRecord{Account: "acme", Method: "apikey.create", Outcome: "ok"}))
	}
	clock.Set(testNow.Add(72 * time.Hour))
	require.NoError(t, st.Audit(store.AuditRecord{Account: "acme", Method: "apikey.create", Outcome: "ok"}))
	require.Eventually(t, func() bool { all, _ := auditCount(t, st); return all == 1 },
		20*time.Second, 50*time.Millisecond, "only the record within retention is kept")
}
