package rpc_test

import (
	"net/http/httptest"
	"testing"

	"github.com/apikeyd/apikeyd/rpc/internal/rpctest"
)

// The WebSocket transport (rpc/ws), for the tests here that call over it
// beside HTTP.

// serveWS serves ts.WS at /ws on 127.0.0.1 and returns the server
// and the ws:// address. Register extra methods before calling it.
func serveWS(t *testing.T, ts *testServer) (*httptest.Server, string) {
	return rpctest.ServeWS(t, ts.WS)
}

var dialWS = rpctest.DialWS
