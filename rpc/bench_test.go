package rpc_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/store"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// benchServer is the compare.sh set-up in-process: an operator key, one
// created key and 200 fillers; info reads the created key.
func benchServer(b *testing.B, logOut io.Writer) (http.Handler, string) {
	return benchServerWith(b, logOut, store.Options{NoSync: true})
}

func benchServerWith(b *testing.B, logOut io.Writer, opts store.Options) (http.Handler, string) {
	st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), opts)
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
	logger := zerolog.Nop()
	if logOut != nil {
		logger = zerolog.New(logOut).Hook(rpc.NewTimeHook()) // as apikeyd serve logs
	}
	srv := rpc.New(st, rpc.Options{Logger: logger})
	return srv, `{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"` + k.ID + `"},"id":1}`
}

// BenchmarkServeHTTP_Info is the whole call path of compare.sh's request
// short of the socket: read body, decode, authenticate, scope check, read
// the key, encode, log.
func BenchmarkServeHTTP_Info(b *testing.B) {
	for _, bc := range []struct {
		name  string
		log   io.Writer
		usage time.Duration
	}{{"log", io.Discard, 0}, {"nolog", nil, 0}, {"log/usage-off", io.Discard, -1}} {
		b.Run(bc.name, func(b *testing.B) {
			h, body := benchServerWith(b, bc.log, store.Options{NoSync: true, UsageFlush: bc.usage})
			req := httptest.NewRequest(http.MethodPost, "/rpc", nil)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+adminKey)
			rd := strings.NewReader(body)
			w := &discardResponse{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				w.status = 0
				h.ServeHTTP(w, req)
				if w.status != 0 && w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

type discardResponse struct {
	h      http.Header
	status int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(s int)           { d.status = s }
