package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/gateway"
	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const gatewayCatalog = `{"openrpc":"1.3.2","info":{"title":"panel","version":"1"},"methods":[
 {"name":"vm.list","params":[],"result":{"name":"vms","schema":{"type":"array"}},"x-access":"READ"},
 {"name":"vm.reboot","params":[{"name":"name","required":true,"schema":{"type":"string"}}],"result":{"name":"r","schema":{}},"x-access":"UPDATE"}]}`

// panel is an upstream on 127.0.0.1; discover says whether it answers
// rpc.discover. It records the headers of the last call.
func panel(t *testing.T, discover bool) (string, *atomic.Pointer[http.Header]) {
	last := &atomic.Pointer[http.Header]{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		h := r.Header.Clone()
		last.Store(&h)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case req.Method == "rpc.discover" && discover:
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","result":` + gatewayCatalog + `,"id":` + string(req.ID) + `}`))
		case req.Method == "vm.list":
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","result":["web1"],"id":` + string(req.ID) + `}`))
		default:
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":` + string(req.ID) + `}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/rpc", last
}

func runGateway(t *testing.T, upstream, catalog string) (*Main, error) {
	m := NewMain(&bytes.Buffer{})
	m.LogOutput = &bytes.Buffer{}
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DB = filepath.Join(t.TempDir(), "apikeyd.db")
	m.Config.AdminKey = testAdminKey
	m.Config.LogFlush = 0
	m.Config.Upstream = upstream
	m.Config.UpstreamCatalog = catalog
	m.Config.UpstreamToken = "panel-token"
	err := m.Run()
	if err == nil {
		t.Cleanup(func() { _ = m.Close(context.Background()) })
	}
	return m, err
}

func TestMain_Gateway(t *testing.T) {
	t.Run("CatalogFromDiscover", func(t *testing.T) {
		url, last := panel(t, true)
		m, err := runGateway(t, url, "")
		require.NoError(t, err)
		reply := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"vm.list","id":1}`)
		assert.Equal(t, []any{"web1"}, reply["result"])
		h := *last.Load()
		assert.Equal(t, "Bearer panel-token", h.Get("Authorization"))
		assert.Equal(t, "operator", h.Get(gateway.HeaderAccount))
		assert.NotEmpty(t, h.Get(gateway.HeaderKeyID))
		// Forwarded methods are served in Memset's URL style too.
		req, err := http.NewRequest(http.MethodGet, "http://"+m.Addr()+urlstyle.Prefix+"vm.list", nil)
		require.NoError(t, err)
		req.SetBasicAuth(testAdminKey, "")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.JSONEq(t, `["web1"]`, string(body))
		// Uncatalogued methods are not forwarded.
		reply = rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"vm.destroy","id":2}`)
		assert.Equal(t, float64(rpc.CodeMethodNotFound), reply["error"].(map[string]any)["code"])
	})
	t.Run("CatalogFromFile", func(t *testing.T) {
		url, _ := panel(t, false)
		file := filepath.Join(t.TempDir(), "catalog.json")
		require.NoError(t, os.WriteFile(file, []byte(gatewayCatalog), 0o600))
		m, err := runGateway(t, url, file)
		require.NoError(t, err)
		reply := rpcCall(t, m.Addr(), testAdminKey, `{"jsonrpc":"2.0","method":"vm.list","id":1}`)
		assert.Equal(t, []any{"web1"}, reply["result"])
	})
	t.Run("ErrNoCatalog", func(t *testing.T) {
		url, _ := panel(t, false)
		_, err := runGateway(t, url, "")
		assert.ErrorContains(t, err, "did not answer rpc.discover")
	})
	t.Run("ErrUpstreamDown", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		_, err = runGateway(t, "http://"+addr+"/rpc", filepath.Join(t.TempDir(), "missing.json"))
		assert.ErrorContains(t, err, "--upstream-catalog")
	})
	t.Run("ErrBadCatalog", func(t *testing.T) {
		url, _ := panel(t, false)
		file := filepath.Join(t.TempDir(), "catalog.json")
		require.NoError(t, os.WriteFile(file, []byte(`{"methods":[{"name":"apikey.create","params":[]}]}`), 0o600))
		_, err := runGateway(t, url, file)
		assert.ErrorContains(t, err, "apikeyd's own")
	})
}
