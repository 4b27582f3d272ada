package store

import (
	"sync"
	"time"
)

// authCache keeps recently authenticated keys by secret digest, so that the
// common call, the same key again and again, authenticates without a read
// transaction. Only hits are cached: an unknown secret always reaches bbolt.
//
// Every write that changes or removes a key invalidates its entry after the
// commit and bumps gen; a lookup that read bbolt before that commit finds gen
// changed and does not insert its stale copy. So once a write returns, no
// call authenticates with the old record.
type authCache struct {
	mu   sync.RWMutex
	gen  uint64
	keys map[[32]byte]*cached // entries are never modified once put
	max  int
}

// cached is a key as found by one of its secrets: until, when set, is when
// that secret stops working (a secret replaced by rotation).
type cached struct {
	key   Key
	until time.Time
}

func newAuthCache(max int) *authCache {
	return &authCache{keys: make(map[[32]byte]*cached), max: max}
}

// get returns the cached key for d, or the generation to pass to put.
func (c *authCache) get(d [32]byte) (*cached, bool, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.keys[d]
	return k, ok, c.gen
}

// put caches k under d unless a write happened since gen was read.
func (c *authCache) put(d [32]byte, k *cached, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.keys) >= c.max {
		clear(c.keys)
	}
	c.keys[d] = k
}

// invalidate drops d and makes lookups in flight discard what they read.
func (c *authCache) invalidate(d [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.keys, d)
}
