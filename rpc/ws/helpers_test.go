package ws_test

import (
	"net/http/httptest"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/internal/rpctest"
)

// The harness is rpc/internal/rpctest's, shared with rpc/urlstyle and rpc.

const adminKey = rpctest.AdminKey

type (
	testServer   = rpctest.Server
	wireResponse = rpctest.WireResponse
	serverInfo   = rpctest.ServerInfo
	rebootParams = rpctest.RebootParams
)

func newTestServer(t testing.TB, opts ...func(*rpc.Options)) *testServer {
	return rpctest.New(t, opts...)
}

// serveWS serves ts.WS at /ws on 127.0.0.1 and returns the server and the
// ws:// address. Register extra methods before calling it.
func serveWS(t *testing.T, ts *testServer) (*httptest.Server, string) {
	return rpctest.ServeWS(t, ts.WS)
}

var dialWS = rpctest.DialWS
