// Nodes fakes, for tests, what an engine shared by many nodes does beneath
// package store, over one bbolt engine: each node hears of the others' writes
// (kv.Notifier), and can fall behind (Fresh fails with kv.ErrStale).

package kvtest

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/kv/boltkv"
)

// Cluster is a set of nodes over one bbolt file in a temp dir, closed
// when the test ends.
type Cluster struct {
	db *boltkv.DB

	mu    sync.Mutex
	nodes []*Node
}

// NewCluster opens a cluster with no node yet.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	db, err := boltkv.Open(filepath.Join(tb.TempDir(), "cluster.db"), boltkv.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return &Cluster{db: db}
}

// Node adds a node to the cluster.
func (c *Cluster) Node() *Node {
	n := &Node{cluster: c}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return n
}

// wrote tells every node but from of from's write.
func (c *Cluster) wrote(from *Node) {
	c.mu.Lock()
	var fns []func()
	for _, n := range c.nodes {
		if n != from {
			fns = append(fns, n.onChange...)
		}
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Node is one node of a Cluster: a kv.DB and a kv.Notifier whose
// transactions name it as their engine.
type Node struct {
	cluster  *Cluster
	stale    atomic.Bool
	closed   atomic.Bool
	onChange []func() // guarded by cluster.mu
}

var (
	_ kv.DB       = (*Node)(nil)
	_ kv.Notifier = (*Node)(nil)
)

// SetStale makes the node fall behind (its Fresh fails) or catch up.
func (n *Node) SetStale(stale bool) { n.stale.Store(stale) }

// Closed reports whether Close was called.
func (n *Node) Closed() bool { return n.closed.Load() }

// Fresh fails, wrapping kv.ErrStale, while the node is stale.
func (n *Node) Fresh() error {
	if n.stale.Load() {
		return fmt.Errorf("kvtest: node behind its cluster: %w", kv.ErrStale)
	}
	return nil
}

func (n *Node) View(fn func(kv.Tx) error) error {
	return n.cluster.db.View(func(tx kv.Tx) error { return fn(nodeTx{tx, n}) })
}

// Update writes, then tells the other nodes.
func (n *Node) Update(fn func(kv.Tx) error) error {
	err := n.cluster.db.Update(func(tx kv.Tx) error { return fn(nodeTx{tx, n}) })
	if err == nil {
		n.cluster.wrote(n)
	}
	return err
}

func (n *Node) OnChange(fn func()) {
	n.cluster.mu.Lock()
	defer n.cluster.mu.Unlock()
	n.onChange = append(n.onChange, fn)
}

// Close leaves the cluster's file open for the other nodes.
func (n *Node) Close() error {
	n.closed.Store(true)
	return nil
}

// nodeTx is a transaction of a node.
type nodeTx struct {
	kv.Tx
	n *Node
}

func (t nodeTx) DB() kv.DB { return t.n }

// Within fails the test if fn has not returned after d: a read
// transaction kept across a write that grows a bbolt file would hang the
// write for good, and a test must say so rather than wait for ever.
func Within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not finish within %s", what, d)
	}
}
