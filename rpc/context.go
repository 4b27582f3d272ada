package rpc

import (
	"context"

	"github.com/apikeyd/apikeyd/store"
)

type contextKey int

const keyContextKey contextKey = 0

// NewContextWithKey returns ctx carrying k, the key that authenticated the call.
func NewContextWithKey(ctx context.Context, k *store.Key) context.Context {
	return &keyContext{Context: ctx, key: k}
}

// keyContext is context.WithValue for the one value the server sets on
// every call, in one small allocation. It is the handler's own, never part
// of the recycled call state: a goroutine the handler starts may use it
// after the handler returns.
type keyContext struct {
	context.Context
	key *store.Key
}

func (c *keyContext) Value(k any) any {
	if k == keyContextKey {
		return c.key
	}
	return c.Context.Value(k)
}

// KeyFromContext returns the key that authenticated the call, if any. Every
// handler of a method that is not Open runs with one. The key is a copy,
// the caller's to change.
func KeyFromContext(ctx context.Context) (*store.Key, bool) {
	k := sharedKey(ctx)
	if k == nil {
		return nil, false
	}
	c := *k
	c.Scopes = k.Scopes.Clone()
	return &c, true
}

// sharedKey is the key that authenticated the call as the server holds
// it: shared with other calls, to be read and never changed.
func sharedKey(ctx context.Context) *store.Key {
	k, _ := ctx.Value(keyContextKey).(*store.Key)
	return k
}
