// Package etcdtest runs etcd inside a test process, on 127.0.0.1, so that
// tests of the etcd engine need no outside service.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is a set of etcd members started in process.
type Cluster struct {
	members   []*member
	fsync     bool
	maxTxnOps uint
}

type member struct {
	name           string
	dir            string
	clientURL      url.URL
	peerURL        url.URL
	initial, token string
	etcd           *embed.Etcd // nil while stopped
	// closed is closed once a Kill's Close in the background is done.
	closed chan struct{}
}

// Options tune Start.
type Options struct {
	// Fsync keeps etcd's fsyncs, for tests of durability; without it the
	// members skip them, which is several times faster.
	Fsync bool
	// MaxTxnOps is the members' --max-txn-ops; 0 means 10000, more than
	// any test's transaction. etcd's own default is 128.
	MaxTxnOps uint
}

// Start starts an n-member cluster in tb's temp dir and stops it when tb
// ends.
func Start(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	c, err := start(tb.TempDir(), n, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

func start(dir string, n int, opts Options) (*Cluster, error) {
	c := &Cluster{fsync: opts.Fsync, maxTxnOps: opts.MaxTxnOps}
	if c.maxTxnOps == 0 {
		c.maxTxnOps = 10000
	}
	var initial []string
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), dir: filepath.Join(dir, fmt.Sprintf("m%d", i))}
		var err error
		if m.clientURL, err = freeURL(); err != nil {
			return nil, err
		}
		if m.peerURL, err = freeURL(); err != nil {
			return nil, err
		}
		initial = append(initial, m.name+"="+m.peerURL.String())
		c.members = append(c.members, m)
	}
	token := fmt.Sprintf("apikeyd-test-%d", time.Now().UnixNano())
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, m := range c.members {
		m.initial, m.token = strings.Join(initial, ","), token
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.run(m, embed.ClusterStateFlagNew)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// freeURL finds a port nobody listens on. Another process could take it
// before etcd does; tests run on loopback where that is rare.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

func (c *Cluster) run(m *member, state string) error {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = m.token
	cfg.ClusterState = state
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs, cfg.ElectionMs = 20, 200
	cfg.MaxTxnOps = c.maxTxnOps
	cfg.MaxRequestBytes = 10 << 20
	cfg.UnsafeNoFsync = !c.fsync
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcdtest: start %s: %w", m.name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcdtest: %s: %w", m.name, err)
	case <-time.After(30 * time.Second):
		e.Close()
		return fmt.Errorf("etcdtest: %s not ready in 30s", m.name)
	}
	m.etcd = e
	return nil
}

// Endpoints are the client URLs of every member, stopped or not.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL.String())
	}
	return eps
}

// Leader is the index of the member that leads, or -1 if none of the
// running ones knows.
func (c *Cluster) Leader() int {
	for _, m := range c.members {
		if m.etcd == nil {
			continue
		}
		lead := m.etcd.Server.Leader()
		for j, o := range c.members {
			if o.etcd != nil && uint64(o.etcd.Server.MemberID()) == uint64(lead) {
				return j
			}
		}
	}
	return -1
}

// Stop stops member i, keeping its data. It stops as etcd does when
// asked to: a leader first hands its leadership over, and open watches
// get up to etcd's request timeout (over 5 s) to end.
func (c *Cluster) Stop(i int) {
	m := c.members[i]
	if m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
	m.waitClosed()
}

// Kill stops member i at once, keeping its data, as a crash would: it
// leaves raft without handing over its leadership. The client
// connections it has stay open, unanswered, as a hung machine's would,
// until etcd's Close, in the background, has waited out open watches
// (over 5 s); Restart and Stop wait for that.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	if m.etcd == nil {
		return
	}
	e := m.etcd
	e.Server.HardStop()
	m.etcd = nil
	m.closed = make(chan struct{})
	go func() {
		defer close(m.closed)
		e.Close()
	}()
}

func (m *member) waitClosed() {
	if m.closed != nil {
		<-m.closed
		m.closed = nil
	}
}

// Restart starts a stopped member i again on its data.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	c.members[i].waitClosed()
	if err := c.run(c.members[i], embed.ClusterStateFlagExisting); err != nil {
		tb.Fatal(err)
	}
}

// Close stops every member.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
}

var shared struct {
	once sync.Once
	c    *Cluster
	dir  string
	err  error
}

// Shared is one single-member cluster for a whole test binary, started on
// first use; Main stops it. Tests sharing it keep apart by prefix.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "apikeyd-etcd-")
		if shared.err == nil {
			shared.c, shared.err = start(shared.dir, 1, Options{})
		}
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.c
}

// Main runs m's tests and then stops and removes the shared cluster: call
// it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.c != nil {
		shared.c.Close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	return code
}
