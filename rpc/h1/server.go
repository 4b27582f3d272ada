package h1

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/rs/zerolog"
)

// Server accepts the API's connections and serves each with
// ServeConn, which answers plain POST /rpc requests without net/http's
// per-request machinery. A connection that sends any other request is
// handed, with that request, to net/http through handoff, and is
// net/http's from then on.
type Server struct {
	rpc     *rpc.Server
	hs      *http.Server // the server handed the rest; its limits are kept
	base    context.Context
	l       net.Listener
	handoff *handoffListener
	log     zerolog.Logger

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]bool // true while waiting for a request
	wg      sync.WaitGroup
	done    chan struct{} // the accept loop has ended
}

// NewServer returns a Server of r's calls on the connections of l. hs is
// the net/http server the other requests go to (serve it on Handoff); the
// fast path keeps its limits. base is the context of the fast path's
// calls, which ends at shutdown.
func NewServer(r *rpc.Server, hs *http.Server, base context.Context, l net.Listener, log zerolog.Logger) *Server {
	return &Server{rpc: r, hs: hs, base: base, l: l, log: log,
		handoff: newHandoffListener(l.Addr()), conns: map[net.Conn]bool{}, done: make(chan struct{})}
}

// Serve accepts connections until the listener closes. Run net/http's
// server on Handoff beside it.
func (f *Server) Serve() {
	defer close(f.done)
	var delay time.Duration
	for {
		c, err := f.l.Accept()
		if err != nil {
			if f.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// As net/http does: back off, so that running out of file
			// descriptors does not spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.log.Warn().Err(err).Dur("retry_in", delay).Msg("accept failed")
			time.Sleep(delay)
			continue
		}
		delay = 0
		f.mu.Lock()
		if f.closing.Load() {
			f.mu.Unlock()
			_ = c.Close()
			return
		}
		f.conns[c] = false
		f.wg.Add(1)
		f.mu.Unlock()
		go f.serveConn(c)
	}
}

func (f *Server) serveConn(c net.Conn) {
	handed := false
	defer func() {
		if p := recover(); p != nil {
			f.log.Error().Str("remote", c.RemoteAddr().String()).Str("panic", fmt.Sprint(p)).
				Bytes("stack", debug.Stack()).Msg("panic serving a connection")
		}
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		if !handed {
			_ = c.Close()
		}
		f.wg.Done()
	}()
	hooks := Hooks{
		Idle: func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.conns[c] = true
			return f.closing.Load()
		},
		Active: func() {
			f.mu.Lock()
			f.conns[c] = false
			f.mu.Unlock()
		},
		Closing: f.closing.Load,
	}
	if hc := ServeConn(f.base, f.rpc, c, f.hs, hooks); hc != nil {
		// From here net/http reads the requests, watched for ambiguous
		// framing as on a connection it accepted itself.
		handed = f.handoff.give(newFramingConn(hc))
	}
}

// Stop stops accepting connections and ends the idle ones. Those in a
// request end after their reply; shutdown waits for them.
func (f *Server) Stop() {
	f.mu.Lock()
	f.closing.Store(true)
	for c, idle := range f.conns {
		// Under f.mu, after closing is set: a connection that becomes
		// idle later sees closing in its Idle hook.
		if idle {
			_ = c.SetReadDeadline(aLongTimeAgo)
		}
	}
	f.mu.Unlock()
	_ = f.l.Close()
	<-f.done
}

// Shutdown ends the connections, as Stop, and waits for those in a
// request to reply. When ctx ends first, it closes them all and returns
// ctx's error.
func (f *Server) Shutdown(ctx context.Context) error {
	f.Stop()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		for c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		return fmt.Errorf("connections still in a call at shutdown: %w", ctx.Err())
	}
}

// Handoff is the listener for the net/http server given to NewServer: it
// yields the connections the fast path hands over, wrapped to refuse
// ambiguous framing (see FramingListener).
func (f *Server) Handoff() net.Listener { return f.handoff }

// handoffListener is the listener net/http serves: it yields the
// connections the fast path hands over.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c to net/http, and reports false when the listener is closed.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}
