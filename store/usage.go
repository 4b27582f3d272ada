package store

import (
	"encoding/binary"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Usage tracking (last_used_at, use_count) must not put a disk write on
// every call. Uses gather in memory and a background loop writes them every
// Options.UsageFlush in one transaction; Close writes the rest. A crash
// loses at most one interval of counts, never a key.
type usageTracker struct {
	mu      sync.Mutex
	pending map[string]*usage
	stop    chan struct{}
	done    chan struct{}
}

type usage struct {
	last  time.Time
	count int64
}

// RecordUse notes that key id authenticated a call now. It does no I/O.
func (s *Store) RecordUse(id string) {
	if s.usage == nil {
		return
	}
	now := s.now()
	s.usage.mu.Lock()
	u := s.usage.pending[id]
	if u == nil {
		u = &usage{}
		s.usage.pending[id] = u
	}
	u.last = now
	u.count++
	s.usage.mu.Unlock()
}

// FlushUsage writes the uses gathered since the last flush into the key
// records, in one transaction. Uses of keys deleted meanwhile are dropped.
func (s *Store) FlushUsage() error {
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
	err := s.db.Update(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		for id, u := range pending {
			rec, err := decodeRecord(keys.Get([]byte(id)))
			if err == ErrNotFound {
				continue
			} else if err != nil {
				return err
			}
			if u.last.After(rec.LastUsed) {
				rec.LastUsed = u.last.UTC().Truncate(time.Second)
			}
			rec.UseCount += u.count
			if err := putRecord(tx, &rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil { // keep the counts for the next try
		s.usage.mu.Lock()
		for id, u := range pending {
			if cur := s.usage.pending[id]; cur != nil {
				cur.count += u.count
				if u.last.After(cur.last) {
					cur.last = u.last
				}
			} else {
				s.usage.pending[id] = u
			}
		}
		s.usage.mu.Unlock()
	}
	return err
}

func (s *Store) usageLoop(every time.Duration) {
	defer close(s.usage.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = s.FlushUsage() // a failure keeps the counts for the next tick
		case <-s.usage.stop:
			return
		}
	}
}

// withUsage adds the uses not yet written to k.
func (s *Store) withUsage(k *Key) {
	if s.usage == nil {
		return
	}
	s.usage.mu.Lock()
	u := s.usage.pending[k.ID]
	var last time.Time
	var count int64
	if u != nil {
		last, count = u.last, u.count
	}
	s.usage.mu.Unlock()
	if count > 0 {
		k.UseCount += count
		if last = last.UTC().Truncate(time.Second); last.After(k.LastUsed) {
			k.LastUsed = last
		}
	}
}

func appendUsage(b []byte, last time.Time, count int64) []byte {
	b = binary.AppendVarint(b, last.Unix())
	return binary.AppendVarint(b, count)
}
