package rpc_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrapeMetrics serves ts's metrics on 127.0.0.1 and returns a function
// scraping them over HTTP.
func scrapeMetrics(t *testing.T, ts *testServer) func() string {
	t.Helper()
	h := ts.RPC.MetricsHandler()
	require.NotNil(t, h, "metrics are on by default")
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return func() string {
		t.Helper()
		resp, err := http.Get(hs.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
}

// metricValue returns the value of the series name{labels} in a scrape
// (labels as the exposition writes them, sorted by name), or -1 when it
// is absent.
func metricValue(t *testing.T, scrape, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, "line %q", line)
			return f
		}
	}
	return -1
}

// TestMetrics_Scrape makes calls of every kind the metrics count and reads
// them back from /metrics over HTTP: exact counts by method and outcome,
// latency counts, authentication failures by reason, rate-limit refusals,
// login failures and throttles, the auth cache, the store, build info and
// Go's collectors. No secret or digest used in a call appears.
func TestMetrics_Scrape(t *testing.T) {
	ts := newTestServer(t)
	scrape := scrapeMetrics(t, ts)

	k := ts.createLimited(map[string]any{"limit": 1, "interval_seconds": 60}, nil) // apikey.create ok
	ts.ok(ts.Admin, "server.list", nil, nil)
	ts.ok(ts.Admin, "server.list", nil, nil)
	ts.ok(k.Key, "server.list", nil, nil)
	ts.fail(k.Key, "server.list", nil, rpc.CodeRateLimited, rpc.ErrIDRateLimited)
	ts.fail("", "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDMissingKey)
	ts.fail("not-a-key", "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	unknown := "ffffffffffffffffffffffffffffffff"
	ts.fail(unknown, "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail(ts.Admin, "no.such_method", nil, rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound)

	out := scrape()
	for series, want := range map[string]float64{
		`apikeyd_calls_total{method="apikey.create",outcome="ok"}`:             1,
		`apikeyd_calls_total{method="server.list",outcome="ok"}`:               3,
		`apikeyd_calls_total{method="server.list",outcome="rate_limited"}`:     1,
		`apikeyd_calls_total{method="server.list",outcome="missing_key"}`:      1,
		`apikeyd_calls_total{method="server.list",outcome="invalid_key"}`:      2,
		`apikeyd_calls_total{method="server.list",outcome="scope_denied"}`:     0,
		`apikeyd_calls_total{method="(unknown)",outcome="method_not_found"}`:   1,
		`apikeyd_call_duration_seconds_count{method="server.list"}`:            7,
		`apikeyd_call_duration_seconds_count{method="apikey.create"}`:          1,
		`apikeyd_call_duration_seconds_count{method="(unknown)"}`:              1,
		`apikeyd_auth_failures_total{reason="missing_key"}`:                    1,
		`apikeyd_auth_failures_total{reason="malformed_key"}`:                  1,
		`apikeyd_auth_failures_total{reason="invalid_key"}`:                    1,
		`apikeyd_limit_refusals_total{limit="rate"}`:                           1,
		`apikeyd_limit_refusals_total{limit="quota"}`:                          0,
		`apikeyd_login_failures_total`:                                         0,
		`apikeyd_login_throttled_total`:                                        0,
		`apikeyd_calls_in_flight`:                                              0,
		`apikeyd_build_info{goversion="` + runtime.Version() + `",version=""}`: 1,
	} {
		assert.Equal(t, want, metricValue(t, out, series), series)
	}
	// Seven authentications of a well-formed secret: the admin's four (a
	// name not in the table is still authenticated), k's two and the
	// unknown one; each is a cache hit or a miss.
	hits := metricValue(t, out, "apikeyd_auth_cache_hits_total")
	misses := metricValue(t, out, "apikeyd_auth_cache_misses_total")
	assert.Equal(t, float64(7), hits+misses)
	assert.GreaterOrEqual(t, misses, float64(2), "k's first use and the unknown secret read the file")
	assert.Greater(t, hits, float64(0), "the admin key's later uses come from the cache")
	assert.GreaterOrEqual(t, metricValue(t, out, "apikeyd_store_write_duration_seconds_count"), float64(1), "apikey.create wrote")
	if !storetest.Etcd() { // a store on etcd has no file
		assert.Greater(t, metricValue(t, out, "apikeyd_store_size_bytes"), float64(0))
	}
	assert.GreaterOrEqual(t, metricValue(t, out, "apikeyd_usage_flush_lag_seconds"), float64(0))
	assert.Greater(t, metricValue(t, out, "go_goroutines"), float64(0), "Go runtime collector")
	assert.Contains(t, out, "go_build_info{")
	assert.Contains(t, out, "process_start_time_seconds ")

	for _, secret := range []string{ts.Admin, k.Key, unknown} {
		assert.NotContains(t, out, secret)
		assert.NotContains(t, out, sha256Hex(secret))
	}
	assert.NotContains(t, out, k.ID, "no key id in a label either")
	assert.NotContains(t, out, "not-a-key")
	assert.NotContains(t, out, "no.such_method", "an unknown name is counted as (unknown)")
}

// TestMetrics_Login counts failed and throttled logins.
func TestMetrics_Login(t *testing.T) {
	ts := newTestServer(t)
	scrape := scrapeMetrics(t, ts)
	newAcmeWithAlice(ts)
	attacker := clientFrom(t, "127.0.0.2")
	for i := range 4 {
		id, _ := ts.loginFrom(attacker, "alice@acme", "wrong horse")
		require.Equal(t, rpc.ErrIDLoginFailed, id, "guess %d", i+1)
	}
	for range 2 { // the fifth failure throttles the address, and so the sixth guess
		id, _ := ts.loginFrom(attacker, "alice@acme", "wrong horse")
		require.Equal(t, rpc.ErrIDLoginLocked, id)
	}

	out := scrape()
	assert.Equal(t, float64(4), metricValue(t, out, "apikeyd_login_failures_total"))
	assert.Equal(t, float64(2), metricValue(t, out, "apikeyd_login_throttled_total"))
	assert.Equal(t, float64(4), metricValue(t, out, `apikeyd_calls_total{method="user.create_apikey",outcome="login_failed"}`))
	assert.Equal(t, float64(2), metricValue(t, out, `apikeyd_calls_total{method="user.create_apikey",outcome="login_locked"}`))
	assert.NotContains(t, out, "wrong horse")
	assert.NotContains(t, out, "alice")
}

// TestMetrics_Off: with NoMetrics there is nothing to serve, and calls
// still work.
func TestMetrics_Off(t *testing.T) {
	ts := newTestServer(t, func(o *rpc.Options) { o.NoMetrics = true })
	assert.Nil(t, ts.RPC.MetricsHandler())
	ts.ok(ts.Admin, "server.list", nil, nil)
}

// TestMetrics_OutcomesCoverErrorIDs: every error id declared in the rpc
// package has its own outcome, so no failure is counted as "other" and
// the outcome label stays a closed set known at start.
func TestMetrics_OutcomesCoverErrorIDs(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var ids []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, id := range vs.Names {
				if strings.HasPrefix(id.Name, "ErrID") && i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, err := strconv.Unquote(lit.Value)
						require.NoError(t, err)
						ids = append(ids, s)
					}
				}
			}
			return true
		})
	}
	require.Greater(t, len(ids), 30, "found the error ids")
	for _, id := range ids {
		assert.Contains(t, rpc.OutcomeIDs, id, "error id %q has no metrics outcome: add it to outcomeIDs in metrics.go", id)
	}
}
