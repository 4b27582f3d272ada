package rpc_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/rpc/internal/rpctest"
)

// Calls in Memset's URL style (rpc/urlstyle), for the tests here that
// make some beside JSON-RPC calls.

// urlServer serves ts's methods in Memset's URL style on 127.0.0.1.
func urlServer(t *testing.T, ts *testServer) string { return rpctest.URLServer(t, ts.RPC) }

var (
	urlCall  = rpctest.URLCall
	urlError = rpctest.URLError
)
