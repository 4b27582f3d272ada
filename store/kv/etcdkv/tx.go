package etcdkv

import (
	"bytes"
	"strconv"

	"github.com/tidwall/btree"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/apikeyd/apikeyd/store/kv"
)

// A snapshot is also the read-only transaction over itself: a View costs
// one atomic load.

func (s *snapshot) Bucket(name []byte) kv.Bucket {
	b := s.buckets[string(name)]
	if b == nil || !b.exists {
		return nil
	}
	return (*readBucket)(b)
}

func (s *snapshot) CreateBucket([]byte) (kv.Bucket, error) { return nil, kv.ErrTxNotWritable }
func (s *snapshot) CreateBucketIfNotExists([]byte) (kv.Bucket, error) {
	return nil, kv.ErrTxNotWritable
}
func (s *snapshot) DeleteBucket([]byte) error { return kv.ErrTxNotWritable }
func (s *snapshot) OnCommit(func())           {}
func (s *snapshot) Writable() bool            { return false }
func (s *snapshot) DB() kv.DB                 { return s.db }

// readBucket is a bucket of a snapshot.
type readBucket bucketData

func (b *readBucket) Get(key []byte) []byte {
	it, ok := b.tree.Get(item{k: key})
	if !ok {
		return nil
	}
	return it.v
}

func (b *readBucket) Put(_, _ []byte) error { return kv.ErrTxNotWritable }
func (b *readBucket) Delete([]byte) error   { return kv.ErrTxNotWritable }
func (b *readBucket) Cursor() kv.Cursor     { return &cursor{tree: &b.tree} }
func (b *readBucket) ForEach(fn func(k, v []byte) error) error {
	return forEach(b.tree, fn)
}
func (b *readBucket) NextSequence() (uint64, error) { return 0, kv.ErrTxNotWritable }
func (b *readBucket) Sequence() uint64              { return b.seq }
func (b *readBucket) SetSequence(uint64) error      { return kv.ErrTxNotWritable }
func (b *readBucket) KeyN() int                     { return b.tree.Len() }

func forEach(t *btree.BTreeG[item], fn func(k, v []byte) error) error {
	var err error
	t.Scan(func(it item) bool {
		err = fn(it.k, it.v)
		return err == nil
	})
	return err
}

// writeTx is a write transaction: private copies of the buckets it
// touches, and what it changed in each.
type writeTx struct {
	db       *DB
	base     *snapshot
	buckets  map[string]*writeBucket
	onCommit []func()
}

// op is a change to one key: its new value, or its deletion.
type op struct {
	v   []byte
	del bool
}

type writeBucket struct {
	name    string
	tree    *btree.BTreeG[item]
	seq     uint64
	seqSet  bool
	existed bool // in the base snapshot
	exists  bool
	dropped bool // deleted at some point in the transaction
	base    *btree.BTreeG[item]
	ops     map[string]op
	mut     uint64 // changes so far: cursors seek again after one
}

func newWriteTx(db *DB, base *snapshot) *writeTx {
	return &writeTx{db: db, base: base, buckets: map[string]*writeBucket{}}
}

// lookup returns the transaction's copy of bucket name, taking it from
// the base snapshot on first use (nil if the bucket never existed).
func (tx *writeTx) lookup(name []byte) *writeBucket {
	if b, ok := tx.buckets[string(name)]; ok {
		return b
	}
	b := tx.base.buckets[string(name)]
	if b == nil || !b.exists {
		return nil
	}
	// Copying a tree marks it: Updates, which alone copy, run one at a
	// time (updateMu).
	tree := b.tree.Copy()
	w := &writeBucket{name: string(name), tree: tree, seq: b.seq, existed: true, exists: true, base: b.tree, ops: map[string]op{}}
	tx.buckets[w.name] = w
	return w
}

func (tx *writeTx) Bucket(name []byte) kv.Bucket {
	if b := tx.lookup(name); b != nil && b.exists {
		return b
	}
	return nil
}

func (tx *writeTx) CreateBucket(name []byte) (kv.Bucket, error) {
	b := tx.lookup(name)
	if b != nil && b.exists {
		return nil, kv.ErrBucketExists
	}
	if len(name) == 0 || bytes.IndexByte(name, '/') >= 0 {
		return nil, kv.ErrBucketNotFound
	}
	if b == nil {
		b = &writeBucket{name: string(name), ops: map[string]op{}}
		tx.buckets[b.name] = b
	}
	b.tree, b.exists, b.seq, b.seqSet = newTree(), true, 0, true
	clear(b.ops)
	b.mut++
	return b, nil
}

func (tx *writeTx) CreateBucketIfNotExists(name []byte) (kv.Bucket, error) {
	if b := tx.Bucket(name); b != nil {
		return b, nil
	}
	return tx.CreateBucket(name)
}

func (tx *writeTx) DeleteBucket(name []byte) error {
	b := tx.lookup(name)
	if b == nil || !b.exists {
		return kv.ErrBucketNotFound
	}
	b.tree, b.exists, b.dropped, b.seq, b.seqSet = newTree(), false, true, 0, false
	clear(b.ops)
	b.mut++
	return nil
}

func (tx *writeTx) OnCommit(fn func()) { tx.onCommit = append(tx.onCommit, fn) }
func (tx *writeTx) Writable() bool     { return true }
func (tx *writeTx) DB() kv.DB          { return tx.db }

func (b *writeBucket) Get(key []byte) []byte {
	it, ok := b.tree.Get(item{k: key})
	if !ok {
		return nil
	}
	return it.v
}

func (b *writeBucket) Put(key, value []byte) error {
	if len(key) == 0 {
		return kv.ErrKeyRequired
	}
	if value == nil {
		value = []byte{}
	}
	b.tree.Set(item{k: key, v: value})
	b.ops[string(key)] = op{v: value}
	b.mut++
	return nil
}

func (b *writeBucket) Delete(key []byte) error {
	if _, ok := b.tree.Delete(item{k: key}); ok {
		b.ops[string(key)] = op{del: true}
		b.mut++
	}
	return nil
}

func (b *writeBucket) Cursor() kv.Cursor { return &cursor{tree: &b.tree, mut: &b.mut} }

func (b *writeBucket) ForEach(fn func(k, v []byte) error) error { return forEach(b.tree, fn) }

func (b *writeBucket) NextSequence() (uint64, error) {
	b.seq++
	b.seqSet = true
	return b.seq, nil
}

func (b *writeBucket) Sequence() uint64 { return b.seq }

func (b *writeBucket) SetSequence(v uint64) error {
	b.seq, b.seqSet = v, true
	return nil
}

func (b *writeBucket) KeyN() int { return b.tree.Len() }

// ops are the etcd operations that make the transaction's changes, with
// the version key's update last; none if it changed nothing.
func (tx *writeTx) ops(token string) []clientv3.Op {
	p := tx.db.prefix
	var ops []clientv3.Op
	for _, b := range tx.buckets {
		data := p + "d/" + b.name + "/"
		switch {
		case b.dropped && !b.exists:
			if b.existed {
				ops = append(ops, clientv3.OpDelete(data, clientv3.WithPrefix()),
					clientv3.OpDelete(p+"b/"+b.name), clientv3.OpDelete(p+"s/"+b.name))
			}
			continue
		case b.dropped:
			// Deleted and made again: every old key that is not in the
			// new bucket goes. (etcd takes no range delete and put of one
			// key in a transaction.)
			b.base.Scan(func(it item) bool {
				if _, ok := b.tree.Get(it); !ok {
					b.ops[string(it.k)] = op{del: true}
				}
				return true
			})
		}
		if !b.existed && b.exists {
			ops = append(ops, clientv3.OpPut(p+"b/"+b.name, ""))
		}
		if b.seqSet {
			ops = append(ops, clientv3.OpPut(p+"s/"+b.name, strconv.FormatUint(b.seq, 10)))
		}
		for k, o := range b.ops {
			if o.del {
				ops = append(ops, clientv3.OpDelete(data+k))
			} else {
				ops = append(ops, clientv3.OpPut(data+k, string(o.v)))
			}
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return append(ops, clientv3.OpPut(p+"version", token))
}

// cursor walks a tree. A bucket's tree may change under it (a write
// transaction's Put or Delete, or its bucket made again): then the next
// move seeks afresh from the key it stands on.
type cursor struct {
	tree  **btree.BTreeG[item]
	mut   *uint64 // nil for a snapshot's bucket, which never changes
	seen  uint64
	it    btree.IterG[item]
	open  bool
	cur   []byte
	valid bool
}

func (c *cursor) begin() {
	if c.open {
		c.it.Release()
	}
	c.it, c.open = (*c.tree).Iter(), true
	if c.mut != nil {
		c.seen = *c.mut
	}
}

func (c *cursor) stale() bool { return !c.open || (c.mut != nil && *c.mut != c.seen) }

func (c *cursor) at(ok bool) ([]byte, []byte) {
	if !ok {
		c.valid, c.cur = false, nil
		return nil, nil
	}
	it := c.it.Item()
	c.valid, c.cur = true, it.k
	return it.k, it.v
}

func (c *cursor) First() ([]byte, []byte) {
	c.begin()
	return c.at(c.it.First())
}

func (c *cursor) Last() ([]byte, []byte) {
	c.begin()
	return c.at(c.it.Last())
}

func (c *cursor) Seek(seek []byte) ([]byte, []byte) {
	c.begin()
	return c.at(c.it.Seek(item{k: seek}))
}

func (c *cursor) Next() ([]byte, []byte) {
	if !c.valid {
		return nil, nil
	}
	if c.stale() {
		c.begin()
		ok := c.it.Seek(item{k: c.cur})
		if ok && bytes.Equal(c.it.Item().k, c.cur) {
			ok = c.it.Next()
		}
		return c.at(ok)
	}
	return c.at(c.it.Next())
}

func (c *cursor) Prev() ([]byte, []byte) {
	if !c.valid {
		return nil, nil
	}
	if c.stale() {
		c.begin()
		ok := c.it.Seek(item{k: c.cur})
		if ok {
			ok = c.it.Prev()
		} else {
			ok = c.it.Last()
		}
		return c.at(ok)
	}
	return c.at(c.it.Prev())
}
