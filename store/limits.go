package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// Per-key limits, as Unkey's: a rate limit (a token bucket of Limit
// requests per Interval) and a quota (calls remaining, which may refill
// daily or monthly). Both are kept in memory on the hot path; the quota's
// remaining count is written back with the usage flush, so a crash can give
// back at most one flush interval of spent calls.
//
// On an engine that many nodes share (kv.Cluster) each node keeps a rate
// limit's share (take) and spends a quota from blocks it leases from the
// key's record (quotalease.go), so that the cluster keeps both.

// RateLimit allows Limit calls per Interval, in bursts of up to Limit.
type RateLimit struct {
	Limit    int64
	Interval time.Duration
}

// Quota is a number of calls remaining. With Refill "daily" or "monthly"
// it is set back to RefillAmount at each new day or month (UTC).
type Quota struct {
	Remaining    int64
	Refill       string // "", "daily" or "monthly"
	RefillAmount int64
	// LastRefill is the start of the period of the last refill.
	LastRefill time.Time
}

// Refill periods of a Quota.
const (
	RefillDaily   = "daily"
	RefillMonthly = "monthly"
)

// LimitError is returned by Spend when a key is over its rate limit or out
// of quota; RetryAfter says when a call may succeed again (zero: not until
// the quota is raised).
type LimitError struct {
	Quota      bool // out of quota, rather than over the rate limit
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	if e.Quota {
		return "store: quota exhausted"
	}
	return "store: rate limited"
}

func (e *LimitError) Is(target error) bool { return target == ErrLimited }

type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	quotas  map[string]*quotaState
	leases  map[string]*lease // instead of quotas, on a shared engine
	// nodes counts the nodes sharing the engine; nil on an engine of one
	// node (a file).
	nodes func() int
}

// bucket is a token bucket kept as GCRA does, in exact integer time: tat
// is the theoretical arrival time of the next call, each call moves it on
// by Interval/Limit, and a call is allowed while tat is at most one
// Interval less one call ahead of now, which permits bursts of Limit.
type bucket struct {
	mu   sync.Mutex
	tat  time.Time
	rate RateLimit
}

// quotaState is a key's quota in memory; gen is the record's quota
// generation it was loaded from, so a flush never writes over a quota that
// apikey.update has since replaced. reload says that the record may have
// changed under it (reloadQuotas).
type quotaState struct {
	mu     sync.Mutex
	q      Quota
	gen    int64
	dirty  bool
	reload atomic.Bool
}

func newLimiter() *limiter {
	return &limiter{buckets: map[string]*bucket{}, quotas: map[string]*quotaState{}, leases: map[string]*lease{}}
}

// share is a node's share of limit, a limit that each node keeps for
// itself: limit divided among the nodes alive, at least 1.
func share(limit int64, nodes int) int64 {
	return max(1, limit/int64(max(1, nodes)))
}

// forget drops what memory holds of key id's limits, once the key is gone.
func (l *limiter) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.buckets, id)
	delete(l.quotas, id)
	delete(l.leases, id) // its block goes with the key
}

// forgetBucket drops key id's token bucket, after its rate limit changed.
func (l *limiter) forgetBucket(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.buckets, id)
}

// Spend takes one call from k's rate limit and quota, if it has them, and
// returns the calls left in the quota (-1: no quota). A call refused by the
// rate limit spends no quota. On a shared engine a call that finds this
// node's block of the quota spent leases another, a write to the engine
// (quotalease.go), and the calls left are as far as this node knows.
func (s *Store) Spend(k *Key) (left int64, err error) {
	if k.Rate.Limit == 0 && !k.HasQuota {
		return -1, nil
	}
	now := s.now()
	if k.Rate.Limit > 0 {
		if wait, ok := s.limits.take(k, now); !ok {
			return s.quotaLeft(k, now), &LimitError{RetryAfter: wait}
		}
	}
	if !k.HasQuota {
		return -1, nil
	}
	if s.limits.nodes != nil {
		return s.spendLeased(k, now)
	}
	q := s.limits.quotaOf(k)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refill(now)
	if q.q.Remaining <= 0 {
		return 0, exhausted(q.q.Refill, now)
	}
	q.q.Remaining--
	q.dirty = true
	return q.q.Remaining, nil
}

// quotaLeft is what Spend reports left of k's quota when it spends none
// (-1: no quota).
func (s *Store) quotaLeft(k *Key, now time.Time) int64 {
	if !k.HasQuota {
		return -1
	}
	if s.limits.nodes != nil {
		return s.limits.leaseOf(k).left(now)
	}
	q := s.limits.quotaOf(k)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refill(now)
	return q.q.Remaining
}

// exhausted is Spend's error for a quota with no call left, which may
// come back with the next refill.
func exhausted(refill string, now time.Time) *LimitError {
	var wait time.Duration
	if next := nextPeriod(refill, now); !next.IsZero() {
		wait = next.Sub(now)
	}
	return &LimitError{Quota: true, RetryAfter: wait}
}

// take takes a token from k's bucket at now, or says how long until one
// is there. The bucket admits a call while its theoretical arrival time is
// at most Limit-1 emission intervals ahead: bursts of exactly Limit.
//
// On a shared engine each node keeps its share of the limit (share): with
// N nodes alive, Limit/N calls per Interval (at least 1) in bursts of as
// many, so the cluster admits at most Limit per Interval, or N when Limit
// is less than N. A client that reaches one node only gets its share.
func (l *limiter) take(k *Key, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	b := l.buckets[k.ID]
	if b == nil || b.rate != k.Rate {
		b = &bucket{tat: now, rate: k.Rate}
		l.buckets[k.ID] = b
	}
	l.mu.Unlock()
	limit := k.Rate.Limit
	if l.nodes != nil {
		limit = share(limit, l.nodes())
	}
	emission := k.Rate.Interval / time.Duration(limit)
	tolerance := emission * time.Duration(limit-1)
	b.mu.Lock()
	defer b.mu.Unlock()
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	if ahead := tat.Sub(now); ahead > tolerance {
		return ahead - tolerance, false
	}
	b.tat = tat.Add(emission)
	return 0, true
}

// quotaOf returns the state of k's quota in memory, loading it from k when
// memory has none or an older one, or one marked for reloading that holds
// no spending unwritten. A k older than memory (read before apikey.update
// set a new quota) spends from memory's.
func (l *limiter) quotaOf(k *Key) *quotaState {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.quotas[k.ID]
	if q == nil || k.quotaGen > q.gen {
		q = &quotaState{q: k.Quota, gen: k.quotaGen}
		l.quotas[k.ID] = q
	} else if q.reload.Load() {
		// In place: a call may hold q already, and must spend from the
		// state memory keeps.
		q.mu.Lock()
		if !q.dirty && k.quotaGen == q.gen {
			q.q = k.Quota
		}
		q.reload.Store(false)
		q.mu.Unlock()
	}
	return q
}

// reloadQuotas marks the quotas in memory to be loaded again from the key
// each authenticates next: other nodes may have written their records.
// A quota with spending not yet written keeps memory's count, which the
// next flush writes. So a node sees the others' spending once it has
// written its own; quotas are exact across nodes only as far as their
// flushes do not overlap. That is for an engine shared by nodes it does
// not count; on a kv.Cluster quotas are leased instead (quotalease.go),
// and are exact.
func (l *limiter) reloadQuotas() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, q := range l.quotas {
		q.reload.Store(true)
	}
}

// refill sets the quota back to its refill amount when a new period has
// begun since the last refill. q.mu must be held.
func (q *quotaState) refill(now time.Time) {
	if q.q.refill(now) {
		q.dirty = true
	}
}

// refill sets q back to its refill amount when a new period has begun
// since its last refill, and reports whether it did.
func (q *Quota) refill(now time.Time) bool {
	start := periodStart(q.Refill, now)
	if start.IsZero() || !q.LastRefill.Before(start) {
		return false
	}
	q.Remaining, q.LastRefill = q.RefillAmount, start
	return true
}

// prune drops buckets that have filled up again, which are as good as new,
// so that memory holds buckets only for keys used lately.
func (l *limiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, b := range l.buckets {
		b.mu.Lock()
		full := !b.tat.After(now)
		b.mu.Unlock()
		if full {
			delete(l.buckets, id)
		}
	}
}

// periodStart is the start of the refill period holding now (zero: none).
func periodStart(refill string, now time.Time) time.Time {
	now = now.UTC()
	switch refill {
	case RefillDaily:
		return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	case RefillMonthly:
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

func nextPeriod(refill string, now time.Time) time.Time {
	start := periodStart(refill, now)
	switch refill {
	case RefillDaily:
		return start.AddDate(0, 0, 1)
	case RefillMonthly:
		return start.AddDate(0, 1, 0)
	}
	return time.Time{}
}

// current brings k, as read from its record, up to what memory holds: its
// uses and its quota since the last flush.
func (s *Store) current(k *Key) {
	s.withUsage(k)
	s.withQuota(k)
}

// withQuota sets k's quota to what memory holds, when memory's is as new,
// and shows a refill that is due, as the next call would find it. On a
// shared engine it adds this node's block to the record's count
// (withLease).
func (s *Store) withQuota(k *Key) {
	if !k.HasQuota {
		return
	}
	if s.limits.nodes != nil {
		s.limits.withLease(k)
		k.Quota.refill(s.now())
		return
	}
	s.limits.mu.Lock()
	q := s.limits.quotas[k.ID]
	s.limits.mu.Unlock()
	if q != nil {
		q.mu.Lock()
		if q.gen > k.quotaGen || q.gen == k.quotaGen && (q.dirty || !q.reload.Load()) {
			k.Quota = q.q
		}
		q.mu.Unlock()
	}
	k.Quota.refill(s.now())
}

// dirtyQuotas reports whether any quota in memory has changed since it was
// last written.
func (l *limiter) dirtyQuotas() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, q := range l.quotas {
		q.mu.Lock()
		d := q.dirty
		q.mu.Unlock()
		if d {
			return true
		}
	}
	return false
}

// flushQuotas writes the quotas changed in memory back to their records.
// If the write fails they stay marked for the next flush.
func (s *Store) flushQuotas() error {
	var taken []*quotaState
	err := s.updateKeys(context.Background(), func(tx kv.Tx) error {
		var err error
		taken, err = s.writeQuotas(tx)
		return err
	})
	if err != nil {
		for _, q := range taken {
			q.mu.Lock()
			q.dirty = true
			q.mu.Unlock()
		}
	}
	return err
}

// writeQuotas writes in-memory quotas back to their records, in tx, and
// returns the states it took.
func (s *Store) writeQuotas(tx kv.Tx) (taken []*quotaState, err error) {
	s.limits.mu.Lock()
	states := make(map[string]*quotaState, len(s.limits.quotas))
	for id, q := range s.limits.quotas {
		states[id] = q
	}
	s.limits.mu.Unlock()
	keys := tx.Bucket(bucketKeys)
	for id, q := range states {
		q.mu.Lock()
		quota, gen, dirty := q.q, q.gen, q.dirty
		q.dirty = false
		q.mu.Unlock()
		if !dirty {
			continue
		}
		taken = append(taken, q)
		rec, err := decodeRecord(keys.Get([]byte(id)))
		if errors.Is(err, ErrNotFound) { // deleted: nothing to keep
			s.limits.mu.Lock()
			delete(s.limits.quotas, id)
			s.limits.mu.Unlock()
			continue
		} else if err != nil {
			return taken, err
		}
		if !rec.HasQuota || rec.QuotaGen != gen { // replaced meanwhile
			continue
		}
		rec.Quota = quota
		if err := putRecord(tx, &rec); err != nil {
			return taken, err
		}
	}
	return taken, nil
}

func appendRate(r RateLimit) []byte {
	b := binary.AppendVarint(nil, r.Limit)
	return binary.AppendVarint(b, int64(r.Interval/time.Second))
}

func appendQuota(q Quota, gen int64) []byte {
	b := binary.AppendVarint(nil, q.Remaining)
	b = appendString(b, q.Refill)
	b = binary.AppendVarint(b, q.RefillAmount)
	b = binary.AppendVarint(b, q.LastRefill.Unix())
	return binary.AppendVarint(b, gen)
}

// Bounds of a rate limit: at most MaxRateLimit calls per interval of
// MinRateInterval to MaxRateInterval seconds.
const (
	MaxRateLimit    = 1_000_000
	MinRateInterval = 1
	MaxRateInterval = 24 * 60 * 60
)

// ValidLimits checks a rate limit and quota as apikey.create and update
// take them.
func ValidLimits(r RateLimit, q *Quota) error {
	if r.Limit < 0 || r.Limit > MaxRateLimit {
		return fmt.Errorf("rate limit must be 0 (none) to %d calls", MaxRateLimit)
	}
	if r.Limit > 0 && (r.Interval < MinRateInterval*time.Second || r.Interval > MaxRateInterval*time.Second) {
		return fmt.Errorf("rate interval must be %d to %d seconds", MinRateInterval, MaxRateInterval)
	}
	if q != nil {
		if q.Remaining < 0 {
			return fmt.Errorf("quota remaining must not be negative")
		}
		switch q.Refill {
		case "":
		case RefillDaily, RefillMonthly:
			if q.RefillAmount < 1 {
				return fmt.Errorf("quota refill_amount must be at least 1")
			}
		default:
			return fmt.Errorf("quota refill must be daily, monthly or empty")
		}
	}
	return nil
}
