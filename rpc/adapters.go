package rpc

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/jsonrpc2"
)

// What the ways in that live in rpc's sub-packages (rpc/ws, rpc/urlstyle,
// rpc/gateway) need of the core beyond the seam (seam.go): a look at the
// method table, the logger, the JSON-RPC error reply, and, for the
// gateway, registering forwarded methods and reading their params.

// Method returns (a copy of) the table's entry for name, and whether
// there is one.
func (s *Server) Method(name string) (Method, bool) {
	m, ok := s.methods[name]
	if !ok {
		return Method{}, false
	}
	return *m, true
}

// Logger is the server's logger (Options.Logger), for a way in to log as
// the core does.
func (s *Server) Logger() *zerolog.Logger { return &s.log }

// ValidMethodName reports whether name is one Register accepts: dotted
// lowercase segments, like server.reboot.
func ValidMethodName(name string) bool { return validMethodName(name) }

// WriteError refuses HTTP request r with e as a JSON-RPC error reply,
// under status, or HTTPStatus(e) when status is 0, and logs the refusal
// as every request refused before any call is logged.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, status int, e *Error) {
	if status == 0 {
		status = HTTPStatus(e)
	}
	s.writeErrorStatus(w, r, status, e)
}

// Wire is e as it goes out in a reply, for a transport that builds the
// reply with jsonrpc2's types.
func (e *Error) Wire() *jsonrpc2.Error { return e.wire() }

// ReadRequest reads one JSON-RPC 2.0 request object as Call does (exact
// member names, none twice, "jsonrpc" exactly "2.0"), and returns its id
// and params as sent (nil when absent), or the error a call of it is
// refused with. raw must be valid JSON.
func ReadRequest(raw []byte) (id, params json.RawMessage, e *Error) {
	var scratch [4]jsonwire.Member
	r := parseRequest(raw, scratch[:])
	return r.id, r.params, r.err
}

// Len is the number of params the call was given, by name or by
// position.
func (p *Params) Len() int { return len(p.members) }

// All yields the params the call was given, in the order sent: each name
// (unescaped; for params by position, the name of that position in
// Method.Params) and its raw value, null included. The bytes are valid
// only until the handler returns.
func (p *Params) All() iter.Seq2[string, json.RawMessage] {
	return func(yield func(string, json.RawMessage) bool) {
		for _, m := range p.members {
			if !yield(string(m.Key), m.Value) {
				return
			}
		}
	}
}

// Caller is who made a call, as an upstream is told (rpc/gateway): the
// account, public id and holder (user or service account, "" for none) of
// the key that authenticated it.
type Caller struct{ Account, KeyID, Owner string }

// CallerFrom returns who made the call that ctx is the context of, without
// copying the key as KeyFromContext does; false for a call made without a
// key.
func CallerFrom(ctx context.Context) (Caller, bool) {
	k := sharedKey(ctx)
	if k == nil {
		return Caller{}, false
	}
	return Caller{Account: k.Account, KeyID: k.ID, Owner: k.Owner}, true
}

// MaxBatch is the most calls a batch may hold (Options.MaxBatch); a
// transport that runs calls of one connection at once runs at most that
// many.
func (s *Server) MaxBatch() int { return s.opts.MaxBatch }
