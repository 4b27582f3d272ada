// Package etcdkv is the engine of package store on etcd v3: many apikeyd
// nodes share one prefix of one etcd cluster.
//
// Every node keeps a copy of the whole prefix in memory, fed by one watch,
// as Kubernetes' watch cache is: reads and authentication never leave the
// node. Writes are etcd transactions that commit only if no other write
// came between the state they read and their commit, so no update is lost;
// a write returns once this node's copy holds it, so a read after a write
// on the same node sees it.
//
// A node that cannot show its copy is recent says so: Fresh fails once the
// copy has not been confirmed current for longer than MaxStaleness.
//
// Layout under the prefix P:
//
//	P d/<bucket>/<key>  a key of a bucket, its value as is
//	P b/<bucket>        the bucket exists (empty value)
//	P s/<bucket>        the bucket's sequence, decimal
//	P version           rewritten by every write; its mod revision is what
//	                    a write compares
//	P x/...             shared state of the nodes that is not store data
//	                    (quota leases, live nodes); not copied
package etcdkv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/apikeyd/apikeyd/store/kv"
)

// Config says which etcd to use and how.
type Config struct {
	// Endpoints are the client URLs of the cluster's members.
	Endpoints []string
	// Prefix is where this deployment's data lives; "" means "/apikeyd/".
	// Deployments sharing a cluster need prefixes that do not nest.
	Prefix string
	// CA, Cert and Key are PEM files for TLS to etcd: CA verifies the
	// members, Cert and Key are this client's (optional, together).
	CA, Cert, Key string
	// DialTimeout bounds Open's wait for the cluster; 0 means 5 seconds.
	DialTimeout time.Duration
	// RequestTimeout bounds each request to etcd; 0 means 5 seconds.
	RequestTimeout time.Duration
	// MaxStaleness is how long the copy may go unconfirmed before Fresh
	// fails; 0 means 1 second.
	MaxStaleness time.Duration
	// ProbeEvery is how often the copy is confirmed current; 0 means 100ms.
	ProbeEvery time.Duration
}

// DefaultPrefix is Config.Prefix's default.
const DefaultPrefix = "/apikeyd/"

// Errors of Open.
var (
	// ErrUnreachable: no member of the cluster answered in time.
	ErrUnreachable = errors.New("etcd unreachable")
	// ErrForeignPrefix: the prefix holds keys that are not an apikeyd
	// store's (another deployment's, or another program's).
	ErrForeignPrefix = errors.New("etcd prefix holds data that is not this deployment's")
)

// DB is an open etcd engine. It implements kv.DB and kv.Notifier.
type DB struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	maxAge  time.Duration
	node    string // random, names this node's writes in the version key
	seq     atomic.Uint64

	// snap is the copy readers use; the applier replaces it. master is
	// the applier's own, which only it touches.
	snap   atomic.Pointer[snapshot]
	master *replica
	// updateMu runs this node's Updates one at a time, as bbolt does: the
	// store relies on it, writes of one node never conflict with each
	// other in etcd, and only one writer at a time copies a snapshot's
	// trees (a copy marks the tree it copies).
	updateMu sync.Mutex
	// rewatch asks the watch to start again: the probe reads the cluster
	// fine, but the watch does not deliver.
	rewatch chan struct{}

	mu       sync.Mutex
	applied  int64         // the revision snap holds
	advanced chan struct{} // closed and replaced each time applied moves
	onChange []func()
	mine     map[string]int64 // this node's write tokens seen by the watch → revision

	nodes   atomic.Int64 // nodes of the deployment alive, as last counted
	freshAt atomic.Int64 // db.since: the copy was current at that time
	// near is set by nearTimer when the bound is near with no probe since;
	// only the probe goroutine re-arms the timer and clears near.
	near      atomic.Bool
	nearTimer *time.Timer
	epoch     time.Time // Open's time, with its monotonic clock reading
	probeErr  atomic.Pointer[error]

	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// Open connects to the cluster, loads the prefix and starts following it.
// It fails with ErrUnreachable if no member answers within DialTimeout, and
// with ErrForeignPrefix if the prefix holds anything but an apikeyd store,
// or lies inside another deployment's prefix.
func Open(cfg Config) (*DB, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	cfg.DialTimeout = orDefault(cfg.DialTimeout, 5*time.Second)
	cfg.RequestTimeout = orDefault(cfg.RequestTimeout, 5*time.Second)
	cfg.MaxStaleness = orDefault(cfg.MaxStaleness, time.Second)
	cfg.ProbeEvery = orDefault(cfg.ProbeEvery, 100*time.Millisecond)
	tlsc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsc,
		Logger:      zap.NewNop(),
		// A member that dies without closing its connections (a
		// crash, a partition) is noticed within seconds, not at TCP's
		// pace, and the client moves to another.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		PermitWithoutStream:  true,
		// A member cut off from the others must not keep answering
		// this node's watch with nothing.
		RejectOldCluster: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, strings.Join(cfg.Endpoints, ","), err)
	}
	var token [8]byte
	_, _ = rand.Read(token[:])
	db := &DB{
		cli: cli, prefix: cfg.Prefix, timeout: cfg.RequestTimeout, maxAge: cfg.MaxStaleness,
		node: hex.EncodeToString(token[:]), advanced: make(chan struct{}), mine: map[string]int64{},
		rewatch: make(chan struct{}, 1),
	}
	db.ctx, db.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(db.ctx, cfg.DialTimeout)
	start := time.Now()
	db.epoch = start
	err = db.refuseNested(ctx)
	var rev int64
	if err == nil {
		rev, err = db.load(ctx)
	}
	cancel()
	if err != nil {
		db.cancel()
		_ = cli.Close()
		if errors.Is(err, ErrForeignPrefix) || errors.Is(err, errLayout) {
			return nil, err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: %s did not answer in %s", ErrUnreachable, strings.Join(cfg.Endpoints, ","), cfg.DialTimeout)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, strings.Join(cfg.Endpoints, ","), err)
	}
	db.freshAt.Store(db.since(start))
	db.nearTimer = time.AfterFunc(db.nearIn(start), func() { db.near.Store(true) })
	db.nodes.Store(1)
	db.done.Add(3)
	go db.follow(rev)
	go db.probe(cfg.ProbeEvery)
	go db.live()
	return db, nil
}

// nearIn is how long after now the timer of Fresh must fire for a copy
// confirmed current at start: a tenth of MaxStaleness before the bound.
func (db *DB) nearIn(start time.Time) time.Duration {
	return db.maxAge - db.maxAge/10 - time.Since(start)
}

// since is t in nanoseconds after Open, on the monotonic clock: a step of
// the wall clock bends no staleness bound.
func (db *DB) since(t time.Time) int64 { return int64(t.Sub(db.epoch)) }

// refuseNested fails with ErrForeignPrefix when the prefix lies inside
// another deployment's, one whose version key is at a shorter prefix
// ending in "/". Its nodes would read this one's keys as their own: under
// their d/keys/, say, as records of their bucket "keys".
func (db *DB) refuseNested(ctx context.Context) error {
	var outers []string
	var gets []clientv3.Op
	for i := 0; i < len(db.prefix)-1; i++ {
		if db.prefix[i] == '/' {
			outers = append(outers, db.prefix[:i+1])
			gets = append(gets, clientv3.OpGet(db.prefix[:i+1]+"version", clientv3.WithCountOnly()))
		}
	}
	if len(gets) == 0 {
		return nil
	}
	resp, err := db.cli.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return err
	}
	for i, r := range resp.Responses {
		if r.GetResponseRange().Count > 0 {
			return fmt.Errorf("%w: prefix %s is inside the deployment at %s; deployments need prefixes that do not nest", ErrForeignPrefix, db.prefix, outers[i])
		}
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// tlsConfig reads the TLS files of cfg, or returns nil for plain TCP.
func tlsConfig(cfg Config) (*tls.Config, error) {
	if cfg.CA == "" && cfg.Cert == "" && cfg.Key == "" {
		return nil, nil
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, errors.New("etcd TLS: a client certificate needs both --etcd-cert and --etcd-key")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CA != "" {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("etcd TLS CA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd TLS CA %s: no PEM certificate in it", cfg.CA)
		}
	}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd TLS client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// Client is the etcd client, for state the nodes share outside the store
// data (under Shared).
func (db *DB) Client() *clientv3.Client { return db.cli }

// Shared is the prefix under which the nodes keep state that is not
// store data: nothing under it is copied into memory.
func (db *DB) Shared() string { return db.prefix + "x/" }

// Prefix is the deployment's prefix.
func (db *DB) Prefix() string { return db.prefix }

// Node names this node among the nodes of the deployment while it runs.
func (db *DB) Node() string { return db.node }

// Nodes is how many nodes of the deployment are alive, this one included,
// as counted at most a few seconds ago; at least 1. Limits that every node
// keeps for itself (rates, login throttling) divide by it, so that the
// cluster as a whole keeps them.
func (db *DB) Nodes() int { return int(db.nodes.Load()) }

// OnChange registers fn to run after each change the watch applies,
// once every View begun after the call sees it.
func (db *DB) OnChange(fn func()) {
	db.mu.Lock()
	db.onChange = append(db.onChange, fn)
	db.mu.Unlock()
}

// Fresh fails with kv.ErrStale when the copy has not been confirmed
// current for longer than MaxStaleness.
//
// Every authentication asks, so the common answer costs one atomic load:
// while probes succeed, a timer that each success pushes back stays
// ahead of the bound, and only once it fires (a tenth of MaxStaleness
// before the bound, with no probe since) does Fresh read the clock.
func (db *DB) Fresh() error {
	if !db.near.Load() {
		return nil
	}
	age := time.Duration(db.since(time.Now()) - db.freshAt.Load())
	if age <= db.maxAge {
		return nil
	}
	return db.staleError(age)
}

func (db *DB) staleError(age time.Duration) error {
	if p := db.probeErr.Load(); p != nil {
		return fmt.Errorf("%w: last confirmed current %s ago (limit %s): %w", kv.ErrStale, age.Round(time.Millisecond), db.maxAge, *p)
	}
	return fmt.Errorf("%w: last confirmed current %s ago (limit %s)", kv.ErrStale, age.Round(time.Millisecond), db.maxAge)
}

// Status is what a node reports of its copy.
type Status struct {
	Revision int64         // the etcd revision the copy holds
	Age      time.Duration // since the copy was last confirmed current
	Fresh    error         // Fresh's answer
}

// Status reports the copy's state, for readiness checks.
func (db *DB) Status() Status {
	db.mu.Lock()
	rev := db.applied
	db.mu.Unlock()
	return Status{Revision: rev, Age: time.Duration(db.since(time.Now()) - db.freshAt.Load()), Fresh: db.Fresh()}
}

// Close stops following the cluster and closes the client.
func (db *DB) Close() error {
	db.cancel()
	db.done.Wait()
	db.nearTimer.Stop()
	return db.cli.Close()
}

// View runs fn on the copy as it is now.
func (db *DB) View(fn func(kv.Tx) error) error {
	return fn(db.snap.Load())
}

// token names one write of this node.
func (db *DB) token() string {
	return fmt.Sprintf("%s.%d", db.node, db.seq.Add(1))
}

// waitApplied waits until the copy holds revision rev.
func (db *DB) waitApplied(ctx context.Context, rev int64) error {
	for {
		db.mu.Lock()
		applied, ch := db.applied, db.advanced
		db.mu.Unlock()
		if applied >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("etcd: this node's copy did not reach revision %d (it holds %d): %w", rev, applied, ctx.Err())
		}
	}
}
