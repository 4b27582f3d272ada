package h1

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// A framingConn watches the requests net/http reads from a connection and
// refuses, with 400 and the end of the connection, every request whose
// body could be framed two ways (RFC 9112, sections 6.1 and 6.3):
//
//   - Content-Length together with Transfer-Encoding;
//   - Transfer-Encoding other than exactly one "chunked", or on a request
//     that is not HTTP/1.1;
//   - a header folded over several lines (obs-fold), such as a
//     Transfer-Encoding whose value is on the next line.
//
// net/http serves such a request by its Transfer-Encoding and keeps the
// connection: a proxy that framed the body by Content-Length would then
// see the bytes after the chunked body as part of it, while net/http serves
// them as another request, with credentials of their own. net/http hides
// the Content-Length of such a request from handlers, so the judgement is
// made here, on the bytes: when a head turns out to be one of these, its
// last byte is withheld and the next read fails with errFraming, which
// net/http answers with "400 Bad Request" before it closes the connection.
// Such a request never reaches a handler. A chunked body that turns out
// malformed fails the handler's read of it instead, which it answers with
// 400, and the connection is closed likewise.
//
// To find each head it follows the framing of every body: Content-Length,
// or chunked transfer coding read strictly (hexadecimal sizes and CRLFs
// only: no chunk extensions, no trailers). Whatever it cannot follow, it
// refuses, so that it can never lose its place and miss a later head. A
// connection taken over by a WebSocket (hijacked) is no longer HTTP; its
// watch ends then (see StopFramingOnHijack).
type framingConn struct {
	net.Conn
	f       framing
	err     error       // once set, every read fails with it
	refused atomic.Bool // err is set: Close may be called from elsewhere
	off     atomic.Bool // hijacked: bytes pass unwatched
}

// errFraming fails the read of a request that could be framed two ways. It
// is neither io.EOF nor a network error, so net/http replies 400.
var errFraming = errors.New("request smuggling: ambiguous message framing (Content-Length with Transfer-Encoding, or a folded header)")

func newFramingConn(c net.Conn) *framingConn { return &framingConn{Conn: c} }

func (c *framingConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if c.off.Load() {
		return n, err
	}
	if cut, bad := c.f.scan(p[:n]); bad {
		c.err = errFraming
		c.refused.Store(true)
		if cut == 0 {
			return 0, c.err
		}
		return cut, nil
	}
	return n, err
}

// Close closes the connection. After a refusal it first half-closes it
// and reads a little of what the client may still be sending, as net/http
// does for a request too large: closed with unread bytes, the connection
// would be reset, and the client might lose the 400 before reading it.
func (c *framingConn) Close() error {
	if c.refused.Load() {
		_ = c.CloseWrite()
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerAfterRefusal))
		_, _ = io.CopyN(io.Discard, c.Conn, 256<<10)
	}
	return c.Conn.Close()
}

// lingerAfterRefusal bounds how long Close reads after a refusal.
const lingerAfterRefusal = 250 * time.Millisecond

// CloseWrite half-closes the connection when it can: net/http uses it to
// let a client read an error reply before the connection closes.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// StopFramingOnHijack is an http.Server ConnState hook: a hijacked
// connection (a WebSocket) carries no more HTTP requests to watch.
func StopFramingOnHijack(c net.Conn, state http.ConnState) {
	if fc, ok := c.(*framingConn); ok && state == http.StateHijacked {
		fc.off.Store(true)
	}
}

// FramingListener hands out connections watched by framingConn: serve
// net/http on it (with ConnState StopFramingOnHijack) when the fast path
// is off. The fast path wraps the connections it hands over itself.
type FramingListener struct{ net.Listener }

func (l FramingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFramingConn(c), nil
}

// framing is the state of the watch over one connection's bytes.
type framing struct {
	state int
	line  []byte // the current line of a head, its first maxFramingLine bytes
	long  bool   // the current line is longer than that
	// The head being read.
	http11   bool // the request line ends in HTTP/1.1
	cls, tes int  // Content-Length and Transfer-Encoding lines
	cl       []byte
	chunked  bool
	folded   bool
	bad      bool
	// The body being skipped.
	remain uint64 // bytes left of a Content-Length body or of a chunk
	digits int    // hexadecimal digits of a chunk size read so far
}

const (
	fsStart  = iota // before a request line: CR and LF are skipped, as net/http does
	fsLine          // in the request line
	fsHeader        // in a header line
	fsBody          // in a Content-Length body
	fsSize          // in a chunk size
	fsSizeLF        // after a chunk size's CR
	fsData          // in a chunk's data
	fsDataCR        // after a chunk's data
	fsDataLF        // after the CR after a chunk's data
	fsLastCR        // after the last chunk's size line
	fsLastLF        // after the CR that ends a chunked body
)

// maxFramingLine bounds the bytes kept of a head's line: a Content-Length
// or Transfer-Encoding line longer than this is refused; any other line is
// read past.
const maxFramingLine = 8 << 10

// scan follows b, the next bytes of the connection. When a head turns out
// to be ambiguous, or a chunked body malformed, it returns bad and the
// length of b to pass on: the bytes before the head's last one.
func (f *framing) scan(b []byte) (cut int, bad bool) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch f.state {
		case fsStart:
			if c == '\r' || c == '\n' {
				continue
			}
			f.state = fsLine
			f.line = f.line[:0]
			f.long = false
			fallthrough
		case fsLine, fsHeader:
			if c != '\n' {
				if len(f.line) < maxFramingLine {
					f.line = append(f.line, c)
				} else {
					f.long = true
				}
				continue
			}
			line := bytes.TrimSuffix(f.line, []byte{'\r'})
			if f.state == fsLine {
				f.startHead(line)
			} else if len(line) > 0 || f.long {
				f.header(line)
			} else if !f.endHead() {
				return i, true
			}
			f.line = f.line[:0]
			f.long = false
		case fsBody:
			n := uint64(len(b) - i)
			if n > f.remain {
				n = f.remain
			}
			f.remain -= n
			i += int(n) - 1
			if f.remain == 0 {
				f.state = fsStart
			}
		case fsSize:
			switch {
			case c == '\r' && f.digits > 0:
				f.state = fsSizeLF
			case f.digits < 15 && hexDigit(c) >= 0:
				f.remain = f.remain<<4 | uint64(hexDigit(c))
				f.digits++
			default:
				return i, true // an extension, a space, a bare LF, or too long
			}
		case fsSizeLF:
			if c != '\n' {
				return i, true
			}
			if f.remain == 0 {
				f.state = fsLastCR
			} else {
				f.state = fsData
			}
		case fsData:
			n := uint64(len(b) - i)
			if n > f.remain {
				n = f.remain
			}
			f.remain -= n
			i += int(n) - 1
			if f.remain == 0 {
				f.state = fsDataCR
			}
		case fsDataCR, fsLastCR:
			if c != '\r' {
				return i, true // no trailers: a chunked body ends in "0\r\n\r\n"
			}
			f.state++
		case fsDataLF:
			if c != '\n' {
				return i, true
			}
			f.state, f.remain, f.digits = fsSize, 0, 0
		case fsLastLF:
			if c != '\n' {
				return i, true
			}
			f.state = fsStart
		}
	}
	return len(b), false
}

// startHead reads a request line.
func (f *framing) startHead(line []byte) {
	f.http11 = !f.long && bytes.HasSuffix(line, []byte(" HTTP/1.1"))
	f.cls, f.tes, f.cl, f.chunked, f.folded, f.bad = 0, 0, f.cl[:0], false, false, false
	f.state = fsHeader
}

// header reads one header line.
func (f *framing) header(line []byte) {
	if line[0] == ' ' || line[0] == '\t' {
		f.folded = true // obs-fold: refused, whatever it continues
		return
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return // net/http refuses the head itself
	}
	name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
	switch {
	case asciiFold(name, "content-length"):
		f.cls++
		if f.long || !allDigits(value) || f.cls > 1 && !bytes.Equal(value, f.cl) {
			f.bad = true
		}
		f.cl = append(f.cl[:0], value...)
	case asciiFold(name, "transfer-encoding"):
		f.tes++
		f.chunked = !f.long && asciiFold(value, "chunked")
	}
}

// endHead judges the head that just ended and sets up its body. It
// reports false for a head to refuse.
func (f *framing) endHead() bool {
	if cap(f.line) > 1<<10 {
		f.line = nil // a long line's buffer is not kept between requests
	}
	if f.bad || f.folded || f.tes > 0 && (f.cls > 0 || f.tes > 1 || !f.chunked || !f.http11) {
		return false
	}
	switch {
	case f.tes > 0:
		f.state, f.remain, f.digits = fsSize, 0, 0
	case f.cls > 0:
		f.remain = 0
		for _, d := range f.cl {
			if f.remain > (1<<63-1)/10 {
				return false // net/http refuses it too
			}
			f.remain = f.remain*10 + uint64(d-'0')
		}
		f.state = fsBody
		if f.remain == 0 {
			f.state = fsStart
		}
	default:
		f.state = fsStart
	}
	return true
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func allDigits(b []byte) bool {
	if len(b) == 0 || len(b) > 18 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// asciiFold reports whether b is s, ignoring ASCII case; s is lower case.
func asciiFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
