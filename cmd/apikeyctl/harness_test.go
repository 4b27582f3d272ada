package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/gateway"
	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/require"
)

// operatorKey is the operator key of every test server.
const operatorKey = "0123456789abcdef0123456789abcdef"

// upstreamCatalog is the OpenRPC catalog of the fake upstream that test
// servers forward vm.* to.
const upstreamCatalog = `{"openrpc":"1.3.2","info":{"title":"panel","version":"1"},"methods":[
 {"name":"vm.resize","params":[
   {"name":"name","required":true,"schema":{"type":"string"}},
   {"name":"cpus","schema":{"type":"integer"}},
   {"name":"live","schema":{"type":"boolean"}},
   {"name":"tags","schema":{"type":"array","items":{"type":"string"}}},
   {"name":"label","schema":{"type":"string"}},
   {"name":"extra","schema":{}}],
  "result":{"name":"r","schema":{}},"x-access":"UPDATE"}]}`

// testServer is a real apikeyd server on 127.0.0.1 over a bbolt file in
// t.TempDir(), built as docs/embedding.md builds one, forwarding vm.* to
// an upstream that echoes the params it receives as its result.
type testServer struct {
	t     *testing.T
	URL   string
	Store *store.Store

	mu      sync.Mutex
	outputs []string // everything apikeyctl printed, for the key check
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "apikeyd.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	_, _, err = st.Bootstrap(operatorKey)
	require.NoError(t, err)

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Params json.RawMessage `json:"params"`
			ID     json.RawMessage `json:"id"`
		}
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &req) != nil || req.Params == nil {
			req.Params = json.RawMessage("{}")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","result":` + string(req.Params) + `,"id":` + string(req.ID) + `}`))
	}))
	t.Cleanup(upstream.Close)

	srv := rpc.New(st, rpc.Options{NoMetrics: true})
	catalog, err := gateway.ParseCatalog([]byte(upstreamCatalog))
	require.NoError(t, err)
	require.NoError(t, gateway.Forward(srv, &gateway.Upstream{URL: upstream.URL + "/rpc"}, catalog))
	mux := http.NewServeMux()
	mux.Handle("/rpc", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	ts := &testServer{t: t, URL: hs.URL, Store: st}
	t.Cleanup(ts.checkKeyNeverPrinted)
	return ts
}

// result is one run of apikeyctl.
type result struct {
	code           int
	stdout, stderr string
}

// run runs apikeyctl with args, APIKEYD_URL and APIKEYD_KEY pointing at
// the server with the operator key, overridden by env ("" unsets).
func (ts *testServer) run(env map[string]string, args ...string) result {
	return ts.runStdin("", env, args...)
}

func (ts *testServer) runStdin(stdin string, env map[string]string, args ...string) result {
	ts.t.Helper()
	vars := map[string]string{"APIKEYD_URL": ts.URL, "APIKEYD_KEY": operatorKey}
	for k, v := range env {
		vars[k] = v
	}
	var out, errb bytes.Buffer
	code := run(args, func(k string) string { return vars[k] }, strings.NewReader(stdin), &out, &errb)
	ts.mu.Lock()
	ts.outputs = append(ts.outputs, out.String(), errb.String())
	ts.mu.Unlock()
	return result{code, out.String(), errb.String()}
}

// ok runs apikeyctl and requires success.
func (ts *testServer) ok(args ...string) result {
	ts.t.Helper()
	r := ts.run(nil, args...)
	require.Equal(ts.t, exitOK, r.code, "apikeyctl %v: stderr %s", args, r.stderr)
	return r
}

// okJSON runs apikeyctl with --json and decodes its result into v.
func (ts *testServer) okJSON(v any, args ...string) result {
	ts.t.Helper()
	r := ts.ok(append(args, "--json")...)
	require.NoError(ts.t, json.Unmarshal([]byte(r.stdout), v), "apikeyctl %v --json printed %q", args, r.stdout)
	return r
}

// fingerprint is the store's content digest (audit records aside).
func (ts *testServer) fingerprint() [32]byte {
	ts.t.Helper()
	d, err := ts.Store.Fingerprint()
	require.NoError(ts.t, err)
	return d
}

// checkKeyNeverPrinted: the key apikeyctl sends appears in nothing it
// printed, in any test, success or failure.
func (ts *testServer) checkKeyNeverPrinted() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, o := range ts.outputs {
		if strings.Contains(o, operatorKey) {
			ts.t.Errorf("apikeyctl printed the key it was given: %q", o)
		}
	}
}

// closedURL is the URL of a port on 127.0.0.1 with nothing listening.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}
