package rpc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// call is one call on its way through the middleware chain. It holds by
// value what would otherwise be separate allocations.
type call struct {
	exchange
	req       request
	method    *Method    // nil when the name is not in the table
	key       *store.Key // set by authenticate; shared, read-only
	params    *Params    // set by checkScope, to &paramsVal
	paramsVal Params
	scratch   [4]jsonwire.Member // backs params for calls with few of them
	// out is the reply so far, ending in resultPrefix: a result that can
	// encode itself is appended here (resultInOut) rather than copied.
	out         []byte
	resultInOut bool
}

// handlerFunc runs a call and returns its encoded result.
type handlerFunc func(ctx context.Context, c *call) (json.RawMessage, error)

// middleware composes the chain every call passes, in order: log, audit,
// recover, reject invalid requests, authenticate, check scope, dispatch.
// Logging and audit wrap recovery so that a call that panics is still
// logged and, if it mutates, audited.
func (s *Server) middleware() handlerFunc {
	h := s.dispatch
	for _, mw := range []func(handlerFunc) handlerFunc{
		s.checkScope,
		s.authenticate,
		rejectInvalid,
		s.recoverPanic,
		s.audit,
		s.logCall,
	} {
		h = mw(h)
	}
	return h
}

func (s *Server) recoverPanic(next handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (res json.RawMessage, err error) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error().Str("method", c.method.nameOrUnknown()).Str("panic", fmt.Sprint(v)).
					Bytes("stack", debug.Stack()).Msg("handler panic")
				res, err = nil, Errorf(CodeInternalError, ErrIDInternal, "internal error")
			}
		}()
		return next(ctx, c)
	}
}

// logCall writes one line per call: method, key id, account, duration in
// microseconds and outcome. It never logs params, credentials or messages
// built from input. Call lines carry no message: "outcome" marks them.
func (s *Server) logCall(next handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (json.RawMessage, error) {
		start := time.Now()
		if s.metrics != nil {
			s.metrics.inFlight.Inc()
		}
		res, err := next(ctx, c)
		if s.metrics != nil {
			s.metrics.inFlight.Dec()
			s.metrics.observeCall(c, start, err)
		}
		lvl := s.log.Info()
		if err != nil {
			lvl = s.log.Warn()
		}
		if !lvl.Enabled() {
			return res, err
		}
		ev := lvl.Str("method", c.method.nameOrUnknown()).Int64("dur_us", time.Since(start).Microseconds())
		if c.key != nil {
			ev = ev.Str("key_id", c.key.ID).Str("account", c.key.Account)
		}
		if c.req.notification() {
			ev = ev.Bool("notification", true)
		}
		ev = ev.Str("remote", c.remote)
		if err == nil {
			ev.Str("outcome", "ok").Msg("")
			return res, err
		}
		e := toError(err)
		ev = ev.Str("outcome", e.ID).Int64("code", e.Code)
		var denial *scope.Denial
		switch {
		case errors.As(err, &denial):
			ev = ev.Str("reason", denial.Reason)
		case e.Code == CodeInternalError && e.ID != ErrIDUpstreamError: // an upstream's text may hold client input
			ev = ev.AnErr("cause", err)
		}
		ev.Msg("")
		return res, err
	}
}

func (m *Method) nameOrUnknown() string {
	if m == nil {
		return "(unknown)"
	}
	return m.Name
}

func rejectInvalid(next handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (json.RawMessage, error) {
		if c.req.err != nil {
			return nil, c.req.err
		}
		return next(ctx, c)
	}
}

// credential is the key an HTTP request presented, read once per request.
type credential struct {
	secret string
	err    *Error
}

// parseAuthorization reads "Bearer <key>" or Basic with the key as user name
// (any password), Memset's way.
func parseAuthorization(h string) credential {
	if h == "" {
		return credential{err: errMissingKey}
	}
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return credential{secret: rest}
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			break
		}
		user, _, _ := strings.Cut(string(raw), ":")
		return credential{secret: user}
	}
	return credential{err: errMalformedKey}
}

// Both errors are invalid_key. The first blames the form of what was sent;
// the second is for a key of the right form that is unknown, switched off,
// expired or held by an inactive holder, and never says which.
var (
	errMalformedKey = Errorf(CodeUnauthenticated, ErrIDInvalidKey,
		"the API key is malformed: send a key of 32 lowercase hex digits in an Authorization: Bearer header")
	errInvalidKey = Errorf(CodeUnauthenticated, ErrIDInvalidKey,
		"the API key is not valid: it is unknown, switched off or expired")
)

// keyOf resolves a credential to its stored key. A key of the wrong form
// gets errMalformedKey; every other kind of bad key gets errInvalidKey.
// The key is shared with other calls (store.AuthKey): read it, never change
// it.
func (s *Server) keyOf(cred credential) (*store.Key, error) {
	if cred.err != nil {
		return nil, cred.err
	}
	if !store.IsSecret(cred.secret) {
		return nil, errMalformedKey
	}
	k, err := s.store.AuthKey(cred.secret)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidKey
	}
	return k, err
}

// authenticate resolves the presented key to a stored key and puts it in ctx.
// Calls that need no key (Open methods) skip it. Every failure looks the
// same to the client.
func (s *Server) authenticate(next handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (json.RawMessage, error) {
		if !needsKey(c.method) {
			return next(ctx, c)
		}
		k, err := s.keyOf(c.cred)
		if err != nil {
			if s.metrics != nil {
				s.metrics.authFailed(err)
			}
			return nil, err
		}
		c.key = k
		if _, err := s.store.Spend(k); err != nil { // every call of a batch counts
			if s.metrics != nil {
				s.metrics.spendFailed(err)
			}
			return nil, err
		}
		s.store.RecordUse(k.ID)
		// The handler's context is its own, not part of the recycled call:
		// a goroutine that outlives the handler may go on using it.
		return next(&keyContext{Context: ctx, key: k}, c)
	}
}

// checkScope reads the call's params and asks authorize, the one access
// decision, whether the key may make the call: methods not in the table
// and calls the key may not make are denied here. Handlers never check
// scopes.
func (s *Server) checkScope(next handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (json.RawMessage, error) {
		q := accessQuery{method: c.method}
		if c.method != nil {
			p := &c.paramsVal
			if err := readParams(p, c.method, c.req.params, c.scratch[:0]); err != nil {
				return nil, err
			}
			c.params = p
			q.name, q.hasName = p.name()
		}
		if c.key != nil && len(c.key.Scopes.IP) > 0 { // the address costs a parse: only when it matters
			q.clientIP = s.clientIP(&c.exchange)
		}
		if err := authorize(c.key, q); err != nil {
			return nil, err
		}
		return next(ctx, c)
	}
}

// jsonAppender is implemented by results on hot paths that encode
// themselves faster than encoding/json's reflection.
type jsonAppender interface {
	AppendJSON(dst []byte) []byte
}

// dispatch runs the handler and encodes its result.
func (s *Server) dispatch(ctx context.Context, c *call) (json.RawMessage, error) {
	if h := c.method.appendHandler; h != nil {
		out, err := h(ctx, c.params, c.out)
		if err != nil {
			return nil, err
		}
		c.out, c.resultInOut = out, true
		return nil, nil
	}
	res, err := c.method.Handler(ctx, c.params)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, fmt.Errorf("rpc: %s returned a nil result", c.method.Name)
	}
	if a, ok := res.(jsonAppender); ok {
		c.out = a.AppendJSON(c.out)
		c.resultInOut = true
		return nil, nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("rpc: encode result of %s: %w", c.method.Name, err)
	}
	return b, nil
}
