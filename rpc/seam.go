package rpc

import (
	"context"
	"net/http"
	"time"
)

// The seam every way in uses. A transport (ServeHTTP, the HTTP/1.1 fast
// path, Memset's URL style, the WebSocket transport) turns bytes on a
// connection into a request body and a Peer, and hands both to Call or
// CallOne; the reply comes back as bytes for the transport to frame. The
// transport never sees the method table, a key or the store; the core
// never sees a socket.

// Peer is who sent a request: the credential it presented and the address
// it came from, which every call in the request shares. Build one with
// NewPeer or PeerOf, once per request (or per connection, for a transport
// that authenticates once, as the WebSocket's upgrade does).
type Peer struct{ ex exchange }

// NewPeer returns the peer of a request that came from remoteAddr
// (host:port) with the given Authorization header value ("" for none)
// and X-Forwarded-For lines, joined by commas. X-Forwarded-For is kept
// only when Options.TrustedProxies names some proxy, and believed only
// from those.
func (s *Server) NewPeer(authorization, remoteAddr string, forwardedFor []byte) Peer {
	ex := exchange{cred: parseAuthorization(authorization), remote: remoteAddr}
	if len(s.opts.TrustedProxies) > 0 {
		ex.xff = string(forwardedFor)
	}
	return Peer{ex}
}

// PeerOf is NewPeer for an HTTP request: its Authorization header, its
// RemoteAddr, every line of its X-Forwarded-For (a proxy may add its own
// line after the client's).
func (s *Server) PeerOf(r *http.Request) Peer { return Peer{s.newExchange(r)} }

// RemoteAddr is the address of the connection the peer's request came on.
func (p Peer) RemoteAddr() string { return p.ex.remote }

// MaxBodyBytes is the largest request body the server reads
// (Options.MaxBodyBytes): a transport refuses a larger one unread.
func (s *Server) MaxBodyBytes() int64 { return s.opts.MaxBodyBytes }

// Forwards reports whether some method is forwarded to an upstream
// (gateway mode): such a call may wait on the upstream, so a transport
// should cancel it when its client goes away.
func (s *Server) Forwards() bool { return s.forwarding }

// RefuseUnreadable refuses a request whose body could not be read: it
// logs the refusal as every refused request is logged (err, which says
// why, at debug level; it never reaches the client) and returns the HTTP
// status and the JSON-RPC reply to send.
func (s *Server) RefuseUnreadable(remote string, err error) (status int, reply []byte) {
	s.log.Debug().Err(err).Str("remote", remote).Msg("read request body")
	e := invalidRequest(ErrIDInvalidRequest, "the request body could not be read")
	status = HTTPStatus(e)
	s.logRefused(remote, status, e)
	return status, appendResponse(nil, nil, nil, e)
}

// Call answers one request body from p: a JSON-RPC 2.0 request object or
// a batch of them. It appends the reply to dst and returns it; an empty
// reply means there is nothing to send (the body held notifications
// only), which HTTP answers with 204 No Content. body must not change
// until Call returns; the reply does not point into it.
//
// Every call in body takes the one path: the chain (log, audit, recover,
// authenticate, the access decision) and then its handler. ctx bounds the
// calls; a transport cancels it when its client goes away.
//
// In gateway mode the calls of one body together end within
// Options.RequestTimeout, so that a batch of slow forwarded calls still
// gets its reply before the transport's write timeout: calls still waiting
// then time out.
func (s *Server) Call(ctx context.Context, body []byte, p Peer, dst []byte) []byte {
	if s.opts.RequestTimeout > 0 && s.forwarding {
		at := time.Now().Add(s.opts.RequestTimeout)
		if d, ok := ctx.Deadline(); !ok || at.Before(d) {
			ctx = deadlineContext{ctx, at}
		}
	}
	return s.serveBody(ctx, p.ex, body, dst)
}

// deadlineContext is ctx with a deadline for the calls that read it (a
// forwarded call gives it to the upstream client as its own). Unlike
// context.WithDeadline's, it does not ask its parent for Done: on the fast
// path that would start watching the connection on every request.
type deadlineContext struct {
	context.Context
	at time.Time
}

func (c deadlineContext) Deadline() (time.Time, bool) { return c.at, true }

// CallOne answers one request object req from p, as Call does, and
// returns as well the error the call failed with: nil when it succeeded
// or was a notification (whose reply is empty). It is for transports that
// shape the reply their own way (the URL style), or that read the
// envelope themselves (the WebSocket's jsonrpc2 Conn).
func (s *Server) CallOne(ctx context.Context, req []byte, p Peer, dst []byte) ([]byte, *Error) {
	return s.serveCall(ctx, p.ex, req, dst)
}
