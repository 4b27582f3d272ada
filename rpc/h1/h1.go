package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/internal/httpio"
)

// h1Bufs recycles the buffers of request and reply bodies.
var h1Bufs httpio.Buffers

// h1BufSize is the size of ServeConn's read and write buffers, net/http's own.
// A request head must fit the read buffer to be served here.
const h1BufSize = 4 << 10

// ServeConn serves the HTTP/1.1 connection c itself for as long as its
// requests are the plain kind nearly every call is: POST /rpc, HTTP/1.1, a
// JSON Content-Type, a Content-Length within MaxBodyBytes and no header that
// asks for more (Transfer-Encoding, Connection other than keep-alive,
// Expect, Upgrade, a repeated
// Host, Content-Type, Content-Length or Authorization, or anything
// malformed). Each is answered exactly as rpc.Server.ServeHTTP under net/http would
// answer it, with none of net/http's machinery per request: no request
// object, header map, context or background-read goroutine.
// Only calls that may wait (a login waiting for a hashing slot) ask their
// context for Done, which starts one background read: the context is then
// canceled when the client goes away, as net/http's would be.
//
// The first request of any other kind ends the loop: ServeConn returns a
// connection that replays that request from its first byte, for the caller
// to hand to net/http, which serves it and the rest of the connection as it
// would have from the start. Otherwise ServeConn returns nil once the
// connection is closed, has failed or timed out, or the server is shutting
// down; the caller then closes c. The hooks tell the caller what the
// connection is doing, for a graceful shutdown; see Hooks.
//
// hs is the net/http server the connection is handed to: ServeConn keeps its
// limits (MaxHeaderBytes, ReadHeaderTimeout, ReadTimeout, WriteTimeout,
// IdleTimeout) as hs would, and serves nothing else of it.
func ServeConn(ctx context.Context, s *rpc.Server, c net.Conn, hs *http.Server, hooks Hooks) net.Conn {
	f := h1Conn{s: s, c: c, lim: hs, maxBody: s.MaxBodyBytes(), remote: c.RemoteAddr().String(), hooks: hooks,
		bw: bufio.NewWriterSize(c, h1BufSize)}
	f.cr.c = c
	f.cr.cond.L = &f.cr.mu
	f.br = bufio.NewReaderSize(&f.cr, h1BufSize)
	// The first request's clock starts now, as net/http's does: a client
	// that connects and sends nothing is timed out like a slow one.
	start := time.Now()
	f.setReadDeadline(f.headerDeadline(start))
	for first := true; ; first = false {
		// Asked after the read deadline is set: a shutdown's deadline in
		// the past, set in between, is then either seen here or not
		// overwritten.
		if hooks.Idle() {
			return nil
		}
		if first {
			if _, err := f.br.Peek(1); err != nil {
				hooks.Active()
				return nil
			}
			hooks.Active()
		} else {
			// As net/http: wait for four bytes, then drop up to four CR or
			// LF that a client may send after a POST's body.
			peek, err := f.br.Peek(4)
			hooks.Active()
			if err != nil {
				return nil // closed, failed or idle too long
			}
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			_, _ = f.br.Discard(n)
			// Later requests' clocks start at their first bytes.
			start = time.Now()
			f.setReadDeadline(f.headerDeadline(start))
		}
		req, ok, err := f.readHead()
		if err != nil {
			return nil // closed, failed or timed out: as net/http, end quietly
		}
		if !ok {
			return f.handoff()
		}
		req.start = start
		if !f.serve(ctx, req) {
			return nil
		}
		f.setReadDeadline(f.idleDeadline())
	}
}

// Hooks let ServeConn's caller end connections gracefully: set a flag that
// Idle reports, then set a read deadline in the past on each connection
// that is idle. A connection waiting for its next request then ends at
// once; one in the middle of a request ends after its reply, which says
// Connection: close.
type Hooks struct {
	// Idle is called when the connection starts waiting for a request
	// (and before its first), and reports whether it should end instead.
	Idle func() bool
	// Active is called when the wait is over: a request began, or the
	// connection ended.
	Active func()
	// Closing reports whether the server is shutting down.
	Closing func() bool
}

type h1Conn struct {
	s       *rpc.Server
	c       net.Conn
	lim     *http.Server // its limits only
	maxBody int64
	remote  string
	hooks   Hooks
	cr      h1Reader // between c and br
	br      *bufio.Reader
	bw      *bufio.Writer
}

// h1Request is what a plain request's head says.
type h1Request struct {
	headLen       int
	contentLength int64
	auth          []byte
	xff           []byte // every X-Forwarded-For line, joined by commas
	start         time.Time
}

func (f *h1Conn) idleDeadline() time.Time {
	d := f.lim.IdleTimeout
	if d <= 0 {
		d = f.lim.ReadTimeout
	}
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

func (f *h1Conn) setReadDeadline(t time.Time) { _ = f.c.SetReadDeadline(t) }

// headerDeadline is the deadline for a head whose clock started at start.
func (f *h1Conn) headerDeadline(start time.Time) time.Time {
	if d := f.lim.ReadHeaderTimeout; d > 0 {
		return start.Add(d)
	}
	if d := f.lim.ReadTimeout; d > 0 {
		return start.Add(d)
	}
	return time.Time{}
}

// readHead reads a request's head into the buffer. ok reports a plain
// request, whose head the caller then consumes; when not ok, the buffer
// still holds every byte read.
func (f *h1Conn) readHead() (req h1Request, ok bool, err error) {
	for searched := 0; ; {
		buf, _ := f.br.Peek(f.br.Buffered())
		if n := min(len(buf), len(requestLine)); !bytes.Equal(buf[:n], requestLine[:n]) {
			return req, false, nil // not POST /rpc HTTP/1.1: net/http's at once
		}
		if i := bytes.Index(buf[searched:], crlfcrlf); i >= 0 {
			req.headLen = searched + i + 4
			return req, f.parseHead(buf[:req.headLen], &req), nil
		}
		if bareLF(buf, searched) || len(buf) == f.br.Size() {
			return req, false, nil // lines ending in a bare LF, or a long head
		}
		searched = max(searched, len(buf)-3) // the end may yet complete a CRLFCRLF
		if _, err := f.br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 && errors.Is(err, io.EOF) {
				return req, false, nil // a truncated head: net/http answers it
			}
			return req, false, err
		}
	}
}

// bareLF reports whether b, from index from on, holds a line feed not
// after a carriage return.
func bareLF(b []byte, from int) bool {
	for i := from; i < len(b); i++ {
		if b[i] == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

var (
	crlfcrlf    = []byte("\r\n\r\n")
	requestLine = []byte("POST /rpc HTTP/1.1\r\n")
)

// parseHead reports whether head (ending in an empty line) is a plain
// request, filling in req. It is strict: whatever it does not accept goes
// to net/http, so it can never read a request differently from net/http.
func (f *h1Conn) parseHead(head []byte, req *h1Request) bool {
	if len(head) > f.lim.MaxHeaderBytes && f.lim.MaxHeaderBytes > 0 || !bytes.HasPrefix(head, requestLine) {
		return false
	}
	lines := head[len(requestLine) : len(head)-2]
	var host, ctype, clen, auth, xffs int
	for len(lines) > 0 {
		i := bytes.Index(lines, crlf)
		if i < 0 {
			return false
		}
		line := lines[:i]
		lines = lines[i+2:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		for _, c := range name {
			if !tokenByte[c] {
				return false
			}
		}
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
		switch {
		case asciiEqualFold(name, "Host"):
			host++
			for _, c := range value {
				if !hostByte[c] {
					return false
				}
			}
		case asciiEqualFold(name, "Content-Type"):
			ctype++
			if !httpio.JSONContentType(string(value)) {
				return false
			}
		case asciiEqualFold(name, "Content-Length"):
			clen++
			n, ok := parseContentLength(value)
			if !ok || n > f.maxBody {
				return false
			}
			req.contentLength = n
		case asciiEqualFold(name, "Authorization"):
			auth++
			req.auth = value
		case asciiEqualFold(name, "X-Forwarded-For"):
			if xffs > 0 {
				req.xff = append(req.xff, ',')
			}
			xffs++
			req.xff = append(req.xff, value...)
		case asciiEqualFold(name, "Connection"):
			// keep-alive is HTTP/1.1's default: saying it changes nothing.
			if !asciiEqualFold(value, "keep-alive") {
				return false
			}
		case asciiEqualFold(name, "Transfer-Encoding"),
			asciiEqualFold(name, "Expect"), asciiEqualFold(name, "Upgrade"),
			asciiEqualFold(name, "Te"), asciiEqualFold(name, "Trailer"):
			return false
		}
	}
	return host == 1 && ctype == 1 && clen == 1 && auth <= 1
}

var crlf = []byte("\r\n")

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseContentLength accepts 1 to 18 digits and nothing else.
func parseContentLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// asciiEqualFold reports whether b is s, ignoring ASCII case; s is
// canonical, with letters and hyphens only.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}

// tokenByte marks the bytes of an HTTP token (RFC 9110, 5.6.2), which a
// header name is.
var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// hostByte marks the bytes a plain Host value holds: a name or an address,
// and a port. Anything else goes to net/http's own checks.
var hostByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range ".-:[]_" {
		t[c] = true
	}
	return t
}()

// h1Reader sits between the connection and its bufio.Reader, as net/http's
// connReader does, so that a call can learn that its client has gone: a
// background read of one byte, started only when a call's context is first
// asked for Done, cancels that context when the read fails (the client
// closed or reset the connection), and keeps the byte if one arrives (a
// pipelined request). Calls that never ask cost no goroutine.
type h1Reader struct {
	c       net.Conn
	mu      sync.Mutex
	cond    sync.Cond
	inRead  bool // a background read is running
	aborted bool // abort set a deadline in the past to end it
	hasByte bool
	byteBuf [1]byte
}

func (r *h1Reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	if r.hasByte && len(p) > 0 {
		p[0], r.hasByte = r.byteBuf[0], false
		r.mu.Unlock()
		return 1, nil
	}
	r.mu.Unlock()
	return r.c.Read(p)
}

// startBackgroundRead watches the connection until abort, calling cancel
// if it fails first.
func (r *h1Reader) startBackgroundRead(cancel context.CancelFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inRead || r.hasByte { // the client has sent more: it is there
		return
	}
	r.inRead = true
	_ = r.c.SetReadDeadline(time.Time{}) // as net/http: the call may take its time
	go r.backgroundRead(cancel)
}

func (r *h1Reader) backgroundRead(cancel context.CancelFunc) {
	n, err := r.c.Read(r.byteBuf[:])
	r.mu.Lock()
	if n == 1 {
		r.hasByte = true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && r.aborted {
		// abort's own deadline: the call is over, the client still there
	} else if err != nil {
		cancel()
	}
	r.aborted, r.inRead = false, false
	r.mu.Unlock()
	r.cond.Broadcast()
}

// abort ends a background read, if one runs, and waits for it.
func (r *h1Reader) abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.inRead {
		return
	}
	r.aborted = true
	_ = r.c.SetReadDeadline(aLongTimeAgo)
	for r.inRead {
		r.cond.Wait()
	}
	_ = r.c.SetReadDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)

// h1CallContext is the context of the calls of one fast-path request: the
// connection's context, canceled as well when the client goes away before
// the reply (as net/http's request context is) or once the reply is made.
// It starts watching the connection only when a call first asks for Done,
// which calls that may wait (a login waiting for a hashing slot) do.
type h1CallContext struct {
	context.Context
	r      *h1Reader
	mu     sync.Mutex
	watch  context.Context // nil until Done is first called
	cancel context.CancelFunc
	ended  bool
}

func (c *h1CallContext) Done() <-chan struct{} { return c.watched().Done() }

func (c *h1CallContext) Err() error {
	c.mu.Lock()
	w, ended := c.watch, c.ended
	c.mu.Unlock()
	switch {
	case w != nil:
		return w.Err()
	case ended:
		return context.Canceled
	}
	return c.Context.Err()
}

func (c *h1CallContext) watched() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch == nil {
		c.watch, c.cancel = context.WithCancel(c.Context)
		if c.ended {
			c.cancel()
		} else {
			c.r.startBackgroundRead(c.cancel)
		}
	}
	return c.watch
}

// end is called once the request is answered, before the connection reads
// again: it stops the watch and cancels the context.
func (c *h1CallContext) end() {
	c.mu.Lock()
	c.ended = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		c.r.abort()
		cancel()
	}
}

// handoff returns the connection for net/http, replaying what was read.
func (f *h1Conn) handoff() net.Conn {
	// net/http sets the deadlines it keeps; none of ours may linger.
	_ = f.c.SetDeadline(time.Time{})
	return &replayConn{Conn: f.c, r: f.br}
}

// serve answers the plain request whose head was read, and reports whether
// the connection can go on.
func (f *h1Conn) serve(ctx context.Context, req h1Request) bool {
	s := f.s
	// The head's bytes are read out of the buffer before the body may
	// overwrite them.
	peer := s.NewPeer(string(req.auth), f.remote, req.xff)
	_, _ = f.br.Discard(req.headLen)
	if d := f.lim.ReadTimeout; d > 0 && f.lim.ReadHeaderTimeout > 0 {
		f.setReadDeadline(req.start.Add(d))
	} else if f.lim.ReadTimeout <= 0 {
		f.setReadDeadline(time.Time{})
	}
	if d := f.lim.WriteTimeout; d > 0 {
		_ = f.c.SetWriteDeadline(time.Now().Add(d))
	}
	in := h1Bufs.Get()
	defer h1Bufs.Put(in)
	// Grown as the body arrives, not by the length the client declared.
	n := req.contentLength
	if err := httpio.ReadBody(in, io.LimitReader(f.br, n), n); err != nil || int64(in.Len()) != n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		status, reply := s.RefuseUnreadable(f.remote, err)
		f.writeReply(strconv.Itoa(status)+" "+http.StatusText(status), reply, true)
		return false
	}
	out := h1Bufs.Get()
	defer h1Bufs.Put(out)
	call := &h1CallContext{Context: ctx, r: &f.cr}
	reply := s.Call(call, in.Bytes(), peer, out.AvailableBuffer())
	call.end()
	// In a shutdown the reply says it is the last, as net/http's does.
	last := f.hooks.Closing()
	status := "200 OK"
	if len(reply) == 0 {
		status, reply = "204 No Content", nil
	}
	return f.writeReply(status, reply, last) && !last
}

// writeReply writes a reply with the headers net/http would write for it,
// and reports whether it went out.
func (f *h1Conn) writeReply(status string, body []byte, last bool) bool {
	w := f.bw
	w.WriteString("HTTP/1.1 ")
	w.WriteString(status)
	if body != nil {
		w.WriteString("\r\nContent-Type: application/json")
	}
	w.WriteString("\r\nDate: ")
	w.WriteString(httpio.Date.At(time.Now())[0])
	if body != nil {
		w.WriteString("\r\nContent-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(body)), 10))
	}
	if last {
		w.WriteString("\r\nConnection: close")
	}
	w.WriteString("\r\n\r\n")
	w.Write(body)
	return w.Flush() == nil
}

// replayConn is a connection whose first bytes come from a buffer.
type replayConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection, when it can: net/http uses it to
// let a client read an error reply before the connection closes.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
