package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiKey is the part of a key reply the tests look at.
type apiKey struct {
	ID      string              `json:"id"`
	Name    string              `json:"name"`
	Comment string              `json:"comment"`
	Active  bool                `json:"active"`
	Scopes  map[string][]string `json:"scopes"`
	Key     *string             `json:"key"`
	Expires string              `json:"expires_at"`
	Rotated string              `json:"last_rotated"`
}

var secretRE = regexp.MustCompile(`\b[0-9a-f]{32}\b`)

// tableValue is the value of one line "field  value" of a key table.
func tableValue(t *testing.T, table, field string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			return strings.TrimSpace(strings.TrimPrefix(line, field))
		}
	}
	t.Fatalf("no %q line in %q", field, table)
	return ""
}

func TestKey_Lifecycle(t *testing.T) {
	ts := startServer(t)

	// Create with scopes from repeatable flags, for people: the secret
	// is in the output exactly once, and stderr says it is shown once.
	r := ts.ok("key", "create", "--name", "deploy", "--method", "server.*", "--method", "vm.resize",
		"--name-scope", "web1", "--access", "READ", "--access", "UPDATE", "--ip", "192.0.2.0/24",
		"--comment", "panel key", "--expires-at", "2099-01-01T00:00:00Z")
	secret := tableValue(t, r.stdout, "key")
	require.Regexp(t, `^[0-9a-f]{32}$`, secret)
	assert.Equal(t, 1, strings.Count(r.stdout+r.stderr, secret), "the secret is printed once")
	assert.Contains(t, r.stderr, "shown only this once")
	assert.Equal(t, "method=server.*,vm.resize name=web1 access=READ,UPDATE ip=192.0.2.0/24", tableValue(t, r.stdout, "scopes"))
	id := tableValue(t, r.stdout, "id")

	// info, by name, as JSON: the same key, with no secret.
	var info apiKey
	r = ts.okJSON(&info, "key", "info", "deploy")
	assert.Equal(t, id, info.ID)
	assert.Equal(t, map[string][]string{"method": {"server.*", "vm.resize"}, "name": {"web1"},
		"access": {"READ", "UPDATE"}, "ip": {"192.0.2.0/24"}}, info.Scopes)
	assert.Equal(t, "2099-01-01T00:00:00Z", info.Expires)
	assert.Nil(t, info.Key, "info never shows a secret")
	assert.NotContains(t, r.stdout, secret)

	// list: the table has it; a filtered page as JSON has exactly it.
	r = ts.ok("key", "list")
	assert.Regexp(t, `(?m)^ID\s+NAME\s+OWNER\s+ACTIVE\s+CREATED\s+COMMENT$`, r.stdout)
	assert.Regexp(t, `(?m)^`+id+`\s+deploy\s+true\s+\S+\s+panel key$`, r.stdout)
	var page struct {
		Items []apiKey `json:"items"`
		Total int      `json:"total"`
	}
	ts.okJSON(&page, "key", "list", "--name", "deploy", "--active")
	require.Len(t, page.Items, 1)
	assert.Equal(t, id, page.Items[0].ID)
	assert.Equal(t, 1, page.Total)

	// update: only what the flags give changes.
	var upd apiKey
	ts.okJSON(&upd, "key", "update", "deploy", "--comment", "deploys web1", "--active=false")
	assert.Equal(t, "deploys web1", upd.Comment)
	assert.False(t, upd.Active)
	assert.Equal(t, "deploy", upd.Name)
	assert.Equal(t, info.Scopes, upd.Scopes)

	// add-scope and delete-scope.
	var sc apiKey
	ts.okJSON(&sc, "key", "add-scope", "deploy", "name", "web2")
	assert.Equal(t, []string{"web1", "web2"}, sc.Scopes["name"])
	r = ts.ok("key", "delete-scope", id, "name", "web2")
	assert.Equal(t, "method=server.*,vm.resize name=web1 access=READ,UPDATE ip=192.0.2.0/24", tableValue(t, r.stdout, "scopes"))

	// rotate: a new secret, printed once, and recorded.
	var rot apiKey
	r = ts.okJSON(&rot, "key", "rotate", "deploy", "--retain", "0")
	require.NotNil(t, rot.Key)
	assert.NotEqual(t, secret, *rot.Key)
	assert.Equal(t, 1, strings.Count(r.stdout+r.stderr, *rot.Key))
	assert.NotEmpty(t, rot.Rotated)
	r = ts.ok("key", "rotate", "deploy")
	newSecret := tableValue(t, r.stdout, "key")
	assert.Equal(t, 1, strings.Count(r.stdout+r.stderr, newSecret))
	assert.Len(t, secretRE.FindAllString(r.stdout+r.stderr, -1), 1, "no other secret-shaped string is printed")

	// delete: gone, and info then says not found.
	r = ts.ok("key", "delete", "deploy")
	assert.Equal(t, "deleted key "+id+"\n", r.stdout, "the public id, not the argument")
	r = ts.run(nil, "key", "info", id)
	assert.Equal(t, exitNotFound, r.code)
	assert.Contains(t, r.stderr, "[key_not_found]")
}

func TestKey_CreateWithScopesJSONAndLimits(t *testing.T) {
	ts := startServer(t)
	var k apiKey
	r := ts.okJSON(&k, "key", "create", "--scopes", `{"method":["vm.*"],"access":["READ"]}`, "--comment", "ci",
		"--rate-limit", "5", "--rate-interval", "60", "--quota", "100", "--quota-refill", "monthly", "--quota-refill-amount", "100")
	assert.Equal(t, map[string][]string{"method": {"vm.*"}, "access": {"READ"}}, k.Scopes)
	require.NotNil(t, k.Key)
	assert.Equal(t, 1, strings.Count(r.stdout+r.stderr, *k.Key))
	var full map[string]json.RawMessage
	ts.okJSON(&full, "key", "info", k.ID)
	assert.JSONEq(t, `{"limit":5,"interval_seconds":60}`, string(full["rate_limit"]))
	var quota map[string]any
	require.NoError(t, json.Unmarshal(full["quota"], &quota))
	assert.Equal(t, "monthly", quota["refill"])
	assert.EqualValues(t, 100, quota["refill_amount"])

	// --remove-quota and --rate-limit 0 take them away again.
	var updated map[string]json.RawMessage
	ts.okJSON(&updated, "key", "update", k.ID, "--remove-quota", "--rate-limit", "0")
	assert.NotContains(t, updated, "quota")
	assert.NotContains(t, updated, "rate_limit")
	assert.Equal(t, `"ci"`, string(updated["comment"]), "what no flag names is left as it was")

	// --scopes and scope flags together is a usage error, and sends nothing.
	before := ts.fingerprint()
	r = ts.run(nil, "key", "create", "--scopes", `{}`, "--method", "vm.list")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "not both")
	r = ts.run(nil, "key", "create", "--scopes", `["vm.list"]`)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "must be a JSON object")
	assert.Equal(t, before, ts.fingerprint())
}

func TestKey_ListAllFollowsTheCursor(t *testing.T) {
	ts := startServer(t)
	var want []string
	for i := range 5 {
		var k apiKey
		ts.okJSON(&k, "key", "create", "--name", fmt.Sprintf("ci-%d", i), "--method", "vm.list")
		want = append(want, k.ID)
	}
	ts.ok("key", "create", "--name", "other", "--method", "vm.list")

	// One page for people: the table and where the next page starts.
	r := ts.ok("key", "list", "--name", "startswith:ci-", "--size", "2")
	assert.Contains(t, r.stdout, "page 1 of 3, 5 matching\n")
	m := regexp.MustCompile(`(?m)^next page: --cursor (\S+)$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	var page struct {
		Items []apiKey `json:"items"`
	}
	ts.okJSON(&page, "key", "list", "--name", "startswith:ci-", "--size", "2", "--cursor", m[1])
	require.Len(t, page.Items, 2)
	assert.Equal(t, want[2:4], []string{page.Items[0].ID, page.Items[1].ID})

	// --all walks every page, 2 at a time, into one JSON array.
	var all []apiKey
	ts.okJSON(&all, "key", "list", "--name", "startswith:ci-", "--size", "2", "--all")
	var got []string
	for _, k := range all {
		got = append(got, k.ID)
	}
	assert.Equal(t, want, got)

	r = ts.ok("key", "list", "--name", "nobody")
	assert.Equal(t, "no keys match\n", r.stdout)

	// --all with no match is an empty array, not null.
	r = ts.ok("key", "list", "--name", "nobody", "--all", "--json")
	assert.Equal(t, "[]\n", r.stdout)

	r = ts.run(nil, "key", "list", "--all", "--page", "2")
	assert.Equal(t, exitUsage, r.code)
}
