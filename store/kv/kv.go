// Package kv is the storage engine beneath package store: ordered buckets
// of byte keys, read and written in transactions. Package store keeps every
// rule of the data (records, indexes, counts, the auth cache); an engine
// keeps bytes. Two engines implement it: boltkv, one bbolt file, and
// etcdkv, an etcd v3 prefix shared by many nodes.
//
// The shape is bbolt's, the subset the store uses, so that the store's
// transactions read the same on either engine.
package kv

import "errors"

// DB is an open engine.
type DB interface {
	// View runs fn in a read-only transaction that sees one consistent
	// state, which includes every Update that returned before View began.
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction and commits it if fn
	// returns nil. fn may run more than once (an engine shared by many
	// nodes runs it again on the newer state when another node's commit
	// came first), so it must do nothing but read and write tx and set
	// variables the next run sets again. Once Update returns nil, the
	// writes are durable and every View on this node sees them.
	Update(fn func(Tx) error) error
	// Fresh reports whether reads may serve as the truth: nil, or an
	// error wrapping ErrStale when this node may have missed writes of
	// other nodes for longer than its bound.
	Fresh() error
	Close() error
}

// Notifier is a DB whose data may change by other means than this node's
// Updates (other nodes' writes). OnChange registers fn, which the DB calls
// after each such change, once every View begun after the call sees it.
type Notifier interface {
	OnChange(fn func())
}

// Cluster is a DB that many nodes share (etcdkv). Package store divides
// among the nodes the limits it keeps in memory (rate limits, login
// throttling), and leases quotas to them in blocks, so that the cluster as
// a whole keeps what one node would.
type Cluster interface {
	DB
	// Nodes is how many nodes share the DB now, this one included, as
	// counted lately; at least 1.
	Nodes() int
}

// Tx is a transaction. A Tx, and the buckets, cursors, keys and values it
// returns, are valid only until fn returns; values must not be modified.
type Tx interface {
	// Bucket returns the named bucket, or nil if it does not exist.
	Bucket(name []byte) Bucket
	// CreateBucket creates a bucket; it fails if the bucket exists.
	CreateBucket(name []byte) (Bucket, error)
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	DeleteBucket(name []byte) error
	// OnCommit runs fn after the transaction commits, before Update
	// returns; not at all if it does not commit.
	OnCommit(fn func())
	Writable() bool
	// DB is the engine the transaction belongs to.
	DB() DB
}

// Bucket is an ordered map of byte keys to byte values. A nil value from
// Get means the key is absent; a present key's value is never nil.
type Bucket interface {
	Get(key []byte) []byte
	// Put sets key to value; both must stay unmodified until the
	// transaction ends. The key must not be empty; an empty value reads
	// back as a non-nil empty slice.
	Put(key, value []byte) error
	Delete(key []byte) error
	Cursor() Cursor
	// ForEach calls fn for each key in order; fn must not change the
	// bucket.
	ForEach(fn func(k, v []byte) error) error
	// NextSequence returns the bucket's next sequence number, from 1.
	NextSequence() (uint64, error)
	// Sequence is the last number NextSequence returned; SetSequence sets
	// it (to copy a bucket whole).
	Sequence() uint64
	SetSequence(v uint64) error
	// KeyN counts the bucket's keys, in a read transaction (bbolt's
	// count in a write transaction leaves out what it has changed).
	KeyN() int
}

// Cursor walks a bucket in key order. Each move returns the key and value
// it lands on, or nil, nil past either end.
type Cursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	// Seek moves to the first key at or after seek.
	Seek(seek []byte) (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
}

var (
	// ErrStale says that this node cannot vouch for its copy of the data:
	// it may have missed writes of other nodes.
	ErrStale = errors.New("store: this node's copy may be stale")
	// ErrBucketExists and ErrBucketNotFound are CreateBucket's and
	// DeleteBucket's errors.
	ErrBucketExists   = errors.New("store: bucket exists")
	ErrBucketNotFound = errors.New("store: bucket not found")
	// ErrTooLarge is an Update the engine refused for its size (etcd's
	// --max-txn-ops or --max-request-bytes); smaller ones may pass.
	ErrTooLarge = errors.New("store: transaction too large for the engine")
	// ErrOutcomeUnknown is an Update whose commit may or may not have
	// happened (its engine lost the answer and could not find out).
	ErrOutcomeUnknown = errors.New("store: write outcome unknown")
	// ErrKeyRequired is a Put with an empty key.
	ErrKeyRequired = errors.New("store: key required")
	// ErrTxNotWritable is a write in a read-only transaction.
	ErrTxNotWritable = errors.New("store: transaction not writable")
)
