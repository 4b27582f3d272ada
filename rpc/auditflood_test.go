package rpc_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/h1"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clientFrom is an HTTP client whose connections leave from ip (any
// address of 127.0.0.0/8 on Linux), so that tests can be several sources.
func clientFrom(t testing.TB, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// postFrom posts body to url with key through client and returns the
// decoded single reply.
func postFrom(t testing.TB, client *http.Client, url, key, body string) wireResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r wireResponse
	require.NoError(t, json.Unmarshal(b, &r), "reply: %s", b)
	return r
}

const badKey = "ffffffffffffffffffffffffffffffff"

// TestAudit_FailureFloodIsCounted: a flood of failed authentications is
// written as one record per source, method, outcome and minute with its
// count, not one record per call; the operator sees the counts, a tenant
// none of them; the records stay put when more failures of the same
// minute arrive after a flush.
func TestAudit_FailureFloodIsCounted(t *testing.T) {
	storetest.NeedsFile(t) // it measures the file's growth
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	one, two := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")
	list := `{"jsonrpc":"2.0","method":"apikey.list","id":1}`

	flood := func(c *http.Client, key string, n int) {
		for range n {
			r := postFrom(t, c, ts.URL, key, list)
			require.NotNil(t, r.Error)
			require.Equal(t, int64(rpc.CodeUnauthenticated), r.Error.Code)
		}
	}
	flood(one, badKey, 150)
	flood(one, "", 20)
	flood(two, badKey, 30)
	require.NoError(t, ts.Store.FlushAudit())
	flood(one, badKey, 50) // same minute, after a flush: the same record
	ts.advance(time.Minute)
	flood(two, badKey, 7) // the next minute: a record of its own
	size0, err := ts.Store.Size()
	require.NoError(t, err)
	require.NoError(t, ts.Store.FlushAudit())

	all := auditAll(ts, ts.Admin, map[string]any{"method": "apikey.list"})
	type row struct {
		minute          time.Time
		source, outcome string
	}
	got := map[row]uint64{}
	for _, r := range all {
		assert.Empty(t, r.Account)
		assert.Empty(t, r.Actor, "anyone can vary the actor: not kept")
		assert.Empty(t, r.Target)
		assert.Equal(t, r.Time, r.Time.Truncate(time.Minute), "stamped with the minute")
		got[row{r.Time, r.SourceIP, r.Outcome}] += r.Count
	}
	m0 := fixedNow.Truncate(time.Minute)
	m1 := m0.Add(time.Minute)
	assert.Equal(t, map[row]uint64{
		{m0, "127.0.0.1", rpc.ErrIDInvalidKey}: 200,
		{m0, "127.0.0.1", rpc.ErrIDMissingKey}: 20,
		{m0, "127.0.0.2", rpc.ErrIDInvalidKey}: 30,
		{m1, "127.0.0.2", rpc.ErrIDInvalidKey}: 7,
	}, got)
	assert.Len(t, all, 4, "one record per source, outcome and minute: %+v", all)

	// A tenant sees none of them: they name no account.
	assert.Empty(t, auditAll(ts, acme.FirstKey.Key, map[string]any{"method": "apikey.list"}))

	// Flushing again with nothing new writes nothing.
	require.NoError(t, ts.Store.FlushAudit())
	assert.Len(t, auditAll(ts, ts.Admin, map[string]any{"method": "apikey.list"}), 4)
	size1, err := ts.Store.Size()
	require.NoError(t, err)
	assert.Equal(t, size0, size1, "264 failed calls did not grow the file")
}

// TestAudit_FailedLoginsAreCounted: failed logins, lockouts and every
// other refusal of a call made with no key (bad input to the login) are
// counted like failed keys, whatever user names the guesses try.
func TestAudit_FailedLoginsAreCounted(t *testing.T) {
	ts := newTestServer(t)
	for i := range 40 {
		ts.call("", "user.create_apikey", login("guess"+strings.Repeat("x", i%7)+"@acme", "wrong horse", "basic"))
	}
	for range 30 {
		ts.fail("", "user.create_apikey", login("guess@acme", "wrong horse", "admin"), rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
	}
	require.NoError(t, ts.Store.FlushAudit())
	recs := auditAll(ts, ts.Admin, map[string]any{"method": "user.create_apikey"})
	byOutcome := map[string]uint64{}
	for _, r := range recs {
		byOutcome[r.Outcome] += r.Count
		assert.Equal(t, "127.0.0.1", r.SourceIP)
	}
	assert.Equal(t, uint64(40), byOutcome[rpc.ErrIDLoginFailed]+byOutcome[rpc.ErrIDLoginLocked])
	assert.Equal(t, uint64(30), byOutcome[rpc.ErrIDInvalidParams])
	assert.LessOrEqual(t, len(recs), 3, "one record per outcome in this minute: %+v", recs)
}

// TestAudit_FailuresWrittenAtClose: counts not yet flushed are written when
// the store closes.
func TestAudit_FailuresWrittenAtClose(t *testing.T) {
	ts := newTestServer(t)
	for range 5 {
		ts.fail(badKey, "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	}
	require.NoError(t, ts.Store.Close())
	st := reopen(t, ts)
	recs, _, err := st.AuditRecords(storeAuditAll())
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, uint64(5), recs[0].Count)
	assert.Equal(t, rpc.ErrIDInvalidKey, recs[0].Outcome)
}

// BenchmarkAuditFlood floods a server on the fast path, with a real clock
// and the default background flush, with calls under a made-up key from
// many clients at once, and reports how much the data file grew: run it
// for 60 s with `make bench-flood`.
func BenchmarkAuditFlood(b *testing.B) {
	st, url := floodServer(b)
	before, err := st.Size()
	require.NoError(b, err)
	body := `{"jsonrpc":"2.0","method":"apikey.list","id":1}`
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		tr := &http.Transport{MaxIdleConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+badKey)
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	elapsed := time.Since(start)
	require.NoError(b, st.FlushAudit())
	after, err := st.Size()
	require.NoError(b, err)
	b.ReportMetric(float64(after-before), "file-growth-bytes")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.Logf("%d bad-key calls in %s: data file %d -> %d bytes (+%d)", b.N, elapsed.Round(time.Millisecond), before, after, after-before)
	if elapsed >= 50*time.Second && after-before >= 1<<20 {
		b.Errorf("the file grew by %d bytes, want less than 1 MiB", after-before)
	}
}

// floodServer serves a fresh store, with the real clock and defaults, over
// the fast path on 127.0.0.1.
func floodServer(b *testing.B) (st *store.Store, url string) {
	b.Helper()
	s := openRealStore(b)
	srv := rpc.New(s, rpc.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	hooks := h1.Hooks{Idle: func() bool { return ctx.Err() != nil }, Active: func() {}, Closing: func() bool { return false }}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = h1.ServeConn(ctx, srv, c, &http.Server{MaxHeaderBytes: 16 << 10, ReadTimeout: 10 * time.Second,
					ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second}, hooks)
				_ = c.Close()
			}()
		}
	}()
	b.Cleanup(func() { cancel(); _ = l.Close() })
	return s, "http://" + l.Addr().String() + "/rpc"
}

// reopen opens ts's data file again, once ts.Store is closed.
func reopen(t *testing.T, ts *testServer) *store.Store {
	t.Helper()
	storetest.NeedsFile(t)
	st, err := store.Open(ts.Store.Path(), store.Options{NoSync: true, UsageFlush: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func storeAuditAll() store.AuditQuery { return store.AuditQuery{AllAccounts: true, Limit: 1000} }

// openRealStore opens a store with the real clock and every default, with
// the operator key.
func openRealStore(tb testing.TB) *store.Store {
	tb.Helper()
	st, err := storetest.Open(tb, filepath.Join(tb.TempDir(), "apikeyd.db"), store.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	_, _, err = st.Bootstrap(adminKey)
	require.NoError(tb, err)
	return st
}
