package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// Every write transaction of the store goes through one of the four
// functions below, and nothing else begins one (TestWrites_OneDoor checks
// the source). Each keeps the auth cache true to the data: its drops run
// as commit handlers (kv.Tx.OnCommit), after the commit and before the
// write returns, and only when the transaction commits.
//
//   - update and batch are for any write. A commit drops every cached key
//     state: a write to an account, a user or a service account may change
//     what any of its keys can do, and a write that nobody thought about is
//     safe by default. Such writes are rare.
//   - updateKeys and batchKeys are for writes that change key records and
//     nothing else an authentication reads (key names, the audit trail,
//     usage and quota counts may go with them). Each key record written or
//     deleted, by putRecord or deleteRecord, the only writers of the keys
//     bucket, drops that key's cached state, whichever secret cached it.
//
// So forgetting an invalidation would take a raw write to the keys bucket,
// or a holder or account write through updateKeys or batchKeys.
//
// All four also keep the operator's last full key (guarded, operator.go),
// and write the audit record of the call their context carries, if any, in
// the same transaction (audited, audit.go).

// update runs fn in a write transaction of its own, as kv.DB.Update does
// (fn may run more than once on an engine shared by many nodes); its
// commit drops the whole auth cache.
func (s *Store) update(ctx context.Context, fn func(kv.Tx) error) error {
	defer s.observeWrite(time.Now())
	fn, done := s.audited(ctx, s.dropsAll(fn))
	defer done()
	return s.db.Update(s.guarded(fn))
}

// batch runs fn in a write transaction it may share with other calls
// (group commit, below: fn may run more than once); its commit drops
// the whole auth cache.
func (s *Store) batch(ctx context.Context, fn func(kv.Tx) error) error {
	defer s.observeWrite(time.Now())
	fn, done := s.audited(ctx, s.dropsAll(fn))
	defer done()
	return s.write(s.guarded(fn))
}

// updateKeys is update for writes of key records only: its commit drops
// the cached state of each key it wrote or deleted.
func (s *Store) updateKeys(ctx context.Context, fn func(kv.Tx) error) error {
	defer s.observeWrite(time.Now())
	fn, done := s.audited(ctx, fn)
	defer done()
	return s.db.Update(s.guarded(fn))
}

// batchKeys is batch for writes of key records only: its commit drops the
// cached state of each key it wrote or deleted.
func (s *Store) batchKeys(ctx context.Context, fn func(kv.Tx) error) error {
	defer s.observeWrite(time.Now())
	fn, done := s.audited(ctx, fn)
	defer done()
	return s.write(s.guarded(fn))
}

// dropsAll returns fn, with a commit handler that drops the whole auth
// cache.
func (s *Store) dropsAll(fn func(kv.Tx) error) func(kv.Tx) error {
	return func(tx kv.Tx) error {
		tx.OnCommit(s.cache.dropAll)
		return fn(tx)
	}
}

// caches finds the auth cache of a transaction's store: key records are
// written by plain functions of the transaction (putRecord, deleteRecord),
// which must drop the key from its store's cache.
var caches sync.Map // kv.DB → *authCache

// dropOnCommit drops key id from the auth cache of tx's store once tx
// commits.
func dropOnCommit(tx kv.Tx, id string) {
	c, ok := caches.Load(tx.DB())
	if !ok {
		// A store registers its cache before its first write and removes
		// it only after its file is closed.
		panic("store: write to a store with no auth cache")
	}
	cache := c.(*authCache)
	tx.OnCommit(func() { cache.drop(id) })
}

// groupCommit lets concurrent writes share one transaction, and so one
// durable commit (bbolt syncs the file twice per commit: data pages, then
// the meta page), without making any write wait for others to arrive.
//
// A write joins a queue. If no commit is under way, it leads one at once,
// with everything queued: a lone writer commits as soon as it asks, as
// db.Update would. While a commit runs, new writes queue up; when it ends,
// its leader replies to its writers and hands the lead to the first write
// queued, which commits all of them together. So the busier the store, the
// fuller each commit, with no timer anywhere (bbolt's own db.Batch waits
// MaxBatchDelay for a batch to fill, which a lone writer always pays).
//
// Each function of a commit runs on the transaction in turn. One that fails
// (an error or a panic) must neither commit its partial changes nor take
// the others down: the transaction is rolled back, run again without it,
// and the failed function is run alone by its own caller, in a transaction
// of its own, as db.Batch does. So a function may run more than once, and
// each write is judged on the state it runs on, as with db.Batch.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupCall
	leading bool // a commit is under way or about to start

	commits atomic.Int64 // group transactions committed, for tests
}

// groupCall is one write waiting in the queue.
type groupCall struct {
	fn   func(kv.Tx) error
	done chan error // receives the outcome, errLead or errRunAlone
}

// maxGroup bounds the writes one transaction takes; the rest wait for the
// next. A commit writes every page its writes touched, so an unbounded one
// would keep its writers waiting for one huge sync.
const maxGroup = 1000

var (
	// errLead tells a queued call to lead the next commit.
	errLead = errors.New("store: lead the next commit")
	// errRunAlone tells a queued call that its function failed in a
	// shared transaction and must be run alone.
	errRunAlone = errors.New("store: run the write alone")
)

// write runs fn in a write transaction that it may share with other
// writes, and returns once that transaction is durable on disk, or failed.
// fn may run more than once.
func (s *Store) write(fn func(kv.Tx) error) error {
	g := &s.group
	c := &groupCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.leading {
		g.mu.Unlock()
		err := <-c.done
		switch err {
		case errLead: // c is still queued: it commits with the others
		case errRunAlone:
			return s.db.Update(fn)
		default:
			return err
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	s.lead()
	err := <-c.done
	if err == errRunAlone {
		return s.db.Update(fn)
	}
	return err
}

// lead commits the queued writes (up to maxGroup), tells each its outcome,
// and hands the lead to the first write queued meanwhile, if any.
func (s *Store) lead() {
	g := &s.group
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	calls := make([]*groupCall, n)
	copy(calls, g.queue)
	rest := copy(g.queue, g.queue[n:])
	clear(g.queue[rest:])
	g.queue = g.queue[:rest]
	g.mu.Unlock()

	s.commitGroup(calls)

	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	next := g.queue[0]
	g.mu.Unlock()
	next.done <- errLead
}

// commitGroup runs calls in one transaction and tells each its outcome.
// A call that fails is taken out and told to run alone; the others run
// again, in a fresh transaction, without it. A group the engine refuses
// as too large commits in two halves.
func (s *Store) commitGroup(calls []*groupCall) {
	for len(calls) > 0 {
		failed := -1
		err := s.db.Update(func(tx kv.Tx) error {
			for i, c := range calls {
				if err := callSafely(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			tx.OnCommit(func() { s.group.commits.Add(1) })
			return nil
		})
		if failed >= 0 {
			calls[failed].done <- errRunAlone
			calls = append(calls[:failed], calls[failed+1:]...)
			continue
		}
		if errors.Is(err, kv.ErrTooLarge) && len(calls) > 1 {
			// The engine caps one transaction (etcd's --max-txn-ops):
			// the group was too big, not any write in it.
			half := len(calls) / 2
			s.commitGroup(calls[:half])
			s.commitGroup(calls[half:])
			return
		}
		// Committed, or the commit itself failed (a full disk, say):
		// every call shares the outcome.
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}

// callSafely runs fn, turning a panic into an error: a panicking write
// must not leave the others of its group without an answer. Its caller
// runs it again alone, where the panic reaches it.
func callSafely(fn func(kv.Tx) error, tx kv.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
