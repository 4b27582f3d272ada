package rpc

import (
	"net/netip"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// accessQuery is one call as the access decision sees it.
type accessQuery struct {
	// method is the method called; nil when its name is not in the table.
	method *Method
	// name is the call's "name" parameter, when hasName.
	name    string
	hasName bool
	// clientIP is the address the call comes from (invalid: unknown). It
	// matters only to keys with an ip scope.
	clientIP netip.Addr
	// anyCall asks whether some call of the method could be allowed
	// rather than one given call: with one of the key's names when it has
	// name scopes, from an address in its ip scope when it has one. name,
	// hasName and clientIP are then not read. Discovery asks this.
	anyCall bool
}

// authorize is the one answer to "may this key make this call": every path
// that decides it asks here, and none keeps a copy. The chain (checkScope)
// asks before running a call, apikey.verify when asked about a key,
// discovery for each method of the table, and the WebSocket upgrade before
// taking the connection.
//
// k is a key the store found usable (store.AuthKey: active, within its
// validity, its holder active); its status is the store's to decide, not
// this function's. k is nil when no key was presented, which only Open
// methods accept.
//
// It returns nil when the call is allowed, or the error the client gets:
// method_not_found for a method not in the table (deny by default),
// missing_key, operator_only, held_key, or a *scope.Denial (scope_denied). The
// method table's flags decide first: an Open method needs no key and
// looks at none; an OperatorOnly method needs a key of the operator
// account; an AccountKeysOnly method a key no user or service account
// holds; an AnyKey method is allowed to any usable key its ip scope
// admits. Every other method, built-in, embedded or forwarded alike, is
// allowed when the key's scopes of every type (method, name, access, ip)
// allow the call; the access class is the method's, or its HeldAccess for
// a key held by a user or service account.
func authorize(k *store.Key, q accessQuery) error {
	m := q.method
	switch {
	case m == nil:
		return errMethodNotFound
	case m.Open:
		return nil
	case k == nil:
		return errMissingKey
	case m.OperatorOnly && k.Account != store.OperatorAccount:
		return errOperatorOnly
	case m.AccountKeysOnly && k.Owner != "":
		return errHeldKey
	}
	sc := k.Scopes
	if m.AnyKey {
		if len(sc.IP) == 0 {
			return nil
		}
		sc = scope.Scopes{IP: sc.IP}
	}
	call := scope.Call{Method: m.Name, TakesName: m.TakesName(), Name: q.name, HasName: q.hasName,
		Access: m.accessFor(k), ClientIP: q.clientIP}
	if q.anyCall {
		sc.IP = nil
		call.Name, call.HasName = "", false
		if len(sc.Name) > 0 {
			call.Name, call.HasName = sc.Name[0], true
		}
	}
	return scope.Check(sc, call)
}

// needsKey reports whether a call of m needs a key: whether authorize
// refuses it without one. A call that needs none is made without looking
// at the key sent, if any.
func needsKey(m *Method) bool {
	return authorize(nil, accessQuery{method: m}) != nil
}

var (
	errMethodNotFound = &Error{Code: CodeMethodNotFound, ID: ErrIDMethodNotFound, Message: msgMethodNotFound,
		Detail: "no method of that name; see docs/api.md"}
	errMissingKey = Errorf(CodeUnauthenticated, ErrIDMissingKey,
		"this call needs an API key: send it in an Authorization: Bearer header")
	errOperatorOnly = Errorf(CodeForbidden, ErrIDOperatorOnly, "only keys of the operator account may call this method")
	errHeldKey      = Errorf(CodeForbidden, ErrIDHeldKey,
		"a key held by a user or service account may not call this method: it manages or reads holders, accounts or the whole audit trail, which takes a key of the account itself")
)
