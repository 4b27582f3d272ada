package store_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auditClock is an injectable clock, safe for the background loop.
type auditClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *auditClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *auditClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func auditCount(t *testing.T, st *store.Store) (all, acme int) {
	t.Helper()
	recs, _, err := st.AuditRecords(store.AuditQuery{AllAccounts: true, Limit: 10000})
	require.NoError(t, err)
	mine, _, err := st.AuditRecords(store.AuditQuery{Account: "acme", Limit: 10000})
	require.NoError(t, err)
	return len(recs), len(mine)
}

// TestStore_AuditPruneBatches: PruneAudit deletes only records older than
// the cutoff, oldest first, at most max per call, from the trail and from
// its account index alike.
func TestStore_AuditPruneBatches(t *testing.T) {
	clock := &auditClock{now: testNow}
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"),
		store.Options{NoSync: true, Now: clock.Now, UsageFlush: time.Hour})
	defer st.Close()
	for day := range 10 { // 10 days, 2 records a day, one of acme
		clock.Set(testNow.Add(time.Duration(day) * 24 * time.Hour))
		require.NoError(t, st.Audit(store.AuditRecord{Account: "acme", Method: "apikey.create", Outcome: "ok"}))
		require.NoError(t, st.Audit(store.AuditRecord{Method: "apikey.list", Outcome: "invalid_key"}))
	}
	cutoff := testNow.Add(7 * 24 * time.Hour) // days 0..6 are older: 14 records
	var batches []int
	for {
		n, err := st.PruneAudit(cutoff, 4)
		require.NoError(t, err)
		batches = append(batches, n)
		if n < 4 {
			break
		}
	}
	assert.Equal(t, []int{4, 4, 4, 2}, batches)
	all, acme := auditCount(t, st)
	assert.Equal(t, 6, all, "days 7, 8 and 9 kept")
	assert.Equal(t, 3, acme, "the account index lost the same records")
	recs, _, err := st.AuditRecords(store.AuditQuery{AllAccounts: true})
	require.NoError(t, err)
	for _, r := range recs {
		assert.False(t, r.Time.Before(cutoff))
	}
	n, err := st.PruneAudit(cutoff, 4)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestStore_AuditRetention: the background loop deletes records older than
// Options.AuditRetention and keeps the rest; a negative retention keeps
// everything.
func TestStore_AuditRetention(t *testing.T) {
	for _, tt := range []struct {
		name      string
		retention time.Duration
		kept      int
	}{
		{"Pruned", 48 * time.Hour, 3},
		{"Forever", -1, 600 + 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := &auditClock{now: testNow}
			st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"),
				store.Options{NoSync: true, Now: clock.Now, UsageFlush: 10 * time.Millisecond, AuditRetention: tt.retention})
			defer st.Close()
			// More old records than one pruning transaction takes.
			for range 600 {
				require.NoError(t, st.Audit(store.AuditRecord{Account: "acme", Method: "apikey.create", Outcome: "ok"}))
			}
			clock.Set(testNow.Add(72 * time.Hour))
			for range 3 {
				require.NoError(t, st.Audit(store.AuditRecord{Account: "acme", Method: "apikey.create", Outcome: "ok"}))
			}
			if tt.retention > 0 {
				require.Eventually(t, func() bool { all, _ := auditCount(t, st); return all == tt.kept },
					10*time.Second, 10*time.Millisecond)
			} else {
				time.Sleep(100 * time.Millisecond) // several loops
			}
			all, acme := auditCount(t, st)
			assert.Equal(t, tt.kept, all)
			assert.Equal(t, tt.kept, acme)
		})
	}
}

// TestStore_AuditFailureCounts: failures are counted per source, method,
// outcome and minute; past MaxFailureSources sources in one minute the
// rest are counted together; each flush writes the counts so far into the
// same records.
func TestStore_AuditFailureCounts(t *testing.T) {
	clock := &auditClock{now: testNow}
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"),
		store.Options{NoSync: true, Now: clock.Now, UsageFlush: time.Hour})
	defer st.Close()
	fail := func(src string) {
		st.AuditFailure(store.AuditRecord{SourceIP: src, Method: "apikey.list", Outcome: "invalid_key",
			Actor: "ignored", Target: "ignored", Account: "ignored"})
	}
	for i := range store.MaxFailureSources + 100 {
		fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	fail("10.0.0.0") // a known source counts on its own record still
	require.NoError(t, st.FlushAudit())
	recs, _, err := st.AuditRecords(store.AuditQuery{AllAccounts: true, Limit: 10000})
	require.NoError(t, err)
	require.Len(t, recs, store.MaxFailureSources+1)
	byIP := map[string]uint64{}
	for _, r := range recs {
		byIP[r.SourceIP] = r.Count
		assert.Empty(t, r.Actor)
		assert.Empty(t, r.Account)
	}
	assert.Equal(t, uint64(2), byIP["10.0.0.0"])
	assert.Equal(t, uint64(100), byIP[store.OtherSources])

	// The next minute starts afresh; the old minute's records are final.
	clock.Set(testNow.Add(time.Minute))
	fail("10.0.0.0")
	require.NoError(t, st.FlushAudit())
	fail("10.0.0.0")
	require.NoError(t, st.FlushAudit())
	recs, _, err = st.AuditRecords(store.AuditQuery{AllAccounts: true, After: recs[len(recs)-1].Seq})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, uint64(2), recs[0].Count)
}

// TestStore_CallAuditInTheWrite: a call's audit record, carried in its
// context, is written by the call's first write that commits, in that
// write's transaction; never by a write that fails (alone or in a shared
// transaction), never twice, and not before the record can say who acted.
func TestStore_CallAuditInTheWrite(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true, UsageFlush: time.Hour})
	defer st.Close()
	ctx := t.Context()
	_, _, _, err := st.CreateAccount(ctx, "acme", "")
	require.NoError(t, err)
	records := func() []store.AuditRecord {
		recs, _, err := st.AuditRecords(store.AuditQuery{Account: "acme", Limit: 1000})
		require.NoError(t, err)
		return recs
	}
	call := func(target string) *store.CallAudit {
		return store.NewCallAudit(func() (store.AuditRecord, bool) {
			return store.AuditRecord{Account: "acme", Actor: "k", Method: "apikey.create", Target: target}, true
		})
	}

	// Writers race for one name: each write that fails, in a shared
	// transaction or alone, leaves no record; the one that wins leaves one.
	const writers = 32
	calls := make([]*store.CallAudit, writers)
	var wg sync.WaitGroup
	for i := range writers {
		calls[i] = call(fmt.Sprint(i))
		wg.Go(func() {
			_, _, err := st.CreateKey(store.WithCallAudit(ctx, calls[i]), store.NewKey{Account: "acme", Name: "deploy"})
			if err != nil {
				assert.ErrorIs(t, err, store.ErrKeyNameTaken)
			}
		})
	}
	wg.Wait()
	var won []string
	for i, c := range calls {
		if c.Written() {
			won = append(won, fmt.Sprint(i))
		}
	}
	require.Len(t, won, 1, "one writer wins the name")
	recs := records()
	require.Len(t, recs, 1)
	assert.Equal(t, won[0], recs[0].Target)
	assert.Equal(t, "ok", recs[0].Outcome)
	assert.Equal(t, uint64(1), recs[0].Count)
	assert.False(t, recs[0].Time.IsZero())

	// Two writes of one call: one record.
	c := call("twice")
	wctx := store.WithCallAudit(ctx, c)
	k, _, err := st.CreateKey(wctx, store.NewKey{Account: "acme"})
	require.NoError(t, err)
	require.True(t, c.Written())
	require.NoError(t, st.DeleteKey(wctx, "acme", k.ID, func(store.Key) error { return nil }))
	assert.Len(t, records(), 2)

	// A write that fails leaves none, and says so.
	c = call("unknown")
	err = st.DeleteKey(store.WithCallAudit(ctx, c), "acme", k.ID, func(store.Key) error { return nil })
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.False(t, c.Written())
	assert.Len(t, records(), 2)

	// A record that cannot yet say who acted waits for a later write.
	ready := false
	c = store.NewCallAudit(func() (store.AuditRecord, bool) {
		return store.AuditRecord{Account: "acme", Method: "user.create_apikey", Target: "late"}, ready
	})
	wctx = store.WithCallAudit(ctx, c)
	k, _, err = st.CreateKey(wctx, store.NewKey{Account: "acme"})
	require.NoError(t, err)
	assert.False(t, c.Written())
	assert.Len(t, records(), 2)
	ready = true
	require.NoError(t, st.DeleteKey(wctx, "acme", k.ID, func(store.Key) error { return nil }))
	assert.True(t, c.Written())
	recs = records()
	require.Len(t, recs, 3)
	assert.Equal(t, "late", recs[2].Target)
}

// TestStore_CallAuditConcurrentWrites: writes of one call made at once
// (an embedded method creating keys in parallel, say) share the call's
// one record: exactly one of them carries it.
func TestStore_CallAuditConcurrentWrites(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{NoSync: true, UsageFlush: time.Hour})
	defer st.Close()
	ctx := t.Context()
	_, _, _, err := st.CreateAccount(ctx, "acme", "")
	require.NoError(t, err)
	a := store.NewCallAudit(func() (store.AuditRecord, bool) {
		return store.AuditRecord{Account: "acme", Actor: "k", Method: "test.parallel"}, true
	})
	wctx := store.WithCallAudit(ctx, a)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, _, err := st.CreateKey(wctx, store.NewKey{Account: "acme"})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.True(t, a.Written())
	recs, _, err := st.AuditRecords(store.AuditQuery{Account: "acme", Limit: 100})
	require.NoError(t, err)
	assert.Len(t, recs, 1, "one record for the call")
	keys, err := st.Keys("acme")
	require.NoError(t, err)
	assert.Len(t, keys, 17, "the account's first key and the 16")
}
