package rpc

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/rpc/internal/httpio"
	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxBatch     = 100
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives one line per call; the zero value logs nothing.
	Logger zerolog.Logger
	// MaxBodyBytes caps a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxBatch caps the calls in one batch; 0 means DefaultMaxBatch.
	MaxBatch int
	// TrustedProxies are the proxies whose X-Forwarded-For apikeyd
	// believes. A call from one of them is taken to come from the rightmost
	// address in X-Forwarded-For that is not itself a trusted proxy; from
	// anywhere else, from the connection's address, whatever headers say.
	TrustedProxies []netip.Prefix
	// Version is the server's version, as rpc.discover reports it.
	Version string
	// RequestTimeout, when set, bounds all the calls of one HTTP request
	// in gateway mode, where a batch of forwarded calls could otherwise
	// outlast the HTTP server's write timeout; set it below that.
	RequestTimeout time.Duration
	// NoMetrics turns the Prometheus metrics off: MetricsHandler is then
	// nil and calls are not counted.
	NoMetrics bool
	// Collectors are served by MetricsHandler beside the server's own:
	// metrics of what the wiring added (the etcd engine's, say). Their
	// names must not clash with the server's.
	Collectors []prometheus.Collector
}

// Server serves JSON-RPC 2.0 over HTTP POST from one method table. Register
// every method before serving; after that the table is read-only.
type Server struct {
	store   *store.Store
	log     zerolog.Logger
	opts    Options
	methods map[string]*Method
	chain   handlerFunc
	bufs    httpio.Buffers

	wsMu    sync.Mutex
	wsConns map[string]int // open WebSocket connections by key id

	forwarding bool // some methods are forwarded upstream

	metrics *metrics // nil when Options.NoMetrics (metrics.go)
}

// New returns a Server over st with the built-in methods registered.
func New(st *store.Store, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	s := &Server{store: st, log: opts.Logger, opts: opts, methods: map[string]*Method{}}
	if !opts.NoMetrics {
		s.metrics = newMetrics(st, opts.Version)
		s.metrics.reg.MustRegister(opts.Collectors...)
	}
	s.chain = s.middleware()
	registerAPIKey(s)
	registerAccount(s)
	registerUser(s)
	registerServiceAccount(s)
	registerAudit(s)
	registerDiscovery(s)
	return s
}

// Register adds m to the method table. It panics if the name is taken or
// malformed, or m has no handler: these are programming errors, found at
// start-up.
func (s *Server) Register(m Method) {
	if !validMethodName(m.Name) {
		panic(fmt.Sprintf("rpc: malformed method name %q (want dotted lowercase segments, like server.reboot)", m.Name))
	}
	if _, dup := s.methods[m.Name]; dup {
		panic(fmt.Sprintf("rpc: method %s registered twice", m.Name))
	}
	if m.Handler == nil {
		panic(fmt.Sprintf("rpc: method %s has no handler", m.Name))
	}
	if !slices.Contains(scope.AccessClasses, m.Access) {
		panic(fmt.Sprintf("rpc: method %s: access class %q is not one of %v", m.Name, m.Access, scope.AccessClasses))
	}
	seen := map[string]bool{}
	m.paramKeys = nil
	for _, p := range m.Params {
		if p.Name == "" || seen[p.Name] {
			panic(fmt.Sprintf("rpc: method %s: empty or repeated parameter %q", m.Name, p.Name))
		}
		seen[p.Name] = true
		m.paramKeys = append(m.paramKeys, []byte(p.Name))
	}
	m.metrics = nil
	if s.metrics != nil {
		m.metrics = s.metrics.forMethod(m.Name)
	}
	s.methods[m.Name] = &m
	if m.Forwarded {
		s.forwarding = true
	}
}

// Methods returns a copy of the method table, sorted by name.
func (s *Server) Methods() []Method {
	out := make([]Method, 0, len(s.methods))
	for _, m := range s.methods {
		c := *m
		c.Params = slices.Clone(m.Params)
		c.appendHandler = nil // a copy given a new Handler must run it
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Method) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func validMethodName(name string) bool {
	segs := strings.Split(name, ".")
	if len(segs) < 2 {
		return false
	}
	for _, seg := range segs {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ServeHTTP answers POST requests carrying a single call or a batch.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeError(w, r, invalidRequest(ErrIDHTTPMethod, "use HTTP POST"))
		return
	}
	if !httpio.JSONContentType(headerValue(r.Header, "Content-Type")) {
		s.writeError(w, r, invalidRequest(ErrIDMediaType, "send Content-Type: application/json"))
		return
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		s.writeError(w, r, s.tooLarge())
		return
	}
	in := s.bufs.Get()
	defer s.bufs.Put(in)
	if err := httpio.ReadBody(in, r.Body, s.opts.MaxBodyBytes); err == httpio.ErrTooLarge {
		s.writeError(w, r, s.tooLarge())
		return
	} else if err != nil {
		status, reply := s.RefuseUnreadable(r.RemoteAddr, err)
		w.Header()["Content-Type"] = contentTypeJSON
		w.WriteHeader(status)
		_, _ = w.Write(reply)
		return
	}
	out := s.bufs.Get()
	defer s.bufs.Put(out)
	peer := s.PeerOf(r)
	reply := s.Call(r.Context(), in.Bytes(), peer, out.AvailableBuffer())
	if len(reply) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Date"] = httpio.Date.At(time.Now())
	if len(reply) > 2048 {
		// Smaller replies fit net/http's buffer, which then sets it.
		h["Content-Length"] = []string{strconv.Itoa(len(reply))}
	}
	_, _ = w.Write(reply)
}

// headerValue is h.Get(key) for a key already in canonical form, as
// net/http stores received headers: it skips Get's canonicalisation.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

var contentTypeJSON = []string{"application/json"}

func (s *Server) tooLarge() *Error {
	return invalidRequest(ErrIDBodyTooLarge, "the request body is larger than %d bytes", s.opts.MaxBodyBytes)
}

// writeError refuses request r with e, under e's HTTPStatus.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	s.writeErrorStatus(w, r, HTTPStatus(e), e)
}

// writeErrorStatus is writeError under a status some other code chose (a
// WebSocket upgrade the library refused).
func (s *Server) writeErrorStatus(w http.ResponseWriter, r *http.Request, status int, e *Error) {
	s.logRefused(r.RemoteAddr, status, e)
	body := appendResponse(nil, nil, nil, e)
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// logRefused logs a request refused before any call ran.
func (s *Server) logRefused(remote string, status int, e *Error) {
	s.log.Warn().Str("remote", remote).Int("status", status).Str("outcome", e.ID).Msg("request refused")
}

// exchange is what one HTTP request's calls share.
type exchange struct {
	cred   credential
	remote string
	xff    string // X-Forwarded-For, believed only from trusted proxies
}

// newExchange reads what the calls of request r share: the credential,
// the peer's address, and, when a proxy could be trusted, every line of
// X-Forwarded-For (a proxy may add its own line after the client's).
func (s *Server) newExchange(r *http.Request) exchange {
	ex := exchange{cred: parseAuthorization(headerValue(r.Header, "Authorization")), remote: r.RemoteAddr}
	if len(s.opts.TrustedProxies) > 0 {
		ex.xff = strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	}
	return ex
}

// clientIP is the address a call came from, by Options.TrustedProxies. It
// is worked out only when an ip scope or the audit trail needs it.
func (s *Server) clientIP(ex *exchange) netip.Addr {
	ap, err := netip.ParseAddrPort(ex.remote)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	trusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(s.opts.TrustedProxies, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	if !trusted(ip) || ex.xff == "" {
		return ip
	}
	hops := strings.Split(ex.xff, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip // a malformed hop: believe no further
		}
		ip = a.Unmap()
		if !trusted(ip) {
			return ip
		}
	}
	return ip
}

// serveBody answers one request body, appending the reply to dst. An empty
// reply means there is nothing to send (notifications only).
func (s *Server) serveBody(ctx context.Context, ex exchange, body, dst []byte) []byte {
	i := jsonwire.SkipSpace(body, 0)
	valid, members, ok := jsonwire.ValidObject(body)
	if !valid {
		return s.refuse(dst, ex, &Error{Code: CodeParseError, ID: ErrIDParse, Message: msgParseError,
			Detail: "the request body is not valid JSON"})
	}
	if i < len(body) && body[i] != '[' {
		read := &members
		if !ok {
			read = nil
		}
		dst, _ = s.serveCallFrom(ctx, ex, body, read, dst)
		return dst
	}
	elems, err := jsonwire.Elements(nil, body)
	switch {
	case err != nil || len(elems) == 0:
		return s.refuse(dst, ex, invalidRequest(ErrIDInvalidRequest, "a batch must hold at least one request"))
	case len(elems) > s.opts.MaxBatch:
		return s.refuse(dst, ex, invalidRequest(ErrIDBatchTooLarge, "a batch may hold at most %d requests, got %d", s.opts.MaxBatch, len(elems)))
	}
	start := len(dst)
	dst = append(dst, '[')
	for _, e := range elems {
		n := len(dst)
		dst = s.serveOne(ctx, ex, e, dst)
		if len(dst) > n {
			dst = append(dst, ',')
		}
	}
	if len(dst) == start+1 { // notifications only
		return dst[:start]
	}
	dst[len(dst)-1] = ']'
	return dst
}

// refuse answers a body that holds no call to run, and logs it.
func (s *Server) refuse(dst []byte, ex exchange, e *Error) []byte {
	s.log.Warn().Str("remote", ex.remote).Str("outcome", e.ID).Int64("code", e.Code).Msg("request refused")
	return appendResponse(dst, nil, nil, e)
}

// serveOne runs one request object and appends its response, if any.
func (s *Server) serveOne(ctx context.Context, ex exchange, raw, dst []byte) []byte {
	dst, _ = s.serveCall(ctx, ex, raw, dst)
	return dst
}

// serveCall is serveOne, also returning the error the call failed with.
func (s *Server) serveCall(ctx context.Context, ex exchange, raw, dst []byte) ([]byte, *Error) {
	return s.serveCallFrom(ctx, ex, raw, nil, dst)
}

// serveCallFrom is serveCall given, when members is not nil, the members
// of raw as validObject collected them.
func (s *Server) serveCallFrom(ctx context.Context, ex exchange, raw []byte, members *jsonwire.Spans, dst []byte) ([]byte, *Error) {
	c := calls.Get().(*call)
	defer func() {
		*c = call{} // keeps nothing of this call, the presented key least of all
		calls.Put(c)
	}()
	c.exchange = ex
	c.req = parseRequestFrom(raw, c.scratch[:], members)
	if c.req.err == nil {
		c.method = s.methods[string(c.req.method)] // no copy: Go does not allocate for a map index
	}
	start := len(dst)
	c.out = append(dst, resultPrefix...)
	result, err := s.chain(ctx, c)
	dst = dst[:start]
	switch {
	case c.req.notification():
		return dst, nil
	case err != nil:
		e := toError(err)
		return appendResponse(dst, c.req.id, nil, e), e
	case c.resultInOut:
		return appendResponseEnd(c.out, c.req.id), nil
	}
	return appendResponse(dst, c.req.id, result, nil), nil
}

// calls recycles the state of calls. Nothing a handler is given points into
// it but its Params, valid only until it returns; its context is its own.
var calls = sync.Pool{New: func() any { return new(call) }}
