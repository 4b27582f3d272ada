package rpc_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/store"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// newLegacyServer is newTestServer over a file that holds, beside the
// operator key, account acme and a legacy global user bob of acme (stored
// under "bob", as versions before login names per account stored users).
func newLegacyServer(t *testing.T) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	clock := &atomic.Pointer[time.Time]{}
	clock.Store(&fixedNow)
	opts := store.Options{NoSync: true, Now: func() time.Time { return *clock.Load() }, UsageFlush: time.Hour}
	st, err := store.Open(path, opts)
	require.NoError(t, err)
	_, _, err = st.Bootstrap(adminKey)
	require.NoError(t, err)
	_, _, _, err = st.CreateAccount(context.Background(), "acme", "")
	require.NoError(t, err)
	hash, err := st.HashPassword(context.Background(), "correct horse")
	require.NoError(t, err)
	require.NoError(t, st.Close())

	// A user record as store/users.go lays it out: version 1, name,
	// account, hash, created.
	str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	rec := str(str(str([]byte{1}, "bob"), "acme"), hash)
	rec = binary.AppendVarint(rec, fixedNow.Unix())
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("users")).Put([]byte("bob"), rec) }))
	require.NoError(t, db.Close())

	st, err = store.Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	logBuf := &syncBuffer{}
	srv := rpc.New(st, rpc.Options{Logger: zerolog.New(logBuf)})
	reboots := registerServerMethods(srv)
	mux := http.NewServeMux()
	mux.Handle("/rpc", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &testServer{t: t, Store: st, RPC: srv, URL: hs.URL + "/rpc", Admin: adminKey, Log: logBuf,
		Reboots: reboots, clock: clock, Transport: overNetHTTP, handoffs: new(atomic.Int64)}
}

// TestSeams_LegacyUserListsOwnKeysByLoginName: a legacy user logs in as
// "bob" or, as docs/security.md promises, as "bob@acme", and filebin
// clients pass the name they logged in with to user.apikeys. With
// "bob@acme" its own key is refused its own keys (forbidden), since
// ownerFor compares "user:bob@acme" with the key's owner "user:bob" and
// looks up "bob@acme" as a short name.
func TestSeams_LegacyUserListsOwnKeysByLoginName(t *testing.T) {
	ts := newLegacyServer(t)
	k := ts.createUserKey("bob@acme", "correct horse", "apikey")
	require.Equal(t, "user:bob", k.Owner)
	ts.ok(k.Key, "user.apikeys", map[string]any{"username": "bob"}, nil)
	ts.ok(k.Key, "user.apikeys", map[string]any{"username": "bob@acme"}, nil)
}
