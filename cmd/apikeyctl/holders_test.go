package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAccount_Commands(t *testing.T) {
	ts := startServer(t)
	var acme struct {
		Name     string `json:"name"`
		Comment  string `json:"comment"`
		Keys     int    `json:"keys"`
		FirstKey apiKey `json:"first_key"`
	}
	r := ts.okJSON(&acme, "account", "create", "acme", "--comment", "Acme Ltd")
	assert.Equal(t, "Acme Ltd", acme.Comment)
	require.NotNil(t, acme.FirstKey.Key)
	assert.Equal(t, 1, strings.Count(r.stdout+r.stderr, *acme.FirstKey.Key))

	// For people: the account, then its first key with the secret once.
	r = ts.ok("account", "create", "globex")
	assert.Regexp(t, `(?m)^name\s+globex$`, r.stdout)
	assert.Contains(t, r.stdout, "\nfirst key:\n")
	secret := tableValue(t, r.stdout[strings.Index(r.stdout, "first key:"):], "key")
	assert.Equal(t, 1, strings.Count(r.stdout+r.stderr, secret))
	assert.Contains(t, r.stderr, "shown only this once")

	r = ts.ok("account", "list")
	assert.Regexp(t, `(?m)^NAME\s+COMMENT\s+CREATED\s+KEYS$`, r.stdout)
	assert.Regexp(t, `(?m)^acme\s+Acme Ltd\s+\S+\s+1$`, r.stdout)
	r = ts.ok("account", "update", "acme", "--comment", "Acme plc")
	assert.Regexp(t, `(?m)^comment\s+Acme plc$`, r.stdout)
	r = ts.ok("account", "info", "acme")
	assert.Regexp(t, `(?m)^keys\s+1$`, r.stdout)
	ts.ok("account", "delete", "acme")
	assert.Equal(t, exitNotFound, ts.run(nil, "account", "info", "acme").code)
	// The tenant's key went with its account.
	assert.Equal(t, exitAuth, ts.run(map[string]string{"APIKEYD_KEY": *acme.FirstKey.Key}, "key", "list").code)
}

func TestUser_Commands(t *testing.T) {
	ts := startServer(t)
	const pw = "correct horse battery"
	r := ts.runStdin(pw+"\n", nil, "user", "create", "alice", "--password-stdin")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^login\s+alice@operator$`, r.stdout)
	r = ts.run(nil, "user", "create", "bob")
	assert.Equal(t, exitUsage, r.code, "no password, no call")
	assert.Contains(t, r.stderr, "--password-stdin")

	r = ts.ok("user", "list")
	assert.Regexp(t, `(?m)^alice\s+alice@operator\s`, r.stdout)

	// login needs no key; the new key is printed once.
	r = ts.runStdin(pw+"\n", map[string]string{"APIKEYD_KEY": ""}, "user", "login", "alice@operator", "--access-level", "apikey", "--password-stdin", "--comment", "laptop")
	require.Equal(t, exitOK, r.code, r.stderr)
	secret := tableValue(t, r.stdout, "key")
	assert.Equal(t, 1, strings.Count(r.stdout+r.stderr, secret))
	assert.Regexp(t, `(?m)^owner\s+user:alice@operator$`, r.stdout)
	id := tableValue(t, r.stdout, "id")
	r = ts.runStdin("wrong password\n", map[string]string{"APIKEYD_KEY": ""}, "user", "login", "alice@operator", "--access-level", "apikey", "--password-stdin")
	assert.Equal(t, exitAuth, r.code)
	assert.Contains(t, r.stderr, "[login_failed]")

	r = ts.ok("user", "apikeys", "alice")
	assert.Regexp(t, `(?m)^ID\s+ACCESS_LEVEL\s+CREATED\s+COMMENT$`, r.stdout)
	assert.Regexp(t, `(?m)^`+id+`\s+apikey\s+\S+\s+laptop$`, r.stdout)
	// The user's own key lists its keys without naming the user.
	r = ts.run(map[string]string{"APIKEYD_KEY": secret}, "user", "apikeys")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, id)

	r = ts.run(map[string]string{"APIKEYD_PASSWORD": "another good one"}, "user", "set-password", "alice")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "password set\n", r.stdout)
	ts.ok("user", "unlock", "alice")
	r = ts.ok("user", "delete-apikey", id)
	assert.Contains(t, r.stdout, id)
	ts.ok("user", "delete", "alice")
	assert.Equal(t, exitNotFound, ts.run(nil, "user", "unlock", "alice").code)
	for _, o := range ts.outputs {
		assert.NotContains(t, o, pw)
		assert.NotContains(t, o, "another good one")
	}
}

func TestServiceAccountAndAudit_Commands(t *testing.T) {
	ts := startServer(t)
	r := ts.ok("service-account", "create", "ci", "--description", "CI pipeline")
	assert.Regexp(t, `(?m)^description\s+CI pipeline$`, r.stdout)
	var k apiKey
	ts.okJSON(&k, "key", "create", "--service-account", "ci", "--method", "vm.resize")
	r = ts.ok("sa", "info", "ci")
	assert.Regexp(t, `(?m)^keys\s+1$`, r.stdout)
	r = ts.ok("service-account", "update", "ci", "--active=false")
	assert.Regexp(t, `(?m)^active\s+false$`, r.stdout)
	assert.Equal(t, exitAuth, ts.run(map[string]string{"APIKEYD_KEY": *k.Key}, "call", "vm.resize", "name=web1").code,
		"a switched-off service account's key fails like an unknown one")
	r = ts.ok("service-account", "list")
	assert.Regexp(t, `(?m)^ci\s+CI pipeline\s+false\s`, r.stdout)
	ts.ok("service-account", "delete", "ci")
	assert.Equal(t, exitNotFound, ts.run(nil, "sa", "info", "ci").code)

	// The audit trail has those calls; --limit pages and --all follows.
	var page struct {
		Records []struct {
			Method  string `json:"method"`
			Outcome string `json:"outcome"`
		} `json:"records"`
		Next *int64 `json:"next"`
	}
	ts.okJSON(&page, "audit", "list", "--method", "service_account.create")
	require.Len(t, page.Records, 1)
	assert.Equal(t, "ok", page.Records[0].Outcome)
	r = ts.ok("audit", "list", "--limit", "2")
	assert.Regexp(t, `(?m)^SEQ\s+TIME\s+ACCOUNT\s+ACTOR\s+SOURCE_IP\s+METHOD\s+TARGET\s+OUTCOME\s+COUNT$`, r.stdout)
	assert.Regexp(t, `(?m)^next page: --after \d+$`, r.stdout)
	var all []struct {
		Method string `json:"method"`
	}
	ts.okJSON(&all, "audit", "list", "--limit", "2", "--all")
	var methods []string
	for _, rec := range all {
		methods = append(methods, rec.Method)
	}
	assert.Equal(t, []string{"service_account.create", "apikey.create", "service_account.update", "service_account.delete"}, methods)
}

// TestHelp: every command has help with examples, the root's help lists
// the exit codes and warns about --key, and completion scripts come out.
func TestHelp(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" {
			return // cobra's own, with help of their own
		}
		assert.NotEmpty(t, c.Example, "%s has no example", c.CommandPath())
		assert.NotEmpty(t, c.Short, "%s has no summary", c.CommandPath())
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := a.rootCommand()
	root.InitDefaultCompletionCmd()
	walk(root)

	ts := startServer(t)
	r := ts.ok("--help")
	assert.Contains(t, r.stdout, "Exit codes:")
	assert.Contains(t, r.stdout, "8  the server cannot be reached")
	assert.Contains(t, r.stdout, "visible to other users of the machine in ps")
	r = ts.ok("key", "create", "--help")
	assert.Contains(t, r.stdout, "Examples:")
	assert.Contains(t, r.stdout, "--name-scope")
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r = ts.ok("completion", sh)
		assert.Contains(t, r.stdout, "apikeyctl", sh)
	}
	r = ts.ok("__complete", "key", "")
	for _, sub := range []string{"create", "list", "info", "update", "rotate", "delete", "add-scope", "delete-scope"} {
		assert.Contains(t, r.stdout, sub+"\t")
	}
}

// TestNoServerCode: the client binary links none of the server's packages
// and no bbolt, so it can be shipped alone (and survives the server's
// packages moving about).
func TestNoServerCode(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list the binary's packages")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	require.NoError(t, err)
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/apikeyd/apikeyd/") {
			assert.True(t, strings.HasPrefix(pkg, "github.com/apikeyd/apikeyd/cmd/apikeyctl"), "apikeyctl imports %s", pkg)
		}
		assert.NotContains(t, pkg, "bbolt")
		assert.NotContains(t, pkg, "sourcegraph/jsonrpc2")
	}
}
