package etcdkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tidwall/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// errLayout is a key of the layout whose value is not what the layout
// says: data damaged, or written by something else.
var errLayout = errors.New("etcd prefix holds a malformed value")

// item is one key of a bucket and its value.
type item struct{ k, v []byte }

func less(a, b item) bool { return bytes.Compare(a.k, b.k) < 0 }

func newTree() *btree.BTreeG[item] {
	return btree.NewBTreeGOptions(less, btree.Options{NoLocks: true})
}

// bucketData is a bucket of the copy. Once in a published snapshot it is
// never changed: the applier changes its own trees and publishes copies
// of them, which share every node not changed since (copy on write).
type bucketData struct {
	tree   *btree.BTreeG[item]
	seq    uint64
	exists bool // the bucket's marker is present
}

// replica is the applier's own copy, which it changes event by event.
type replica struct {
	buckets map[string]*bucketData
	version int64 // mod revision of the version key; 0: none yet
}

func newReplica() *replica { return &replica{buckets: map[string]*bucketData{}} }

func (r *replica) bucket(name string) *bucketData {
	b := r.buckets[name]
	if b == nil {
		b = &bucketData{tree: newTree()}
		r.buckets[name] = b
	}
	return b
}

// snapshot is a copy for readers: the replica at revision rev.
type snapshot struct {
	db      *DB
	rev     int64
	version int64
	buckets map[string]*bucketData
}

// snapshot copies r for readers. Copying a tree is constant time; it makes
// r's later changes copy the nodes they touch.
func (r *replica) snapshot(db *DB, rev int64) *snapshot {
	s := &snapshot{db: db, rev: rev, version: r.version, buckets: make(map[string]*bucketData, len(r.buckets))}
	for name, b := range r.buckets {
		s.buckets[name] = &bucketData{tree: b.tree.Copy(), seq: b.seq, exists: b.exists}
	}
	return s
}

// Kinds of key under the prefix.
const (
	kindForeign = iota
	kindData
	kindBucket
	kindSeq
	kindVersion
	kindShared
)

// parse splits a key relative to the prefix into its kind, bucket and key.
func parse(rel []byte) (kind int, bucket string, key []byte) {
	switch {
	case bytes.HasPrefix(rel, []byte("d/")):
		rest := rel[2:]
		i := bytes.IndexByte(rest, '/')
		if i <= 0 || i == len(rest)-1 {
			return kindForeign, "", nil
		}
		return kindData, string(rest[:i]), rest[i+1:]
	case bytes.HasPrefix(rel, []byte("b/")) && len(rel) > 2:
		return kindBucket, string(rel[2:]), nil
	case bytes.HasPrefix(rel, []byte("s/")) && len(rel) > 2:
		return kindSeq, string(rel[2:]), nil
	case string(rel) == "version":
		return kindVersion, "", nil
	case bytes.HasPrefix(rel, []byte("x/")):
		return kindShared, "", nil
	}
	return kindForeign, "", nil
}

// set applies one key's value to r. It reports whether store data
// changed (not only the version or shared state).
func (r *replica) set(rel, value []byte, modRev int64, deleted bool) (data bool, err error) {
	kind, name, key := parse(rel)
	switch kind {
	case kindData:
		b := r.bucket(name)
		if deleted {
			b.tree.Delete(item{k: key})
		} else {
			if value == nil {
				value = []byte{}
			}
			b.tree.Set(item{k: key, v: value})
		}
		return true, nil
	case kindBucket:
		r.bucket(name).exists = !deleted
		return true, nil
	case kindSeq:
		var n uint64
		if !deleted {
			if n, err = strconv.ParseUint(string(value), 10, 64); err != nil {
				return false, fmt.Errorf("%w: sequence of %s: %w", errLayout, name, err)
			}
		}
		r.bucket(name).seq = n
		return true, nil
	case kindVersion:
		r.version = modRev
		if deleted {
			r.version = 0
		}
		return false, nil
	case kindShared:
		return false, nil
	}
	return false, fmt.Errorf("%w: key %q", ErrForeignPrefix, rel)
}

// load reads the whole prefix at one revision into a new replica, makes
// it the copy, and returns the revision.
func (db *DB) load(ctx context.Context) (int64, error) {
	r := newReplica()
	end := clientv3.GetPrefixRangeEnd(db.prefix)
	key := db.prefix
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(2000)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := db.cli.Get(ctx, key, opts...)
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if _, err := r.set(kv.Key[len(db.prefix):], kv.Value, kv.ModRevision, false); err != nil {
				return 0, fmt.Errorf("prefix %s: %w", db.prefix, err)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(append(resp.Kvs[len(resp.Kvs)-1].Key, 0))
	}
	db.master = r
	db.publish(rev, true)
	return rev, nil
}

// publish makes the replica the copy readers see, at revision rev, and
// wakes the writers waiting for it. Readers see the new copy before the
// change handlers run (they drop what was cached from the old one).
func (db *DB) publish(rev int64, changed bool) {
	if changed {
		db.snap.Store(db.master.snapshot(db, rev))
	}
	db.mu.Lock()
	fns := db.onChange
	db.mu.Unlock()
	if changed {
		for _, fn := range fns {
			fn()
		}
	}
	db.mu.Lock()
	if rev > db.applied {
		db.applied = rev
		close(db.advanced)
		db.advanced = make(chan struct{})
	}
	db.mu.Unlock()
}

// follow applies the prefix's changes from revision rev+1 on, for as long
// as the DB is open: it watches, and when the watch breaks, watches again
// from where it stopped, or loads the prefix afresh if etcd has compacted
// past it.
func (db *DB) follow(rev int64) {
	defer db.done.Done()
	for db.ctx.Err() == nil {
		rev = db.watch(rev)
		select {
		case <-db.ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// beforeWatch, set only by this package's tests, runs before each watch
// begins: a test holds a node's watch back with it.
var beforeWatch atomic.Pointer[func(*DB)]

// watch follows one watch until it breaks and returns the revision
// applied.
func (db *DB) watch(rev int64) int64 {
	if hook := beforeWatch.Load(); hook != nil {
		(*hook)(db)
	}
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(db.ctx))
	defer cancel()
	ch := db.cli.Watch(ctx, db.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-ch:
		case <-db.rewatch:
			return rev
		}
		if !ok {
			return rev
		}
		if err := resp.Err(); err != nil {
			db.watchErr(err)
			if errors.Is(err, rpctypes.ErrCompacted) || resp.CompactRevision != 0 {
				lctx, lcancel := context.WithTimeout(db.ctx, db.timeout)
				if n, err := db.load(lctx); err == nil {
					rev = n
				}
				lcancel()
			}
			return rev
		}
		if resp.IsProgressNotify() {
			db.publish(resp.Header.Revision, false)
			continue
		}
		changed, last, err := db.apply(resp.Events)
		if err != nil {
			db.watchErr(err)
		}
		if last > rev {
			rev = last
		}
		db.publish(rev, changed)
	}
}

func (db *DB) watchErr(err error) {
	err = fmt.Errorf("watch: %w", err)
	db.probeErr.Store(&err)
}

// apply applies a watch's events to the replica and returns whether
// store data changed and the last revision applied.
func (db *DB) apply(evs []*clientv3.Event) (changed bool, last int64, err error) {
	for _, ev := range evs {
		rel := ev.Kv.Key[len(db.prefix):]
		deleted := ev.Type == mvccpb.DELETE
		data, e := db.master.set(rel, ev.Kv.Value, ev.Kv.ModRevision, deleted)
		if e != nil {
			// A key outside the layout (a nested prefix's, say) is not
			// ours: skip it, and say so.
			err = e
		}
		changed = changed || data || string(rel) == "version"
		if string(rel) == "version" && !deleted {
			db.mu.Lock()
			if _, ok := db.mine[string(ev.Kv.Value)]; ok {
				db.mine[string(ev.Kv.Value)] = ev.Kv.ModRevision
			}
			db.mu.Unlock()
		}
		last = max(last, ev.Kv.ModRevision)
	}
	return changed, last, err
}

// probe confirms, every period, that the copy is current: it reads the
// cluster's revision with a linearizable read, asks the watch to show it
// has delivered everything up to there, and waits for the copy to hold it.
// Each success moves freshAt to the time the probe began.
func (db *DB) probe(every time.Duration) {
	defer db.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-db.ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(db.ctx, db.maxAge)
		err := db.confirm(ctx)
		cancel()
		if err != nil {
			if db.ctx.Err() == nil {
				err = fmt.Errorf("probe: %w", err)
				db.probeErr.Store(&err)
			}
			continue
		}
		db.probeErr.Store(nil)
		db.freshAt.Store(max(db.freshAt.Load(), db.since(start)))
		// near is cleared only with the copy just confirmed and the bound
		// more than a tenth away, and the timer then armed: a timer firing
		// meanwhile sets it again, which only makes Fresh read the clock.
		if d := db.nearIn(start); d > 0 {
			db.near.Store(false)
			db.nearTimer.Reset(d)
		} else {
			db.near.Store(true)
		}
	}
}

func (db *DB) confirm(ctx context.Context) error {
	resp, err := db.cli.Get(ctx, db.prefix+"version")
	if err != nil {
		return err
	}
	db.mu.Lock()
	caught := db.applied >= resp.Header.Revision
	db.mu.Unlock()
	if !caught {
		// Nothing under the prefix may have changed since the copy's
		// revision: the watch's progress report says so.
		if err := db.cli.RequestProgress(clientv3.WithRequireLeader(db.ctx)); err != nil {
			return err
		}
	}
	if err := db.waitApplied(ctx, resp.Header.Revision); err != nil {
		// etcd answers but the watch does not: its stream may hang on a
		// member that no longer serves. Watch again.
		select {
		case db.rewatch <- struct{}{}:
		default:
		}
		return err
	}
	return nil
}
