package boltkv

import (
	"fmt"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	bolt "go.etcd.io/bbolt"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// Timeout bounds the wait for another process's lock on the file; zero
	// waits for ever. An Open that runs out of it fails with an error
	// wrapping bbolt's errors.ErrTimeout.
	Timeout time.Duration
	// NoSync skips fsync on commit: for tests and benchmarks only.
	NoSync bool
	// ReadOnly opens the file for reading only, under a lock that other
	// readers share: for checking a stopped server's file. Update fails.
	ReadOnly bool
}

// DB is an open bbolt file. It implements kv.DB; it is never stale, as
// nobody else writes its file.
type DB struct {
	db    *bolt.DB
	reads readTxs
}

var _ kv.DB = (*DB)(nil)

// Open opens or creates the bbolt file at path.
func Open(path string, opts Options) (*DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.Timeout, NoSync: opts.NoSync, ReadOnly: opts.ReadOnly, NoStatistics: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{db: b}
	db.reads = readTxs{db: db, max: 16}
	return db, nil
}

// Bolt is the bbolt file, for what only a file has: a hot copy
// (tx.WriteTo), bbolt's own page check, its path. Its transactions must be
// read-only: a write that goes around Update could be kept waiting for
// ever by the read transactions Update ends first, and would leave them
// lending what it replaced.
func (db *DB) Bolt() *bolt.DB { return db.db }

// View runs fn in a read transaction, lent from those kept since the last
// write when there is one.
func (db *DB) View(fn func(kv.Tx) error) error {
	t, err := db.reads.get()
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done { // fn panicked or ended its goroutine: not lent again
			_ = t.tx.Rollback()
		}
	}()
	err = fn(t)
	done = true
	db.reads.put(t)
	return err
}

// Update runs fn in bbolt's write transaction, which runs fn once. It ends
// the read transactions kept, and no read transaction begun before its
// commit is lent after it.
func (db *DB) Update(fn func(kv.Tx) error) error {
	db.reads.beginWrite()
	defer db.reads.endWrite()
	return db.db.Update(func(btx *bolt.Tx) error {
		return fn(&tx{tx: btx, db: db, writable: true})
	})
}

// Fresh is always nil: this node is the file's only writer.
func (db *DB) Fresh() error { return nil }

// Close ends the read transactions kept and closes the file.
func (db *DB) Close() error {
	db.reads.close()
	return db.db.Close()
}
