package rpc_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpecExamples replays every example of section 7 of the JSON-RPC 2.0
// specification, with apikeyd's methods in place of the spec's: "subtract"
// becomes server.reboot (it takes params), "sum" and "get_data" become
// server.list, "notify_*" become apikey.list, "foobar" stays unknown. The
// reply must equal the spec's once the data member, which apikeyd adds to
// every error, is set aside; data.error_id is checked on its own.
func TestSpecExamples(t *testing.T) {
	tests := []struct {
		name     string
		request  string
		reply    string   // "" when the spec expects nothing back
		errorIDs []string // data.error_id of each error in the reply, in order
	}{
		{
			name:    "positional params",
			request: `{"jsonrpc": "2.0", "method": "server.reboot", "params": ["web1", true], "id": 1}`,
			reply:   `{"jsonrpc": "2.0", "result": {"name": "web1", "status": "rebooting"}, "id": 1}`,
		},
		{
			name:    "positional params, second",
			request: `{"jsonrpc": "2.0", "method": "server.reboot", "params": ["web2"], "id": 2}`,
			reply:   `{"jsonrpc": "2.0", "result": {"name": "web2", "status": "rebooting"}, "id": 2}`,
		},
		{
			name:    "named params",
			request: `{"jsonrpc": "2.0", "method": "server.reboot", "params": {"force": true, "name": "web1"}, "id": 3}`,
			reply:   `{"jsonrpc": "2.0", "result": {"name": "web1", "status": "rebooting"}, "id": 3}`,
		},
		{
			name:    "named params, other order",
			request: `{"jsonrpc": "2.0", "method": "server.reboot", "params": {"name": "web1", "force": true}, "id": 4}`,
			reply:   `{"jsonrpc": "2.0", "result": {"name": "web1", "status": "rebooting"}, "id": 4}`,
		},
		{
			name:    "notification",
			request: `{"jsonrpc": "2.0", "method": "server.reboot", "params": ["web1"]}`,
		},
		{
			name:    "notification without params",
			request: `{"jsonrpc": "2.0", "method": "apikey.list"}`,
		},
		{
			name:     "non-existent method",
			request:  `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
			reply:    `{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}`,
			errorIDs: []string{"method_not_found"},
		},
		{
			name:     "invalid JSON",
			request:  `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
			reply:    `{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`,
			errorIDs: []string{"parse_error"},
		},
		{
			name:     "invalid Request object",
			request:  `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
			reply:    `{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`,
			errorIDs: []string{"invalid_request"},
		},
		{
			name: "batch, invalid JSON",
			request: `[
  {"jsonrpc": "2.0", "method": "server.list", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]`,
			reply:    `{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`,
			errorIDs: []string{"parse_error"},
		},
		{
			name:     "empty array",
			request:  `[]`,
			reply:    `{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`,
			errorIDs: []string{"invalid_request"},
		},
		{
			name:     "invalid batch, not empty",
			request:  `[1]`,
			reply:    `[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]`,
			errorIDs: []string{"invalid_request"},
		},
		{
			name:    "invalid batch",
			request: `[1,2,3]`,
			reply: `[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]`,
			errorIDs: []string{"invalid_request", "invalid_request", "invalid_request"},
		},
		{
			name: "batch",
			request: `[
        {"jsonrpc": "2.0", "method": "server.list", "id": "1"},
        {"jsonrpc": "2.0", "method": "apikey.list"},
        {"jsonrpc": "2.0", "method": "server.reboot", "params": ["web2"], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "server.list", "id": "9"}
    ]`,
			reply: `[
        {"jsonrpc": "2.0", "result": [{"name": "web1", "status": "running"}, {"name": "web2", "status": "running"}], "id": "1"},
        {"jsonrpc": "2.0", "result": {"name": "web2", "status": "rebooting"}, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": [{"name": "web1", "status": "running"}, {"name": "web2", "status": "running"}], "id": "9"}
    ]`,
			errorIDs: []string{"invalid_request", "method_not_found"},
		},
		{
			name: "batch, all notifications",
			request: `[
        {"jsonrpc": "2.0", "method": "apikey.list", "params": {}},
        {"jsonrpc": "2.0", "method": "server.reboot", "params": ["web1"]}
    ]`,
		},
	}
	ts := newTestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := ts.post(ts.Admin, tt.request)
			if tt.reply == "" {
				assert.Equal(t, http.StatusNoContent, status)
				assert.Empty(t, body)
				return
			}
			require.Equal(t, http.StatusOK, status)
			got, ids := withoutErrorData(t, body)
			assert.JSONEq(t, tt.reply, got)
			assert.Equal(t, tt.errorIDs, ids)
		})
	}
}

// withoutErrorData returns body with the data member of every error removed,
// and the error ids that member carried.
func withoutErrorData(t *testing.T, body []byte) (string, []string) {
	t.Helper()
	var ids []string
	strip := func(m map[string]any) {
		e, ok := m["error"].(map[string]any)
		if !ok {
			return
		}
		data, ok := e["data"].(map[string]any)
		require.True(t, ok, "error without data: %v", e)
		id, _ := data["error_id"].(string)
		ids = append(ids, id)
		delete(e, "data")
	}
	var v any
	require.NoError(t, json.Unmarshal(body, &v), "reply: %s", body)
	switch v := v.(type) {
	case map[string]any:
		strip(v)
	case []any:
		for _, e := range v {
			strip(e.(map[string]any))
		}
	}
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return string(out), ids
}

// TestIDEcho proves ids come back byte for byte as sent.
func TestIDEcho(t *testing.T) {
	ts := newTestServer(t)
	for _, id := range []string{
		`1`, `0`, `-1`, `-9223372036854775809`, `18446744073709551616`, `123456789012345678901234567890`,
		`1.5`, `1e3`, `"1"`, `""`, `"ünïcødé \u00e9 \"quoted\""`, `null`,
	} {
		t.Run(id, func(t *testing.T) {
			for _, method := range []string{"server.list", "no.such"} {
				_, body := ts.post(ts.Admin, `{"jsonrpc":"2.0","method":"`+method+`","id":`+id+`}`)
				assert.True(t, strings.HasSuffix(string(body), `,"id":`+id+`}`), "reply %s does not end with id %s", body, id)
			}
		})
	}
}
