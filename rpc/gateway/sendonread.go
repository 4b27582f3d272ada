package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// dialSendOnRead dials a plain TCP upstream for fasthttp's pool, as
// fasthttp would without it, and wraps the connection in sendOnRead.
func dialSendOnRead(addr string, timeout time.Duration) (net.Conn, error) {
	dial := fasthttp.Dial
	if timeout > 0 {
		dial = func(addr string) (net.Conn, error) { return fasthttp.DialTimeout(addr, timeout) }
	}
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	sc := &sendOnRead{TCPConn: tc, raw: raw}
	sc.readable = sc.sendThenRead
	return sc, nil
}

const (
	// maxPending bounds the bytes sendOnRead keeps: more go out at once.
	maxPending = 64 << 10
	// reuseCap bounds the buffer a pooled connection holds on to between
	// calls, so that a few large requests do not pin 64 KiB on each of
	// thousands of idle connections.
	reuseCap = 4 << 10
)

// sendOnRead is a connection to the upstream that sends a request when its
// reply is first read: Write keeps the bytes, and the Read after it sends
// them from inside its wait for the reply. The poller is then armed before
// the request goes out, so the first read of the socket finds the reply.
// Written and read apart, a forwarded call makes one more system call: a
// read that finds nothing yet, before the goroutine waits. fasthttp always
// reads the reply after writing a request, so nothing kept is left unsent.
type sendOnRead struct {
	*net.TCPConn
	raw     syscall.RawConn
	pending []byte // written, not yet sent

	// One Read's state, kept here so that a call allocates nothing.
	req        []byte // to send
	sent       int    // of req
	buf        []byte // Read's p
	n          int    // read into buf
	werr, rerr error
	readable   func(fd uintptr) bool // sendThenRead, bound once
}

func (c *sendOnRead) Write(p []byte) (int, error) {
	if len(c.pending)+len(p) <= maxPending {
		c.pending = append(c.pending, p...)
		return len(p), nil
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.TCPConn.Write(p)
}

// flush sends what Write kept, under the connection's write deadline.
func (c *sendOnRead) flush() error {
	req := c.takePending()
	defer c.reuse(req)
	_, err := c.TCPConn.Write(req)
	return err
}

// takePending returns what Write kept, leaving nothing kept.
func (c *sendOnRead) takePending() []byte {
	req := c.pending
	c.pending = nil
	return req
}

// reuse keeps req's buffer, once sent, for the next request, if small.
func (c *sendOnRead) reuse(req []byte) {
	if cap(req) <= reuseCap {
		c.pending = req[:0]
	}
}

func (c *sendOnRead) Read(p []byte) (int, error) {
	if len(c.pending) == 0 || len(p) == 0 {
		return c.TCPConn.Read(p)
	}
	req := c.takePending()
	defer c.reuse(req)
	c.req, c.sent, c.buf, c.n, c.werr, c.rerr = req, 0, p, 0, nil, nil
	err := c.raw.Read(c.readable)
	sent, n, werr, rerr := c.sent, c.n, c.werr, c.rerr
	c.req, c.buf = nil, nil
	switch {
	case err != nil:
		return 0, err // the read deadline passed, or the connection closed
	case werr != nil:
		return 0, c.opError("write", werr)
	case sent < len(req):
		if _, err := c.TCPConn.Write(req[sent:]); err != nil {
			return 0, err
		}
		return c.TCPConn.Read(p)
	case rerr != nil:
		return 0, c.opError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// sendThenRead is raw.Read's callback: it first sends the request and
// asks to wait, then reads. It reports whether the wait is over.
func (c *sendOnRead) sendThenRead(fd uintptr) bool {
	if c.sent < len(c.req) {
		c.sent, c.werr = writeSome(int(fd), c.req, c.sent)
		// Sent: wait for the reply. Not all sent (a full socket buffer)
		// or failed: leave the wait, for the plain path.
		return c.sent < len(c.req) || c.werr != nil
	}
	c.n, c.rerr = readSome(int(fd), c.buf)
	return !errors.Is(c.rerr, syscall.EAGAIN)
}

// writeSome writes b[from:] to fd without waiting, and returns how much of
// b is now sent; EAGAIN, a full socket buffer, is not an error.
func writeSome(fd int, b []byte, from int) (int, error) {
	for from < len(b) {
		w, err := syscall.Write(fd, b[from:])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return from, nil
		case err != nil:
			return from, err
		}
		from += w
	}
	return from, nil
}

// readSome reads into p from fd without waiting.
func readSome(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return max(n, 0), err
	}
}

func (c *sendOnRead) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}
