// Package ws is the WebSocket transport: JSON-RPC 2.0, one message per
// WebSocket message, served by a sourcegraph/jsonrpc2 Conn. It reaches the
// core through its seam only: the upgrade is admitted by
// rpc.Server.AdmitConn (the one access decision), and each call goes
// through rpc.Server.CallOne, a batch through rpc.Server.Call.
package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/jsonrpc2"
)

// wsWriteWait bounds one write to a WebSocket client: a client that stops
// reading its replies is dropped rather than left holding calls.
const wsWriteWait = 10 * time.Second

// DefaultIdle is how long a connection may go without a message or a pong
// before it is closed; the server pings at half that, so a live client,
// which answers pings on its own, is never dropped for being quiet.
const DefaultIdle = 2 * time.Minute

// Handler serves the WebSocket transport for an rpc.Server.
type Handler struct {
	s *rpc.Server
	// Idle is how long a quiet connection stays open (DefaultIdle when 0).
	// Set it before serving.
	Idle time.Duration
}

// New returns the WebSocket transport of s.
func New(s *rpc.Server) *Handler { return &Handler{s: s} }

func (h *Handler) idle() time.Duration {
	if h.Idle > 0 {
		return h.Idle
	}
	return DefaultIdle
}

// ping keeps a quiet connection's peer proving it is there.
func (c *wsConn) ping() {
	t := time.NewTicker(c.idle / 2)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.wmu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait))
			c.wmu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

// ServeHTTP upgrades a GET request to a WebSocket that carries JSON-RPC 2.0,
// one message per WebSocket message, served by a sourcegraph/jsonrpc2 Conn.
//
// The key is read from the upgrade request's Authorization header, as
// rpc.Server.ServeHTTP reads it, and rpc.Server.AdmitConn decides the
// upgrade. A missing, malformed or unknown key refuses the upgrade with 401
// and a JSON-RPC error body. Each call on the connection
// then passes the same chain as a call over HTTP, key check included, so a
// key deleted or switched off while connected fails its next call.
//
// Calls run concurrently, at most rpc.Options.MaxBatch at once per
// connection, and replies come in the order calls finish. A message larger
// than rpc.Options.MaxBodyBytes closes the connection with status 1009
// (message too big). Messages jsonrpc2 cannot carry unchanged are answered
// just as rpc.Server.ServeHTTP would answer them: batches, text that is not JSON or not a
// valid request, and ids that are null, negative, fractional or beyond
// int64. A batch holds at most rpc.Options.MaxBatch calls and runs them in
// order; the connection serves nothing else until it has answered, and
// reads one message ahead only to learn whether the client has gone, which
// cancels the batch's calls.
//
// A request with an Origin header must come from the same host, because
// browsers may attach cached credentials to cross-site upgrades; requests
// without one, as from clients that are not browsers, are let in.
//
// ServeHTTP returns when the connection ends, after canceling the context of
// calls still running and waiting for them.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	peer := s.PeerOf(r)
	release, e := s.AdmitConn(peer)
	if e != nil {
		if rpc.HTTPStatus(e) == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		s.WriteError(w, r, 0, e)
		return
	}
	defer release()
	up := websocket.Upgrader{
		// CheckOrigin is left nil: gorilla's default admits requests with
		// no Origin header or one naming the request's host.
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			e := rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDInvalidRequest, "%v", reason)
			if status == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", http.MethodGet)
				e = rpc.Errorf(rpc.CodeInvalidRequest, rpc.ErrIDHTTPMethod, "use HTTP GET")
			}
			w.Header().Set("Sec-Websocket-Version", "13")
			s.WriteError(w, r, status, e) // the library's status
		},
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	ws.SetReadLimit(s.MaxBodyBytes())
	ctx, cancel := context.WithCancel(r.Context())
	c := &wsConn{s: s, ws: ws, peer: peer, ctx: ctx, idle: h.idle(),
		sem: make(chan struct{}, s.MaxBatch()), readDone: make(chan struct{})}
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(c.idle)) })
	go c.ping()
	conn := jsonrpc2.NewConn(ctx, c, c, jsonrpc2.SetLogger(wsLogger{log: s.Logger(), remote: r.RemoteAddr}))
	<-c.readDone // no call starts after this
	cancel()
	_ = conn.Close()
	c.calls.Wait()
}

// wsConn is one WebSocket connection: the jsonrpc2 Conn's stream and its
// handler.
type wsConn struct {
	s        *rpc.Server
	ws       *websocket.Conn
	peer     rpc.Peer
	idle     time.Duration   // Handler.Idle
	ctx      context.Context // canceled when the connection ends
	wmu      sync.Mutex      // gorilla allows one writer at a time
	sem      chan struct{}   // a slot per running call
	calls    sync.WaitGroup
	readDone chan struct{} // closed when reading has failed for good
	// ahead, when not nil, delivers the message read while the last
	// message served here ran (see serveWatched).
	ahead chan wsMessage
}

type wsMessage struct {
	b   []byte
	err error
}

// next returns the next message: the one read ahead, if any.
func (c *wsConn) next() ([]byte, error) {
	if c.ahead != nil {
		m := <-c.ahead
		c.ahead = nil
		return m.b, m.err
	}
	_, msg, err := c.ws.ReadMessage()
	return msg, err
}

// serveWatched answers a message that ReadObject serves itself (a batch,
// say), whose calls run in turn on the reading goroutine. Meanwhile it
// reads one message ahead, held until the answer is out, so that the calls
// are canceled as soon as the client goes away.
func (c *wsConn) serveWatched(msg []byte) []byte {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	ahead := make(chan wsMessage, 1)
	go func() {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			cancel()
		}
		ahead <- wsMessage{b, err}
	}()
	c.ahead = ahead
	return c.s.Call(ctx, msg, c.peer, nil)
}

// ReadObject implements jsonrpc2.ObjectStream. It passes on the messages
// jsonrpc2 carries faithfully and answers the others itself.
func (c *wsConn) ReadObject(v any) (err error) {
	defer func() {
		if err != nil {
			close(c.readDone) // jsonrpc2 reads no more after an error
		}
	}()
	for {
		if c.ahead == nil {
			_ = c.ws.SetReadDeadline(time.Now().Add(c.idle))
		}
		msg, err := c.next()
		if err != nil {
			return err
		}
		if jsonrpc2Carries(msg) {
			return json.Unmarshal(msg, v)
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(c.idle))
		if reply := c.serveWatched(msg); len(reply) > 0 {
			if err := c.write(reply); err != nil {
				return err
			}
		}
	}
}

// jsonrpc2Carries reports whether msg is one valid request that jsonrpc2
// decodes without loss and at little cost: at most 64 KiB, its id absent,
// a string or an integer in 0..MaxInt64, and free of repeated member names
// at any depth, which jsonrpc2's map decoding would merge (last wins).
func jsonrpc2Carries(msg []byte) bool {
	// Large messages too are answered directly: jsonrpc2 would decode
	// them into maps, at many times their size. The others are checked by
	// the strict library: no name twice anywhere, valid UTF-8.
	if len(msg) > 64<<10 || !jsonwire.Valid(msg) || !jsontext.Value(msg).IsValid() {
		return false
	}
	id, params, e := rpc.ReadRequest(msg)
	if e != nil {
		return false
	}
	if jsonwire.Kind(params) == '{' {
		if _, err := jsonwire.Members(nil, params); err != nil {
			return false
		}
	}
	switch jsonwire.Kind(id) {
	case 0:
		return true
	case '"':
		return reencodesAsIs(id)
	case '0':
		_, err := strconv.ParseInt(string(id), 10, 64)
		return err == nil && id[0] != '-'
	}
	return false
}

// reencodesAsIs reports whether encoding/json writes the JSON string s
// back byte for byte once decoded, as jsonrpc2 does with ids: no escapes,
// nothing it escapes itself (<, >, &, U+2028, U+2029), valid UTF-8.
func reencodesAsIs(s []byte) bool {
	return utf8.Valid(s) && !bytes.ContainsAny(s[1:len(s)-1], "\\<>&\u2028\u2029")
}

// WriteObject implements jsonrpc2.ObjectStream.
func (c *wsConn) WriteObject(obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return c.write(b)
}

func (c *wsConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
	err := c.ws.WriteMessage(websocket.TextMessage, b)
	if err != nil {
		_ = c.ws.Close() // fails the read too, which ends the connection
	}
	return err
}

// Close implements jsonrpc2.ObjectStream, saying goodbye first when the
// client is still there.
func (c *wsConn) Close() error {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

// Handle implements jsonrpc2.Handler. It runs each call in its own
// goroutine, through CallOne: the call path of HTTP. It waits for a free
// slot first, so a client cannot start calls without bound.
func (c *wsConn) Handle(ctx context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	c.calls.Add(1)
	go func() {
		defer func() {
			<-c.sem
			c.calls.Done()
		}()
		resp, err := c.serve(ctx, req)
		if err != nil { // cannot happen: both sides of it are well-formed JSON
			c.s.Logger().Error().Err(err).Str("remote", c.peer.RemoteAddr()).Msg("websocket: serve call")
			resp = &jsonrpc2.Response{ID: req.ID, Error: rpc.Errorf(rpc.CodeInternalError, rpc.ErrIDInternal, "internal error").Wire()}
		}
		if resp != nil {
			_ = conn.SendResponse(ctx, resp) // fails only when the connection is gone
		}
	}()
}

// serve runs req and returns its response, nil for a notification.
func (c *wsConn) serve(ctx context.Context, req *jsonrpc2.Request) (*jsonrpc2.Response, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	reply, _ := c.s.CallOne(ctx, raw, c.peer, nil)
	if len(reply) == 0 {
		return nil, nil
	}
	resp := new(jsonrpc2.Response)
	return resp, json.Unmarshal(reply, resp)
}

// wsLogger logs what jsonrpc2 reports about a connection, such as the
// reason it ended, at debug level.
type wsLogger struct {
	log    *zerolog.Logger
	remote string
}

func (l wsLogger) Printf(format string, v ...any) {
	l.log.Debug().Str("remote", l.remote).Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
