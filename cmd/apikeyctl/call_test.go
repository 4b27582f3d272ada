package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCall_TypesValuesBySchema: call types PARAM=VALUE by the param
// schema rpc.discover gives, for a forwarded method too (the upstream
// echoes the params it receives).
func TestCall_TypesValuesBySchema(t *testing.T) {
	ts := startServer(t)

	r := ts.ok("call", "vm.resize", "name=web1", "cpus=4", "live=true", `tags=["a","b"]`, "label=42", "extra=7", "--json")
	assert.JSONEq(t, `{"name":"web1","cpus":4,"live":true,"tags":["a","b"],"label":"42","extra":"7"}`, r.stdout,
		"integer, boolean and array params as JSON; a string param as it is, even when it looks like a number; no schema type: a string; := sends JSON")

	r = ts.ok("call", "vm.resize", "name=true", "extra=plain words", "cpus:=5", "--json")
	assert.JSONEq(t, `{"name":"true","extra":"plain words","cpus":5}`, r.stdout)

	// := forces raw JSON, past the schema: a number to a string param.
	r = ts.ok("call", "vm.resize", "name:=12", "--json")
	assert.JSONEq(t, `{"name":12}`, r.stdout)

	// A value that is not of a non-string param's type is refused here.
	r = ts.run(nil, "call", "vm.resize", "name=web1", "live=maybe")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `param live takes JSON (boolean), and "maybe" is not; use live:= to send raw JSON`)
	r = ts.run(nil, "call", "vm.resize", "name=web1", "name=web2")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "param name is given twice")
	r = ts.run(nil, "call", "vm.resize", "name:={bad")
	assert.Equal(t, exitUsage, r.code)

	// Built-in methods: integer, boolean and object params.
	var created apiKey
	ts.okJSON(&created, "call", "apikey.create", `scopes={"method":["vm.resize"]}`, "comment=123", "name=typed")
	assert.Equal(t, map[string][]string{"method": {"vm.resize"}}, created.Scopes)
	assert.Equal(t, "123", created.Comment)
	var page struct {
		Items []apiKey `json:"items"`
		Size  int      `json:"size"`
	}
	ts.okJSON(&page, "call", "apikey.list", "size=1", "active=true", "sort_by=desc:created")
	assert.Equal(t, 1, page.Size)
	require.Len(t, page.Items, 1)
	assert.Equal(t, created.ID, page.Items[0].ID)

	// The server still judges the call: := can send what the method refuses.
	r = ts.run(nil, "call", "apikey.create", "comment:=42")
	assert.Equal(t, exitParams, r.code)
	assert.Contains(t, r.stderr, "[invalid_params]")

	// No params at all, and output for people.
	r = ts.ok("call", "system.list_methods")
	assert.Regexp(t, `(?m)^NAME\s+SUMMARY`, r.stdout)
	assert.Regexp(t, `(?m)^vm\.resize\s`, r.stdout)
	r = ts.ok("call", "apikey.info", "id=typed")
	assert.Regexp(t, `(?m)^scopes\s+method=vm\.resize$`, r.stdout)

	// The key the call names in params is a secret given by the user, and
	// the reply of a create is printed once, as any create's.
	r = ts.ok("call", "apikey.create", "comment=once")
	var n int
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "key" {
			n++
			assert.Equal(t, 1, strings.Count(r.stdout, f[1]))
		}
	}
	assert.Equal(t, 1, n, r.stdout)
}

// TestCall_WithoutKey: user.create_apikey needs no key; with none, call
// skips discovery and sends strings.
func TestCall_WithoutKey(t *testing.T) {
	ts := startServer(t)
	ts.runStdin("correct horse battery\n", nil, "user", "create", "alice", "--password-stdin")
	r := ts.run(map[string]string{"APIKEYD_KEY": ""}, "call", "user.create_apikey", "username=alice@operator",
		"password=correct horse battery", "access_level=basic", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var k apiKey
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &k))
	assert.Equal(t, []string{"CREATE"}, k.Scopes["access"])
	require.NotNil(t, k.Key)
	assert.NotContains(t, r.stdout+r.stderr, "correct horse battery", "the password is never printed")
}

// TestCall_RawParamsNeedNoDiscovery: with only PARAM:=JSON, call makes
// the one call asked for, so a key with a rate limit of one call can make
// it; PARAM=VALUE first asks rpc.discover, which counts.
func TestCall_RawParamsNeedNoDiscovery(t *testing.T) {
	ts := startServer(t)
	var k apiKey
	ts.okJSON(&k, "key", "create", "--method", "apikey.info", "--rate-limit", "1", "--rate-interval", "3600")
	limited := map[string]string{"APIKEYD_KEY": *k.Key}
	r := ts.run(limited, "call", "apikey.info", `id:="`+k.ID+`"`, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, k.ID)

	ts.okJSON(&k, "key", "create", "--method", "apikey.info", "--rate-limit", "1", "--rate-interval", "3600")
	limited = map[string]string{"APIKEYD_KEY": *k.Key}
	r = ts.run(limited, "call", "apikey.info", "id="+k.ID)
	assert.Equal(t, exitLimited, r.code, "rpc.discover spent the one call")
	assert.Contains(t, r.stderr, "[rate_limited]")
}
