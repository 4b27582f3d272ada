package rpc_test

import (
	"encoding/json"
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
