package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/store"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// BenchmarkServeH1_Info is compare.sh's request over one keep-alive
// connection served by ServeConn: the fast path with its socket.
func BenchmarkServeH1_Info(b *testing.B) {
	srv, body := benchServer(b)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				ServeConn(context.Background(), srv, c, &http.Server{MaxHeaderBytes: 16 << 10, ReadTimeout: 10 * time.Second,
					ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second},
					Hooks{Idle: func() bool { return false }, Active: func() {}, Closing: func() bool { return false }})
				_ = c.Close()
			}()
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(b, err)
	defer c.Close()
	req := []byte(fmt.Sprintf("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		adminKey, len(body), body))
	br := bufio.NewReader(c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// benchServer is rpc's bench server: an operator key, the key asked
// about, and 200 more, with logging off; and compare.sh's request.
func benchServer(b *testing.B) (*rpc.Server, string) {
	st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{NoSync: true})
	require.NoError(b, err)
	b.Cleanup(func() { _ = st.Close() })
	_, _, err = st.Bootstrap(adminKey)
	require.NoError(b, err)
	k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "operator", Comment: "bench"})
	require.NoError(b, err)
	for i := 0; i < 200; i++ {
		_, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "operator", Comment: "filler"})
		require.NoError(b, err)
	}
	srv := rpc.New(st, rpc.Options{Logger: zerolog.Nop()})
	return srv, `{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"` + k.ID + `"},"id":1}`
}
