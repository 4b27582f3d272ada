package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// getMetrics GETs http://addr/metrics and returns the status and body.
func getMetrics(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// runMain starts the real wiring on 127.0.0.1:0 with the config changed by
// edit, and stops it at the end of the test.
func runMain(t *testing.T, edit func(*Config)) *Main {
	t.Helper()
	m := NewMain(&lockedBuffer{})
	m.LogOutput = &lockedBuffer{}
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DB = filepath.Join(t.TempDir(), "apikeyd.db")
	m.Config.AdminKey = testAdminKey
	m.Config.LogFlush = 0
	edit(&m.Config)
	require.NoError(t, m.Run())
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func TestMetrics_Serve(t *testing.T) {
	call := `{"jsonrpc":"2.0","method":"apikey.info","params":{"id":"` + testAdminKey + `"},"id":1}`
	t.Run("OnMainListener", func(t *testing.T) {
		m := runMain(t, func(*Config) {})
		rpcCall(t, m.Addr(), testAdminKey, call)
		status, body := getMetrics(t, m.Addr())
		require.Equal(t, http.StatusOK, status)
		assert.Contains(t, body, `apikeyd_calls_total{method="apikey.info",outcome="ok"} 1`+"\n")
		assert.Contains(t, body, `apikeyd_build_info{goversion=`)
		assert.NotContains(t, body, testAdminKey, "the secret sent in the header and the params")
		assert.Empty(t, m.MetricsAddr())
	})
	t.Run("MetricsAddr", func(t *testing.T) {
		m := runMain(t, func(c *Config) { c.MetricsAddr = "127.0.0.1:0" })
		require.NotEmpty(t, m.MetricsAddr())
		require.NotEqual(t, m.Addr(), m.MetricsAddr())
		rpcCall(t, m.Addr(), testAdminKey, call)
		status, body := getMetrics(t, m.MetricsAddr())
		require.Equal(t, http.StatusOK, status)
		assert.Contains(t, body, `apikeyd_calls_total{method="apikey.info",outcome="ok"} 1`+"\n")
		assert.NotContains(t, body, testAdminKey)
		status, body = getMetrics(t, m.Addr())
		assert.Equal(t, http.StatusNotFound, status, "not on the main listener: %s", body)
		assert.NotContains(t, body, "apikeyd_calls_total")
		resp, err := http.Post("http://"+m.MetricsAddr()+"/rpc", "application/json", strings.NewReader(call))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the metrics address serves nothing else")
	})
	t.Run("Off", func(t *testing.T) {
		m := runMain(t, func(c *Config) { c.Metrics = false; c.MetricsAddr = "127.0.0.1:0" })
		assert.Empty(t, m.MetricsAddr(), "no listener when metrics are off")
		status, _ := getMetrics(t, m.Addr())
		assert.Equal(t, http.StatusNotFound, status)
		out := rpcCall(t, m.Addr(), testAdminKey, call)
		assert.NotNil(t, out["result"], "calls still served: %v", out)
	})
	t.Run("Flags", func(t *testing.T) {
		assert.True(t, DefaultConfig().Metrics)
		assert.Empty(t, DefaultConfig().MetricsAddr)
		m := NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags(nil, func(k string) string {
			return map[string]string{"APIKEYD_METRICS": "false", "APIKEYD_METRICS_ADDR": "127.0.0.1:9100"}[k]
		}))
		assert.False(t, m.Config.Metrics)
		assert.Equal(t, "127.0.0.1:9100", m.Config.MetricsAddr)
		m = NewMain(&bytes.Buffer{})
		require.NoError(t, m.ParseFlags([]string{"--metrics-addr", "127.0.0.1:9101"}, func(string) string { return "" }))
		assert.True(t, m.Config.Metrics)
		assert.Equal(t, "127.0.0.1:9101", m.Config.MetricsAddr)
	})
}
