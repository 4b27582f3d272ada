package urlstyle_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/rpc/internal/rpctest"
)

// The harness is rpc/internal/rpctest's, shared with rpc/ws and rpc.

const adminKey = rpctest.AdminKey

type (
	testServer   = rpctest.Server
	wireResponse = rpctest.WireResponse
)

func newTestServer(t testing.TB) *testServer { return rpctest.New(t) }

// urlServer serves ts's methods in Memset's URL style on 127.0.0.1.
func urlServer(t *testing.T, ts *testServer) string { return rpctest.URLServer(t, ts.RPC) }

var (
	urlCall  = rpctest.URLCall
	urlError = rpctest.URLError
)
