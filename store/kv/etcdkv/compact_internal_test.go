package etcdkv

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apikeyd/apikeyd/store/internal/etcdtest"
	"github.com/apikeyd/apikeyd/store/kv"
)

// A node whose watch falls behind a compaction says it is stale, then
// loads the prefix afresh and catches up by itself, with every write the
// other node made meanwhile.
func TestWatch_CompactedPast(t *testing.T) {
	c := etcdtest.Start(t, 1, etcdtest.Options{})
	cfg := Config{Endpoints: c.Endpoints(), Prefix: "/compact/", MaxStaleness: 300 * time.Millisecond}
	behind, err := Open(cfg)
	require.NoError(t, err)
	defer behind.Close()
	other, err := Open(cfg)
	require.NoError(t, err)
	defer other.Close()

	var mu sync.Mutex
	hold := make(chan struct{})
	held := make(chan struct{}, 1)
	hook := func(db *DB) {
		mu.Lock()
		h := hold
		mu.Unlock()
		if db == behind && h != nil {
			select {
			case held <- struct{}{}:
			default:
			}
			<-h
		}
	}
	beforeWatch.Store(&hook)
	defer beforeWatch.Store(nil)
	behind.rewatch <- struct{}{}
	<-held

	for i := range 20 {
		require.NoError(t, other.Update(func(tx kv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("n"))
			if err != nil {
				return err
			}
			return b.Put([]byte("c"), []byte(strconv.Itoa(i)))
		}))
	}
	resp, err := other.Client().Get(context.Background(), "/compact/version")
	require.NoError(t, err)
	_, err = other.Client().Compact(context.Background(), resp.Header.Revision)
	require.NoError(t, err)

	require.Eventually(t, func() bool { return errors.Is(behind.Fresh(), kv.ErrStale) }, 3*time.Second, 10*time.Millisecond,
		"a node whose watch is held back goes stale")

	mu.Lock()
	close(hold)
	hold = nil
	mu.Unlock()
	require.Eventually(t, func() bool {
		var v string
		_ = behind.View(func(tx kv.Tx) error {
			if b := tx.Bucket([]byte("n")); b != nil {
				v = string(b.Get([]byte("c")))
			}
			return nil
		})
		return v == "19" && behind.Fresh() == nil
	}, 5*time.Second, 10*time.Millisecond, "the node loads the prefix afresh and is current again")
}
