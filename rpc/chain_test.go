package rpc_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The chain around every call: recovery from a panic, one log line per call.

func TestPanicRecovery(t *testing.T) {
	ts := newTestServer(t)
	e := ts.fail(ts.Admin, "server.panic", nil, rpc.CodeInternalError, rpc.ErrIDInternal)
	assert.Equal(t, "internal error", e.Message)
	assert.NotContains(t, e.Message+e.Data.Detail, "boom", "panic text reached the client")
	// The server goes on, in the same batch and afterwards.
	status, body := ts.post(ts.Admin, `[{"jsonrpc":"2.0","method":"server.panic","id":1},{"jsonrpc":"2.0","method":"server.list","id":2}]`)
	require.Equal(t, http.StatusOK, status)
	var replies []wireResponse
	require.NoError(t, json.Unmarshal(body, &replies))
	require.Len(t, replies, 2)
	assert.NotNil(t, replies[0].Error)
	assert.Nil(t, replies[1].Error)
	ts.ok(ts.Admin, "server.list", nil, nil)
	assert.Contains(t, ts.Log.String(), `"panic":"boom"`)
	// Each panicking call still has its call line.
	assert.Equal(t, 2, strings.Count(ts.Log.String(), `"method":"server.panic","dur_us"`), ts.Log.String())
	assert.Equal(t, 2, strings.Count(ts.Log.String(), `"outcome":"internal_error"`))
}

// TestLog proves one line per call with method, key id, duration and outcome,
// and that no secret, digest or password reaches the log.
func TestLog(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list", "apikey.info"}}, "logged")
	ts.ok(k.Key, "server.list", nil, nil)
	ts.ok(k.Key, "apikey.info", map[string]any{"id": k.Key}, nil)
	ts.fail(k.Key, "apikey.delete", map[string]any{"id": k.Key}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	ts.fail("ffffffffffffffffffffffffffffffff", "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail("", "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDMissingKey)
	ts.fail(ts.Admin, "no.such", nil, rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound)
	ts.fail(ts.Admin, k.Key, nil, rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound) // a key as a method name

	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(ts.Log.String()))
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "not a JSON line: %s", sc.Text())
		if _, ok := line["outcome"]; ok {
			lines = append(lines, line)
		}
	}
	require.Len(t, lines, 8, "one line per call (1 create + 7 above)")
	for _, l := range lines {
		assert.Contains(t, l, "method")
		assert.Contains(t, l, "dur_us")
		assert.Contains(t, l, "outcome")
	}
	assert.Equal(t, "server.list", lines[1]["method"])
	assert.Equal(t, k.ID, lines[1]["key_id"])
	assert.Equal(t, "ok", lines[1]["outcome"])
	assert.Equal(t, "scope_denied", lines[3]["outcome"])
	assert.Contains(t, lines[3]["reason"], "apikey.delete")
	assert.Equal(t, "invalid_key", lines[4]["outcome"])
	assert.NotContains(t, lines[4], "key_id")

	log := ts.Log.String()
	for _, secret := range []string{ts.Admin, k.Key, "ffffffffffffffffffffffffffffffff"} {
		assert.NotContains(t, log, secret, "a secret reached the log")
		d := sha256Hex(secret)
		assert.NotContains(t, log, d, "a digest reached the log")
	}
}
