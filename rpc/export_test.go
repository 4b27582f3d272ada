package rpc

import (
	"net/http"
	"time"
)

// WSMaxPerKey is wsMaxPerKey, for tests.
const WSMaxPerKey = wsMaxPerKey

// SetWSIdle sets how long s keeps a quiet WebSocket open. Call it before
// serving.
func (s *Server) SetWSIdle(d time.Duration) { s.wsIdle = d }

// ParseH1Head reports whether ServeH1 would serve the request whose head
// (ending in an empty line) is head, and what it read from it.
func (s *Server) ParseH1Head(head []byte, maxHeaderBytes int) (ok bool, contentLength int64, auth, xff string) {
	f := h1Conn{s: s, lim: &http.Server{MaxHeaderBytes: maxHeaderBytes}, maxBody: s.MaxBodyBytes()}
	var req h1Request
	ok = f.parseHead(head, &req)
	return ok, req.contentLength, string(req.auth), string(req.xff)
}
