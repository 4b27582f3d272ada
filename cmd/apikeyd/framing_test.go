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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runServer starts the real wiring with the fast path on or off.
func runServer(t *testing.T, fast bool) *Main {
	t.Helper()
	var stderr bytes.Buffer
	m := NewMain(&stderr)
	m.LogOutput = io.Discard
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DB = filepath.Join(t.TempDir(), "apikeyd.db")
	m.Config.AdminKey = testAdminKey
	m.Config.LogFlush = 0
	m.Config.FastPath = fast
	require.NoError(t, m.Run())
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// eachTransport runs f against a server with the fast path on and one
// with it off (net/http serving every request).
func eachTransport(t *testing.T, f func(t *testing.T, m *Main)) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			f(t, runServer(t, fast))
		})
	}
}

// smuggled is a complete request that creates a key: if it is ever
// served, a key with this comment exists.
func smuggled() string {
	body := `{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"smuggled"},"id":9}`
	return fmt.Sprintf("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		testAdminKey, len(body), body)
}

// keyComments lists the comments of the operator's keys, over a new
// connection.
func keyComments(t *testing.T, m *Main) []string {
	t.Helper()
	out := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"apikey.list","id":1}`)
	var comments []string
	for _, k := range out["result"].([]any) {
		c, _ := k.(map[string]any)["comment"].(string)
		comments = append(comments, c)
	}
	return comments
}

// readAll reads every reply on the connection until the server closes it,
// and reports whether it did close (rather than time out).
func readAll(t *testing.T, conn net.Conn, br *bufio.Reader) (statuses []int, closed bool) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return statuses, false
			}
			return statuses, true
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
}

// TestFraming_SmugglingRefused: a request whose body could be framed two
// ways (RFC 9112, 6.1 and 6.3) gets 400 and the connection is closed, so
// the bytes after its chunked body are never served as a request of their
// own, with the fast path and without it.
func TestFraming_SmugglingRefused(t *testing.T) {
	head := func(lines ...string) string {
		return "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer " + testAdminKey + "\r\n" +
			strings.Join(lines, "\r\n") + "\r\n\r\n"
	}
	// A proxy framing by Content-Length sees one request, whose body is
	// the empty chunked body and the smuggled request.
	body := "0\r\n\r\n" + smuggled()
	cl := fmt.Sprintf("Content-Length: %d", len(body))
	cases := []struct{ name, raw string }{
		{"CLThenTE", head(cl, "Transfer-Encoding: chunked") + body},
		{"TEThenCL", head("Transfer-Encoding: chunked", cl) + body},
		{"LowerCase", head(strings.ToLower(cl), "transfer-encoding: CHUNKED") + body},
		{"FoldedTE", head(cl, "Transfer-Encoding:", " chunked") + body},
		{"FoldedTEWithoutCL", head("X-A: b", "Transfer-Encoding:", "\tchunked") + body},
		{"FoldedOtherHeader", head(cl, "X-Note: a", " b") + body},
		{"BareLFHead", strings.ReplaceAll(head(cl, "Transfer-Encoding: chunked"), "\r\n", "\n") + body},
		{"HTTP10TE", strings.Replace(head(cl, "Transfer-Encoding: chunked"), "HTTP/1.1", "HTTP/1.0", 1) + body},
		{"TwoTE", head("Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + body},
		{"TEList", head("Transfer-Encoding: identity, chunked") + body},
		{"ChunkExtension", head("Transfer-Encoding: chunked") + "5;x=y\r\n{}   \r\n0\r\n\r\n" + smuggled()},
		{"ChunkTrailer", head("Transfer-Encoding: chunked") + "0\r\nX-T: 1\r\n\r\n" + smuggled()},
		// After a call the fast path serves, on the same connection.
		{"AfterServedCall", rawCall("apikey.list") + head(cl, "Transfer-Encoding: chunked") + body},
		// After a request net/http serves, on the same connection.
		{"AfterHandOver", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + head(cl, "Transfer-Encoding: chunked") + body},
	}
	eachTransport(t, func(t *testing.T, m *Main) {
		before := keyComments(t, m)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				conn, br := dialServer(t, m)
				_, err := io.WriteString(conn, tc.raw)
				require.NoError(t, err)
				statuses, closed := readAll(t, conn, br)
				require.NotEmpty(t, statuses, "no reply")
				assert.Equal(t, http.StatusBadRequest, statuses[len(statuses)-1], "replies %v", statuses)
				for _, s := range statuses[:len(statuses)-1] {
					assert.Equal(t, http.StatusOK, s, "replies %v", statuses)
				}
				assert.True(t, closed, "the connection stayed open")
				assert.NotContains(t, keyComments(t, m), "smuggled", "the smuggled request was served")
			})
		}
		assert.Equal(t, before, keyComments(t, m))
	})
}

// TestFraming_PlainChunkedServed: a request framed one way only, by
// chunked coding or by Content-Length, is served as before, and the
// requests after it on the connection too: the watch keeps its place.
func TestFraming_PlainChunkedServed(t *testing.T) {
	call := `{"jsonrpc":"2.0","method":"apikey.list","id":1}`
	chunked := "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer " + testAdminKey +
		"\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n", 10, call[:10]) + fmt.Sprintf("%X\r\n%s\r\n", len(call)-10, call[10:]) + "0\r\n\r\n"
	eachTransport(t, func(t *testing.T, m *Main) {
		conn, br := dialServer(t, m)
		_, err := io.WriteString(conn, chunked+rawCall("apikey.list")+"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"+chunked+"\r\n"+rawCall("apikey.list"))
		require.NoError(t, err)
		for i, want := range []string{`"result":[{`, `"result":[{`, "ok\n", `"result":[{`, `"result":[{`} {
			status, body := readReply(t, br)
			assert.Equal(t, http.StatusOK, status, "reply %d: %s", i, body)
			assert.Contains(t, body, want, "reply %d", i)
		}
	})
}

// TestFraming_BytesAfterOneByOne: the watch finds a head split across
// many reads, one byte each, and still refuses it before net/http reads
// its end.
func TestFraming_BytesAfterOneByOne(t *testing.T) {
	body := "0\r\n\r\n" + smuggled()
	raw := rawCall("apikey.list") + "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer " + testAdminKey +
		fmt.Sprintf("\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(body)) + body
	eachTransport(t, func(t *testing.T, m *Main) {
		conn, br := dialServer(t, m)
		for i := range len(raw) {
			if _, err := conn.Write([]byte{raw[i]}); err != nil {
				break // refused and closed: the rest is not read
			}
		}
		statuses, closed := readAll(t, conn, br)
		assert.Equal(t, []int{http.StatusOK, http.StatusBadRequest}, statuses)
		assert.True(t, closed)
		assert.NotContains(t, keyComments(t, m), "smuggled")
	})
}
