package rpc_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHTTP_Transport(t *testing.T) {
	ts := newTestServer(t, func(o *rpc.Options) { o.MaxBodyBytes = 4096; o.MaxBatch = 3 })
	list := `{"jsonrpc":"2.0","method":"apikey.list","id":1}`

	errorOf := func(t *testing.T, body []byte) *wireError {
		t.Helper()
		var r wireResponse
		require.NoError(t, json.Unmarshal(body, &r), "reply: %s", body)
		require.NotNil(t, r.Error, "reply: %s", body)
		assert.Equal(t, "null", string(r.ID))
		return r.Error
	}

	t.Run("ErrHTTPMethod", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			req, err := http.NewRequest(m, ts.URL, strings.NewReader(list))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			status, body := ts.do(req)
			assert.Equal(t, http.StatusMethodNotAllowed, status)
			e := errorOf(t, body)
			assert.Equal(t, int64(rpc.CodeInvalidRequest), e.Code)
			assert.Equal(t, rpc.ErrIDHTTPMethod, e.Data.ErrorID)
		}
	})

	t.Run("ContentTypes", func(t *testing.T) {
		for ct, want := range map[string]int{
			"application/json":                  http.StatusOK,
			"application/json; charset=utf-8":   http.StatusOK,
			"Application/JSON":                  http.StatusOK,
			"application/json-rpc":              http.StatusOK,
			"application/jsonrequest":           http.StatusOK,
			"text/plain":                        http.StatusUnsupportedMediaType,
			"application/x-www-form-urlencoded": http.StatusUnsupportedMediaType,
			"":                                  http.StatusUnsupportedMediaType,
		} {
			req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(list))
			require.NoError(t, err)
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", "Bearer "+ts.Admin)
			status, body := ts.do(req)
			assert.Equal(t, want, status, "Content-Type %q", ct)
			if want != http.StatusOK {
				assert.Equal(t, rpc.ErrIDMediaType, errorOf(t, body).Data.ErrorID)
			}
		}
	})

	t.Run("ErrBodyTooLarge", func(t *testing.T) {
		pad := strings.Repeat(" ", 4096)
		status, body := ts.post(ts.Admin, list+pad)
		assert.Equal(t, http.StatusRequestEntityTooLarge, status)
		e := errorOf(t, body)
		assert.Equal(t, rpc.ErrIDBodyTooLarge, e.Data.ErrorID)
		assert.Contains(t, e.Data.Detail, "4096 bytes")

		// Exactly at the limit is fine.
		status, _ = ts.post(ts.Admin, list+pad[:4096-len(list)])
		assert.Equal(t, http.StatusOK, status)
	})

	t.Run("ErrBodyTooLargeStreamed", func(t *testing.T) {
		// A chunked body with no Content-Length, far over the limit: the
		// server answers without reading it whole.
		const total = 64 << 20
		var sent atomic.Int64
		src := &countingReader{r: io.LimitReader(zeroJSON{}, total), n: &sent}
		req, err := http.NewRequest(http.MethodPost, ts.URL, io.NopCloser(src))
		require.NoError(t, err)
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			defer resp.Body.Close()
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		}
		assert.Less(t, sent.Load(), int64(total/4), "the server read most of an oversized body")
	})

	t.Run("ErrBatchTooLarge", func(t *testing.T) {
		status, body := ts.post(ts.Admin, "["+strings.Repeat(list+",", 3)+list+"]")
		assert.Equal(t, http.StatusOK, status)
		e := errorOf(t, body)
		assert.Equal(t, int64(rpc.CodeInvalidRequest), e.Code)
		assert.Equal(t, rpc.ErrIDBatchTooLarge, e.Data.ErrorID)

		status, body = ts.post(ts.Admin, "["+strings.Repeat(list+",", 2)+list+"]")
		assert.Equal(t, http.StatusOK, status)
		var replies []wireResponse
		require.NoError(t, json.Unmarshal(body, &replies))
		assert.Len(t, replies, 3)
	})
}

type zeroJSON struct{}

// Read fills p with spaces: valid JSON whitespace, endlessly.
func (zeroJSON) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestInvalidRequests covers request objects the specification rejects and
// the traps of encoding/json: case-insensitive names and duplicate keys.
func TestInvalidRequests(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name, body string
		id         string // the id the reply must carry
		code       int64
	}{
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","method":"server.list","id":1}`, "1", rpc.CodeInvalidRequest},
		{"jsonrpc missing", `{"method":"server.list","id":1}`, "1", rpc.CodeInvalidRequest},
		{"jsonrpc number", `{"jsonrpc":2.0,"method":"server.list","id":1}`, "1", rpc.CodeInvalidRequest},
		{"method missing", `{"jsonrpc":"2.0","id":1}`, "1", rpc.CodeInvalidRequest},
		{"method upper-case member", `{"jsonrpc":"2.0","METHOD":"server.list","id":1}`, "1", rpc.CodeInvalidRequest},
		{"method mixed-case beside method", `{"jsonrpc":"2.0","method":"server.list","Method":"apikey.delete","id":1}`, "1", rpc.CodeInvalidRequest},
		{"method twice", `{"jsonrpc":"2.0","method":"server.list","method":"apikey.list","id":1}`, "null", rpc.CodeInvalidRequest},
		{"method escaped twice", `{"jsonrpc":"2.0","method":"server.list","m\u0065thod":"apikey.list","id":1}`, "null", rpc.CodeInvalidRequest},
		{"method null", `{"jsonrpc":"2.0","method":null,"id":1}`, "1", rpc.CodeInvalidRequest},
		{"params scalar", `{"jsonrpc":"2.0","method":"server.list","params":3,"id":1}`, "1", rpc.CodeInvalidRequest},
		{"params string", `{"jsonrpc":"2.0","method":"server.list","params":"x","id":1}`, "1", rpc.CodeInvalidRequest},
		{"id object", `{"jsonrpc":"2.0","method":"server.list","id":{}}`, "null", rpc.CodeInvalidRequest},
		{"id bool", `{"jsonrpc":"2.0","method":"server.list","id":true}`, "null", rpc.CodeInvalidRequest},
		{"unknown member", `{"jsonrpc":"2.0","method":"server.list","id":1,"meta":{}}`, "1", rpc.CodeInvalidRequest},
		{"not an object", `"server.list"`, "null", rpc.CodeInvalidRequest},
		{"param case variant", `{"jsonrpc":"2.0","method":"server.reboot","params":{"NAME":"web1"},"id":1}`, "1", rpc.CodeInvalidParams},
		{"param twice", `{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","name":"web2"},"id":1}`, "1", rpc.CodeInvalidParams},
		{"too many positional", `{"jsonrpc":"2.0","method":"server.reboot","params":["web1",true,3],"id":1}`, "1", rpc.CodeInvalidParams},
		{"deeply nested params", `{"jsonrpc":"2.0","method":"server.reboot","params":{"name":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `},"id":1}`, "1", rpc.CodeInvalidParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				status, body := ts.post(ts.Admin, tt.body)
				require.Equal(t, http.StatusOK, status)
				var r wireResponse
				require.NoError(t, json.Unmarshal(body, &r), "reply: %s", body)
				require.NotNil(t, r.Error, "reply: %s", body)
				assert.Equal(t, tt.code, r.Error.Code, "reply: %s", body)
				assert.Equal(t, tt.id, string(r.ID))
				assert.NotEmpty(t, r.Error.Data.ErrorID)
			})
		})
	}
	assert.Empty(t, *ts.Reboots, "an invalid request ran a handler")
}

func TestPanicRecovery(t *testing.T) {
	ts := newTestServer(t)
	e := ts.fail(ts.Admin, "server.panic", nil, rpc.CodeInternalError, rpc.ErrIDInternal)
	assert.Equal(t, "internal error", e.Message)
	assert.NotContains(t, e.Message+e.Data.Detail, "boom", "panic text reached the client")
	// The server goes on, in the same batch and afterwards.
	status, body := ts.post(ts.Admin, `[{"jsonrpc":"2.0","method":"server.panic","id":1},{"jsonrpc":"2.0","method":"server.list","id":2}]`)
	require.Equal(t, http.StatusOK, status)
	var replies []wireResponse
	require.NoError(t, json.Unmarshal(body, &replies))
	require.Len(t, replies, 2)
	assert.NotNil(t, replies[0].Error)
	assert.Nil(t, replies[1].Error)
	ts.ok(ts.Admin, "server.list", nil, nil)
	assert.Contains(t, ts.Log.String(), `"panic":"boom"`)
	// Each panicking call still has its call line.
	assert.Equal(t, 2, strings.Count(ts.Log.String(), `"method":"server.panic","dur_us"`), ts.Log.String())
	assert.Equal(t, 2, strings.Count(ts.Log.String(), `"outcome":"internal_error"`))
}

// TestScopes_EndToEnd proves method and name scopes on registered methods,
// by name and by position.
func TestScopes_EndToEnd(t *testing.T) {
	ts := newTestServer(t)
	rebootWeb1 := ts.createKey(ts.Admin, map[string][]string{"method": {"server.reboot"}, "name": {"web1"}}, "reboot web1").Key
	anyWeb1 := ts.createKey(ts.Admin, map[string][]string{"name": {"web1", "web3"}}, "web1 and web3").Key
	servers := ts.createKey(ts.Admin, map[string][]string{"method": {"server.*"}}, "servers").Key
	listOnly := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list"}}, "list").Key

	tests := []struct {
		key, method string
		params      any
		allowed     bool
	}{
		{rebootWeb1, "server.reboot", map[string]any{"name": "web1"}, true},
		{rebootWeb1, "server.reboot", []any{"web1"}, true},
		{rebootWeb1, "server.reboot", map[string]any{"name": "web2"}, false},
		{rebootWeb1, "server.reboot", []any{"web2", true}, false},
		{rebootWeb1, "server.reboot", nil, false},
		{rebootWeb1, "server.list", nil, false},
		{rebootWeb1, "apikey.list", nil, false},
		{anyWeb1, "server.reboot", map[string]any{"name": "web3"}, true},
		{anyWeb1, "server.reboot", map[string]any{"name": "web2"}, false},
		{anyWeb1, "server.list", nil, false},
		{anyWeb1, "apikey.info", map[string]any{"id": anyWeb1}, false},
		{servers, "server.reboot", map[string]any{"name": "anything"}, true},
		{servers, "server.list", nil, true},
		{servers, "apikey.list", nil, false},
		{listOnly, "server.list", nil, true},
		{listOnly, "server.reboot", map[string]any{"name": "web1"}, false},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s", i, tt.method), func(t *testing.T) {
			before := len(*ts.Reboots)
			r := ts.call(tt.key, tt.method, tt.params)
			if tt.allowed {
				assert.Nil(t, r.Error)
				return
			}
			require.NotNil(t, r.Error)
			assert.Equal(t, int64(rpc.CodeForbidden), r.Error.Code)
			assert.Equal(t, rpc.ErrIDScopeDenied, r.Error.Data.ErrorID)
			assert.Len(t, *ts.Reboots, before, "a denied call ran")
		})
	}

	// A name scope cannot be slipped past with a mis-cased or repeated key,
	// or a name of the wrong type.
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","Name":"web2"},"id":1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web1","name":"web2"},"id":1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":"web2","name":"web1"},"id":1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":{"name":["web1"]},"id":1}`,
		`{"jsonrpc":"2.0","method":"server.reboot","params":[["web1"]],"id":1}`,
		`{"jsonrpc":"2.0","method":"SERVER.REBOOT","params":{"name":"web1"},"id":1}`,
	} {
		_, reply := ts.post(rebootWeb1, body)
		var r wireResponse
		require.NoError(t, json.Unmarshal(reply, &r))
		assert.NotNil(t, r.Error, "%s was allowed", body)
	}
	assert.Equal(t, []string{"web1", "web1", "web3", "anything"}, *ts.Reboots)
}

// TestLog proves one line per call with method, key id, duration and outcome,
// and that no secret, digest or password reaches the log.
func TestLog(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, map[string][]string{"method": {"server.list", "apikey.info"}}, "logged")
	ts.ok(k.Key, "server.list", nil, nil)
	ts.ok(k.Key, "apikey.info", map[string]any{"id": k.Key}, nil)
	ts.fail(k.Key, "apikey.delete", map[string]any{"id": k.Key}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	ts.fail("ffffffffffffffffffffffffffffffff", "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail("", "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDMissingKey)
	ts.fail(ts.Admin, "no.such", nil, rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound)
	ts.fail(ts.Admin, k.Key, nil, rpc.CodeMethodNotFound, rpc.ErrIDMethodNotFound) // a key as a method name

	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(ts.Log.String()))
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "not a JSON line: %s", sc.Text())
		if _, ok := line["outcome"]; ok {
			lines = append(lines, line)
		}
	}
	require.Len(t, lines, 8, "one line per call (1 create + 7 above)")
	for _, l := range lines {
		assert.Contains(t, l, "method")
		assert.Contains(t, l, "dur_us")
		assert.Contains(t, l, "outcome")
	}
	assert.Equal(t, "server.list", lines[1]["method"])
	assert.Equal(t, k.ID, lines[1]["key_id"])
	assert.Equal(t, "ok", lines[1]["outcome"])
	assert.Equal(t, "scope_denied", lines[3]["outcome"])
	assert.Contains(t, lines[3]["reason"], "apikey.delete")
	assert.Equal(t, "invalid_key", lines[4]["outcome"])
	assert.NotContains(t, lines[4], "key_id")

	log := ts.Log.String()
	for _, secret := range []string{ts.Admin, k.Key, "ffffffffffffffffffffffffffffffff"} {
		assert.NotContains(t, log, secret, "a secret reached the log")
		d := sha256Hex(secret)
		assert.NotContains(t, log, d, "a digest reached the log")
	}
}

// TestHTTP_DateHeader checks the Date header apikeyd sets itself (formatted
// once a second): present, in HTTP's format, and the current time.
func TestHTTP_DateHeader(t *testing.T) {
	ts := newTestServer(t)
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(`{"jsonrpc":"2.0","method":"apikey.list","id":1}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+ts.Admin)
		before := time.Now().Truncate(time.Second)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		after := time.Now()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Len(t, resp.Header.Values("Date"), 1, "exactly one Date header")
		date, err := http.ParseTime(resp.Header.Get("Date"))
		require.NoError(t, err, "Date %q is not in HTTP's format", resp.Header.Get("Date"))
		assert.True(t, !date.Before(before) && !date.After(after), "Date %s is not between %s and %s", date, before, after)
		assert.True(t, strings.HasSuffix(resp.Header.Get("Date"), " GMT"))
	}
}
