package store_test

import (
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/kv/boltkv"
	"github.com/stretchr/testify/require"
)

// openStore opens the store the external tests run on, at path: each
// engine's tests name it by a path in a temp dir, a file for bbolt. It
// fails the test if the store does not open, and closes it when the test
// ends (closing it earlier, to open it again, is fine). Tests of Open's
// own failures call store.Open.
func openStore(tb testing.TB, path string, opts store.Options) *store.Store {
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
	db, err := boltkv.Open(path, boltkv.Options{Timeout: 5 * time.Second})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	return db
}
