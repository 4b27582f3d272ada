package rpc_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/apikeyd/apikeyd/rpc"
)

// TestInvalidKey_Message: a key of the right form that the server does not
// accept is not blamed for its form, and the message never says which of
// unknown, switched off or expired it is.
func TestInvalidKey_Message(t *testing.T) {
	ts := newTestServer(t)
	off := ts.createKey(ts.Admin, nil, "off")
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": off.ID, "active": false}, nil)

	ts.unchanged(func() {
		malformed := ts.fail("not-a-key", "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
		assert.Contains(t, malformed.Message, "32 lowercase hex digits")

		unknown := ts.fail("ffffffffffffffffffffffffffffffff", "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
		inactive := ts.fail(off.Key, "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
		assert.NotContains(t, unknown.Message, "hex digits", "a well-formed key is not blamed for its form")
		assert.NotEqual(t, malformed.Message, unknown.Message)
		assert.Equal(t, unknown.Message, inactive.Message, "unknown and switched off look the same")
		assert.Equal(t, unknown.Data, inactive.Data)
	})
}
