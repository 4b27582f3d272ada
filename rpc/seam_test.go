package rpc_test

import (
	"context"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCall_AnswersAsServeHTTP: Server.Call, the seam every way in uses,
// answers a body exactly as the same body posted over HTTP is answered:
// a single call, a batch, a notification, a body that is not JSON, an
// unknown key. Its reply is appended to dst.
func TestCall_AnswersAsServeHTTP(t *testing.T) {
	ts := newTestServer(t)
	other := ts.createKey(ts.Admin, nil, "another") // its use count stays put
	for _, tc := range []struct{ name, key, body string }{
		{"single", ts.Admin, `{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"` + other.ID + `"},"id":1}`},
		{"batch", ts.Admin, `[{"jsonrpc":"2.0","method":"server.list","id":"a"},{"jsonrpc":"2.0","method":"no.such","id":-2},{"jsonrpc":"2.0","method":"server.list"}]`},
		{"notifications only", ts.Admin, `[{"jsonrpc":"2.0","method":"server.list"}]`},
		{"not JSON", ts.Admin, `{"jsonrpc":"2.0",`},
		{"empty batch", ts.Admin, `[]`},
		{"no key", "", `{"jsonrpc":"2.0","method":"server.list","id":null}`},
		{"unknown key", "ffeeddccbbaa99887766554433221100", `{"jsonrpc":"2.0","method":"server.list","id":7}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, want := ts.post(tc.key, tc.body)
			auth := ""
			if tc.key != "" {
				auth = "Bearer " + tc.key
			}
			peer := ts.RPC.NewPeer(auth, "127.0.0.1:40000", nil)
			got := ts.RPC.Call(context.Background(), []byte(tc.body), peer, []byte("prefix:"))
			require.True(t, len(got) >= len("prefix:"))
			assert.Equal(t, "prefix:", string(got[:len("prefix:")]), "the reply is appended to dst")
			assert.Equal(t, string(want), string(got[len("prefix:"):]))
		})
	}
}

// TestCallOne_ReturnsTheCallsError: CallOne answers one request object as
// Call does and hands back the error the call failed with, which the URL
// style shapes into its own reply; a call that succeeds, or a
// notification, returns none.
func TestCallOne_ReturnsTheCallsError(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.RPC.NewPeer("Bearer "+ts.Admin, "127.0.0.1:40000", nil)
	ctx := context.Background()

	reply, e := ts.RPC.CallOne(ctx, []byte(`{"jsonrpc":"2.0","method":"server.list","id":1}`), admin, nil)
	assert.Nil(t, e)
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":1,"result":[{"name":"web1","status":"running"},{"name":"web2","status":"running"}]}`, string(reply))

	reply, e = ts.RPC.CallOne(ctx, []byte(`{"jsonrpc":"2.0","method":"server.list"}`), admin, nil)
	assert.Nil(t, e)
	assert.Empty(t, reply, "a notification has no reply")

	ts.unchanged(func() {
		reply, e = ts.RPC.CallOne(ctx, []byte(`{"jsonrpc":"2.0","method":"apikey.delete","params":{"id":"nope"},"id":2}`),
			ts.RPC.NewPeer("", "127.0.0.1:40000", nil), nil)
	})
	require.NotNil(t, e)
	assert.Equal(t, int64(rpc.CodeUnauthenticated), e.Code)
	assert.Equal(t, rpc.ErrIDMissingKey, e.ID)
	assert.Contains(t, string(reply), `"error_id":"missing_key"`)
	assert.Equal(t, "127.0.0.1:40000", admin.RemoteAddr())
}
