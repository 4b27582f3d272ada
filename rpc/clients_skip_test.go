package rpc_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// clientsVerdict is whether TestClients runs, skips or fails before it
// starts, given what this machine has.
type clientsVerdict int

const (
	clientsRun clientsVerdict = iota
	clientsSkip
	clientsFail
)

func (v clientsVerdict) String() string {
	return [...]string{"run", "skip", "fail"}[v]
}

// inCI reports whether the CI environment variable marks a CI run: set to
// anything but a false value ("", "0", "false").
func inCI(value string) bool {
	if value == "" {
		return false
	}
	b, err := strconv.ParseBool(value)
	return err != nil || b
}

// clientsPrecondition decides whether TestClients can run: nodeErr is what
// looking node up on PATH returned, missing the pinned packages not found
// in node_modules. Outside CI a machine without node or without the
// packages (npm absent, or its install failed) skips the test with a
// message that says what to do; in CI the same is a failure, so that the
// interoperability test can never silently stop running there.
func clientsPrecondition(ci bool, nodeErr error, missing []string) (clientsVerdict, string) {
	var why string
	switch {
	case nodeErr != nil:
		why = "node is not on PATH; the client interoperability test needs node, and npm to install its packages (README: Prerequisites)"
	case len(missing) > 0:
		why = fmt.Sprintf("%s not installed in %s/node_modules; run `make node-deps` (it needs npm and the network)",
			strings.Join(missing, ", "), nodeClientsDir)
	default:
		return clientsRun, ""
	}
	if ci {
		return clientsFail, why + "; CI is set, so this is a failure, not a skip"
	}
	return clientsSkip, why + "; skipping outside CI (in CI this fails)"
}

// missingNodePackages lists, sorted, the pinned packages that are not
// installed under nodeClientsDir.
func missingNodePackages(pinned map[string]string) []string {
	var missing []string
	for pkg := range pinned {
		if _, err := os.Stat(filepath.Join(nodeClientsDir, "node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, pkg)
		}
	}
	sort.Strings(missing)
	return missing
}

func TestInCI(t *testing.T) {
	for value, want := range map[string]bool{
		"":      false,
		"0":     false,
		"false": false,
		"FALSE": false,
		"true":  true,
		"1":     true,
		"yes":   true, // not a boolean, but set: a CI run
	} {
		assert.Equal(t, want, inCI(value), "CI=%q", value)
	}
}

func TestClientsPrecondition(t *testing.T) {
	noNode := &exec.Error{Name: "node", Err: exec.ErrNotFound}
	tests := []struct {
		name     string
		ci       bool
		nodeErr  error
		missing  []string
		want     clientsVerdict
		contains []string
	}{
		{name: "all there, outside CI", want: clientsRun},
		{name: "all there, in CI", ci: true, want: clientsRun},
		{name: "no node, outside CI", nodeErr: noNode, want: clientsSkip,
			contains: []string{"node is not on PATH", "skipping outside CI"}},
		{name: "no node, in CI", ci: true, nodeErr: noNode, want: clientsFail,
			contains: []string{"node is not on PATH", "CI is set"}},
		{name: "packages not installed, outside CI", missing: []string{"jayson", "json-rpc-2.0"}, want: clientsSkip,
			contains: []string{"jayson, json-rpc-2.0 not installed", "make node-deps", "skipping outside CI"}},
		{name: "one package not installed, in CI", ci: true, missing: []string{"jayson"}, want: clientsFail,
			contains: []string{"jayson not installed", "make node-deps", "CI is set"}},
		{name: "no node and no packages, in CI", ci: true, nodeErr: errors.New("lookup failed"), missing: []string{"jayson"},
			want: clientsFail, contains: []string{"node is not on PATH"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := clientsPrecondition(tt.ci, tt.nodeErr, tt.missing)
			assert.Equal(t, tt.want, got, "verdict")
			if tt.want == clientsRun {
				assert.Empty(t, msg)
			}
			for _, s := range tt.contains {
				assert.Contains(t, msg, s)
			}
		})
	}
}

// TestMissingNodePackages checks the lookup TestClients' verdict rests on,
// against the real node_modules directory: a package that is not pinned
// there is reported missing, by name.
func TestMissingNodePackages(t *testing.T) {
	got := missingNodePackages(map[string]string{"no-such-package-apikeyd": "1.0.0", "another-missing": "2.0.0"})
	assert.Equal(t, []string{"another-missing", "no-such-package-apikeyd"}, got)
	assert.Empty(t, missingNodePackages(nil))
}

// TestClientsWithoutNode runs TestClients in a copy of this test binary on
// a PATH without node: outside CI it must skip and say why, in CI fail.
func TestClientsWithoutNode(t *testing.T) {
	if os.Getenv("APIKEYD_CLIENTS_CHILD") != "" {
		t.Skip("already the child run")
	}
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestClients$", "-test.v", "-test.count=1")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "CI=") {
					env = append(env, kv)
				}
			}
			env = append(env, "PATH="+t.TempDir(), "APIKEYD_CLIENTS_CHILD=1")
			if ci != "" {
				env = append(env, "CI="+ci)
			}
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			assert.Contains(t, string(out), "node is not on PATH")
			if ci == "" {
				assert.NoError(t, err, "outside CI the test skips:\n%s", out)
				assert.Contains(t, string(out), "--- SKIP: TestClients")
			} else {
				assert.Error(t, err, "in CI the test fails:\n%s", out)
				assert.Contains(t, string(out), "--- FAIL: TestClients")
			}
		})
	}
}
