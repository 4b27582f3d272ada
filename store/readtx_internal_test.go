package store

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func openInternal(t *testing.T) *Store {
	t.Helper()
	st, err := Open(filepath.Join(t.TempDir(), "apikeyd.db"), Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func (r *readTxs) idleLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.idle)
}

func setComment(t *testing.T, st *Store, id, c string) {
	t.Helper()
	_, err := st.UpdateKey("a", id, func(Key) (KeyChange, error) { return KeyChange{Comment: &c}, nil })
	require.NoError(t, err)
}

// A transaction that was lent out while a write committed is not kept:
// it sees the file as it was before the write.
func TestReadTxs_StaleNotKept(t *testing.T) {
	st := openInternal(t)
	k, _, err := st.CreateKey(NewKey{Account: "a", Comment: "old"})
	require.NoError(t, err)

	rt, err := st.reads.get()
	require.NoError(t, err)
	// A write, committed while rt was out. (A real one could wait for rt
	// to end, if it grew the file.)
	st.reads.beginWrite()
	st.reads.endWrite()
	st.reads.put(rt)
	assert.Zero(t, st.reads.idleLen(), "a transaction older than the last write was kept")
	setComment(t, st, k.ID, "new")

	got, err := st.Key("a", k.ID)
	require.NoError(t, err)
	assert.Equal(t, "new", got.Comment)
	assert.Equal(t, 1, st.reads.idleLen(), "a current transaction is kept")
}

// Nothing is kept while a write is under way: it could be holding up the
// write's growth of the file.
func TestReadTxs_NotKeptDuringWrite(t *testing.T) {
	st := openInternal(t)
	_, _, err := st.CreateKey(NewKey{Account: "a"})
	require.NoError(t, err)

	inWrite, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- st.update(func(*bolt.Tx) error { close(inWrite); <-release; return nil })
	}()
	<-inWrite
	rt, err := st.reads.get()
	require.NoError(t, err)
	st.reads.put(rt)
	assert.Zero(t, st.reads.idleLen(), "a transaction was kept during a write")
	close(release)
	require.NoError(t, <-done)
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
			st := openInternal(t)
			k, _, err := st.CreateKey(NewKey{Account: "a"})
			require.NoError(t, err)
			_, err = st.Key("a", k.ID)
			require.NoError(t, err)
			before := st.reads.idleLen()

			done := make(chan struct{})
			var recovered any
			go func() {
				defer close(done)
				defer func() { recovered = recover() }()
				_ = st.view(func(*bolt.Tx) error { c.exit(); return nil })
			}()
			<-done
			assert.Equal(t, c.recovered, recovered)
			assert.Equal(t, before-1, st.reads.idleLen(), "the read's transaction came back")
			setComment(t, st, k.ID, "after")
			closeWithin(t, st)
		})
	}
}

// closeWithin closes st, failing the test if that takes long: a read
// transaction left open would hold Close up for good.
func closeWithin(t *testing.T, st *Store) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited on a read transaction never ended")
	}
}
