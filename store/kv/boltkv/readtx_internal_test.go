package boltkv

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testBucket = []byte("b")

// openInternal opens a file holding testBucket with key "k" set to "old".
func openInternal(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "kv.db"), Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	setK(t, db, "old")
	return db
}

func setK(t *testing.T, db *DB, v string) {
	t.Helper()
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists(testBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte(v))
	}))
}

func getK(t *testing.T, db *DB) string {
	t.Helper()
	var v string
	require.NoError(t, db.View(func(tx kv.Tx) error {
		v = string(tx.Bucket(testBucket).Get([]byte("k")))
		return nil
	}))
	return v
}

func (r *readTxs) idleLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.idle)
}

// A transaction that was lent out while a write committed is not kept:
// it sees the file as it was before the write.
func TestReadTxs_StaleNotKept(t *testing.T) {
	db := openInternal(t)
	rt, err := db.reads.get()
	require.NoError(t, err)
	// A write, committed while rt was out. (A real one could wait for rt
	// to end, if it grew the file.)
	db.reads.beginWrite()
	db.reads.endWrite()
	db.reads.put(rt)
	assert.Zero(t, db.reads.idleLen(), "a transaction older than the last write was kept")
	setK(t, db, "new")

	assert.Equal(t, "new", getK(t, db))
	assert.Equal(t, 1, db.reads.idleLen(), "a current transaction is kept")
}

// Nothing is kept while a write is under way: it could be holding up the
// write's growth of the file.
func TestReadTxs_NotKeptDuringWrite(t *testing.T) {
	db := openInternal(t)
	inWrite, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Update(func(kv.Tx) error { close(inWrite); <-release; return nil })
	}()
	<-inWrite
	rt, err := db.reads.get()
	require.NoError(t, err)
	db.reads.put(rt)
	assert.Zero(t, db.reads.idleLen(), "a transaction was kept during a write")
	close(release)
	require.NoError(t, <-done)
}

// A lent transaction keeps the buckets it opened: the next borrower finds
// them open, and a bucket that does not exist is not kept.
func TestReadTxs_KeepsOpenBuckets(t *testing.T) {
	db := openInternal(t)
	require.NoError(t, db.View(func(tx kv.Tx) error {
		assert.Nil(t, tx.Bucket([]byte("missing")))
		assert.NotNil(t, tx.Bucket(testBucket))
		return nil
	}))
	require.Equal(t, 1, db.reads.idleLen())
	rt := db.reads.idle[0]
	require.Len(t, rt.open, 1)
	assert.Equal(t, string(testBucket), rt.open[0].name)
	require.NoError(t, db.View(func(tx kv.Tx) error {
		assert.Same(t, rt, tx, "the transaction is lent again")
		assert.Equal(t, kv.Bucket((*bucket)(rt.open[0].b)), tx.Bucket(testBucket), "the bucket kept is the one returned")
		return nil
	}))
	assert.Len(t, rt.open, 1, "an open bucket is not opened again")
}

// A read that panics, or whose goroutine ends inside it (runtime.Goexit,
// as t.FailNow does), does not give its transaction back to be lent again:
// it ends it, so later writes and Close are not held up.
func TestReadTxs_EarlyExitEndsTransaction(t *testing.T) {
	for name, c := range map[string]struct {
		exit      func()
		recovered any // what the read panics with, passed on
	}{
		"panic":  {func() { panic("boom") }, "boom"},
		"Goexit": {runtime.Goexit, nil},
	} {
		t.Run(name, func(t *testing.T) {
			db := openInternal(t)
			getK(t, db)
			before := db.reads.idleLen()

			done := make(chan struct{})
			var recovered any
			go func() {
				defer close(done)
				defer func() { recovered = recover() }()
				_ = db.View(func(kv.Tx) error { c.exit(); return nil })
			}()
			<-done
			assert.Equal(t, c.recovered, recovered)
			assert.Equal(t, before-1, db.reads.idleLen(), "the read's transaction came back")
			setK(t, db, "after")
			closed := make(chan error, 1)
			go func() { closed <- db.Close() }()
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Close waited on a read transaction never ended")
			}
		})
	}
}
