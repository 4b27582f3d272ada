package rpc_test

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// h1Server serves ts's RPC server with the fast path (package rpc/h1) on
// 127.0.0.1, handing what it does not serve to net/http, as apikeyd does.
type h1Server struct {
	addr     string
	handoffs atomic.Int64
}

// newH1Server serves ts on the fast path; hs holds the limits it keeps,
// with net/http, to which it hands the rest.
func newH1Server(t *testing.T, ts *testServer, hs *http.Server) *h1Server {
	t.Helper()
	mux := http.NewServeMux() // as newTestServer's
	mux.Handle("/rpc", ts.RPC)
	h := &h1Server{}
	h.addr = serveFast(t, ts.RPC, mux, &h.handoffs, hs)
	return h
}

type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }
