package etcdkv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/apikeyd/apikeyd/store/internal/etcdtest"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/apikeyd/apikeyd/store/kv/etcdkv"
	"github.com/apikeyd/apikeyd/store/kv/kvtest"
)

func TestMain(m *testing.M) { os.Exit(etcdtest.Main(m)) }

var prefixes atomic.Int64

// newPrefix is a prefix of the shared cluster no other test uses.
func newPrefix() string { return fmt.Sprintf("/kvtest-%d-%d/", os.Getpid(), prefixes.Add(1)) }

func open(t *testing.T, endpoints []string, prefix string) *etcdkv.DB {
	t.Helper()
	db, err := etcdkv.Open(etcdkv.Config{Endpoints: endpoints, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	c := etcdtest.Shared(t)
	kvtest.Run(t, func(t *testing.T) kv.DB { return open(t, c.Endpoints(), newPrefix()) })
}

// counter reads a decimal counter in bucket "n", key "c".
func counter(tx kv.Tx) int {
	b := tx.Bucket([]byte("n"))
	if b == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(b.Get([]byte("c"))))
	return n
}

func TestNodes_NoLostUpdates(t *testing.T) {
	c := etcdtest.Shared(t)
	prefix := newPrefix()
	nodes := []*etcdkv.DB{open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)}
	const each = 25
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := nodes[w%2].Update(func(tx kv.Tx) error {
					n := counter(tx)
					b, err := tx.CreateBucketIfNotExists([]byte("n"))
					if err != nil {
						return err
					}
					return b.Put([]byte("c"), []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, db := range nodes {
		require.Eventually(t, func() bool {
			var n int
			_ = db.View(func(tx kv.Tx) error { n = counter(tx); return nil })
			return n == 4*each
		}, 5*time.Second, 5*time.Millisecond, "node %d sees every increment", i)
	}
}

func TestNodes_ReadYourWrites(t *testing.T) {
	c := etcdtest.Shared(t)
	prefix := newPrefix()
	a, b := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	changes := make(chan struct{}, 1000)
	b.OnChange(func() { changes <- struct{}{} })
	for i := 1; i <= 20; i++ {
		db := []*etcdkv.DB{a, b}[i%2]
		require.NoError(t, db.Update(func(tx kv.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("n"))
			if err != nil {
				return err
			}
			return bk.Put([]byte("c"), []byte(strconv.Itoa(i)))
		}))
		var n int
		require.NoError(t, db.View(func(tx kv.Tx) error { n = counter(tx); return nil }))
		require.Equal(t, i, n, "a read after a write on the same node sees it")
	}
	require.NotEmpty(t, changes, "the other node's writes were announced")
}

func TestOpen_ForeignPrefix(t *testing.T) {
	c := etcdtest.Shared(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer cli.Close()
	ctx := context.Background()

	other := newPrefix()
	_, err = cli.Put(ctx, other+"config/something", "x")
	require.NoError(t, err)
	_, err = etcdkv.Open(etcdkv.Config{Endpoints: c.Endpoints(), Prefix: other})
	require.ErrorIs(t, err, etcdkv.ErrForeignPrefix)

	// A deployment under a prefix nested in ours is another deployment.
	outer := newPrefix()
	inner := open(t, c.Endpoints(), outer+"eu/")
	require.NoError(t, inner.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("meta"))
		return err
	}))
	_, err = etcdkv.Open(etcdkv.Config{Endpoints: c.Endpoints(), Prefix: outer})
	require.ErrorIs(t, err, etcdkv.ErrForeignPrefix)

	// And its own prefix opens again.
	again := open(t, c.Endpoints(), outer+"eu/")
	require.NoError(t, again.View(func(tx kv.Tx) error {
		require.NotNil(t, tx.Bucket([]byte("meta")))
		return nil
	}))
}

// A prefix inside another deployment's is refused, even where that
// deployment's layout would take the new one's keys for its own: under
// its d/keys/, the new deployment's records would be read as records of
// the outer one's bucket "keys".
func TestOpen_InsideAnotherDeployment(t *testing.T) {
	c := etcdtest.Shared(t)
	outer := open(t, c.Endpoints(), newPrefix())
	require.NoError(t, outer.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("keys"))
		return err
	}))
	for _, inner := range []string{"d/keys/", "eu/", "x/"} {
		_, err := etcdkv.Open(etcdkv.Config{Endpoints: c.Endpoints(), Prefix: outer.Prefix() + inner})
		require.ErrorIs(t, err, etcdkv.ErrForeignPrefix, inner)
		require.ErrorContains(t, err, outer.Prefix(), "names the deployment it is inside")
	}
}

func TestOpen_Unreachable(t *testing.T) {
	start := time.Now()
	_, err := etcdkv.Open(etcdkv.Config{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 300 * time.Millisecond})
	require.ErrorIs(t, err, etcdkv.ErrUnreachable)
	require.Contains(t, err.Error(), "127.0.0.1:1")
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestOpen_TLSFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ca.pem")
	_, err := etcdkv.Open(etcdkv.Config{Endpoints: []string{"https://127.0.0.1:1"}, CA: missing})
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), missing)

	_, err = etcdkv.Open(etcdkv.Config{Endpoints: []string{"https://127.0.0.1:1"}, Cert: missing})
	require.ErrorContains(t, err, "--etcd-key")

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	_, err = etcdkv.Open(etcdkv.Config{Endpoints: []string{"https://127.0.0.1:1"}, CA: notPEM})
	require.ErrorContains(t, err, "no PEM certificate")
}

// A node whose etcd goes away says it is stale within its bound, and
// comes back by itself.
func TestFresh_StaleAndBack(t *testing.T) {
	c := etcdtest.Start(t, 1, etcdtest.Options{})
	db, err := etcdkv.Open(etcdkv.Config{Endpoints: c.Endpoints(), Prefix: "/p/", MaxStaleness: 300 * time.Millisecond,
		DialTimeout: time.Second, RequestTimeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	require.Eventually(t, func() bool { return db.Fresh() == nil }, 2*time.Second, 10*time.Millisecond)

	c.Stop(0)
	stopped := time.Now()
	require.Eventually(t, func() bool { return db.Fresh() != nil }, 3*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, db.Fresh(), kv.ErrStale)
	require.Less(t, time.Since(stopped), time.Second, "stale within the bound and a probe")
	require.Error(t, db.Status().Fresh)

	c.Restart(t, 0)
	require.Eventually(t, func() bool { return db.Fresh() == nil }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("after"))
		return err
	}), "writes work again")
}

func TestNodes_Count(t *testing.T) {
	c := etcdtest.Shared(t)
	prefix := newPrefix()
	a := open(t, c.Endpoints(), prefix)
	require.Eventually(t, func() bool { return a.Nodes() == 1 }, 5*time.Second, 20*time.Millisecond)
	b := open(t, c.Endpoints(), prefix)
	require.Eventually(t, func() bool { return a.Nodes() == 2 && b.Nodes() == 2 }, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, b.Close())
	require.Eventually(t, func() bool { return a.Nodes() == 1 }, 5*time.Second, 20*time.Millisecond, "a node that closes stops counting")
}

func TestCopy_Digests(t *testing.T) {
	c := etcdtest.Shared(t)
	src, dst := open(t, c.Endpoints(), newPrefix()), open(t, c.Endpoints(), newPrefix())
	buckets := [][]byte{[]byte("a"), []byte("b"), []byte("empty")}
	require.NoError(t, src.Update(func(tx kv.Tx) error {
		for _, name := range buckets {
			b, err := tx.CreateBucket(name)
			require.NoError(t, err)
			if string(name) == "empty" {
				continue
			}
			for i := range 250 {
				require.NoError(t, b.Put([]byte(fmt.Sprintf("%s%04d", name, i)), []byte{byte(i)}))
			}
			_, err = b.NextSequence()
			require.NoError(t, err)
		}
		return nil
	}))
	require.NoError(t, kv.Copy(dst, src, buckets))
	want, err := kv.Digest(src, buckets)
	require.NoError(t, err)
	got, err := kv.Digest(dst, buckets)
	require.NoError(t, err)
	require.NoError(t, kv.SameDigests(want, got))
	require.Equal(t, 250, got[0].Keys)
	require.Equal(t, uint64(1), got[1].Sequence)

	require.ErrorIs(t, kv.Copy(dst, src, buckets), kv.ErrBucketExists, "a copy never writes over a target")

	require.NoError(t, dst.Update(func(tx kv.Tx) error { return tx.Bucket([]byte("b")).Delete([]byte("b0007")) }))
	got, err = kv.Digest(dst, buckets)
	require.NoError(t, err)
	require.ErrorIs(t, kv.SameDigests(want, got), kv.ErrDigestMismatch)
}

// A transaction over etcd's --max-txn-ops is refused with kv.ErrTooLarge
// and changes nothing.
func TestUpdate_TooLarge(t *testing.T) {
	c := etcdtest.Shared(t) // runs with --max-txn-ops 10000
	db := open(t, c.Endpoints(), newPrefix())
	err := db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucket([]byte("big"))
		if err != nil {
			return err
		}
		for i := range 10001 {
			if err := b.Put([]byte(strconv.Itoa(i)), nil); err != nil {
				return err
			}
		}
		return nil
	})
	require.ErrorIs(t, err, kv.ErrTooLarge)
	require.ErrorContains(t, err, "--max-txn-ops")
	require.NoError(t, db.View(func(tx kv.Tx) error {
		require.Nil(t, tx.Bucket([]byte("big")))
		return nil
	}))
}
