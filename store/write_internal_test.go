package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var bucketGroupTest = []byte("group-test")

// openGroupStore opens a synced store with a bucket for these tests.
func openGroupStore(t *testing.T) *Store {
	t.Helper()
	st, err := Open(filepath.Join(t.TempDir(), "apikeyd.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.update(context.Background(), func(tx kv.Tx) error {
		_, err := tx.CreateBucket(bucketGroupTest)
		return err
	}))
	return st
}

// queued waits until n writes wait in st's queue.
func queued(t *testing.T, st *Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		st.group.mu.Lock()
		defer st.group.mu.Unlock()
		return len(st.group.queue) == n
	}, 10*time.Second, time.Millisecond)
}

// holdFirstCommit starts a write whose function blocks until release is
// closed, so that writes started meanwhile queue up behind its commit. It
// returns the write's outcome.
func holdFirstCommit(t *testing.T, st *Store, release chan struct{}) <-chan error {
	t.Helper()
	started := make(chan struct{})
	out := make(chan error, 1)
	go func() {
		out <- st.batch(context.Background(), func(tx kv.Tx) error {
			select {
			case <-started:
			default:
				close(started)
			}
			<-release
			return tx.Bucket(bucketGroupTest).Put([]byte("first"), []byte("1"))
		})
	}()
	<-started
	return out
}

func stored(t *testing.T, st *Store, key string) bool {
	t.Helper()
	found := false
	require.NoError(t, st.view(func(tx kv.Tx) error {
		found = tx.Bucket(bucketGroupTest).Get([]byte(key)) != nil
		return nil
	}))
	return found
}

// TestGroupCommit_Shares: writes that arrive while a commit runs all go
// into the next one, together: one commit for all of them, with no timer.
func TestGroupCommit_Shares(t *testing.T) {
	st := openGroupStore(t)
	before := st.group.commits.Load()
	release := make(chan struct{})
	first := holdFirstCommit(t, st, release)

	const n = 63
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = st.batchKeys(context.Background(), func(tx kv.Tx) error {
				return tx.Bucket(bucketGroupTest).Put(fmt.Appendf(nil, "k%d", i), []byte("v"))
			})
		})
	}
	queued(t, st, n)
	close(release)
	require.NoError(t, <-first)
	wg.Wait()

	for i, err := range errs {
		assert.NoError(t, err, "write %d", i)
		assert.True(t, stored(t, st, fmt.Sprintf("k%d", i)), "write %d", i)
	}
	assert.True(t, stored(t, st, "first"))
	assert.Equal(t, int64(2), st.group.commits.Load()-before, "the first write's commit, then one for the 63")
}

// TestGroupCommit_LoneWrites: a writer alone commits each write on its
// own, at once: as many commits as writes.
func TestGroupCommit_LoneWrites(t *testing.T) {
	st := openGroupStore(t)
	before := st.group.commits.Load()
	for i := range 10 {
		require.NoError(t, st.batchKeys(context.Background(), func(tx kv.Tx) error {
			return tx.Bucket(bucketGroupTest).Put(fmt.Appendf(nil, "k%d", i), []byte("v"))
		}))
	}
	assert.Equal(t, int64(10), st.group.commits.Load()-before)
}

// TestGroupCommit_FailureIsolated: in a shared commit, a write that fails
// after changing something, or panics, gets its own outcome; its partial
// changes are not committed and the others commit all the same.
func TestGroupCommit_FailureIsolated(t *testing.T) {
	st := openGroupStore(t)
	errBroken := errors.New("broken write")
	release := make(chan struct{})
	first := holdFirstCommit(t, st, release)

	type outcome struct {
		err      error
		panicked any
	}
	var good [2]error
	var failed, panicked outcome
	var failRuns, goodRuns [2]int
	var wg sync.WaitGroup
	put := func(key string) func(kv.Tx) error {
		return func(tx kv.Tx) error { return tx.Bucket(bucketGroupTest).Put([]byte(key), []byte("v")) }
	}
	wg.Go(func() {
		good[0] = st.batchKeys(context.Background(), func(tx kv.Tx) error { goodRuns[0]++; return put("good0")(tx) })
	})
	queued(t, st, 1)
	wg.Go(func() {
		failed.err = st.batchKeys(context.Background(), func(tx kv.Tx) error {
			failRuns[0]++
			if err := put("partial")(tx); err != nil {
				return err
			}
			return errBroken
		})
	})
	queued(t, st, 2)
	wg.Go(func() {
		defer func() { panicked.panicked = recover() }()
		panicked.err = st.batchKeys(context.Background(), func(tx kv.Tx) error {
			failRuns[1]++
			if err := put("partial-panic")(tx); err != nil {
				return err
			}
			panic("write bug")
		})
	})
	queued(t, st, 3)
	wg.Go(func() {
		good[1] = st.batchKeys(context.Background(), func(tx kv.Tx) error { goodRuns[1]++; return put("good1")(tx) })
	})
	queued(t, st, 4)
	close(release)
	require.NoError(t, <-first)
	wg.Wait()

	assert.NoError(t, good[0])
	assert.NoError(t, good[1])
	assert.True(t, stored(t, st, "good0"))
	assert.True(t, stored(t, st, "good1"))
	assert.True(t, stored(t, st, "first"))
	assert.ErrorIs(t, failed.err, errBroken, "the failing write gets its own error")
	assert.Equal(t, "write bug", panicked.panicked, "the panicking write panics in its caller, alone")
	assert.False(t, stored(t, st, "partial"), "a failed write's changes are not committed")
	assert.False(t, stored(t, st, "partial-panic"), "a panicked write's changes are not committed")
	assert.Equal(t, [2]int{2, 2}, failRuns, "each failing write ran once in the group, once alone")
	assert.LessOrEqual(t, goodRuns[0], 3)
	assert.LessOrEqual(t, goodRuns[1], 3)
}

// TestGroupCommit_OperatorGuard: a write in a shared commit that would
// remove the last full operator key fails with ErrLastOperatorKey and
// changes nothing, and the writes it shared the commit with go through.
func TestGroupCommit_OperatorGuard(t *testing.T) {
	st := openGroupStore(t)
	op, created, err := st.Bootstrap(NewSecret())
	require.NoError(t, err)
	require.True(t, created)
	release := make(chan struct{})
	first := holdFirstCommit(t, st, release)

	// The delete comes after a write of the same group, whose check it
	// builds on, and before another.
	var delErr error
	var goodErr [2]error
	var wg sync.WaitGroup
	wg.Go(func() {
		goodErr[0] = st.batchKeys(context.Background(), func(tx kv.Tx) error { return tx.Bucket(bucketGroupTest).Put([]byte("good0"), []byte("v")) })
	})
	queued(t, st, 1)
	wg.Go(func() {
		delErr = st.DeleteKey(context.Background(), OperatorAccount, op.ID, func(Key) error { return nil })
	})
	queued(t, st, 2)
	wg.Go(func() {
		goodErr[1] = st.batchKeys(context.Background(), func(tx kv.Tx) error { return tx.Bucket(bucketGroupTest).Put([]byte("good1"), []byte("v")) })
	})
	queued(t, st, 3)
	close(release)
	require.NoError(t, <-first)
	wg.Wait()

	assert.ErrorIs(t, delErr, ErrLastOperatorKey)
	assert.NoError(t, goodErr[0])
	assert.NoError(t, goodErr[1])
	assert.True(t, stored(t, st, "good0"))
	assert.True(t, stored(t, st, "good1"))
	ok, err := st.HasFullOperatorKey()
	require.NoError(t, err)
	assert.True(t, ok)
	_, err = st.Key(OperatorAccount, op.ID)
	assert.NoError(t, err)
}

// capped is an engine that refuses, as etcd does past --max-txn-ops, a
// transaction of more than max puts.
type capped struct {
	kv.DB
	max     int
	refused int
}

func (c *capped) Update(fn func(kv.Tx) error) error {
	err := c.DB.Update(func(tx kv.Tx) error {
		counting := &countingTx{Tx: tx}
		if err := fn(counting); err != nil {
			return err
		}
		if counting.puts > c.max {
			return kv.ErrTooLarge
		}
		return nil
	})
	if errors.Is(err, kv.ErrTooLarge) {
		c.refused++
	}
	return err
}

type countingTx struct {
	kv.Tx
	puts int
}

func (t *countingTx) Bucket(name []byte) kv.Bucket {
	b := t.Tx.Bucket(name)
	if b == nil {
		return nil
	}
	return &countingBucket{Bucket: b, tx: t}
}

type countingBucket struct {
	kv.Bucket
	tx *countingTx
}

func (b *countingBucket) Put(k, v []byte) error {
	b.tx.puts++
	return b.Bucket.Put(k, v)
}

// TestGroupCommit_TooLargeSplits: a group the engine refuses for its size
// commits in parts, and every write in it succeeds.
func TestGroupCommit_TooLargeSplits(t *testing.T) {
	st := openGroupStore(t)
	eng := &capped{DB: st.db, max: 3}
	st.db = eng
	release := make(chan struct{})
	first := holdFirstCommit(t, st, release)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = st.batch(context.Background(), func(tx kv.Tx) error {
				return tx.Bucket(bucketGroupTest).Put([]byte(fmt.Sprint("k", i)), []byte("v"))
			})
		})
	}
	queued(t, st, n)
	close(release)
	require.NoError(t, <-first)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "write %d", i)
		assert.True(t, stored(t, st, fmt.Sprint("k", i)))
	}
	assert.Positive(t, eng.refused, "the group of 8 went over the cap of 3 and was split")
}
