package rpc

import (
	"errors"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// role is what a key is to the call that judges it.
type role int

const (
	// asResult: the key a call would create, or leave behind after a change.
	asResult role = iota
	// asTarget: a stored key the call changes, rotates or deletes.
	asTarget
	// asHeld: a key of a holder that the call changes or deletes.
	asHeld
	// asAccountKey: a key of an account that the call deletes.
	asAccountKey
)

// within is how every handler asks "does key k lie within the authority
// of the calling key me": it calls scope.Within, the one place that
// decides, and turns its answer into the error the client gets. A stored
// key of another holder is not found, as if absent; anything else beyond
// the caller is escalation_denied, with the reason.
func within(me *store.Key, k store.Key, now time.Time, r role) error {
	err := scope.Within(me.Authority(), k.Authority(), now)
	var ex *scope.Excess
	if err == nil || !errors.As(err, &ex) {
		return err
	}
	switch {
	case r == asTarget && ex.Aspect == scope.AspectHolder:
		return store.ErrNotFound
	case r == asTarget && ex.Aspect == scope.AspectScopes:
		return errTargetWider
	case r == asTarget:
		return Errorf(CodeForbidden, ErrIDEscalation,
			"the target key reaches beyond the key making this call, so this key may not change it: %s", ex.Reason)
	case r == asHeld:
		return Errorf(CodeForbidden, ErrIDEscalation,
			"the holder holds a key that reaches beyond the key making this call, so this key may not change or delete the holder: %s", ex.Reason)
	case r == asAccountKey:
		return Errorf(CodeForbidden, ErrIDEscalation,
			"the account holds a key that reaches beyond the key making this call, so this key may not delete the account: %s", ex.Reason)
	case ex.Aspect == scope.AspectHolder:
		return errOtherHolder
	case ex.Aspect == scope.AspectScopes:
		return errEscalation
	}
	return Errorf(CodeForbidden, ErrIDEscalation,
		"the resulting key would reach beyond the key making this call: %s", ex.Reason)
}

var (
	errEscalation = Errorf(CodeForbidden, ErrIDEscalation,
		"the resulting key would reach beyond the scopes of the key making this call")
	errTargetWider = Errorf(CodeForbidden, ErrIDEscalation,
		"the target key reaches beyond the scopes of the key making this call, so this key may not change it")
)

// heldWithin is the check that holder writes run, in their transaction, on
// each key the holder holds.
func heldWithin(me *store.Key, now time.Time) func(store.Key) error {
	return func(k store.Key) error { return within(me, k, now, asHeld) }
}

// accountKeysWithin is the check account.delete runs, in its transaction,
// on each key of the account.
func accountKeysWithin(me *store.Key, now time.Time) func(store.Key) error {
	return func(k store.Key) error { return within(me, k, now, asAccountKey) }
}
