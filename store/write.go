package store

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Every write transaction of the store goes through one of the four
// functions below, and nothing else begins one (TestWrites_OneDoor checks
// the source). Each keeps the auth cache true to the file: its drops run
// as bbolt commit handlers, after the commit and before the write returns,
// and only when the transaction commits.
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
// All four also keep the operator's last full key (guarded, operator.go).

// update runs fn in a write transaction of its own, as bolt.DB.Update does;
// its commit drops the whole auth cache.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.reads.beginWrite()
	defer s.reads.endWrite()
	defer s.observeWrite(time.Now())
	return s.db.Update(s.guarded(func(tx *bolt.Tx) error {
		tx.OnCommit(s.cache.dropAll)
		return fn(tx)
	}))
}

// batch runs fn in a write transaction it may share with other calls, as
// bolt.DB.Batch does (fn may run more than once); its commit drops the
// whole auth cache.
func (s *Store) batch(fn func(*bolt.Tx) error) error {
	s.reads.beginWrite()
	defer s.reads.endWrite()
	defer s.observeWrite(time.Now())
	return s.db.Batch(s.guarded(func(tx *bolt.Tx) error {
		tx.OnCommit(s.cache.dropAll)
		return fn(tx)
	}))
}

// updateKeys is update for writes of key records only: its commit drops
// the cached state of each key it wrote or deleted.
func (s *Store) updateKeys(fn func(*bolt.Tx) error) error {
	s.reads.beginWrite()
	defer s.reads.endWrite()
	defer s.observeWrite(time.Now())
	return s.db.Update(s.guarded(fn))
}

// batchKeys is batch for writes of key records only: its commit drops the
// cached state of each key it wrote or deleted.
func (s *Store) batchKeys(fn func(*bolt.Tx) error) error {
	s.reads.beginWrite()
	defer s.reads.endWrite()
	defer s.observeWrite(time.Now())
	return s.db.Batch(s.guarded(fn))
}

// caches finds the auth cache of a transaction's store: key records are
// written by plain functions of the transaction (putRecord, deleteRecord),
// which must drop the key from its store's cache.
var caches sync.Map // *bolt.DB → *authCache

// dropOnCommit drops key id from the auth cache of tx's store once tx
// commits.
func dropOnCommit(tx *bolt.Tx, id string) {
	c, ok := caches.Load(tx.DB())
	if !ok {
		// A store registers its cache before its first write and removes
		// it only after its file is closed.
		panic("store: write to a store with no auth cache")
	}
	cache := c.(*authCache)
	tx.OnCommit(func() { cache.drop(id) })
}
