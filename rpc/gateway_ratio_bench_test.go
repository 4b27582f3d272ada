package rpc_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGatewayRatio reports forwarded throughput as a fraction of
// calling the upstream directly, for an upstream that does nothing and for
// one that works 1 ms a call. The targets take turns in short rounds
// (direct, net/http, fast path, direct, ...) and the ratio is the median of
// the rounds' ratios, so it holds when the machine's speed drifts:
//
//	go test ./rpc -run '^$' -bench GatewayRatio -benchtime 1x
//
// Clients, gateway and upstream share one process. 16 clients keep its
// cores busy, so the ratio is mostly CPU: what a forwarded call costs
// against a direct one, clients included. 4 clients with 1 ms of work
// leave the cores mostly idle, so the ratio is the latency the extra hop
// adds to each call.
func BenchmarkGatewayRatio(b *testing.B) {
	const rounds, round = 9, 300 * time.Millisecond
	for _, c := range []struct {
		name    string
		work    time.Duration
		clients int
	}{{"work=0s", 0, 16}, {"work=1ms", time.Millisecond, 16}, {"work=1ms,clients=4", time.Millisecond, 4}} {
		work, clients := c.work, c.clients
		b.Run(c.name, func(b *testing.B) {
			up, srv := gatewayBench(b, work)
			gw := httptest.NewServer(srv)
			b.Cleanup(gw.Close)
			var handoffs atomic.Int64
			fast := "http://" + serveFast(b, srv, srv, &handoffs) + "/rpc"

			targets := []struct{ name, url string }{{"direct", up.URL}, {"nethttp", gw.URL}, {"fast", fast}}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			body := []byte(`{"jsonrpc":"2.0","method":"vm.list","id":1}`)
			rate := func(url string) float64 {
				var n atomic.Int64
				stop := time.Now().Add(round)
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						for time.Now().Before(stop) {
							req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
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
							n.Add(1)
						}
					})
				}
				wg.Wait()
				return float64(n.Load()) / round.Seconds()
			}
			ratios := map[string][]float64{}
			for range rounds {
				var direct float64
				for _, t := range targets {
					r := rate(t.url)
					if t.name == "direct" {
						direct = r
						continue
					}
					ratios[t.name] = append(ratios[t.name], r/direct)
				}
			}
			for _, t := range targets[1:] {
				rs := ratios[t.name]
				slices.Sort(rs)
				b.ReportMetric(rs[len(rs)/2], "ratio-"+t.name)
			}
		})
	}
}
