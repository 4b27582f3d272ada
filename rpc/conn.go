package rpc

import (
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// The access decision for a connection that carries calls (the WebSocket
// transport, rpc/ws): its key is checked once when it opens, and each
// call on it is then decided on its own, as any other call.

// wsMaxPerKey caps the connections one key may hold open at once, so that
// no key, however spent its quota, ties up the server with connections.
const wsMaxPerKey = 32

var errTooManyConns = Errorf(CodeRateLimited, ErrIDTooManyConnections,
	"this key holds as many WebSocket connections as it may (%d); close one first", wsMaxPerKey)

// wsUpgrade is the upgrade as the access decision sees it: a call that any
// usable key may make, as rpc.discover, so that only its ip scope applies.
// Each call on the connection is then decided on its own.
var wsUpgrade = &Method{Name: "(websocket upgrade)", Access: scope.Read, AnyKey: true}

// AdmitConn decides whether p may open a connection that carries calls (a
// WebSocket upgrade): the store finds its key usable, the access decision
// admits the upgrade (the key's ip scope admits the client), and the key
// holds fewer connections than it may. A refusal is audited, as a refused
// call is, and comes back as the error to refuse the upgrade with:
// unauthenticated (-32001), forbidden (-32003), too many connections
// (-32029) or internal (-32603). When admitted, release gives the
// connection's slot back; call it once the connection has ended.
func (s *Server) AdmitConn(p Peer) (release func(), e *Error) {
	k, e := s.wsKey(&p.ex)
	if e != nil {
		if e.Code != CodeInternalError {
			s.auditUpgrade(&p.ex, k, e.ID)
		}
		return nil, e
	}
	return func() { s.wsRelease(k.ID) }, nil
}

// wsKey checks the upgrade's key as far as can be checked before any call:
// the store finds it usable, authorize admits the upgrade (its ip scope
// admits the client), and it holds fewer than wsMaxPerKey connections
// (taking a slot, which wsRelease gives back).
func (s *Server) wsKey(ex *exchange) (*store.Key, *Error) {
	k, err := s.keyOf(ex.cred)
	if err != nil {
		e := toError(err)
		if e.Code == CodeInternalError {
			s.log.Error().Err(err).Str("remote", ex.remote).Msg("websocket upgrade: look up key")
		}
		return nil, e
	}
	if err := authorize(k, accessQuery{method: wsUpgrade, clientIP: s.clientIP(ex)}); err != nil {
		return k, toError(err)
	}
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	if s.wsConns[k.ID] >= wsMaxPerKey {
		return k, errTooManyConns
	}
	if s.wsConns == nil {
		s.wsConns = map[string]int{}
	}
	s.wsConns[k.ID]++
	return k, nil
}

func (s *Server) wsRelease(id string) {
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	if s.wsConns[id]--; s.wsConns[id] <= 0 {
		delete(s.wsConns, id)
	}
}

// auditUpgrade records a refused upgrade, as a refused call would be.
func (s *Server) auditUpgrade(ex *exchange, k *store.Key, outcome string) {
	r := store.AuditRecord{SourceIP: s.sourceIP(ex), Method: "(websocket upgrade)", Outcome: outcome}
	if k == nil { // no key: anyone could send it, at any rate
		s.store.AuditFailure(r)
		return
	}
	r.Account, r.Actor = k.Account, k.ID
	if err := s.store.Audit(r); err != nil {
		s.log.Error().Err(err).Msg("audit record lost")
	}
}
