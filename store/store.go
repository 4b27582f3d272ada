package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/kv/boltkv"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// LockTimeout bounds the wait for another process's lock on the file.
	// Zero means 2 seconds.
	LockTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NoSync skips fsync on commit: for tests and benchmarks only.
	NoSync bool
	// AuthCacheSize bounds the keys KeyBySecret keeps in memory; 0 means
	// 16384, a negative value turns the cache off.
	AuthCacheSize int
	// MaxConcurrentHashes caps argon2id runs at once (each takes 19 MiB);
	// 0 means 2.
	MaxConcurrentHashes int
	// MaxLoginFailures in a row from one source address throttle that
	// source's logins to a login name, with delays growing from 1 minute to
	// LockoutDuration; MaxUserLoginFailures from all sources within
	// LockoutDuration lock the name for every source for LockoutDuration.
	// 0 means 5, 100 and 15 minutes. On an engine many nodes share, each
	// node keeps its share of both counts (users.go, loginGuard).
	MaxLoginFailures     int
	MaxUserLoginFailures int
	LockoutDuration      time.Duration
	// UsageFlush is how often uses and quota spending gathered in memory
	// are written to key records; 0 means 5 seconds, a negative value turns
	// usage tracking off (quotas are then written every 5 seconds).
	UsageFlush time.Duration
	// AuditRetention is how long audit records are kept; older ones are
	// deleted in the background, every UsageFlush. 0 means
	// DefaultAuditRetention (90 days), a negative value keeps them forever.
	AuditRetention time.Duration
}

// Store is an open apikeyd store: a data file, or another kv engine
// (OpenDB). It is safe for concurrent use.
type Store struct {
	db      kv.DB
	file    *boltkv.DB // db, when it is a bbolt file: for what only a file has
	path    string     // file's path; "" for another engine
	now     func() time.Time
	cache   *authCache
	hashSem chan struct{}
	logins  *loginGuard
	usage   *usageTracker // nil when tracking is off
	limits  *limiter
	fullKey atomic.Pointer[string] // the last full operator key found (operator.go)
	group   groupCommit            // shared write transactions (write.go)
	// guardedTx is the write transaction whose last function left a full
	// operator key (guarded, operator.go). Only write transactions, which
	// the engine runs one at a time, touch it.
	guardedTx kv.Tx
	closed    atomic.Bool
	// failures counts failed authentications until FlushAudit writes them.
	failures       failureTally
	auditRetention time.Duration // negative: keep forever
	// stop ends the background flush loop, which closes done.
	stop, done chan struct{}

	hashRuns, hashInFlight, hashPeak atomic.Int64
	stats                            stats // read by Stats (stats.go)
}

// Open opens or creates the data file at path, creates missing buckets and
// checks the schema version. If another process holds the file, Open fails
// with ErrLocked after opts.LockTimeout, without changing the file.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	db, err := boltkv.Open(path, boltkv.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (waited %s)", path, ErrLocked, opts.LockTimeout)
	}
	if err != nil {
		return nil, err
	}
	s, err := OpenDB(db, opts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// OpenDB opens a store over an open engine, as Open does over a file:
// it creates missing buckets and checks the schema version. db is the
// store's from then on: Close closes it, as does an OpenDB that fails.
// opts.LockTimeout and opts.NoSync, which are the file's, are ignored.
//
// An engine that other nodes write too (a kv.Notifier) tells the store of
// their writes, which then drops what it keeps in memory of the data. On
// an engine that counts the nodes sharing it (a kv.Cluster), each node
// keeps its share of rate limits and login throttling, and spends quotas
// from blocks it leases (limits.go, quotalease.go).
func OpenDB(db kv.DB, opts Options) (*Store, error) {
	customClock := opts.Now != nil
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AuthCacheSize == 0 {
		opts.AuthCacheSize = 16384
	}
	if opts.MaxConcurrentHashes <= 0 {
		opts.MaxConcurrentHashes = 2
	}
	if opts.MaxLoginFailures <= 0 {
		opts.MaxLoginFailures = 5
	}
	if opts.MaxUserLoginFailures <= 0 {
		opts.MaxUserLoginFailures = 100
	}
	if opts.LockoutDuration <= 0 {
		opts.LockoutDuration = 15 * time.Minute
	}
	if opts.AuditRetention == 0 {
		opts.AuditRetention = DefaultAuditRetention
	}
	s := &Store{
		db: db, now: opts.Now, auditRetention: opts.AuditRetention,
		cache:   newAuthCache(opts.AuthCacheSize),
		hashSem: make(chan struct{}, opts.MaxConcurrentHashes),
		logins: &loginGuard{max: opts.MaxLoginFailures, userMax: opts.MaxUserLoginFailures, lockout: opts.LockoutDuration,
			users: map[string]*userLogins{}},
		limits: newLimiter(),
	}
	if s.file, _ = db.(*boltkv.DB); s.file != nil {
		s.path = s.file.Bolt().Path() // bbolt forgets it at Close
	}
	caches.Store(db, s.cache)
	if err := s.init(); err != nil {
		_ = db.Close()
		caches.Delete(db)
		return nil, err
	}
	if n, ok := db.(kv.Notifier); ok {
		n.OnChange(s.othersWrote)
	}
	if c, ok := db.(kv.Cluster); ok {
		s.limits.nodes, s.logins.nodes = c.Nodes, c.Nodes
	}
	every := opts.UsageFlush
	if every == 0 {
		every = 5 * time.Second
	}
	if every > 0 {
		s.usage = &usageTracker{pending: map[string]*usage{}, coarse: !customClock}
		s.usage.clock.Store(s.now().Unix())
	} else {
		every = 5 * time.Second
	}
	s.stats.lastFlush.Store(time.Now().UnixNano())
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.flushLoop(every)
	return s, nil
}

// othersWrote is called by an engine shared with other nodes after their
// writes. Any of them may have changed what a key can do, so every cached
// key state goes, as after a write of this node's through update; quotas
// in memory are read again from their records (limits.go).
func (s *Store) othersWrote() {
	s.cache.dropAll()
	s.limits.reloadQuotas()
}

// init creates missing buckets and the schema version, checks the
// version, and migrates a file of an older one. A file that needs none of
// this is not written to.
func (s *Store) init() error {
	ready := false
	err := s.view(func(tx kv.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return nil
			}
		}
		n, err := schemaOf(tx.Bucket(bucketMeta).Get(metaSchema))
		ready = n == SchemaVersion
		return err
	})
	if ready || err != nil {
		return err
	}
	rebuild := false
	err = s.update(context.Background(), func(tx kv.Tx) error {
		countsMissing := tx.Bucket(bucketKeyCounts) == nil
		indexMissing := tx.Bucket(bucketKeyIndex) == nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		from := SchemaVersion // a new file
		if v := meta.Get(metaSchema); v != nil {
			var err error
			if from, err = schemaOf(v); err != nil {
				return err
			}
		}
		// Version 1 kept no key counts (or a build of it may have changed
		// keys without keeping them): count once.
		if countsMissing || from < 2 {
			if err := recountKeys(tx); err != nil {
				return err
			}
		}
		if rebuild = (indexMissing || from < 3) && hasKeys(tx); rebuild {
			return nil // buildKeyIndex writes the version once the index is whole
		}
		return meta.Put(metaSchema, []byte(strconv.Itoa(SchemaVersion)))
	})
	if err == nil && rebuild {
		err = s.buildKeyIndex()
	}
	return err
}

// schemaOf reads a stored schema version: one this build reads, or an
// older one it migrates.
func schemaOf(v []byte) (int, error) {
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 || n > SchemaVersion {
		return 0, fmt.Errorf("%w: file has %q, this build reads 1 to %d", ErrSchema, v, SchemaVersion)
	}
	return n, nil
}

// Now is the store's clock: time.Now unless Options.Now says otherwise.
func (s *Store) Now() time.Time { return s.now() }

// Close writes the uses not yet written (and on a shared engine gives
// back the quota blocks this node holds) and closes the engine. Calls
// after Close fail.
func (s *Store) Close() error {
	var flushErr error
	if s.closed.CompareAndSwap(false, true) {
		close(s.stop)
		<-s.done
		flushErr = errors.Join(s.FlushUsage(), s.FlushAudit())
	}
	err := s.db.Close()
	caches.Delete(s.db)
	return errors.Join(flushErr, err)
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(kv.Tx) error) error { return s.db.View(fn) }

// Path is the data file's path as given to Open, or "" for a store over
// another engine.
func (s *Store) Path() string { return s.path }

// Size is the data file's size on disk in bytes. A store over another
// engine has no file: its Size fails with ErrNotFile.
func (s *Store) Size() (int64, error) {
	if s.file == nil {
		return 0, fmt.Errorf("size: %w", ErrNotFile)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// WriteTo writes a consistent copy of the whole store to w, from one read
// transaction, while the store keeps serving: a hot backup. The copy is a
// bbolt data file that Open opens, whichever engine the store is on.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	if s.file == nil {
		return s.copyTo(w)
	}
	var n int64
	err := s.file.Bolt().View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// copyTo is WriteTo for an engine that is not a file: it copies the store
// from one consistent read into a new bbolt file in the temp dir, writes
// that file to w and removes it. The copy opens with Open, as a backup of
// a file does.
func (s *Store) copyTo(w io.Writer) (int64, error) {
	dir, err := os.MkdirTemp("", "apikeyd-backup-")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "apikeyd.db")
	dst, err := boltkv.Open(path, boltkv.Options{NoSync: true})
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	err = kv.Copy(dst, s.db, allBuckets)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	return io.Copy(w, f)
}

// Fingerprint is a SHA-256 over every key and value the store holds, the
// audit trail and the quotas' counts aside: it changes exactly when stored
// data changes. Tests use it to prove that a failed call changed nothing
// (it is still audited, and spends a call of its key's quota, which on a
// shared engine may lease a block in the key's record: quotalease.go).
func (s *Store) Fingerprint() ([32]byte, error) {
	h := sha256.New()
	err := s.view(func(tx kv.Tx) error {
		for _, name := range allBuckets {
			if bytes.Equal(name, bucketAudit) || bytes.Equal(name, bucketAuditAccount) {
				continue
			}
			keys := bytes.Equal(name, bucketKeys)
			h.Write(name)
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				if keys {
					rec, err := decodeRecord(v)
					if err != nil {
						return err
					}
					rec.Quota.Remaining, rec.Quota.LastRefill = 0, time.Time{}
					v = rec.marshal()
				}
				h.Write(binary.AppendUvarint(nil, uint64(len(k))))
				h.Write(k)
				h.Write(binary.AppendUvarint(nil, uint64(len(v))))
				h.Write(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return [32]byte(h.Sum(nil)), err
}
