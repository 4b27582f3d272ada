package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runWithTimeouts starts the real wiring with short server timeouts.
func runWithTimeouts(t *testing.T, fast bool) *Main {
	t.Helper()
	m := NewMain(io.Discard)
	m.LogOutput = io.Discard
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DB = filepath.Join(t.TempDir(), "apikeyd.db")
	m.Config.AdminKey = testAdminKey
	m.Config.LogFlush = 0
	m.Config.ReadHeaderTimeout = 300 * time.Millisecond
	m.Config.ReadTimeout = 600 * time.Millisecond
	m.Config.WriteTimeout = 2 * time.Second
	m.Config.IdleTimeout = 400 * time.Millisecond
	m.Config.FastPath = fast
	require.NoError(t, m.Run())
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// closedWithin reads from conn until the server closes it, and returns how
// long that took from start and what the server sent before closing. It
// fails the test if the connection is still open after limit.
// r reads conn, or a buffer in front of it.
func closedWithin(t *testing.T, r io.Reader, conn net.Conn, start time.Time, limit time.Duration) (time.Duration, string) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(start.Add(limit)))
	got, err := io.ReadAll(r)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open for more than %s", limit)
	}
	return time.Since(start), string(got)
}

// TestServerTimeouts proves the header, read and idle timeouts end slow or
// idle clients, so that a client cannot hold connections open for free:
// with the fast path for plain POST /rpc requests, and with net/http alone.
func TestServerTimeouts(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast-path=%v", fast), func(t *testing.T) { testServerTimeouts(t, fast) })
	}
}

func testServerTimeouts(t *testing.T, fast bool) {
	m := runWithTimeouts(t, fast)
	dial := func(t *testing.T) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", m.Addr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	body := `{"jsonrpc":"2.0","method":"apikey.list","id":1}`

	// Each start is taken before the server could start its clock, so the
	// lower bounds hold however late this goroutine runs.
	t.Run("Silent", func(t *testing.T) {
		start := time.Now()
		conn := dial(t)
		took, got := closedWithin(t, conn, conn, start, 5*time.Second)
		assert.Empty(t, got)
		assert.GreaterOrEqual(t, took, 250*time.Millisecond, "closed before --read-header-timeout")
	})

	t.Run("SlowHeaders", func(t *testing.T) {
		start := time.Now()
		conn := dial(t)
		_, err := io.WriteString(conn, "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
		require.NoError(t, err)
		took, _ := closedWithin(t, conn, conn, start, 5*time.Second)
		assert.GreaterOrEqual(t, took, 250*time.Millisecond, "closed before --read-header-timeout")
	})

	t.Run("SlowBody", func(t *testing.T) {
		start := time.Now()
		conn := dial(t)
		_, err := fmt.Fprintf(conn, "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", testAdminKey, len(body), body[:10])
		require.NoError(t, err)
		took, reply := closedWithin(t, conn, conn, start, 5*time.Second)
		assert.GreaterOrEqual(t, took, 500*time.Millisecond, "closed before --read-timeout")
		// The body read fails at the deadline: a clear 400, then the close.
		assert.True(t, strings.HasPrefix(reply, "HTTP/1.1 400 Bad Request\r\n"), "reply: %q", reply)
		assert.Contains(t, reply, `"error_id":"invalid_request"`)
	})

	t.Run("Idle", func(t *testing.T) {
		conn := dial(t)
		start := time.Now() // the idle clock starts after the reply, later than this
		_, err := fmt.Fprintf(conn, "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", testAdminKey, len(body), body)
		require.NoError(t, err)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		took, rest := closedWithin(t, br, conn, start, 5*time.Second)
		assert.Empty(t, strings.TrimSpace(rest))
		assert.GreaterOrEqual(t, took, 300*time.Millisecond, "closed before --idle-timeout")
	})

	t.Run("StillServes", func(t *testing.T) {
		reply := rpcCall(t, m.Addr(), testAdminKey, body)
		assert.Contains(t, reply, "result")
	})
}
