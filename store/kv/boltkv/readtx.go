package boltkv

import (
	"sync"
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
	db  *DB
	max int // idle transactions kept

	mu      sync.Mutex
	idle    []*tx
	writers int    // writes under way: nothing is kept meanwhile
	gen     uint64 // writes finished
	closed  bool
}

// get lends a read transaction.
func (r *readTxs) get() (*tx, error) {
	r.mu.Lock()
	gen := r.gen
	if n := len(r.idle); n > 0 && r.writers == 0 {
		t := r.idle[n-1]
		r.idle[n-1] = nil
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return t, nil
	}
	r.mu.Unlock()
	// gen was read before the transaction began: if a write finishes
	// between the two, the transaction is not kept.
	btx, err := r.db.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return &tx{tx: btx, db: r.db, gen: gen}, nil
}

// put takes back a transaction lent by get, keeping it if nothing has been
// written since it began and nothing is being written now.
func (r *readTxs) put(t *tx) {
	r.mu.Lock()
	if !r.closed && r.writers == 0 && t.gen == r.gen && len(r.idle) < r.max {
		r.idle = append(r.idle, t)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	_ = t.tx.Rollback()
}

// beginWrite ends the idle transactions and keeps none until endWrite.
func (r *readTxs) beginWrite() {
	r.mu.Lock()
	r.writers++
	idle := r.idle
	r.idle = nil
	r.mu.Unlock()
	for _, t := range idle {
		_ = t.tx.Rollback()
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
	for _, t := range idle {
		_ = t.tx.Rollback()
	}
}
