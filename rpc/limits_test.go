package rpc_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// createLimited creates a key that may call server.list and the apikey
// methods, with the given limits.
func (ts *testServer) createLimited(rate, quota map[string]any) rpc.NewKeyInfo {
	ts.t.Helper()
	params := map[string]any{"scopes": map[string][]string{"method": {"server.list", "apikey.*"}}}
	if rate != nil {
		params["rate_limit"] = rate
	}
	if quota != nil {
		params["quota"] = quota
	}
	var k rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", params, &k)
	return k
}

// batch posts n server.list calls in one batch and returns the replies.
func (ts *testServer) batch(key string, n int) []wireResponse {
	ts.t.Helper()
	calls := make([]string, n)
	for i := range calls {
		calls[i] = fmt.Sprintf(`{"jsonrpc":"2.0","method":"server.list","id":%d}`, i)
	}
	status, body := ts.post(key, "["+strings.Join(calls, ",")+"]")
	require.Equal(ts.t, http.StatusOK, status)
	var out []wireResponse
	require.NoError(ts.t, json.Unmarshal(body, &out), "%s", body)
	require.Len(ts.t, out, n)
	return out
}

func TestLimits_RateLimit(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createLimited(map[string]any{"limit": 3, "interval_seconds": 60}, nil)
	require.NotNil(t, k.RateLimit)
	assert.Equal(t, rpc.RateLimitInfo{Limit: 3, IntervalSeconds: 60}, *k.RateLimit)
	assert.Nil(t, k.Quota)

	for i := 0; i < 3; i++ {
		ts.ok(k.Key, "server.list", nil, nil)
	}
	e := ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDRateLimited)
	assert.Equal(t, int64(20_000), e.Data.RetryAfterMs, "one call every 20 s")
	ts.advance(20 * time.Second)
	ts.ok(k.Key, "server.list", nil, nil)
	ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDRateLimited)

	// Every call of a batch counts: a full bucket lets three of five through.
	ts.advance(time.Minute)
	var ok, limited int
	for _, r := range ts.batch(k.Key, 5) {
		if r.Error == nil {
			ok++
			continue
		}
		assert.Equal(t, int64(rpc.CodeRateLimited), r.Error.Code)
		assert.Equal(t, rpc.ErrIDRateLimited, r.Error.Data.ErrorID)
		assert.Positive(t, r.Error.Data.RetryAfterMs)
		limited++
	}
	assert.Equal(t, 3, ok)
	assert.Equal(t, 2, limited)

	// Keys without a limit, and other keys, are not held back.
	for i := 0; i < 10; i++ {
		ts.ok(ts.Admin, "server.list", nil, nil)
	}

	// A limit of 0 removes the rate limit.
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": k.ID, "rate_limit": map[string]any{"limit": 0}}, &info)
	assert.Nil(t, info.RateLimit)
	info = rpc.KeyInfo{}
	for i := 0; i < 10; i++ {
		ts.ok(k.Key, "server.list", nil, nil)
	}
	// And update sets one again.
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": k.ID, "rate_limit": map[string]any{"limit": 1, "interval_seconds": 1}}, &info)
	assert.Equal(t, &rpc.RateLimitInfo{Limit: 1, IntervalSeconds: 1}, info.RateLimit)
	ts.ok(k.Key, "server.list", nil, nil)
	e = ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDRateLimited)
	assert.Equal(t, int64(1000), e.Data.RetryAfterMs)
}

func TestLimits_Quota(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createLimited(nil, map[string]any{"remaining": 4})
	require.NotNil(t, k.Quota)
	assert.Equal(t, rpc.QuotaInfo{Remaining: 4}, *k.Quota)

	for i := 0; i < 4; i++ {
		ts.ok(k.Key, "server.list", nil, nil)
	}
	e := ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDQuotaExhausted)
	assert.Zero(t, e.Data.RetryAfterMs, "a quota without refill does not come back by waiting")
	// An exhausted key still fails after its quota is read, and apikey.info
	// shows it empty.
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.info", []any{k.ID}, &info)
	require.NotNil(t, info.Quota)
	assert.Equal(t, int64(0), info.Quota.Remaining)

	// The operator raises it; then removes it.
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": k.ID, "quota": map[string]any{"remaining": 1}}, &info)
	assert.Equal(t, int64(1), info.Quota.Remaining)
	ts.ok(k.Key, "server.list", nil, nil)
	ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDQuotaExhausted)
	var removed rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": k.ID, "remove_quota": true}, &removed)
	assert.Nil(t, removed.Quota)
	for i := 0; i < 5; i++ {
		ts.ok(k.Key, "server.list", nil, nil)
	}
}

func TestLimits_QuotaRefill(t *testing.T) {
	ts := newTestServer(t) // the clock stands at 2026-01-02T03:04:05Z
	k := ts.createLimited(nil, map[string]any{"remaining": 1, "refill": "daily", "refill_amount": 2})
	assert.Equal(t, rpc.QuotaInfo{Remaining: 1, Refill: "daily", RefillAmount: 2}, *k.Quota)
	ts.ok(k.Key, "server.list", nil, nil)
	e := ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDQuotaExhausted)
	untilMidnight := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC).Sub(fixedNow)
	assert.Equal(t, untilMidnight.Milliseconds(), e.Data.RetryAfterMs)

	ts.advance(untilMidnight)
	ts.ok(k.Key, "server.list", nil, nil)
	ts.ok(k.Key, "server.list", nil, nil)
	ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDQuotaExhausted)
}

// TestLimits_QuotaHammer spends a quota over HTTP from many goroutines, in
// single calls and batches: exactly as many calls succeed as it held.
func TestLimits_QuotaHammer(t *testing.T) {
	ts := newTestServer(t)
	const quota = 60
	k := ts.createLimited(nil, map[string]any{"remaining": quota})
	var ok, exhausted atomic.Int64
	count := func(r wireResponse) {
		if r.Error == nil {
			ok.Add(1)
			return
		}
		if r.Error.Code == rpc.CodeRateLimited && r.Error.Data.ErrorID == rpc.ErrIDQuotaExhausted {
			exhausted.Add(1)
			return
		}
		t.Errorf("unexpected error %+v", r.Error)
	}
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				if g%2 == 0 {
					count(ts.call(k.Key, "server.list", nil))
					continue
				}
				for _, r := range ts.batch(k.Key, 3) {
					count(r)
				}
			}
		}()
	}
	wg.Wait()
	total := int64(8*4 + 8*4*3)
	assert.Equal(t, int64(quota), ok.Load())
	assert.Equal(t, total-quota, exhausted.Load())
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.info", []any{k.ID}, &info)
	assert.Equal(t, int64(0), info.Quota.Remaining)
}

// TestLimits_NoEscape proves a limited key cannot shed its limits: it may
// make no keys and change no limits, its own or another's.
func TestLimits_NoEscape(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createLimited(map[string]any{"limit": 100, "interval_seconds": 60}, map[string]any{"remaining": 100})
	other := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list"}}, "other")
	ts.unchanged(func() {
		ts.fail(k.Key, "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"server.list"}}}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(k.Key, "apikey.update", map[string]any{"id": k.ID, "remove_quota": true}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(k.Key, "apikey.update", map[string]any{"id": k.ID, "rate_limit": map[string]any{"limit": 0}}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(k.Key, "apikey.update", map[string]any{"id": k.ID, "quota": map[string]any{"remaining": 1000000}}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(k.Key, "apikey.update", map[string]any{"id": other.ID, "quota": map[string]any{"remaining": 5}}, rpc.CodeForbidden, rpc.ErrIDEscalation)
	})
	// Other changes are allowed.
	ts.ok(k.Key, "apikey.update", map[string]any{"id": k.ID, "comment": "still limited"}, nil)
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.info", []any{k.ID}, &info)
	assert.Equal(t, "still limited", info.Comment)
	require.NotNil(t, info.RateLimit)
	require.NotNil(t, info.Quota)
}

func TestLimits_UpdateBadInput(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createLimited(map[string]any{"limit": 5, "interval_seconds": 60}, map[string]any{"remaining": 9})
	for _, tt := range []struct {
		name   string
		params map[string]any
		field  string
	}{
		{"RateNotObject", map[string]any{"rate_limit": "fast"}, "rate_limit"},
		{"RateNegative", map[string]any{"rate_limit": map[string]any{"limit": -5, "interval_seconds": 60}}, "rate_limit"},
		{"RateZeroInterval", map[string]any{"rate_limit": map[string]any{"limit": 5, "interval_seconds": 0}}, "rate_limit"},
		{"RateUnknownField", map[string]any{"rate_limit": map[string]any{"limit": 5, "interval_seconds": 1, "per": "s"}}, "rate_limit"},
		{"QuotaNegative", map[string]any{"quota": map[string]any{"remaining": -1}}, "quota"},
		{"QuotaString", map[string]any{"quota": map[string]any{"remaining": "10"}}, "quota"},
		{"QuotaBadRefill", map[string]any{"quota": map[string]any{"remaining": 1, "refill": "yearly", "refill_amount": 1}}, "quota"},
		{"QuotaAndRemove", map[string]any{"quota": map[string]any{"remaining": 1}, "remove_quota": true}, "remove_quota"},
		{"RemoveNotBool", map[string]any{"remove_quota": "yes"}, "remove_quota"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.params["id"] = k.ID
			ts.unchanged(func() {
				e := ts.fail(ts.Admin, "apikey.update", tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
				assert.Equal(t, tt.field, e.Data.Field)
			})
		})
	}
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.info", []any{k.ID}, &info)
	assert.Equal(t, &rpc.RateLimitInfo{Limit: 5, IntervalSeconds: 60}, info.RateLimit)
	assert.Equal(t, &rpc.QuotaInfo{Remaining: 9}, info.Quota)
}

// TestLimits_Verify proves apikey.verify spends a call of the key it
// verifies, as the call itself would, and reports what is left.
func TestLimits_Verify(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createLimited(nil, map[string]any{"remaining": 2})
	verify := func() rpc.Verification {
		var v rpc.Verification
		ts.ok(ts.Admin, "apikey.verify", map[string]any{"key": k.Key, "method": "server.list"}, &v)
		return v
	}
	one, zero := int64(1), int64(0)
	assert.Equal(t, rpc.Verification{Valid: true, Code: "valid", KeyID: k.ID, Remaining: &one}, verify())
	assert.Equal(t, rpc.Verification{Valid: true, Code: "valid", KeyID: k.ID, Remaining: &zero}, verify())
	assert.Equal(t, rpc.Verification{Code: rpc.ErrIDQuotaExhausted, KeyID: k.ID, Remaining: &zero}, verify())
	ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDQuotaExhausted)

	r := ts.createLimited(map[string]any{"limit": 1, "interval_seconds": 10}, nil)
	var v rpc.Verification
	ts.ok(ts.Admin, "apikey.verify", map[string]any{"key": r.Key, "method": "server.list"}, &v)
	assert.True(t, v.Valid)
	assert.Nil(t, v.Remaining)
	ts.ok(ts.Admin, "apikey.verify", map[string]any{"key": r.Key, "method": "server.list"}, &v)
	assert.Equal(t, rpc.Verification{Code: rpc.ErrIDRateLimited, KeyID: r.ID, RetryAfterMs: 10_000}, v)
}

// TestLimits_QuotaSurvivesOtherChanges: a quota spent between flushes stays
// spent when the key is changed in other ways.
func TestLimits_QuotaSurvivesOtherChanges(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createLimited(nil, map[string]any{"remaining": 5})
	for range 3 {
		ts.ok(k.Key, "server.list", nil, nil)
	}
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": k.ID, "comment": "renamed"}, &info)
	assert.Equal(t, int64(2), info.Quota.Remaining)
	ts.ok(ts.Admin, "apikey.add_scope", []any{k.ID, "method", "apikey.info"}, nil)
	for range 2 {
		ts.ok(k.Key, "server.list", nil, nil)
	}
	ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDQuotaExhausted)
}

// TestLimits_RefusalsNotAudited: calls refused by the key's own limits are
// not written to the audit trail, so that a limit also limits the writes a
// key can cause; the verify of a rate-limited key with a quota still says
// what is left.
func TestLimits_RefusalsNotAudited(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createLimited(map[string]any{"limit": 1, "interval_seconds": 60}, map[string]any{"remaining": 5})
	var page rpc.AuditPage
	ts.ok(ts.Admin, "audit.list", nil, &page)
	before := len(page.Records)
	ts.fail(k.Key, "apikey.create", nil, rpc.CodeForbidden, rpc.ErrIDEscalation) // spends the one token
	for range 20 {
		ts.fail(k.Key, "apikey.create", nil, rpc.CodeRateLimited, rpc.ErrIDRateLimited)
	}
	ts.ok(ts.Admin, "audit.list", nil, &page)
	assert.Len(t, page.Records, before+1, "only the call the limits let through")

	var v rpc.Verification
	ts.ok(ts.Admin, "apikey.verify", map[string]any{"key": k.Key, "method": "server.list"}, &v)
	assert.Equal(t, rpc.ErrIDRateLimited, v.Code)
	require.NotNil(t, v.Remaining)
	assert.Equal(t, int64(4), *v.Remaining)
}
