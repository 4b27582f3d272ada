package rpc

import (
	"context"

	"github.com/apikeyd/apikeyd/store"
)

type contextKey int

const keyContextKey contextKey = 0

// NewContextWithKey returns ctx carrying k, the key that authenticated the call.
func NewContextWithKey(ctx context.Context, k *store.Key) context.Context {
	return context.WithValue(ctx, keyContextKey, k)
}

// KeyFromContext returns the key that authenticated the call, if any. Every
// handler of a method that is not Open runs with one.
func KeyFromContext(ctx context.Context) (*store.Key, bool) {
	k, ok := ctx.Value(keyContextKey).(*store.Key)
	return k, ok && k != nil
}
