package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// Quotas on an engine that many nodes share (kv.Cluster). No node may
// spend a call that another node spends too, and none may wait for the
// others on every call. So a node leases a block of a key's quota: one
// write transaction takes it off the record's Remaining (the engine
// compares what it read, so two nodes never take the same calls), and the
// node then spends from the block in memory. When the block runs out it
// leases another; when the record has none left, the call is refused.
//
// So the record's Remaining is the quota not leased out, and every call
// that passes was leased first: the calls passed across the cluster never
// exceed the quota. What a node leased and did not spend goes back to the
// record at each usage flush and at Close, so that the record is exact
// after a flush, as a file's is. A node that stops without Close loses its
// blocks: fewer calls pass than the quota allowed, never more.
//
// A block is not given back to a quota that apikey.update has replaced
// (another generation, quotaGen) or that has been refilled since (the
// record's LastRefill moved on): the block belonged to a quota that is no
// more. The node drops such a block as soon as it sees the change. A
// refill is written by the lease that finds it due.

// maxQuotaBlock caps a block: a node that crashes loses at most this many
// calls of a key's quota, and a node spending a large quota fast leases
// once every this many calls.
const maxQuotaBlock = 1000

// quotaBlock is how many calls a node leases of remaining, with nodes
// alive: a quarter of its even share, so that the pool drains gradually
// and a node that starts spending later still finds some; at least 1, so
// that a small quota stays exact down to its last call (each of the last
// few calls leases its own); at most maxQuotaBlock.
func quotaBlock(remaining int64, nodes int) int64 {
	if remaining <= 0 {
		return 0
	}
	return min(remaining, max(1, remaining/(4*int64(max(1, nodes)))), maxQuotaBlock)
}

// lease is the block of a key's quota that this node holds.
type lease struct {
	// gen is the quota generation it was leased from; written with mu
	// held, read by leaseOf without it.
	gen    atomic.Int64
	mu     sync.Mutex
	period time.Time // the record's LastRefill when it was leased
	refill string    // the quota's refill, which ends the period
	block  int64     // calls leased and not spent
	pool   int64     // the record's Remaining after the last lease
}

// leaseOf returns this node's lease of k's quota, a new one when it has
// none or one of an older quota generation (whose block is void).
func (l *limiter) leaseOf(k *Key) *lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.leases[k.ID]
	if q == nil || k.quotaGen > q.gen.Load() {
		q = &lease{period: k.Quota.LastRefill, refill: k.Quota.Refill}
		q.gen.Store(k.quotaGen)
		l.leases[k.ID] = q
	}
	return q
}

// void reports whether the block's refill period is over: the quota has
// been refilled, or will be by the next lease. q.mu must be held.
func (q *lease) void(now time.Time) bool {
	start := periodStart(q.refill, now)
	return !start.IsZero() && q.period.Before(start)
}

// left is what Spend reports left of the quota: the node's block and what
// the record held at its last lease. Other nodes may have leased since,
// so it is an estimate.
func (q *lease) left(now time.Time) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.void(now) {
		q.block = 0
	}
	return q.pool + q.block
}

// spendLeased spends one call of k's quota from this node's block, leasing
// a block first when it has none left.
func (s *Store) spendLeased(k *Key, now time.Time) (int64, error) {
	q := s.limits.leaseOf(k)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.void(now) {
		q.block = 0
	}
	if q.block == 0 {
		unlimited, err := s.leaseBlock(k.ID, q, now)
		if err != nil {
			return -1, fmt.Errorf("lease quota of key %s: %w", k.ID, err)
		}
		if unlimited {
			return -1, nil
		}
		if q.block == 0 {
			return 0, exhausted(q.refill, now)
		}
	}
	q.block--
	return q.pool + q.block, nil
}

// leaseBlock takes a block of key id's quota off its record into q, in a
// write transaction, refilling the quota first when a refill is due. It
// writes nothing when the record has no call left, and reports unlimited
// when the record has no quota any more. q.mu must be held.
func (s *Store) leaseBlock(id string, q *lease, now time.Time) (unlimited bool, err error) {
	nodes := s.limits.nodes()
	var found bool
	var rec keyRecord
	var block int64
	err = s.updateKeys(context.Background(), func(tx kv.Tx) error {
		var err error
		found, unlimited, block = false, false, 0
		rec, err = decodeRecord(tx.Bucket(bucketKeys).Get([]byte(id)))
		if errors.Is(err, ErrNotFound) {
			return errUnchanged // deleted: nothing to spend
		} else if err != nil {
			return err
		}
		found = true
		if !rec.HasQuota {
			unlimited = true
			return errUnchanged
		}
		refilled := rec.Quota.refill(now)
		block = quotaBlock(rec.Quota.Remaining, nodes)
		if block == 0 && !refilled {
			return errUnchanged // none left: no write
		}
		rec.Quota.Remaining -= block
		return putRecord(tx, &rec)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return false, err
	}
	if found && rec.HasQuota {
		q.gen.Store(rec.QuotaGen)
		q.period, q.refill = rec.Quota.LastRefill, rec.Quota.Refill
		q.block, q.pool = block, rec.Quota.Remaining
	}
	return unlimited, nil
}

// withLease adds to k's quota, read from its record, this node's block of
// it: what is left as far as this node knows. Blocks other nodes hold
// count as spent until they are given back.
func (l *limiter) withLease(k *Key) {
	l.mu.Lock()
	q := l.leases[k.ID]
	l.mu.Unlock()
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gen.Load() == k.quotaGen && q.period.Equal(k.Quota.LastRefill) {
		k.Quota.Remaining += q.block
	}
}

// returnBlocks gives back to their records the blocks this node holds, in
// write transactions of up to flushChunk records. A block whose quota has since
// been replaced or refilled is dropped instead. If a write fails, the
// blocks it did not give back stay this node's.
func (s *Store) returnBlocks(now time.Time) error {
	s.limits.mu.Lock()
	leases := make(map[string]*lease, len(s.limits.leases))
	for id, q := range s.limits.leases {
		leases[id] = q
	}
	s.limits.mu.Unlock()
	var backs []returned
	for id, q := range leases {
		q.mu.Lock()
		if q.void(now) {
			q.block = 0
		}
		if q.block > 0 {
			backs = append(backs, returned{id: id, q: q, n: q.block, gen: q.gen.Load(), period: q.period})
			q.block = 0
		}
		q.mu.Unlock()
	}
	var err error
	for len(backs) > 0 && err == nil {
		part := backs[:min(flushChunk, len(backs))]
		err = s.updateKeys(context.Background(), func(tx kv.Tx) error { return giveBack(tx, part) })
		if err == nil {
			backs = backs[len(part):]
		}
	}
	if err != nil {
		keep := backs
		if errors.Is(err, kv.ErrOutcomeUnknown) {
			// The chunk tried may have committed, its calls back in the
			// records: holding them as well could pass more calls than
			// the quota, dropping them can only pass fewer.
			keep = backs[min(flushChunk, len(backs)):]
		}
		for _, b := range keep {
			b.q.mu.Lock()
			if b.q.gen.Load() == b.gen && b.q.period.Equal(b.period) {
				b.q.block += b.n
			}
			b.q.mu.Unlock()
		}
		return fmt.Errorf("give back quota blocks: %w", err)
	}
	return nil
}

// returned is a block given back: n calls of key id's quota of generation
// gen and refill period period, held in q.
type returned struct {
	id     string
	q      *lease
	n, gen int64
	period time.Time
}

// giveBack adds the blocks of backs to their records' Remaining, in tx,
// but for those whose quota has been replaced or refilled since.
func giveBack(tx kv.Tx, backs []returned) error {
	keys := tx.Bucket(bucketKeys)
	for _, b := range backs {
		rec, err := decodeRecord(keys.Get([]byte(b.id)))
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if !rec.HasQuota || rec.QuotaGen != b.gen || !rec.Quota.LastRefill.Equal(b.period) {
			continue // replaced or refilled meanwhile: the block is void
		}
		rec.Quota.Remaining += b.n
		if err := putRecord(tx, &rec); err != nil {
			return err
		}
	}
	return nil
}
