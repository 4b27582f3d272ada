package rpc_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/require"
)

// BenchmarkServeH1_Info is compare.sh's request over one keep-alive
// connection served by ServeH1: the fast path with its socket.
func BenchmarkServeH1_Info(b *testing.B) {
	h, body := benchServerWith(b, nil, store.Options{NoSync: true})
	srv := h.(*rpc.Server)
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
				rpc.ServeH1(context.Background(), srv, c, &http.Server{MaxHeaderBytes: 16 << 10, ReadTimeout: 10 * time.Second,
					ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second},
					rpc.H1Hooks{Idle: func() bool { return false }, Active: func() {}, Closing: func() bool { return false }})
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
