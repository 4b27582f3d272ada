package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeClientsDir holds the node script and the pinned client libraries
// TestClients runs (relative to this package, where go test runs).
var nodeClientsDir = filepath.Join("..", "testdata", "clients", "node")

// clientsReport is what testdata/clients/node/client.mjs prints.
type clientsReport struct {
	// Versions are the library versions node loaded.
	Versions map[string]string `json:"versions"`
	Jayson   libraryReport     `json:"jayson"`
	JSONRPC2 libraryReport     `json:"json-rpc-2.0"`
}

// libraryReport is what one library got back.
type libraryReport struct {
	// Single is the result of apikey.info on the calling key.
	Single rpc.KeyInfo `json:"single"`
	Batch  struct {
		// Sent lists the batch's calls in order; a notification has no id.
		Sent []struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		} `json:"sent"`
		// Replies are the replies as the library handed them over.
		Replies []struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Result  json.RawMessage `json:"result"`
			Error   *wireError      `json:"error"`
		} `json:"replies"`
		// ErrorIDs and SuccessIDs are the ids jayson sorted into its error
		// and success lists; json-rpc-2.0 has no such split.
		ErrorIDs   []json.RawMessage `json:"error_ids"`
		SuccessIDs []json.RawMessage `json:"success_ids"`
	} `json:"batch"`
	// Error is apikey.info of a key that does not exist.
	Error clientError `json:"error"`
	// Unauthenticated is server.list with a key the server never issued.
	Unauthenticated clientError `json:"unauthenticated"`
}

// clientError is a JSON-RPC error as a library surfaced it; Kind says in
// what form (a reply's error member, or an exception class).
type clientError struct {
	Kind string `json:"kind"`
	wireError
}

// TestClients proves two JSON-RPC client libraries that apikeyd's authors
// did not write, jayson and json-rpc-2.0 (npm), interoperate with the
// server: single calls, a mixed batch matched by id, and errors whose code
// and data.error_id reach the caller, all with the key in Authorization.
func TestClients(t *testing.T) {
	pinned := pinnedNodeVersions(t)
	node, nodeErr := exec.LookPath("node")
	switch verdict, why := clientsPrecondition(inCI(os.Getenv("CI")), nodeErr, missingNodePackages(pinned)); verdict {
	case clientsSkip:
		t.Skip(why)
	case clientsFail:
		t.Fatal(why)
	}

	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.info", "server.list"}}, "node clients")

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = nodeClientsDir
	// The key goes by environment, not argv, to stay out of process listings.
	cmd.Env = append(os.Environ(), "APIKEYD_URL="+ts.URL, "APIKEYD_KEY="+k.Key, "APIKEYD_KEY_ID="+k.ID)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "client.mjs failed; stderr:\n%s", stderr.String())

	t.Logf("client.mjs reported: %s", stdout.Bytes())
	var report clientsReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report), "client.mjs output: %s", stdout.String())
	// A stale node_modules would test other versions than the lock file pins.
	require.Equal(t, pinned, report.Versions, "installed versions differ from package.json: run `make node-deps` after removing %s/node_modules", nodeClientsDir)

	t.Run("jayson", func(t *testing.T) {
		checkLibrary(t, report.Jayson, k, "reply.error")
		// jayson's three-argument callback splits a batch into error and
		// success replies; each must land on the right side.
		r := report.Jayson.Batch
		assert.ElementsMatch(t, []json.RawMessage{r.Sent[2].ID, r.Sent[3].ID, r.Sent[4].ID}, r.ErrorIDs)
		assert.ElementsMatch(t, []json.RawMessage{r.Sent[0].ID, r.Sent[1].ID}, r.SuccessIDs)
		assert.JSONEq(t, `"j1"`, string(r.Sent[0].ID), "jayson sends the string ids it was given")
	})
	t.Run("json-rpc-2.0", func(t *testing.T) {
		checkLibrary(t, report.JSONRPC2, k, "JSONRPCErrorException")
		r := report.JSONRPC2.Batch
		assert.Nil(t, r.ErrorIDs)
		assert.Nil(t, r.SuccessIDs)
		assert.JSONEq(t, `101`, string(r.Sent[0].ID), "json-rpc-2.0 sends the numeric ids it was given")
	})
	// The scope refusal must have stopped server.reboot before it ran.
	assert.Empty(t, *ts.Reboots)
}

// checkLibrary asserts everything one library got back; errorKind is how it
// surfaces a single call's error.
func checkLibrary(t *testing.T, r libraryReport, k rpc.NewKeyInfo, errorKind string) {
	t.Helper()

	assert.Equal(t, k.ID, r.Single.ID)
	assert.Equal(t, "node clients", r.Single.Comment)
	assert.Equal(t, scope.Scopes{Method: []string{"apikey.info", "server.list"}}, r.Single.Scopes)
	assert.True(t, r.Single.Active)
	assert.True(t, fixedNow.Equal(r.Single.Created), "created %v", r.Single.Created)

	// The batch, in the order client.mjs sends it.
	type outcome struct {
		method  string
		result  string // JSON; "" for an error or no reply
		code    int64
		errorID string
		field   string
		noReply bool // a notification
	}
	want := []outcome{
		{method: "server.list", result: `[{"name":"web1","status":"running"},{"name":"web2","status":"running"}]`},
		{method: "apikey.info"}, // its result is checked below
		{method: "no.such.method", code: rpc.CodeMethodNotFound, errorID: rpc.ErrIDMethodNotFound},
		{method: "server.reboot", code: rpc.CodeForbidden, errorID: rpc.ErrIDScopeDenied},
		{method: "apikey.info", code: rpc.CodeInvalidParams, errorID: rpc.ErrIDInvalidParams, field: "id"},
		{method: "server.list", noReply: true},
	}
	b := r.Batch
	require.Len(t, b.Sent, len(want))
	require.Len(t, b.Replies, len(want)-1, "one reply per call with an id")
	byID := map[string]int{}
	for i, rep := range b.Replies {
		_, dup := byID[string(rep.ID)]
		require.False(t, dup, "two replies with id %s", rep.ID)
		byID[string(rep.ID)] = i
	}
	for i, w := range want {
		sent := b.Sent[i]
		require.Equal(t, w.method, sent.Method, "call %d", i)
		if w.noReply {
			assert.Empty(t, sent.ID, "call %d is a notification", i)
			continue
		}
		require.NotEmpty(t, sent.ID, "call %d has an id", i)
		j, ok := byID[string(sent.ID)]
		require.True(t, ok, "no reply to call %d (%s, id %s)", i, w.method, sent.ID)
		rep := b.Replies[j]
		assert.Equal(t, "2.0", rep.JSONRPC, "call %d (%s)", i, w.method)
		if w.code == 0 {
			require.Nil(t, rep.Error, "call %d (%s) failed: %+v", i, w.method, rep.Error)
			require.NotEmpty(t, rep.Result, "call %d (%s)", i, w.method)
			if w.result != "" {
				assert.JSONEq(t, w.result, string(rep.Result), "call %d (%s)", i, w.method)
			} else {
				var info rpc.KeyInfo
				require.NoError(t, json.Unmarshal(rep.Result, &info))
				assert.Equal(t, k.ID, info.ID)
				assert.Equal(t, "node clients", info.Comment)
			}
			continue
		}
		assert.Empty(t, rep.Result, "call %d (%s) has a result beside its error", i, w.method)
		require.NotNil(t, rep.Error, "call %d (%s) succeeded with %s", i, w.method, rep.Result)
		assert.Equal(t, w.code, rep.Error.Code, "call %d (%s)", i, w.method)
		assert.Equal(t, w.errorID, rep.Error.Data.ErrorID, "call %d (%s)", i, w.method)
		assert.Equal(t, w.field, rep.Error.Data.Field, "call %d (%s)", i, w.method)
		assert.NotEmpty(t, rep.Error.Message, "call %d (%s)", i, w.method)
	}

	assert.Equal(t, errorKind, r.Error.Kind)
	assert.Equal(t, int64(rpc.CodeNotFound), r.Error.Code)
	assert.Equal(t, rpc.ErrIDKeyNotFound, r.Error.Data.ErrorID)
	assert.NotEmpty(t, r.Error.Message)

	assert.Equal(t, errorKind, r.Unauthenticated.Kind)
	assert.Equal(t, int64(rpc.CodeUnauthenticated), r.Unauthenticated.Code)
	assert.Equal(t, rpc.ErrIDInvalidKey, r.Unauthenticated.Data.ErrorID)
	assert.NotEmpty(t, r.Unauthenticated.Message)
}

// pinnedNodeVersions returns the exact versions package.json pins.
func pinnedNodeVersions(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(nodeClientsDir, "package.json"))
	require.NoError(t, err)
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	require.NoError(t, json.Unmarshal(b, &pkg))
	require.Len(t, pkg.Dependencies, 2, "package.json pins jayson and json-rpc-2.0")
	return pkg.Dependencies
}
