// Package storetest opens stores for tests on the engine the test run
// asks for, so that one suite proves both engines: with
// APIKEYD_TEST_BACKEND=etcd, every store a test opens lives in a prefix of
// one etcd started inside the test binary; without it, in a bbolt file.
//
// A test names its store by a path in a temp dir, as for a file; on etcd
// the path picks the prefix, so a test that closes a store and opens the
// same path again finds its data, as it would in the file.
package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/internal/etcdtest"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/kv/boltkv"
	"github.com/apikeyd/apikeyd/store/kv/etcdkv"
)

// BackendEnv names the environment variable that picks the engine:
// "etcd", or "bbolt" (the default).
const BackendEnv = "APIKEYD_TEST_BACKEND"

// Etcd reports whether this run's stores live on etcd.
func Etcd() bool { return os.Getenv(BackendEnv) == "etcd" }

// Open opens the store named by path on this run's engine. Options that
// only a file has (LockTimeout, NoSync) mean nothing on etcd.
func Open(tb testing.TB, path string, opts store.Options) (*store.Store, error) {
	tb.Helper()
	if !Etcd() {
		return store.Open(path, opts)
	}
	db, err := OpenEngine(tb, path)
	if err != nil {
		return nil, err
	}
	st, err := store.OpenDB(db, opts)
	if err != nil {
		_ = db.Close()
	}
	return st, err
}

// OpenEngine opens the engine beneath the store named by path, without a
// store over it: for tests that write what the store never would. The
// caller closes it.
func OpenEngine(tb testing.TB, path string) (kv.DB, error) {
	tb.Helper()
	if !Etcd() {
		return boltkv.Open(path, boltkv.Options{Timeout: 5 * time.Second})
	}
	return etcdkv.Open(etcdkv.Config{Endpoints: etcdtest.Shared(tb).Endpoints(), Prefix: Prefix(path)})
}

// Prefix is the etcd prefix of the store named by path.
func Prefix(path string) string {
	sum := sha256.Sum256([]byte(path))
	return "/apikeyd-test/" + hex.EncodeToString(sum[:8]) + "/"
}

// NeedsFile skips a test of what only a bbolt file has (its size on disk,
// a backup of it, its lock, a crash of the process writing it) when the
// run's engine is etcd.
func NeedsFile(tb testing.TB) {
	tb.Helper()
	if Etcd() {
		tb.Skip("needs a bbolt file: this run's engine is etcd")
	}
}

// Main runs m's tests and then stops the etcd they shared, if any: call it
// from TestMain.
//
// On etcd every write is a round trip to the cluster, so property tests
// (pgregory.net/rapid) run a fifth of their checks by default there:
// -rapid.checks, when given, still says how many.
func Main(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("rapid.checks"); Etcd() && f != nil && !flagSet("rapid.checks") {
		n, err := strconv.Atoi(f.Value.String())
		if err == nil {
			_ = f.Value.Set(strconv.Itoa(max(1, n/5)))
		}
	}
	return etcdtest.Main(m)
}

// flagSet reports whether the command line set the flag name.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// SkipOnEtcd skips a test that cannot hold on etcd, for the reason why.
func SkipOnEtcd(tb testing.TB, why string) {
	tb.Helper()
	if Etcd() {
		tb.Skip("not on etcd: " + why)
	}
}

var nodePrefixes atomic.Int64

// EtcdNodes opens n stores over one new prefix of the etcd shared by the
// test binary, whatever the run's engine: nodes of one deployment, for
// tests of what holds across nodes. They close when the test ends.
func EtcdNodes(tb testing.TB, n int, opts store.Options) []*store.Store {
	tb.Helper()
	prefix := fmt.Sprintf("/apikeyd-nodes/%d-%d/", os.Getpid(), nodePrefixes.Add(1))
	var nodes []*store.Store
	for range n {
		db, err := etcdkv.Open(etcdkv.Config{Endpoints: etcdtest.Shared(tb).Endpoints(), Prefix: prefix})
		if err != nil {
			tb.Fatal(err)
		}
		st, err := store.OpenDB(db, opts)
		if err != nil {
			_ = db.Close()
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = st.Close() })
		nodes = append(nodes, st)
	}
	return nodes
}

// OnEtcdAlready skips, in a run on etcd, a test that is on etcd in every
// run (across nodes, against faults): the run on bbolt has run it.
func OnEtcdAlready(tb testing.TB) {
	tb.Helper()
	if Etcd() {
		tb.Skip("on etcd in every run: the run on bbolt ran it")
	}
}
