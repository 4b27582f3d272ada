package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain_StartAndShutdownLogged: one line at start names the version,
// the address and the store; one at shutdown says the server stopped.
func TestMain_StartAndShutdownLogged(t *testing.T) {
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	m, _, log := MustRunMain(t, db, testAdminKey)
	addr := m.Addr()
	require.NoError(t, m.Close(context.Background()))

	var start, stop map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var l map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &l), "%s", line)
		switch l["message"] {
		case "serving":
			start = l
		case "stopped":
			stop = l
		}
	}
	require.NotNil(t, start, "no start line in %s", log)
	assert.Equal(t, version, start["version"])
	assert.Equal(t, addr, start["addr"])
	assert.Equal(t, db, start["db"])
	require.NotNil(t, stop, "no shutdown line in %s", log)
	assert.Equal(t, addr, stop["addr"])
	assert.NotContains(t, log.String(), testAdminKey)
}
