package rpc_test

import (
	"context"
	"errors"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAudit_OneCommitPerMutation: every method that mutates, called with
// success over the fast path, costs one store write, which holds both its
// change and its audit record; before, the record was a second durable
// commit. The list of calls is checked against the method table, so a new
// method that mutates must join it.
func TestAudit_OneCommitPerMutation(t *testing.T) {
	ts := newTestServerOver(t, overFastPath, nil)
	scrape := scrapeMetrics(t, ts)
	writes := func() float64 { return metricValue(t, scrape(), "apikeyd_store_write_duration_seconds_count") }
	records := func() []rpc.AuditEntry { return auditAll(ts, ts.Admin, nil) }

	var acme rpc.NewAccountInfo
	var k rpc.NewKeyInfo
	steps := []struct {
		key    func() string
		method string
		params any
		out    any
	}{
		{func() string { return ts.Admin }, "account.create", []any{"acme"}, &acme},
		{func() string { return ts.Admin }, "account.update", map[string]any{"name": "acme", "comment": "c"}, nil},
		{func() string { return acme.FirstKey.Key }, "apikey.create", map[string]any{"comment": "k"}, &k},
		{func() string { return acme.FirstKey.Key }, "apikey.add_scope", []any{"$k", "method", "server.list"}, nil},
		{func() string { return acme.FirstKey.Key }, "apikey.delete_scope", []any{"$k", "method", "server.list"}, nil},
		{func() string { return acme.FirstKey.Key }, "apikey.update", map[string]any{"id": "$k", "description": "d"}, nil},
		{func() string { return acme.FirstKey.Key }, "apikey.rotate", map[string]any{"id": "$k"}, nil},
		{func() string { return acme.FirstKey.Key }, "apikey.delete", []any{"$k"}, nil},
		{func() string { return acme.FirstKey.Key }, "service_account.create", map[string]any{"name": "ci"}, nil},
		{func() string { return acme.FirstKey.Key }, "service_account.update", map[string]any{"name": "ci", "description": "d"}, nil},
		{func() string { return acme.FirstKey.Key }, "service_account.delete", map[string]any{"name": "ci"}, nil},
		{func() string { return acme.FirstKey.Key }, "user.create", map[string]any{"name": "alice", "password": "correct horse"}, nil},
		{func() string { return acme.FirstKey.Key }, "user.set_password", map[string]any{"name": "alice", "password": "battery staple"}, nil},
		{func() string { return "" }, "user.create_apikey", login("alice@acme", "battery staple", "basic"), &k},
		{func() string { return acme.FirstKey.Key }, "user.delete_apikey", map[string]any{"delete_key": "$k"}, nil},
		{func() string { return acme.FirstKey.Key }, "user.unlock", map[string]any{"name": "alice"}, nil}, // writes only its record
		{func() string { return acme.FirstKey.Key }, "user.delete", map[string]any{"name": "alice"}, nil},
		{func() string { return ts.Admin }, "server.reboot", []any{"web1"}, nil}, // writes only its record
		{func() string { return ts.Admin }, "account.delete", []any{"acme"}, nil},
	}
	called := map[string]bool{}
	for _, s := range steps {
		params := withKeyID(s.params, k.ID)
		w, n := writes(), len(records())
		ts.ok(s.key(), s.method, params, s.out)
		assert.Equal(t, w+1, writes(), "%s: one write, its record with it", s.method)
		recs := records()
		if assert.Len(t, recs, n+1, "%s: one record", s.method) {
			r := recs[n]
			assert.Equal(t, s.method, r.Method)
			assert.Equal(t, "ok", r.Outcome)
			assert.NotEmpty(t, r.Account, "%s: the record names its account", s.method)
		}
		called[s.method] = true
	}
	for _, m := range ts.RPC.Methods() {
		if m.Mutates {
			assert.True(t, called[m.Name], "%s mutates but is not called above", m.Name)
		}
	}
	// The login's record is in the user's account, by the user.
	recs := auditAll(ts, ts.Admin, map[string]any{"method": "user.create_apikey"})
	require.Len(t, recs, 1)
	assert.Equal(t, "acme", recs[0].Account)
	assert.Equal(t, "user:alice@acme", recs[0].Actor)
}

// withKeyID returns params with every "$k" replaced by id.
func withKeyID(params any, id string) any {
	switch p := params.(type) {
	case []any:
		out := make([]any, len(p))
		for i, v := range p {
			out[i] = withKeyID(v, id)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for n, v := range p {
			out[n] = withKeyID(v, id)
		}
		return out
	case string:
		if p == "$k" {
			return id
		}
	}
	return params
}

// TestAudit_FailedAfterItsWrite: a call whose change committed, with its
// record, and that then failed is in the trail twice: the change ("ok"),
// since it happened, and the error the client was given.
func TestAudit_FailedAfterItsWrite(t *testing.T) {
	var ts *testServer
	ts = newTestServerWith(t, func(srv *rpc.Server) {
		rpc.Handle(srv, "test.create_then_fail", scope.Manage, "Create a key, then fail.", func(ctx context.Context, _ struct{}) (struct{}, error) {
			_, _, err := ts.Store.CreateKey(ctx, store.NewKey{Account: store.OperatorAccount, Comment: "made"})
			if err != nil {
				return struct{}{}, err
			}
			return struct{}{}, errors.New("failed after writing")
		})
	})
	ts.fail(ts.Admin, "test.create_then_fail", nil, rpc.CodeInternalError, rpc.ErrIDInternal)
	recs := auditAll(ts, ts.Admin, map[string]any{"method": "test.create_then_fail"})
	require.Len(t, recs, 2)
	assert.Equal(t, "ok", recs[0].Outcome, "the change, committed with its record")
	assert.Equal(t, rpc.ErrIDInternal, recs[1].Outcome, "the error the client saw")
	keys, err := ts.Store.Keys(store.OperatorAccount)
	require.NoError(t, err)
	assert.Len(t, keys, 2, "the operator's key and the one made")
}
