package rpc_test

import (
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
)

func TestHarness(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, map[string][]string{"method": {"server.reboot"}}, "c")
	assert.Len(t, k.Key, 32)
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.info", map[string]any{"id": k.ID}, &info)
	assert.Equal(t, k.KeyInfo, info)
	ts.unchanged(func() {
		ts.fail(k.Key, "apikey.list", nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	})
}
