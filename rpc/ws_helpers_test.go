package rpc_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// The WebSocket transport (rpc/ws), for the tests here that call over it
// beside HTTP.

// serveWS serves ts.WS at /ws on 127.0.0.1 and returns the server
// and the ws:// address. Register extra methods before calling it.
func serveWS(t *testing.T, ts *testServer) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/ws", ts.WS)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// dialWS opens a WebSocket to url with the given Authorization header (none
// when auth is "").
func dialWS(t *testing.T, url, auth string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(url, h)
	if ws != nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}
