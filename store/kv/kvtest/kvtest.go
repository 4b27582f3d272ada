// Package kvtest is for tests of the engines beneath package store: Run is
// the conformance suite every engine passes, and Cluster fakes nodes
// sharing one engine.
package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/apikeyd/apikeyd/store/kv"
)

// Run runs the suite; open returns a new, empty engine for each test.
func Run(t *testing.T, open func(t *testing.T) kv.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, kv.DB)
	}{
		{"Buckets", testBuckets},
		{"PutGetDelete", testPutGetDelete},
		{"FailedUpdateChangesNothing", testFailedUpdate},
		{"Cursor", testCursor},
		{"CursorAcrossChanges", testCursorAcrossChanges},
		{"Sequence", testSequence},
		{"BucketMadeAgain", testBucketMadeAgain},
		{"OnCommit", testOnCommit},
		{"ReadOnly", testReadOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := open(t)
			tt.fn(t, db)
		})
	}
}

var name = []byte("b")

func update(t *testing.T, db kv.DB, fn func(kv.Tx) error) {
	t.Helper()
	require.NoError(t, db.Update(fn))
}

// contents reads a bucket whole, in order, in a fresh read transaction.
func contents(t *testing.T, db kv.DB, bucket []byte) []string {
	t.Helper()
	var out []string
	require.NoError(t, db.View(func(tx kv.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			out = nil
			return nil
		}
		out = []string{}
		return b.ForEach(func(k, v []byte) error {
			out = append(out, fmt.Sprintf("%x=%x", k, v))
			return nil
		})
	}))
	return out
}

func testBuckets(t *testing.T, db kv.DB) {
	require.NoError(t, db.View(func(tx kv.Tx) error {
		require.Nil(t, tx.Bucket(name))
		return nil
	}))
	update(t, db, func(tx kv.Tx) error {
		require.Nil(t, tx.Bucket(name))
		b, err := tx.CreateBucket(name)
		require.NoError(t, err)
		require.NotNil(t, b)
		_, err = tx.CreateBucket(name)
		require.ErrorIs(t, err, kv.ErrBucketExists)
		again, err := tx.CreateBucketIfNotExists(name)
		require.NoError(t, err)
		require.NoError(t, again.Put([]byte("k"), []byte("v")))
		require.Equal(t, []byte("v"), b.Get([]byte("k")), "both handles are the one bucket")
		require.ErrorIs(t, tx.DeleteBucket([]byte("absent")), kv.ErrBucketNotFound)
		return nil
	})
	require.Equal(t, []string{"6b=76"}, contents(t, db, name))
	update(t, db, func(tx kv.Tx) error { return tx.DeleteBucket(name) })
	require.Nil(t, contents(t, db, name), "a deleted bucket is gone")
	update(t, db, func(tx kv.Tx) error {
		_, err := tx.CreateBucket(name)
		return err
	})
	require.Equal(t, []string{}, contents(t, db, name), "a bucket made again starts empty")
}

func testPutGetDelete(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := tx.CreateBucket(name)
		require.NoError(t, err)
		require.NoError(t, b.Put([]byte("a"), []byte("1")))
		require.NoError(t, b.Put([]byte{0, 0xff}, []byte{}))
		require.ErrorIs(t, b.Put(nil, []byte("x")), kv.ErrKeyRequired)
		require.Equal(t, []byte("1"), b.Get([]byte("a")), "a write is read back in its transaction")
		return nil
	})
	require.NoError(t, db.View(func(tx kv.Tx) error {
		b := tx.Bucket(name)
		v := b.Get([]byte{0, 0xff})
		require.NotNil(t, v, "an empty value is present")
		require.Empty(t, v)
		require.Nil(t, b.Get([]byte("absent")))
		require.Equal(t, 2, b.KeyN())
		return nil
	}))
	update(t, db, func(tx kv.Tx) error {
		b := tx.Bucket(name)
		require.NoError(t, b.Put([]byte("a"), []byte("2")))
		require.NoError(t, b.Delete([]byte{0, 0xff}))
		require.NoError(t, b.Delete([]byte("absent")), "deleting an absent key is no error")
		require.NoError(t, b.Put([]byte("c"), []byte("3")))
		require.NoError(t, b.Delete([]byte("c")), "a key made and deleted in one transaction")
		return nil
	})
	require.Equal(t, []string{"61=32"}, contents(t, db, name))
}

func testFailedUpdate(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		return b.Put([]byte("a"), []byte("1"))
	})
	boom := errors.New("boom")
	err := db.Update(func(tx kv.Tx) error {
		b := tx.Bucket(name)
		require.NoError(t, b.Put([]byte("a"), []byte("changed")))
		require.NoError(t, b.Put([]byte("b"), []byte("new")))
		_, err := tx.CreateBucket([]byte("other"))
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, []string{"61=31"}, contents(t, db, name))
	require.Nil(t, contents(t, db, []byte("other")))
}

func fill(t *testing.T, db kv.DB, keys ...string) {
	update(t, db, func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists(name)
		require.NoError(t, err)
		for _, k := range keys {
			require.NoError(t, b.Put([]byte(k), []byte("v"+k)))
		}
		return nil
	})
}

// walk moves c with each step and returns the keys it landed on ("" for
// none).
func walk(c kv.Cursor, steps ...func() ([]byte, []byte)) []string {
	var out []string
	for _, step := range steps {
		k, v := step()
		if k == nil {
			out = append(out, "")
			continue
		}
		if !bytes.Equal(v, append([]byte("v"), k...)) {
			out = append(out, "bad value for "+string(k))
			continue
		}
		out = append(out, string(k))
	}
	return out
}

func testCursor(t *testing.T, db kv.DB) {
	fill(t, db, "b", "d", "a", "c\x00", "c")
	check := func(tx kv.Tx) error {
		c := tx.Bucket(name).Cursor()
		require.Equal(t, []string{"a", "b", "c", "c\x00", "d", ""}, walk(c, c.First, c.Next, c.Next, c.Next, c.Next, c.Next))
		require.Equal(t, []string{"d", "c\x00", "c", "b", "a", ""}, walk(c, c.Last, c.Prev, c.Prev, c.Prev, c.Prev, c.Prev))
		seek := func(k string) func() ([]byte, []byte) { return func() ([]byte, []byte) { return c.Seek([]byte(k)) } }
		require.Equal(t, []string{"c", "c\x00", "b", "d", "", "a"}, walk(c, seek("bb"), c.Next, seek("b"), seek("c\x01"), seek("e"), seek("")))
		return nil
	}
	require.NoError(t, db.View(check))
	update(t, db, check)
}

func testCursorAcrossChanges(t *testing.T, db kv.DB) {
	// Where a cursor goes after its bucket changes is not defined (bbolt
	// may or may not meet a key put ahead of it); once positioned again,
	// it sees every change of its transaction.
	fill(t, db, "a", "b", "c", "d")
	update(t, db, func(tx kv.Tx) error {
		b := tx.Bucket(name)
		c := b.Cursor()
		k, _ := c.Seek([]byte("b"))
		require.Equal(t, "b", string(k))
		require.NoError(t, b.Put([]byte("bb"), []byte("vbb")))
		require.NoError(t, b.Delete([]byte("c")))
		require.Equal(t, []string{"a", "b", "bb", "d", ""}, walk(c, c.First, c.Next, c.Next, c.Next, c.Next))
		k, _ = c.Seek([]byte("c"))
		require.Equal(t, "d", string(k))
		return nil
	})
	require.Equal(t, []string{"61=7661", "62=7662", "6262=766262", "64=7664"}, contents(t, db, name))
}

func testSequence(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := tx.CreateBucket(name)
		require.NoError(t, err)
		require.Zero(t, b.Sequence())
		for want := uint64(1); want <= 3; want++ {
			n, err := b.NextSequence()
			require.NoError(t, err)
			require.Equal(t, want, n)
		}
		return nil
	})
	update(t, db, func(tx kv.Tx) error {
		b := tx.Bucket(name)
		require.Equal(t, uint64(3), b.Sequence(), "the sequence is kept")
		n, err := b.NextSequence()
		require.NoError(t, err)
		require.Equal(t, uint64(4), n)
		return b.SetSequence(100)
	})
	require.NoError(t, db.View(func(tx kv.Tx) error {
		require.Equal(t, uint64(100), tx.Bucket(name).Sequence())
		return nil
	}))
}

func testBucketMadeAgain(t *testing.T, db kv.DB) {
	fill(t, db, "a", "b", "c")
	update(t, db, func(tx kv.Tx) error {
		require.NoError(t, tx.DeleteBucket(name))
		b, err := tx.CreateBucket(name)
		require.NoError(t, err)
		require.Nil(t, b.Get([]byte("a")))
		require.NoError(t, b.Put([]byte("b"), []byte("new")))
		require.NoError(t, b.Put([]byte("z"), []byte("z")))
		return nil
	})
	require.Equal(t, []string{"62=6e6577", "7a=7a"}, contents(t, db, name))
}

func testOnCommit(t *testing.T, db kv.DB) {
	var ran []string
	update(t, db, func(tx kv.Tx) error {
		tx.OnCommit(func() { ran = append(ran, "committed") })
		_, err := tx.CreateBucket(name)
		return err
	})
	require.Equal(t, []string{"committed"}, ran)
	_ = db.Update(func(tx kv.Tx) error {
		tx.OnCommit(func() { ran = append(ran, "rolled back") })
		return errors.New("no")
	})
	require.Equal(t, []string{"committed"}, ran, "a rolled back transaction runs no commit handler")
	update(t, db, func(tx kv.Tx) error {
		tx.OnCommit(func() { ran = append(ran, "empty") })
		return nil
	})
	require.Equal(t, []string{"committed", "empty"}, ran, "a transaction that wrote nothing commits")
}

func testReadOnly(t *testing.T, db kv.DB) {
	fill(t, db, "a")
	require.NoError(t, db.View(func(tx kv.Tx) error {
		require.False(t, tx.Writable())
		require.Equal(t, db, tx.DB())
		_, err := tx.CreateBucket([]byte("x"))
		require.Error(t, err)
		b := tx.Bucket(name)
		require.Error(t, b.Put([]byte("b"), []byte("1")))
		require.Error(t, b.Delete([]byte("a")))
		_, err = b.NextSequence()
		require.Error(t, err)
		return nil
	}))
	require.Equal(t, []string{"61=7661"}, contents(t, db, name))
}
