package rpc_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openRPCSchema compiles the OpenRPC meta-schema in testdata.
func openRPCSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../testdata/openrpc/meta-schema.json")
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("https://meta.open-rpc.org/", doc))
	s, err := c.Compile("https://meta.open-rpc.org/")
	require.NoError(t, err)
	return s
}

// discover calls rpc.discover as key, validates the document against the
// OpenRPC meta-schema and returns it.
func (ts *testServer) discover(t *testing.T, schema *jsonschema.Schema, key string) rpc.OpenRPC {
	t.Helper()
	r := ts.call(key, "rpc.discover", nil)
	require.Nil(t, r.Error, "%+v", r.Error)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Result))
	require.NoError(t, err)
	require.NoError(t, schema.Validate(inst), "rpc.discover's document is not valid OpenRPC")
	var doc rpc.OpenRPC
	require.NoError(t, json.Unmarshal(r.Result, &doc))
	return doc
}

func methodNames(doc rpc.OpenRPC) []string {
	var out []string
	for _, m := range doc.Methods {
		out = append(out, m.Name)
	}
	return out
}

func TestDiscover_OpenRPC(t *testing.T) {
	schema := openRPCSchema(t)
	ts := newTestServer(t)
	// The meta-schema does refuse what is not OpenRPC.
	for _, bad := range []string{
		`{"openrpc":"1.3.2","info":{"title":"x","version":"1"},"methods":[{"name":"a"}]}`,
		`{"openrpc":"1.3.2","info":{"title":"x","version":"1"},"methods":[{"name":"a","params":[],"result":{"name":"r","schema":{"type":"nope"}}}]}`,
		`{"openrpc":"1.3.2","info":{"title":"x"},"methods":[]}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
		require.NoError(t, err)
		assert.Error(t, schema.Validate(inst), bad)
	}

	// The operator key reaches every method, built-in and embedded.
	doc := ts.discover(t, schema, ts.Admin)
	assert.Equal(t, rpc.OpenRPCVersion, doc.OpenRPC)
	names := methodNames(doc)
	for _, m := range ts.RPC.Methods() {
		assert.Contains(t, names, m.Name)
	}
	assert.IsNonDecreasing(t, names)
	byName := map[string]rpc.OpenRPCMethod{}
	for _, m := range doc.Methods {
		byName[m.Name] = m
	}
	create := byName["apikey.create"]
	assert.Equal(t, "MANAGE", create.XAccess)
	assert.True(t, create.XTakesName)
	require.NotEmpty(t, create.Params)
	assert.Equal(t, "scopes", create.Params[0].Name)
	var scopes struct {
		Type                 string                     `json:"type"`
		Properties           map[string]json.RawMessage `json:"properties"`
		AdditionalProperties bool                       `json:"additionalProperties"`
	}
	require.NoError(t, json.Unmarshal(create.Params[0].Schema, &scopes))
	assert.Equal(t, "object", scopes.Type)
	assert.Len(t, scopes.Properties, len(scope.Types), "a list of values per scope type")
	assert.False(t, scopes.AdditionalProperties, "no other scope types")
	var result struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(create.Result.Schema, &result))
	assert.Contains(t, result.Properties, "key", "create's result carries the secret")
	assert.Contains(t, result.Properties, "id")
	reboot := byName["server.reboot"]
	require.Len(t, reboot.Params, 2)
	assert.Equal(t, rpc.OpenRPCContent{Name: "name", Required: true, Schema: json.RawMessage(`{"type":"string"}`)}, reboot.Params[0])
	assert.True(t, byName["user.create_apikey"].XOpen)

	// Every param and result schema is itself a valid JSON Schema (the
	// meta-schema checks them) and says something about its type.
	for _, m := range doc.Methods {
		for _, p := range m.Params {
			assert.NotEmpty(t, p.Schema, "%s.%s", m.Name, p.Name)
		}
	}
}

func TestDiscover_OnlyWhatTheKeyCouldCall(t *testing.T) {
	schema := openRPCSchema(t)
	ts := newTestServer(t)
	always := []string{"rpc.discover", "system.list_methods", "user.create_apikey"}

	reboot := ts.createKey(ts.Admin, map[string][]string{"method": {"server.reboot"}, "name": {"web1"}}, "")
	assert.ElementsMatch(t, append([]string{"server.reboot"}, always...), methodNames(ts.discover(t, schema, reboot.Key)))

	// A name-scoped key reaches only methods that take a name.
	named := ts.createKey(ts.Admin, map[string][]string{"name": {"web1"}}, "")
	for _, name := range methodNames(ts.discover(t, schema, named.Key)) {
		var m *rpc.Method
		for _, mm := range ts.RPC.Methods() {
			if mm.Name == name {
				m = &mm
			}
		}
		require.NotNil(t, m, name)
		assert.True(t, m.TakesName() || m.Open || m.AnyKey, "%s takes no name", name)
	}

	// An access-scoped key reaches only methods of its classes.
	reader := ts.createKey(ts.Admin, map[string][]string{"access": {"READ"}}, "")
	for _, m := range ts.discover(t, schema, reader.Key).Methods {
		assert.True(t, m.XAccess == "READ" || m.XOpen, "%s is %s", m.Name, m.XAccess)
	}
	assert.Contains(t, methodNames(ts.discover(t, schema, reader.Key)), "server.list")

	// A tenant never sees operator-only methods.
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	tenant := methodNames(ts.discover(t, schema, acme.FirstKey.Key))
	assert.Contains(t, tenant, "apikey.create")
	assert.NotContains(t, tenant, "account.create")

	// system.list_methods lists the same methods in short.
	var short []rpc.MethodSummary
	ts.ok(reboot.Key, "system.list_methods", nil, &short)
	require.Len(t, short, 4)
	var rb rpc.MethodSummary
	for _, m := range short {
		if m.Name == "server.reboot" {
			rb = m
		}
	}
	assert.Equal(t, rpc.MethodSummary{Name: "server.reboot", Summary: rb.Summary, Access: "UPDATE", TakesName: true, Params: []string{"name", "force"}}, rb)

	// Discovery needs a valid key, takes no params, and keeps ip scopes.
	ts.fail("", "rpc.discover", nil, rpc.CodeUnauthenticated, rpc.ErrIDMissingKey)
	ts.fail(reboot.Key, "rpc.discover", map[string]any{"all": true}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
	far := ts.createKey(ts.Admin, map[string][]string{"ip": {"192.0.2.0/24"}}, "")
	ts.fail(far.Key, "system.list_methods", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
}
