package store

import (
	"sync"

	bolt "go.etcd.io/bbolt"
)

// readTxs lends read transactions out again and again, until the next write.
//
// Beginning and ending a bbolt read transaction is most of the cost of a
// one-key read: two locks, a copy and checksum of the meta page, and the
// allocations of a fresh Tx. A read transaction sees the file as it was
// when it began, so a finished one may serve later reads only while
// nothing has been written since. Every write therefore first ends the idle
// transactions (a write that grows the file waits for all open read
// transactions), and after it commits, no transaction begun before it is
// lent again: a read that starts after a write returned sees that write.
//
// A transaction is lent to one goroutine at a time; the mutex orders one
// borrower's use before the next's.
type readTxs struct {
	db  *bolt.DB
	max int // idle transactions kept

	mu      sync.Mutex
	idle    []*readTx
	writers int    // writes under way: nothing is kept meanwhile
	gen     uint64 // writes finished
	closed  bool
}

// A readTx is a read transaction lent by readTxs, with the buckets it
// has opened: a bucket of a read transaction stays valid as long as it.
type readTx struct {
	tx   *bolt.Tx
	gen  uint64       // writes finished before tx began
	keys *bolt.Bucket // bucketKeys, opened on first use
}

func (r *readTx) keysBucket() *bolt.Bucket {
	if r.keys == nil {
		r.keys = r.tx.Bucket(bucketKeys)
	}
	return r.keys
}

// get lends a read transaction.
func (r *readTxs) get() (*readTx, error) {
	r.mu.Lock()
	gen := r.gen
	if n := len(r.idle); n > 0 && r.writers == 0 {
		rt := r.idle[n-1]
		r.idle[n-1] = nil
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return rt, nil
	}
	r.mu.Unlock()
	// gen was read before the transaction began: if a write finishes
	// between the two, the transaction is not kept.
	tx, err := r.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return &readTx{tx: tx, gen: gen}, nil
}

// put takes back a transaction lent by get, keeping it if nothing has been
// written since it began and nothing is being written now.
func (r *readTxs) put(rt *readTx) {
	r.mu.Lock()
	if !r.closed && r.writers == 0 && rt.gen == r.gen && len(r.idle) < r.max {
		r.idle = append(r.idle, rt)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	_ = rt.tx.Rollback()
}

// beginWrite ends the idle transactions and keeps none until endWrite.
func (r *readTxs) beginWrite() {
	r.mu.Lock()
	r.writers++
	idle := r.idle
	r.idle = nil
	r.mu.Unlock()
	for _, rt := range idle {
		_ = rt.tx.Rollback()
	}
}

// endWrite makes every transaction begun before it stale.
func (r *readTxs) endWrite() {
	r.mu.Lock()
	r.writers--
	r.gen++
	r.mu.Unlock()
}

// close ends the idle transactions and lends no more.
func (r *readTxs) close() {
	r.mu.Lock()
	r.closed = true
	idle := r.idle
	r.idle = nil
	r.mu.Unlock()
	for _, rt := range idle {
		_ = rt.tx.Rollback()
	}
}

// view runs fn in a read transaction, as bolt.DB.View does.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return s.viewTx(func(rt *readTx) error { return fn(rt.tx) })
}

// viewTx is view for reads that reuse the transaction's open buckets.
func (s *Store) viewTx(fn func(*readTx) error) error {
	rt, err := s.reads.get()
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done { // fn panicked or ended its goroutine: not lent again
			_ = rt.tx.Rollback()
		}
	}()
	err = fn(rt)
	done = true
	s.reads.put(rt)
	return err
}
