package main

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain_WebSocket: /ws is served, and shutdown ends open connections
// instead of waiting for them.
func TestMain_WebSocket(t *testing.T) {
	m, _, _ := MustRunMain(t, filepath.Join(t.TempDir(), "apikeyd.db"), testAdminKey)
	h := http.Header{"Authorization": {"Bearer " + testAdminKey}}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+m.Addr()+"/ws", h)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","method":"system.list_methods","id":7}`)))
	_, msg, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Contains(t, string(msg), `"id":7`)
	assert.Contains(t, string(msg), `"apikey.create"`)

	_, resp, err = websocket.DefaultDialer.Dial("ws://"+m.Addr()+"/ws", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, m.Close(ctx))
	assert.Less(t, time.Since(start), 3*time.Second)
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _, err = ws.ReadMessage()
	assert.Error(t, err, "the connection is closed at shutdown")
}
