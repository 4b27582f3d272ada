package store

import (
	"sync/atomic"
	"time"
)

// Stats are the store's running counts an operator's metrics read. Reading
// them takes no lock.
type Stats struct {
	// AuthCacheHits and AuthCacheMisses count AuthKey lookups of a secret
	// of the right form answered from the auth cache, and those that read
	// the file.
	AuthCacheHits, AuthCacheMisses uint64
	// LastUsageFlush is when uses and quota spending were last written
	// (or found to need no write); at first, when the store was opened.
	LastUsageFlush time.Time
}

// stats holds what Stats reports, and the write observer.
type stats struct {
	cacheHits, cacheMisses atomic.Uint64
	lastFlush              atomic.Int64 // unix nanoseconds
	writeObserver          atomic.Pointer[func(time.Duration)]
}

// Stats returns the store's running counts.
func (s *Store) Stats() Stats {
	return Stats{
		AuthCacheHits:   s.stats.cacheHits.Load(),
		AuthCacheMisses: s.stats.cacheMisses.Load(),
		LastUsageFlush:  time.Unix(0, s.stats.lastFlush.Load()),
	}
}

// ObserveWrites makes f receive the duration of every write transaction,
// from its start to the end of its commit (for a shared one, including the wait
// to share a commit). f runs on the writer's goroutine: it must be quick
// and safe for concurrent use. nil stops observing.
func (s *Store) ObserveWrites(f func(time.Duration)) {
	if f == nil {
		s.stats.writeObserver.Store(nil)
		return
	}
	s.stats.writeObserver.Store(&f)
}

// observeWrite reports a write that began at start to the write observer,
// if any.
func (s *Store) observeWrite(start time.Time) {
	if f := s.stats.writeObserver.Load(); f != nil {
		(*f)(time.Since(start))
	}
}
