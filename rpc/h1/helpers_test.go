package h1

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// adminKey is the operator key every test server starts with.
const adminKey = "00112233445566778899aabbccddeeff"

// testServer is a real apikeyd RPC server over a bbolt file in a temp dir,
// served by net/http on 127.0.0.1 at URL (.../rpc), with the method
// server.list, whose reply is the same every time.
type testServer struct {
	RPC *rpc.Server
	URL string
}

func newTestServer(tb testing.TB, opts ...func(*rpc.Options)) *testServer {
	tb.Helper()
	srv := newRPCServer(tb, zerolog.Nop(), opts...)
	rpc.Handle(srv, "server.list", scope.Read, "List servers.", func(context.Context, struct{}) ([]string, error) {
		return []string{"web1", "web2"}, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/rpc", srv)
	hs := httptest.NewServer(mux)
	tb.Cleanup(hs.Close)
	return &testServer{RPC: srv, URL: hs.URL + "/rpc"}
}

// newRPCServer opens a store on a fixed clock in a temp dir, with the
// operator key adminKey, and returns a server over it.
func newRPCServer(tb testing.TB, log zerolog.Logger, opts ...func(*rpc.Options)) *rpc.Server {
	tb.Helper()
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := storetest.Open(tb, filepath.Join(tb.TempDir(), "apikeyd.db"), store.Options{
		NoSync: true, Now: func() time.Time { return fixed }, UsageFlush: time.Hour})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	_, created, err := st.Bootstrap(adminKey)
	require.NoError(tb, err)
	require.True(tb, created)
	o := rpc.Options{Logger: log}
	for _, opt := range opts {
		opt(&o)
	}
	return rpc.New(st, o)
}

// serveFast serves srv with ServeConn on 127.0.0.1, handing the
// connections it does not serve to net/http with handler, and counting
// them in handoffs. It returns the address. hs, the net/http server it
// hands them to, holds the limits both keep.
func serveFast(tb testing.TB, srv *rpc.Server, handler http.Handler, handoffs *atomic.Int64, hs *http.Server) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	hl := &chanListener{addr: l.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	hs.Handler = handler
	go func() { _ = hs.Serve(hl) }()
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{} // open, and ServeConn's
	hooks := Hooks{Idle: func() bool { return false }, Active: func() {}, Closing: func() bool { return false }}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if conns == nil { // closed
				mu.Unlock()
				_ = c.Close()
				return
			}
			conns[c] = true
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				hc := ServeConn(context.Background(), srv, c, hs, hooks)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				if hc != nil {
					handoffs.Add(1)
					select {
					case hl.ch <- hc:
						return
					case <-hl.done:
					}
				}
				_ = c.Close()
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = l.Close()
		_ = hs.Close()
		_ = hl.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
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

// parseH1Head reports whether ServeConn would serve the request whose
// head (ending in an empty line) is head, and what it read from it.
func parseH1Head(srv *rpc.Server, head []byte, maxHeaderBytes int) (ok bool, contentLength int64, auth, xff string) {
	f := h1Conn{s: srv, lim: &http.Server{MaxHeaderBytes: maxHeaderBytes}, maxBody: srv.MaxBodyBytes()}
	var req h1Request
	ok = f.parseHead(head, &req)
	return ok, req.contentLength, string(req.auth), string(req.xff)
}
