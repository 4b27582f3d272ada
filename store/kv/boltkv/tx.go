package boltkv

import (
	"errors"

	"github.com/apikeyd/apikeyd/store/kv"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// tx is a kv.Tx over a bbolt transaction: a write transaction of Update,
// or a read transaction lent by readTxs, with the buckets it has opened.
//
// bbolt keeps the buckets a write transaction opens, but opens a bucket of
// a read transaction anew at each call, a seek and an allocation. A
// bucket of a read transaction stays valid as long as it, so a lent one
// keeps them: a read on a transaction lent again finds its buckets open.
type tx struct {
	tx       *bolt.Tx
	db       *DB
	writable bool
	gen      uint64   // a read transaction: writes finished before it began
	open     []opened // a read transaction: buckets opened, by name
}

type opened struct {
	name string
	b    *bolt.Bucket
}

func (t *tx) Bucket(name []byte) kv.Bucket {
	if t.writable {
		return wrapBucket(t.tx.Bucket(name))
	}
	for i := range t.open {
		if t.open[i].name == string(name) {
			return (*bucket)(t.open[i].b)
		}
	}
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	t.open = append(t.open, opened{name: string(name), b: b})
	return (*bucket)(b)
}

func (t *tx) CreateBucket(name []byte) (kv.Bucket, error) {
	b, err := t.tx.CreateBucket(name)
	if err != nil {
		return nil, kvError(err)
	}
	return (*bucket)(b), nil
}

func (t *tx) CreateBucketIfNotExists(name []byte) (kv.Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, kvError(err)
	}
	return (*bucket)(b), nil
}

func (t *tx) DeleteBucket(name []byte) error { return kvError(t.tx.DeleteBucket(name)) }

// OnCommit does nothing in a read transaction, which never commits (and
// is lent again: it must not gather handlers).
func (t *tx) OnCommit(fn func()) {
	if t.writable {
		t.tx.OnCommit(fn)
	}
}

func (t *tx) Writable() bool { return t.writable }

func (t *tx) DB() kv.DB { return t.db }

// bucket is a bbolt bucket as a kv.Bucket: the same pointer, so that
// handing one out allocates nothing.
type bucket bolt.Bucket

// wrapBucket returns b as a kv.Bucket: a nil interface for a nil b.
func wrapBucket(b *bolt.Bucket) kv.Bucket {
	if b == nil {
		return nil
	}
	return (*bucket)(b)
}

func (b *bucket) bolt() *bolt.Bucket { return (*bolt.Bucket)(b) }

func (b *bucket) Get(key []byte) []byte { return b.bolt().Get(key) }

// emptyValue is stored for a nil value: bbolt would hand a nil value back
// unchanged, as if absent, to reads of the same transaction.
var emptyValue = []byte{}

func (b *bucket) Put(key, value []byte) error {
	if value == nil {
		value = emptyValue
	}
	return kvError(b.bolt().Put(key, value))
}

func (b *bucket) Delete(key []byte) error { return kvError(b.bolt().Delete(key)) }

func (b *bucket) Cursor() kv.Cursor { return (*cursor)(b.bolt().Cursor()) }

func (b *bucket) ForEach(fn func(k, v []byte) error) error { return b.bolt().ForEach(fn) }

func (b *bucket) NextSequence() (uint64, error) {
	n, err := b.bolt().NextSequence()
	return n, kvError(err)
}

func (b *bucket) Sequence() uint64 { return b.bolt().Sequence() }

func (b *bucket) SetSequence(v uint64) error { return kvError(b.bolt().SetSequence(v)) }

// KeyN counts the keys from bbolt's page statistics: a walk of the
// bucket's pages, not of its values.
func (b *bucket) KeyN() int { return b.bolt().Stats().KeyN }

// SetFillPercent sets how full bbolt fills the pages it splits, for this
// transaction: high for a bucket whose keys mostly arrive in order, so
// that its pages are not left half empty.
func (b *bucket) SetFillPercent(f float64) { b.bolt().FillPercent = f }

// cursor is a bbolt cursor as a kv.Cursor.
type cursor bolt.Cursor

func (c *cursor) bolt() *bolt.Cursor                { return (*bolt.Cursor)(c) }
func (c *cursor) First() (k, v []byte)              { return c.bolt().First() }
func (c *cursor) Last() (k, v []byte)               { return c.bolt().Last() }
func (c *cursor) Seek(seek []byte) ([]byte, []byte) { return c.bolt().Seek(seek) }
func (c *cursor) Next() (k, v []byte)               { return c.bolt().Next() }
func (c *cursor) Prev() (k, v []byte)               { return c.bolt().Prev() }

// kvError turns bbolt's errors that kv names into kv's.
func kvError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bolterrors.ErrBucketExists):
		return kv.ErrBucketExists
	case errors.Is(err, bolterrors.ErrBucketNotFound):
		return kv.ErrBucketNotFound
	case errors.Is(err, bolterrors.ErrTxNotWritable):
		return kv.ErrTxNotWritable
	case errors.Is(err, bolterrors.ErrKeyRequired):
		return kv.ErrKeyRequired
	}
	return err
}
