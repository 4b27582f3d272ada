package rpc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/stretchr/testify/require"
)

// Calls in Memset's URL style (rpc/urlstyle), for the tests here that
// make some beside JSON-RPC calls.

// urlServer serves ts's methods in Memset's URL style on 127.0.0.1.
func urlServer(t *testing.T, ts *testServer) string {
	mux := http.NewServeMux()
	mux.Handle(urlstyle.Prefix, urlstyle.Handler(ts.RPC))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL + urlstyle.Prefix
}

// urlCall makes a URL-style call with the key as the Basic user name, as
// Memset's scripts do, and returns the status, headers and body.
func urlCall(t *testing.T, method, target, key string, form url.Values) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func urlError(t *testing.T, body []byte) urlstyle.Error {
	t.Helper()
	var e urlstyle.Error
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.NotEmpty(t, e.Error)
	return e
}
