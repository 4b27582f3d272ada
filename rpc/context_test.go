package rpc_test

import (
	"context"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The server shares one copy of an authenticated key between calls. A
// method that changes the key KeyFromContext gives it changes its own copy:
// the next call authenticates, and is scope-checked, as before.
func TestKeyFromContext_Copy(t *testing.T) {
	ts := newTestServerWith(t, func(srv *rpc.Server) {
		rpc.Handle(srv, "server.tamper", scope.Read, "Change the calling key's copy.", func(ctx context.Context, _ struct{}) (struct{}, error) {
			k, ok := rpc.KeyFromContext(ctx)
			if !ok {
				panic("server.tamper ran without a key")
			}
			k.Account = "someone-else"
			k.Comment = "tampered"
			k.Scopes.Method = append(k.Scopes.Method[:0], "apikey.*")
			k.Scopes.Method = append(k.Scopes.Method, "server.reboot")
			k.Active = false
			return struct{}{}, nil
		})
	})
	nk := ts.createKey(ts.Admin, map[string][]string{"method": {"server.tamper", "server.list"}}, "scoped")

	for range 2 {
		var out struct{}
		ts.ok(nk.Key, "server.tamper", nil, &out)
	}
	var servers []map[string]any
	ts.ok(nk.Key, "server.list", nil, &servers)
	ts.fail(nk.Key, "server.reboot", map[string]any{"name": "web1"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	ts.fail(nk.Key, "apikey.list", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)

	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.info", map[string]any{"id": nk.ID}, &info)
	assert.Equal(t, "scoped", info.Comment)
	assert.ElementsMatch(t, []string{"server.tamper", "server.list"}, info.Scopes.Method)
	require.Empty(t, *ts.Reboots)
}

// A method copied from Methods and registered with a handler of its own
// runs that handler, even when the original encodes its result itself.
func TestMethods_CopyRunsItsOwnHandler(t *testing.T) {
	ts := newTestServerWith(t, func(srv *rpc.Server) {
		for _, m := range srv.Methods() {
			if m.Name != "apikey.info" {
				continue
			}
			next := m.Handler
			m.Name = "server.info"
			m.Handler = func(ctx context.Context, p *rpc.Params) (any, error) {
				if _, err := next(ctx, p); err != nil {
					return nil, err
				}
				return map[string]string{"wrapped": "yes"}, nil
			}
			srv.Register(m)
		}
	})
	nk := ts.createKey(ts.Admin, nil, "")
	var got map[string]string
	ts.ok(ts.Admin, "server.info", map[string]any{"id": nk.ID}, &got)
	assert.Equal(t, map[string]string{"wrapped": "yes"}, got)
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.info", map[string]any{"id": nk.ID}, &info)
	assert.Equal(t, nk.ID, info.ID)
}

// A handler's context outlives the call: a goroutine the handler starts
// still finds the key of its own call, however many calls come after.
func TestKeyFromContext_OutlivesCall(t *testing.T) {
	release := make(chan struct{})
	seen := make(chan string, 1)
	ts := newTestServerWith(t, func(srv *rpc.Server) {
		rpc.Handle(srv, "server.later", scope.Read, "Look at the calling key after returning.", func(ctx context.Context, _ struct{}) (struct{}, error) {
			go func() {
				<-release
				k, ok := rpc.KeyFromContext(ctx)
				if !ok {
					seen <- ""
					return
				}
				seen <- k.ID
			}()
			return struct{}{}, nil
		})
	})
	a := ts.createKey(ts.Admin, map[string][]string{"method": {"server.later"}}, "a")
	b := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list"}}, "b")

	var out struct{}
	ts.ok(a.Key, "server.later", nil, &out)
	for range 20 { // calls of another key, which reuse the server's per-call state
		var servers []map[string]any
		ts.ok(b.Key, "server.list", nil, &servers)
	}
	close(release)
	assert.Equal(t, a.ID, <-seen)
}
