package store

import (
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// authCache keeps the state of recently authenticated keys, so that the
// common call, the same key again and again, authenticates without a read
// transaction. Only hits are cached: an unknown secret always reaches the
// engine.
//
// There is one entry per key, by key id. Every secret the key answers to,
// the current one and one retained by apikey.rotate, leads to that entry,
// which holds everything the key's answer depends on: its record and its
// holder's state. So no secret can see an older state than another.
//
// Entries are dropped by the write transactions themselves (see write.go),
// when they commit and before the write returns: a key's own writes drop its
// entry, any write to a holder or an account drops them all, and so does
// every write of another node on an engine shared with others. Each drop
// bumps gen; a lookup that read the engine before the commit finds gen
// changed and does not insert its stale copy. So once a write returns, no
// call authenticates with the state before it.
type authCache struct {
	mu       sync.RWMutex
	gen      uint64
	byDigest map[[32]byte]*cached // every digest of every entry; entries are never modified once put
	byID     map[string]*cached
	max      int
}

// cached is one key's state as read in one transaction.
type cached struct {
	key Key
	// digest is the current secret's; prevDigest the one retained by the
	// last rotation, which works until prevUntil (zero: none retained).
	digest, prevDigest [32]byte
	prevUntil          time.Time
	// holderInactive is set for a key whose service account is switched
	// off; holderGone for a key whose user or service account no longer
	// exists (it authenticates nothing).
	holderInactive, holderGone bool
}

// until is when the secret of digest d stops working: zero for the
// current secret.
func (c *cached) until(d [32]byte) time.Time {
	if d == c.digest {
		return time.Time{}
	}
	return c.prevUntil
}

func newAuthCache(max int) *authCache {
	return &authCache{byDigest: make(map[[32]byte]*cached), byID: make(map[string]*cached), max: max}
}

// get returns the cached state of the key with a secret of digest d, or
// the generation to pass to put.
func (c *authCache) get(d [32]byte) (*cached, bool, uint64) {
	c.mu.RLock()
	e, ok := c.byDigest[d]
	gen := c.gen
	c.mu.RUnlock()
	return e, ok, gen
}

// put caches e under its key id and each of its digests, unless an entry
// was dropped since gen was read: e may then be older than the drop.
func (c *authCache) put(e *cached, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.byID) >= c.max {
		clear(c.byID)
		clear(c.byDigest)
	}
	c.removeLocked(e.key.ID)
	c.byID[e.key.ID] = e
	c.byDigest[e.digest] = e
	if !e.prevUntil.IsZero() {
		c.byDigest[e.prevDigest] = e
	}
}

// drop removes the entry of key id, reached by whichever secret, and makes
// lookups in flight discard what they read.
func (c *authCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.removeLocked(id)
}

// dropAll empties the cache and makes lookups in flight discard what they
// read.
func (c *authCache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byID)
	clear(c.byDigest)
}

func (c *authCache) removeLocked(id string) {
	e := c.byID[id]
	if e == nil {
		return
	}
	delete(c.byID, id)
	if c.byDigest[e.digest] == e {
		delete(c.byDigest, e.digest)
	}
	if !e.prevUntil.IsZero() && c.byDigest[e.prevDigest] == e {
		delete(c.byDigest, e.prevDigest)
	}
}

// readState reads the state of the key whose current or retained secret
// has digest d: its record and its holder's, in one transaction.
func readState(tx kv.Tx, d []byte) (*cached, error) {
	rec, err := recordByDigest(tx, d)
	if err != nil {
		return nil, err
	}
	c := &cached{key: rec.key(), digest: rec.Digest}
	if !rec.PrevUntil.IsZero() {
		c.prevDigest, c.prevUntil = rec.PrevDigest, rec.PrevUntil
	}
	c.holderInactive, c.holderGone = holderState(tx, rec.Account, rec.Owner)
	return c, nil
}

// holderState reports whether the holder owner of a key of account is
// switched off, and whether it is gone (or not of a kind this build
// knows): a key whose holder is gone authenticates nothing.
func holderState(tx kv.Tx, account, owner string) (inactive, gone bool) {
	if owner == "" {
		return false, false
	}
	if name, ok := cutPrefix(owner, ServiceAccountOwner(account, "")); ok {
		sa, err := findServiceAccount(tx, account, name)
		if err != nil {
			return false, true
		}
		return !sa.Active, false
	}
	if login, ok := cutPrefix(owner, UserOwner("")); ok {
		u, found, err := getUser(tx, login)
		return false, err != nil || !found || u.Account != account
	}
	return false, true
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) <= len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	return s[len(prefix):], true
}
