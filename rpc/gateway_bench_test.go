package rpc_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/gateway"
	"github.com/apikeyd/apikeyd/store"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// BenchmarkGateway measures, in one run on one machine, calls to an
// upstream made directly and made through apikeyd in gateway mode
// (authenticated, scope-checked, logged, forwarded). The upstream takes
// work per call: 0 (the worst case for the ratio: nothing but the
// overhead) or 1 ms of waiting, as a panel's call waiting on its database
// would. Compare the ns/op of direct and gateway at the same work:
//
//	go test ./rpc -run '^$' -bench Gateway -benchtime 3s
func BenchmarkGateway(b *testing.B) {
	for _, work := range []time.Duration{0, time.Millisecond} {
		up, srv := gatewayBench(b, work)
		gw := httptest.NewServer(srv)
		b.Cleanup(gw.Close)

		body := []byte(`{"jsonrpc":"2.0","method":"vm.list","id":1}`)
		for _, target := range []struct{ name, url string }{{"direct", up.URL}, {"gateway", gw.URL}} {
			b.Run(fmt.Sprintf("work=%s/%s", work, target.name), func(b *testing.B) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req, _ := http.NewRequest(http.MethodPost, target.url, bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+adminKey)
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						reply, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK || !bytes.Contains(reply, []byte(`"result"`)) {
							b.Errorf("status %d: %s", resp.StatusCode, reply)
							return
						}
					}
				})
			})
		}
	}
}

// gatewayBench starts an upstream that answers vm.list after work, and an
// apikeyd server (not yet served) that forwards vm.list to it.
func gatewayBench(b *testing.B, work time.Duration) (*httptest.Server, *rpc.Server) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if work > 0 {
			time.Sleep(work)
		}
		w.Header().Set("Content-Type", "application/json")
		// apikeyd always sends id 1.
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","result":[{"name":"web1","status":"running"},{"name":"web2","status":"running"}],"id":1}`))
	}))
	b.Cleanup(up.Close)
	st, err := store.Open(filepath.Join(b.TempDir(), "gw.db"), store.Options{NoSync: true})
	require.NoError(b, err)
	b.Cleanup(func() { _ = st.Close() })
	_, _, err = st.Bootstrap(adminKey)
	require.NoError(b, err)
	srv := rpc.New(st, rpc.Options{Logger: zerolog.New(io.Discard).With().Timestamp().Logger()})
	catalog, err := gateway.ParseCatalog([]byte(`{"methods":[{"name":"vm.list","params":[],"x-access":"READ"}]}`))
	require.NoError(b, err)
	require.NoError(b, gateway.Forward(srv, &gateway.Upstream{URL: up.URL}, catalog))
	return up, srv
}
