package rpc_test

import (
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/internal/rpctest"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv/kvtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStale: a node that cannot vouch for its data refuses every call
// with stale, for a key it has cached and one it has not, and serves
// again once it has caught up.
func TestStale(t *testing.T) {
	node := kvtest.NewCluster(t).Node()
	st, err := store.OpenDB(node, store.Options{Now: func() time.Time { return rpctest.Clock }, UsageFlush: time.Hour})
	require.NoError(t, err)
	ts := rpctest.NewOn(t, st)
	ts.OK(ts.Admin, "server.list", nil, nil) // the operator key is cached now
	uncached := ts.CreateKey(ts.Admin, nil, "never used").Key

	node.SetStale(true)
	for name, key := range map[string]string{"cached": ts.Admin, "uncached": uncached} {
		r := ts.Call(key, "server.list", nil)
		require.NotNil(t, r.Error, name)
		assert.Equal(t, int64(rpc.CodeUnavailable), r.Error.Code, name)
		assert.Equal(t, rpc.ErrIDStale, r.Error.Data.ErrorID, name)
		assert.Contains(t, r.Error.Message, "another node", name)
	}

	node.SetStale(false)
	ts.OK(ts.Admin, "server.list", nil, nil)
	ts.OK(uncached, "server.list", nil, nil)
}
