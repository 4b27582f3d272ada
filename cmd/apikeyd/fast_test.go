package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runWithSlowMethod starts the real wiring with server.wait(), which
// signals started and then waits for release.
func runWithSlowMethod(t *testing.T) (m *Main, started, release chan struct{}) {
	t.Helper()
	started, release = make(chan struct{}, 1), make(chan struct{})
	m = NewMain(&bytes.Buffer{})
	m.LogOutput = io.Discard
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DB = filepath.Join(t.TempDir(), "apikeyd.db")
	m.Config.AdminKey = testAdminKey
	m.Config.LogFlush = 0
	m.Setup = func(s *rpc.Server) {
		rpc.Handle(s, "server.wait", scope.Read, "", func(context.Context, struct{}) (string, error) {
			started <- struct{}{}
			<-release
			return "done", nil
		})
	}
	require.NoError(t, m.Run())
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, started, release
}

func rawCall(method string) string {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","method":%q,"id":1}`, method)
	return fmt.Sprintf("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		testAdminKey, len(body), body)
}

func readReply(t *testing.T, br *bufio.Reader) (int, string) {
	t.Helper()
	status, body, _ := readReplyClose(t, br)
	return status, body
}

// readReplyClose is readReply, and whether the reply says it is the
// connection's last.
func readReplyClose(t *testing.T, br *bufio.Reader) (int, string, bool) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), resp.Close
}

func dialServer(t *testing.T, m *Main) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", m.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	return conn, bufio.NewReader(conn)
}

// TestFastPath_HandsOverMidConnection: a keep-alive connection whose calls
// the fast path serves goes on under net/http when a request of another
// kind comes, and both are answered in order.
func TestFastPath_HandsOverMidConnection(t *testing.T) {
	m, _, _ := MustRunMain(t, filepath.Join(t.TempDir(), "apikeyd.db"), testAdminKey)
	conn, br := dialServer(t, m)
	_, err := io.WriteString(conn, rawCall("apikey.list")+"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"+rawCall("apikey.list"))
	require.NoError(t, err)
	for _, want := range []string{`"result":[{`, "ok\n", `"result":[{`} {
		status, body := readReply(t, br)
		assert.Equal(t, http.StatusOK, status)
		assert.Contains(t, body, want)
	}
}

// TestFastPath_Shutdown: Close ends an idle keep-alive connection at once,
// and lets a call in hand finish and reply before its connection closes.
func TestFastPath_Shutdown(t *testing.T) {
	m, started, release := runWithSlowMethod(t)

	idle, idleR := dialServer(t, m)
	_, err := io.WriteString(idle, rawCall("apikey.list"))
	require.NoError(t, err)
	status, _ := readReply(t, idleR)
	require.Equal(t, http.StatusOK, status)

	busy, busyR := dialServer(t, m)
	_, err = io.WriteString(busy, rawCall("server.wait"))
	require.NoError(t, err)
	<-started

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- m.Close(ctx)
	}()
	// The idle connection ends without waiting for the idle timeout.
	rest, err := io.ReadAll(idleR)
	require.NoError(t, err, "the idle connection stayed open")
	assert.Empty(t, rest)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a call in hand", err)
	default:
	}

	close(release)
	status, body, last := readReplyClose(t, busyR)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"result":"done"`)
	assert.True(t, last, "a reply in a shutdown says Connection: close")
	rest, err = io.ReadAll(busyR)
	require.NoError(t, err)
	assert.Empty(t, rest)
	require.NoError(t, <-closed)
}

// TestFastPath_ShutdownDeadline: when Close's context ends first, the
// connection with a call in hand is closed and Close says so.
func TestFastPath_ShutdownDeadline(t *testing.T) {
	m, started, release := runWithSlowMethod(t)
	defer close(release)
	busy, busyR := dialServer(t, m)
	_, err := io.WriteString(busy, rawCall("server.wait"))
	require.NoError(t, err)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = m.Close(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "still in a call")
	rest, err := io.ReadAll(busyR)
	require.NoError(t, err, "the connection stayed open")
	assert.False(t, strings.Contains(string(rest), "done"))
}
