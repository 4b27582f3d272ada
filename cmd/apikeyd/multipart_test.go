package main

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestURLStyle_Multipart: Memset's URL style takes multipart/form-data,
// as filebin clients post it, over the real wiring with and without the
// fast path: fields as a plain form's, files refused, the body limit kept.
func TestURLStyle_Multipart(t *testing.T) {
	form := func(fields [][2]string, file bool) (string, *bytes.Buffer) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for _, f := range fields {
			require.NoError(t, w.WriteField(f[0], f[1]))
		}
		if file {
			fw, err := w.CreateFormFile("comment", "notes.txt")
			require.NoError(t, err)
			_, _ = io.WriteString(fw, "from a file")
		}
		require.NoError(t, w.Close())
		return w.FormDataContentType(), &b
	}
	post := func(t *testing.T, m *Main, method, ctype string, body io.Reader) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+m.Addr()+urlstyle.Prefix+method, body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", ctype)
		req.SetBasicAuth(testAdminKey, "")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	eachTransport(t, func(t *testing.T, m *Main) {
		ct, body := form([][2]string{{"comment", "from filebin"}, {"scopes", `{"method":["apikey.info"]}`}}, false)
		status, reply := post(t, m, "apikey.create", ct, body)
		require.Equal(t, http.StatusOK, status, reply)
		assert.Contains(t, reply, `"comment":"from filebin"`)
		assert.Contains(t, reply, `"method":["apikey.info"]`)

		before := keyComments(t, m)
		for _, tc := range []struct {
			name      string
			fields    [][2]string
			file      bool
			errorType string
		}{
			{"Duplicate", [][2]string{{"comment", "a"}, {"comment", "b"}}, false, rpc.ErrIDInvalidParams},
			{"CaseVariant", [][2]string{{"comment", "a"}, {"COMMENT", "b"}}, false, rpc.ErrIDInvalidParams},
			{"NestedDuplicate", [][2]string{{"scopes", `{"method":["apikey.info"],"method":["apikey.*"]}`}}, false, rpc.ErrIDInvalidParams},
			{"InvalidUTF8", [][2]string{{"comment", "a\xc0\xafb"}}, false, rpc.ErrIDInvalidParams},
			{"File", nil, true, rpc.ErrIDInvalidRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ct, body := form(tc.fields, tc.file)
				status, reply := post(t, m, "apikey.create", ct, body)
				assert.Equal(t, http.StatusBadRequest, status, reply)
				assert.Contains(t, reply, `"error_type":"`+tc.errorType+`"`)
			})
		}
		t.Run("NoBoundary", func(t *testing.T) {
			status, reply := post(t, m, "apikey.create", "multipart/form-data", strings.NewReader("x"))
			assert.Equal(t, http.StatusBadRequest, status, reply)
			assert.Contains(t, reply, `"error_type":"invalid_request"`)
		})
		t.Run("TooLarge", func(t *testing.T) {
			ct, body := form([][2]string{{"comment", strings.Repeat("a", rpc.DefaultMaxBodyBytes+1)}}, false)
			status, reply := post(t, m, "apikey.create", ct, body)
			assert.Equal(t, http.StatusBadRequest, status, reply)
			assert.Contains(t, reply, "larger than")
		})
		assert.Equal(t, before, keyComments(t, m), "a refused form changed the keys")
	})
}
