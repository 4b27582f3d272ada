package boltkv_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/kv/boltkv"
	"github.com/apikeyd/apikeyd/store/kv/kvtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var bucketB = []byte("b")

func mustOpen(t *testing.T) (*boltkv.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kv.db")
	db, err := boltkv.Open(path, boltkv.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucket(bucketB)
		return err
	}))
	return db, path
}

// A file another process holds fails Open after the timeout with bbolt's
// ErrTimeout, which package store reports as ErrLocked.
func TestOpen_Timeout(t *testing.T) {
	_, path := mustOpen(t)
	start := time.Now()
	_, err := boltkv.Open(path, boltkv.Options{Timeout: 50 * time.Millisecond})
	require.ErrorIs(t, err, bolterrors.ErrTimeout)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, err.Error(), path)
}

// ReadOnly opens a file beside another reader, and refuses writes.
func TestOpen_ReadOnly(t *testing.T) {
	db, path := mustOpen(t)
	require.NoError(t, db.Update(func(tx kv.Tx) error { return tx.Bucket(bucketB).Put([]byte("k"), []byte("v")) }))
	require.NoError(t, db.Close())

	ro, err := boltkv.Open(path, boltkv.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err)
	defer ro.Close()
	ro2, err := boltkv.Open(path, boltkv.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err, "readers share the file")
	require.NoError(t, ro2.Close())
	require.NoError(t, ro.View(func(tx kv.Tx) error {
		assert.Equal(t, "v", string(tx.Bucket(bucketB).Get([]byte("k"))))
		assert.ErrorIs(t, tx.Bucket(bucketB).Put([]byte("k"), []byte("w")), kv.ErrTxNotWritable)
		return nil
	}))
	assert.Error(t, ro.Update(func(kv.Tx) error { return nil }))
}

// bbolt's errors come back as kv's, in read and write transactions.
func TestTx_Errors(t *testing.T) {
	db, _ := mustOpen(t)
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		assert.True(t, tx.Writable())
		_, err := tx.CreateBucket(bucketB)
		assert.ErrorIs(t, err, kv.ErrBucketExists)
		assert.ErrorIs(t, tx.DeleteBucket([]byte("missing")), kv.ErrBucketNotFound)
		return nil
	}))
	require.NoError(t, db.View(func(tx kv.Tx) error {
		assert.False(t, tx.Writable())
		_, err := tx.CreateBucket([]byte("new"))
		assert.ErrorIs(t, err, kv.ErrTxNotWritable)
		_, err = tx.CreateBucketIfNotExists([]byte("new"))
		assert.ErrorIs(t, err, kv.ErrTxNotWritable)
		assert.ErrorIs(t, tx.DeleteBucket(bucketB), kv.ErrTxNotWritable)
		b := tx.Bucket(bucketB)
		assert.ErrorIs(t, b.Put([]byte("k"), []byte("v")), kv.ErrTxNotWritable)
		assert.ErrorIs(t, b.Delete([]byte("k")), kv.ErrTxNotWritable)
		_, err = b.NextSequence()
		assert.ErrorIs(t, err, kv.ErrTxNotWritable)
		assert.ErrorIs(t, b.SetSequence(3), kv.ErrTxNotWritable)
		return nil
	}))
	wantErr := errors.New("fn's own")
	assert.Same(t, wantErr, db.Update(func(kv.Tx) error { return wantErr }))
	assert.Same(t, wantErr, db.View(func(kv.Tx) error { return wantErr }))
}

// A missing bucket is a nil interface, which callers compare with nil.
func TestTx_MissingBucketIsNil(t *testing.T) {
	db, _ := mustOpen(t)
	for _, run := range []func(func(kv.Tx) error) error{db.View, db.Update} {
		require.NoError(t, run(func(tx kv.Tx) error {
			assert.True(t, tx.Bucket([]byte("missing")) == nil)
			assert.False(t, tx.Bucket(bucketB) == nil)
			return nil
		}))
	}
}

// Values: nil for an absent key, never for a present one, an empty value
// included, in the transaction that wrote it and after.
func TestBucket_Values(t *testing.T) {
	db, _ := mustOpen(t)
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		b := tx.Bucket(bucketB)
		assert.Nil(t, b.Get([]byte("absent")))
		require.NoError(t, b.Put([]byte("empty"), nil))
		require.NoError(t, b.Put([]byte("zero"), []byte{}))
		require.NoError(t, b.Put([]byte("full"), []byte("v")))
		for _, k := range []string{"empty", "zero"} {
			v := b.Get([]byte(k))
			assert.NotNil(t, v, k)
			assert.Empty(t, v, k)
		}
		return nil
	}))
	require.NoError(t, db.View(func(tx kv.Tx) error {
		b := tx.Bucket(bucketB)
		for _, k := range []string{"empty", "zero"} {
			v := b.Get([]byte(k))
			assert.NotNil(t, v, k)
			assert.Empty(t, v, k)
		}
		assert.Equal(t, "v", string(b.Get([]byte("full"))))
		assert.Equal(t, 3, b.KeyN())
		return nil
	}))
	require.NoError(t, db.Update(func(tx kv.Tx) error { return tx.Bucket(bucketB).Delete([]byte("full")) }))
	require.NoError(t, db.View(func(tx kv.Tx) error {
		assert.Nil(t, tx.Bucket(bucketB).Get([]byte("full")))
		assert.Equal(t, 2, tx.Bucket(bucketB).KeyN())
		return nil
	}))
}

// Cursors and ForEach walk keys in order; sequences count from 1 and can
// be set.
func TestBucket_OrderAndSequence(t *testing.T) {
	db, _ := mustOpen(t)
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		b := tx.Bucket(bucketB)
		for _, k := range []string{"c", "a", "b"} {
			require.NoError(t, b.Put([]byte(k), []byte("v"+k)))
		}
		n, err := b.NextSequence()
		require.NoError(t, err)
		assert.Equal(t, uint64(1), n)
		assert.Equal(t, uint64(1), b.Sequence())
		return b.SetSequence(41)
	}))
	require.NoError(t, db.View(func(tx kv.Tx) error {
		b := tx.Bucket(bucketB)
		assert.Equal(t, uint64(41), b.Sequence())
		c := b.Cursor()
		var walk []string
		for k, v := c.First(); k != nil; k, v = c.Next() {
			walk = append(walk, string(k)+"="+string(v))
		}
		assert.Equal(t, []string{"a=va", "b=vb", "c=vc"}, walk)
		k, _ := c.Last()
		assert.Equal(t, "c", string(k))
		k, _ = c.Prev()
		assert.Equal(t, "b", string(k))
		k, v := c.Seek([]byte("bb"))
		assert.Equal(t, "c=vc", string(k)+"="+string(v))
		k, v = c.Next()
		assert.Nil(t, k)
		assert.Nil(t, v)
		var each []string
		require.NoError(t, b.ForEach(func(k, _ []byte) error { each = append(each, string(k)); return nil }))
		assert.Equal(t, []string{"a", "b", "c"}, each)
		return nil
	}))
}

// OnCommit runs after the commit and before Update returns, and not at
// all when the transaction does not commit, nor in a read transaction.
func TestTx_OnCommit(t *testing.T) {
	db, _ := mustOpen(t)
	var ran []string
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		tx.OnCommit(func() {
			ran = append(ran, "committed")
			require.NoError(t, db.View(func(tx kv.Tx) error {
				assert.Equal(t, "v", string(tx.Bucket(bucketB).Get([]byte("k"))), "the commit is visible")
				return nil
			}))
		})
		return tx.Bucket(bucketB).Put([]byte("k"), []byte("v"))
	}))
	assert.Equal(t, []string{"committed"}, ran)
	assert.Error(t, db.Update(func(tx kv.Tx) error {
		tx.OnCommit(func() { ran = append(ran, "rolled back") })
		return errors.New("no")
	}))
	for range 2 { // the same transaction, lent again
		require.NoError(t, db.View(func(tx kv.Tx) error {
			tx.OnCommit(func() { ran = append(ran, "read") })
			return nil
		}))
	}
	setK := func() {
		require.NoError(t, db.Update(func(tx kv.Tx) error { return tx.Bucket(bucketB).Put([]byte("k"), []byte("w")) }))
	}
	setK()
	assert.Equal(t, []string{"committed"}, ran)
}

// Tx.DB is the engine, so that callers can find their state by it.
func TestTx_DB(t *testing.T) {
	db, _ := mustOpen(t)
	require.NoError(t, db.View(func(tx kv.Tx) error { assert.Equal(t, kv.DB(db), tx.DB()); return nil }))
	require.NoError(t, db.Update(func(tx kv.Tx) error { assert.Equal(t, kv.DB(db), tx.DB()); return nil }))
	assert.NoError(t, db.Fresh())
}

// Reads reuse read transactions; a read never sees the file as it was
// before a write that has returned.
func TestDB_ReadAfterWrite(t *testing.T) {
	db, _ := mustOpen(t)
	for i := range 20 {
		want := fmt.Sprint(i)
		require.NoError(t, db.Update(func(tx kv.Tx) error { return tx.Bucket(bucketB).Put([]byte("k"), []byte(want)) }))
		for range 2 { // the second read reuses the first's transaction
			require.NoError(t, db.View(func(tx kv.Tx) error {
				assert.Equal(t, want, string(tx.Bucket(bucketB).Get([]byte("k"))), "read after write %d", i)
				return nil
			}))
		}
	}
}

// Many readers keep many transactions; writes that grow the file (and so
// must wait for every read transaction to end) still finish, and so does
// Close.
func TestDB_WritesGrowFileUnderReads(t *testing.T) {
	db, path := mustOpen(t)
	size := func() int64 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	before := size()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 8 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := db.View(func(tx kv.Tx) error { tx.Bucket(bucketB).Get([]byte("k")); return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	kvtest.Within(t, 60*time.Second, "writes while reading", func() {
		long := []byte(strings.Repeat("x", 4096))
		for i := range 300 {
			require.NoError(t, db.Update(func(tx kv.Tx) error { return tx.Bucket(bucketB).Put([]byte(fmt.Sprint(i)), long) }))
		}
	})
	close(stop)
	readers.Wait()
	assert.Greater(t, size(), 2*before, "the writes grew the file")
	kvtest.Within(t, 10*time.Second, "Close", func() { require.NoError(t, db.Close()) })
	assert.Error(t, db.View(func(kv.Tx) error { return nil }), "reads fail after Close")
}

// A read on a transaction lent again allocates nothing beyond what bbolt's
// own lookup does: its buckets are open already, and bbolt's buckets are
// kv's without a wrapper.
func TestDB_ReadAllocatesNothing(t *testing.T) {
	db, _ := mustOpen(t)
	require.NoError(t, db.Update(func(tx kv.Tx) error { return tx.Bucket(bucketB).Put([]byte("k"), []byte("v")) }))
	key := []byte("k")
	btx, err := db.Bolt().Begin(false)
	require.NoError(t, err)
	raw := btx.Bucket(bucketB)
	lookup := testing.AllocsPerRun(100, func() { raw.Get(key) })
	require.NoError(t, btx.Rollback())

	var got []byte
	read := func(tx kv.Tx) error {
		got = tx.Bucket(bucketB).Get(key)
		return nil
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := db.View(read); err != nil {
			t.Fatal(err)
		}
	})
	assert.Equal(t, "v", string(got))
	assert.Equal(t, lookup, allocs, "allocations of a read, and of bbolt's lookup alone")
}

// SetFillPercent, which package store asks for by an interface of its own,
// leaves split pages fuller: keys written in order take fewer pages.
func TestBucket_SetFillPercent(t *testing.T) {
	leafPages := func(fill bool) int {
		db, _ := mustOpen(t)
		require.NoError(t, db.Update(func(tx kv.Tx) error {
			b := tx.Bucket(bucketB)
			if fill {
				b.(interface{ SetFillPercent(float64) }).SetFillPercent(0.9)
			}
			for i := range 5000 {
				if err := b.Put(fmt.Appendf(nil, "%08d", i), []byte("value")); err != nil {
					return err
				}
			}
			return nil
		}))
		var n int
		require.NoError(t, db.Bolt().View(func(tx *bolt.Tx) error {
			n = tx.Bucket(bucketB).Stats().LeafPageN
			return nil
		}))
		return n
	}
	half, full := leafPages(false), leafPages(true)
	assert.Less(t, float64(full), 0.7*float64(half), "leaf pages at 90%% fill, and at bbolt's 50%%")
}
