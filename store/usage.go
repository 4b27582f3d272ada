package store

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// Usage tracking (last_used_at, use_count) must not put a disk write on
// every call. Uses gather in memory and a background loop writes them every
// Options.UsageFlush in one transaction; Close writes the rest. A crash
// loses at most one interval of counts, never a key. Quota spending rides
// the same loop.
type usageTracker struct {
	mu      sync.RWMutex
	pending map[string]*usage
	// clock is the time in Unix seconds, kept by the usage loop four times
	// a second when the store runs on the real clock (coarse is true), so
	// that recording a use reads no clock. Usage times are whole seconds.
	clock  atomic.Int64
	coarse bool
}

type usage struct {
	last  atomic.Int64 // Unix seconds
	count atomic.Int64
}

// RecordUse notes that key id authenticated a call now. It does no I/O and,
// for a key already used since the last flush, takes no exclusive lock.
func (s *Store) RecordUse(id string) {
	t := s.usage
	if t == nil {
		return
	}
	var now int64
	if t.coarse {
		now = t.clock.Load()
	} else {
		now = s.now().Unix()
	}
	// The use is added under the lock that FlushUsage takes to swap the
	// map, so it lands in the map the flush writes or in the next one,
	// never in one already written.
	t.mu.RLock()
	if u := t.pending[id]; u != nil {
		u.add(now)
		t.mu.RUnlock()
		return
	}
	t.mu.RUnlock()
	t.mu.Lock()
	u := t.pending[id]
	if u == nil {
		u = &usage{}
		t.pending[id] = u
	}
	u.add(now)
	t.mu.Unlock()
}

// add counts one use at now (Unix seconds).
func (u *usage) add(now int64) {
	u.count.Add(1)
	for last := u.last.Load(); now > last && !u.last.CompareAndSwap(last, now); last = u.last.Load() {
	}
}

// FlushUsage writes the uses gathered since the last flush into the key
// records, in one transaction (on a shared engine, one per flushChunk
// keys). Uses of keys deleted meanwhile are dropped.
// It writes quota spending too, or on a shared engine gives back the quota
// blocks this node holds (quotalease.go).
//
// The counts are added to what the records hold, in the transaction: on a
// shared engine, which runs it again on the newer records when another
// node's write came first, every node's uses add up and last_used_at is
// the latest of them.
func (s *Store) FlushUsage() (err error) {
	defer func() {
		if err == nil {
			s.stats.lastFlush.Store(time.Now().UnixNano())
		}
	}()
	if s.limits.nodes != nil {
		if err := s.returnBlocks(s.now()); err != nil {
			return err
		}
	} else if s.limits.dirtyQuotas() {
		if err := s.flushQuotas(); err != nil {
			return err
		}
	}
	if s.usage == nil {
		return nil
	}
	s.usage.mu.Lock()
	pending := s.usage.pending
	s.usage.pending = make(map[string]*usage, len(pending))
	s.usage.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	ids := make([]string, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	for step := s.flushStep(len(ids)); len(ids) > 0 && err == nil; {
		part := ids[:min(step, len(ids))]
		err = s.updateKeys(context.Background(), func(tx kv.Tx) error {
			keys := tx.Bucket(bucketKeys)
			for _, id := range part {
				u := pending[id]
				rec, err := decodeRecord(keys.Get([]byte(id)))
				if err == ErrNotFound {
					continue
				} else if err != nil {
					return err
				}
				if last := usedAt(u, rec.Created); last.After(rec.LastUsed) {
					rec.LastUsed = last
				}
				rec.UseCount += u.count.Load()
				if err := putRecord(tx, &rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			ids = ids[len(part):]
		}
	}
	if err != nil { // keep the counts not written for the next try
		s.usage.mu.Lock()
		for _, id := range ids {
			u := pending[id]
			if cur := s.usage.pending[id]; cur != nil {
				cur.count.Add(u.count.Load())
				if l := u.last.Load(); l > cur.last.Load() {
					cur.last.Store(l)
				}
			} else {
				s.usage.pending[id] = u
			}
		}
		s.usage.mu.Unlock()
	}
	return err
}

// flushChunk is the most key records one flush transaction writes on a
// shared engine: etcd refuses a transaction of more operations than its
// --max-txn-ops, 128 by default.
const flushChunk = 100

// flushStep is how many of n key records one flush transaction writes: all
// of them on a file, whose every commit is a sync.
func (s *Store) flushStep(n int) int {
	if s.limits.nodes == nil {
		return n
	}
	return flushChunk
}

// flushLoop writes usage and quota spending every interval and keeps the
// coarse usage clock, until Close.
func (s *Store) flushLoop(every time.Duration) {
	defer close(s.done)
	flush := time.NewTicker(every)
	defer flush.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if s.usage != nil {
				s.usage.clock.Store(s.now().Unix())
			}
		case <-flush.C:
			_ = s.FlushUsage() // a failure keeps the counts for the next tick
			s.limits.prune(s.now())
			_ = s.FlushAudit() // a failure keeps the counts for the next tick
			s.pruneAudit()
		case <-s.stop:
			return
		}
	}
}

// withUsage adds the uses not yet written to k.
func (s *Store) withUsage(k *Key) {
	if s.usage == nil {
		return
	}
	s.usage.mu.RLock()
	u := s.usage.pending[k.ID]
	s.usage.mu.RUnlock()
	if u == nil {
		return
	}
	if count := u.count.Load(); count > 0 {
		k.UseCount += count
		if last := usedAt(u, k.Created); last.After(k.LastUsed) {
			k.LastUsed = last
		}
	}
}

// usedAt is the time of u's last use, never earlier than created: the
// coarse clock may still hold the second before the key was created.
func usedAt(u *usage, created time.Time) time.Time {
	last := time.Unix(u.last.Load(), 0).UTC()
	if last.Before(created) {
		return created.UTC()
	}
	return last
}

func appendUsage(b []byte, last time.Time, count int64) []byte {
	b = binary.AppendVarint(b, last.Unix())
	return binary.AppendVarint(b, count)
}
