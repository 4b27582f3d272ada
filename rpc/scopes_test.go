package rpc_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScopes_EndToEnd proves method and name scopes on registered methods,
// by name and by position.
func TestScopes_EndToEnd(t *testing.T) {
	ts := newTestServer(t)
	rebootWeb1 := ts.createKey(ts.Admin, map[string][]string{"method": {"server.reboot"}, "name": {"web1"}}, "reboot web1").Key
	anyWeb1 := ts.createKey(ts.Admin, map[string][]string{"name": {"web1", "web3"}}, "web1 and web3").Key
	servers := ts.createKey(ts.Admin, map[string][]string{"method": {"server.*"}}, "servers").Key
	listOnly := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list"}}, "list").Key

	tests := []struct {
		key, method string
		params      any
		allowed     bool
	}{
		{rebootWeb1, "server.reboot", map[string]any{"name": "web1"}, true},
		{rebootWeb1, "server.reboot", []any{"web1"}, true},
		{rebootWeb1, "server.reboot", map[string]any{"name": "web2"}, false},
		{rebootWeb1, "server.reboot", []any{"web2", true}, false},
		{rebootWeb1, "server.reboot", nil, false},
		{rebootWeb1, "server.list", nil, false},
		{rebootWeb1, "apikey.list", nil, false},
		{anyWeb1, "server.reboot", map[string]any{"name": "web3"}, true},
		{anyWeb1, "server.reboot", map[string]any{"name": "web2"}, false},
		{anyWeb1, "server.list", nil, false},
		{anyWeb1, "apikey.info", map[string]any{"id": anyWeb1}, false},
		{servers, "server.reboot", map[string]any{"name": "anything"}, true},
		{servers, "server.list", nil, true},
		{servers, "apikey.list", nil, false},
		{listOnly, "server.list", nil, true},
		{listOnly, "server.reboot", map[string]any{"name": "web1"}, false},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s", i, tt.method), func(t *testing.T) {
			before := len(*ts.Reboots)
			r := ts.call(tt.key, tt.method, tt.params)
			if tt.allowed {
				assert.Nil(t, r.Error)
				return
			}
			require.NotNil(t, r.Error)
			assert.Equal(t, int64(rpc.CodeForbidden), r.Error.Code)
			assert.Equal(t, rpc.ErrIDScopeDenied, r.Error.Data.ErrorID)
			assert.Len(t, *ts.Reboots, before, "a denied call ran")
		})
	}

	// A name scope cannot be slipped past with a mis-cased or repeated key,
	// or a name of the wrong type.
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","Name":"web2"},"id":1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","name":"web2"},"id":1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web2","name":"web1"},"id":1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":["web1"]},"id":1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":[["web1"]],"id":1}`,
		`{"jsonrpc":"2.0","method":"SERVER.REBOOT","params":{"name":"web1"},"id":1}`,
	} {
		_, reply := ts.post(rebootWeb1, body)
		var r wireResponse
		require.NoError(t, json.Unmarshal(reply, &r))
		assert.NotNil(t, r.Error, "%s was allowed", body)
	}
	assert.Equal(t, []string{"web1", "web1", "web3", "anything"}, *ts.Reboots)
}
