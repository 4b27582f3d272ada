package rpc_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInvalidRequests covers request objects the specification rejects and
// the traps of encoding/json: case-insensitive names and duplicate keys.
func TestInvalidRequests(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name, body string
		id         string // the id the reply must carry
		code       int64
	}{
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","method":"server.list","id":1}`, "1", rpc.CodeInvalidRequest},
		{"jsonrpc missing", `{"method":"server.list","id":1}`, "1", rpc.CodeInvalidRequest},
		{"jsonrpc number", `{"jsonrpc":2.0,"method":"server.list","id":1}`, "1", rpc.CodeInvalidRequest},
		{"method missing", `{"jsonrpc":"2.0","id":1}`, "1", rpc.CodeInvalidRequest},
		{"method upper-case member", `{"jsonrpc":"2.0","METHOD":"server.list","id":1}`, "1", rpc.CodeInvalidRequest},
		{"method mixed-case beside method", `{"jsonrpc":"2.0","method":"server.list","Method":"apikey.delete","id":1}`, "1", rpc.CodeInvalidRequest},
		{"method twice", `{"jsonrpc":"2.0","method":"server.list","method":"apikey.list","id":1}`, "null", rpc.CodeInvalidRequest},
		{"method escaped twice", `{"jsonrpc":"2.0","method":"server.list","m\u0065thod":"apikey.list","id":1}`, "null", rpc.CodeInvalidRequest},
		{"method null", `{"jsonrpc":"2.0","method":null,"id":1}`, "1", rpc.CodeInvalidRequest},
		{"params scalar", `{"jsonrpc":"2.0","method":"server.list","params":3,"id":1}`, "1", rpc.CodeInvalidRequest},
		{"params string", `{"jsonrpc":"2.0","method":"server.list","params":"x","id":1}`, "1", rpc.CodeInvalidRequest},
		{"id object", `{"jsonrpc":"2.0","method":"server.list","id":{}}`, "null", rpc.CodeInvalidRequest},
		{"id bool", `{"jsonrpc":"2.0","method":"server.list","id":true}`, "null", rpc.CodeInvalidRequest},
		{"unknown member", `{"jsonrpc":"2.0","method":"server.list","id":1,"meta":{}}`, "1", rpc.CodeInvalidRequest},
		{"not an object", `"server.list"`, "null", rpc.CodeInvalidRequest},
		{"param case variant", `{"jsonrpc":"2.0","method":"server.reboot","params":{"NAME":"web1"},"id":1}`, "1", rpc.CodeInvalidParams},
		{"param twice", `{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","name":"web2"},"id":1}`, "1", rpc.CodeInvalidParams},
		{"too many positional", `{"jsonrpc":"2.0","method":"server.reboot","params":["web1",true,3],"id":1}`, "1", rpc.CodeInvalidParams},
		{"deeply nested params", `{"jsonrpc":"2.0","method":"server.reboot","params":{"name":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `},"id":1}`, "1", rpc.CodeInvalidParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				status, body := ts.post(ts.Admin, tt.body)
				require.Equal(t, http.StatusOK, status)
				var r wireResponse
				require.NoError(t, json.Unmarshal(body, &r), "reply: %s", body)
				require.NotNil(t, r.Error, "reply: %s", body)
				assert.Equal(t, tt.code, r.Error.Code, "reply: %s", body)
				assert.Equal(t, tt.id, string(r.ID))
				assert.NotEmpty(t, r.Error.Data.ErrorID)
			})
		})
	}
	assert.Empty(t, *ts.Reboots, "an invalid request ran a handler")
}
