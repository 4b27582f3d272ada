package rpc_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccessClasses walks every method in the table under a key limited to
// each access class: the scope checker allows the call exactly when the
// class is the method's own.
func TestAccessClasses(t *testing.T) {
	ts := newTestServer(t)
	keys := map[string]string{}
	for _, class := range scope.AccessClasses {
		keys[class] = ts.createKey(ts.Admin, map[string][]string{"access": {class}}, class).Key
	}
	// Params that pass the scope check for each method (the handler may
	// still refuse them; that is not what this test is about).
	params := map[string]any{
		"apikey.info":         []any{ts.Admin},
		"apikey.delete":       []any{"01890a5d-ac96-774b-bcce-b302099a8057"},
		"apikey.add_scope":    []any{"01890a5d-ac96-774b-bcce-b302099a8057", "name", "x"},
		"apikey.delete_scope": []any{"01890a5d-ac96-774b-bcce-b302099a8057", "name", "x"},
		"server.reboot":       []any{"web1"},
	}
	methods := ts.RPC.Methods()
	require.NotEmpty(t, methods)
	for _, m := range methods {
		require.Contains(t, scope.AccessClasses, m.Access, "%s declares no access class", m.Name)
		for _, class := range scope.AccessClasses {
			t.Run(m.Name+"/"+class, func(t *testing.T) {
				r := ts.call(keys[class], m.Name, params[m.Name])
				denied := r.Error != nil && r.Error.Data.ErrorID == rpc.ErrIDScopeDenied
				// Open methods take no key, so no key's scopes apply to
				// them; AnyKey methods answer any key about itself.
				assert.Equal(t, m.Access != class && !m.Open && !m.AnyKey, denied, "reply: %+v", r.Error)
			})
		}
	}
	assert.Equal(t, scope.Manage, methodAccess(methods, "apikey.create"), "managing keys is MANAGE")
}

func methodAccess(methods []rpc.Method, name string) string {
	for _, m := range methods {
		if m.Name == name {
			return m.Access
		}
	}
	return ""
}

// TestAccess_NoEscalation: access scopes follow the same no-escalation rule
// as method and name.
func TestAccess_NoEscalation(t *testing.T) {
	ts := newTestServer(t)
	mgr := ts.createKey(ts.Admin, map[string][]string{"access": {"MANAGE", "READ"}}, "manager")
	ts.createKey(mgr.Key, map[string][]string{"access": {"READ"}}, "reader")
	sub := ts.createKey(mgr.Key, map[string][]string{"access": {"MANAGE"}}, "sub-manager")
	ts.unchanged(func() {
		ts.fail(mgr.Key, "apikey.create", map[string]any{}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(mgr.Key, "apikey.create", map[string]any{"scopes": map[string][]string{"access": {"DELETE"}}}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(mgr.Key, "apikey.add_scope", []any{sub.ID, "access", "UPDATE"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(mgr.Key, "apikey.delete_scope", []any{sub.ID, "access", "MANAGE"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		ts.fail(mgr.Key, "apikey.add_scope", []any{sub.ID, "access", "manage"}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
	})
	var info rpc.KeyInfo
	ts.ok(mgr.Key, "apikey.add_scope", []any{sub.ID, "access", "READ"}, &info)
	assert.Equal(t, []string{"MANAGE", "READ"}, info.Scopes.Access)
	ts.ok(ts.Admin, "apikey.info", []any{sub.ID}, &info)
	assert.Equal(t, []string{"MANAGE", "READ"}, info.Scopes.Access)
}
