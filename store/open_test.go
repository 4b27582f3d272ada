package store_test

import (
	"os"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/stretchr/testify/require"
)

// openStore opens the store the external tests run on, at path: each
// engine's tests name it by a path in a temp dir, a file for bbolt. It
// fails the test if the store does not open, and closes it when the test
// ends (closing it earlier, to open it again, is fine). Tests of Open's
// own failures call store.Open.
func openStore(tb testing.TB, path string, opts store.Options) *store.Store {
	tb.Helper()
	st, err := storetest.Open(tb, path, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// openFile opens the data file at path, whatever this run's engine: a
// backup is a file on every engine.
func openFile(tb testing.TB, path string) *store.Store {
	tb.Helper()
	return openFileWith(tb, path, store.Options{NoSync: true, Now: func() time.Time { return testNow }})
}

func openFileWith(tb testing.TB, path string, opts store.Options) *store.Store {
	tb.Helper()
	st, err := store.Open(path, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// openRaw opens the engine beneath the store at path, which must be
// closed, for a test to write what the store never would (an older
// schema, a broken index). It is closed when the test ends, if the test
// does not close it first.
func openRaw(tb testing.TB, path string) kv.DB {
	tb.Helper()
	db, err := storetest.OpenEngine(tb, path)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// TestMain stops the etcd that a run on etcd shares among its tests.
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
