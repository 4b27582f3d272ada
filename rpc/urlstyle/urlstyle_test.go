package urlstyle_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestURLStyle_Calls(t *testing.T) {
	ts := newTestServer(t)
	base := urlServer(t, ts)

	// POST a form: apikey.create with scopes as JSON text.
	status, _, body := urlCall(t, http.MethodPost, base+"apikey.create", ts.Admin, url.Values{
		"comment": {"from a script"},
		"scopes":  {`{"method":["server.reboot","apikey.info"],"name":["web1"]}`},
	})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var k rpc.NewKeyInfo
	require.NoError(t, json.Unmarshal(body, &k))
	assert.Equal(t, "from a script", k.Comment)
	assert.Equal(t, []string{"web1"}, k.Scopes.Name)

	// GET with query params; the reply is the result itself, as over JSON-RPC.
	status, _, body = urlCall(t, http.MethodGet, base+"apikey.info?id="+k.ID, ts.Admin, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	r := ts.Call(ts.Admin, "apikey.info", map[string]any{"id": k.ID})
	assert.JSONEq(t, string(r.Result), string(body))

	// The name from the path, and booleans as 0/1.
	status, _, body = urlCall(t, http.MethodPost, base+"server.reboot/web1?force=1", k.Key, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.JSONEq(t, `{"name":"web1","status":"rebooting"}`, string(body))
	assert.Equal(t, []string{"web1"}, *ts.Reboots)

	// The same scopes: another name is refused, with Memset's error shape.
	status, _, body = urlCall(t, http.MethodGet, base+"server.reboot/web2", k.Key, nil)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, urlstyle.Error{ErrorType: rpc.ErrIDScopeDenied, ErrorCode: rpc.CodeForbidden, Error: urlError(t, body).Error}, urlError(t, body))
	assert.Equal(t, []string{"web1"}, *ts.Reboots)

	// apikey.update with active=0 and 1.
	status, _, body = urlCall(t, http.MethodPost, base+"apikey.update", ts.Admin, url.Values{"id": {k.ID}, "active": {"0"}})
	require.Equal(t, http.StatusOK, status, "%s", body)
	status, _, _ = urlCall(t, http.MethodGet, base+"server.reboot/web1", k.Key, nil)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, _, _ = urlCall(t, http.MethodPost, base+"apikey.update", ts.Admin, url.Values{"id": {k.ID}, "active": {"1"}})
	require.Equal(t, http.StatusOK, status)
	status, _, _ = urlCall(t, http.MethodGet, base+"server.reboot/web1", k.Key, nil)
	assert.Equal(t, http.StatusOK, status)

	// Repeated fields make a list; a list param also takes JSON text.
	status, _, body = urlCall(t, http.MethodGet, base+"apikey.list?created=gte:2026-01-01T00:00:00Z&created=lt:2027-01-01T00:00:00Z&size=1", ts.Admin, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"total":2`)

	// Same audit: the URL-style mutations are in the trail.
	var page struct {
		Records []struct{ Method, Outcome string } `json:"records"`
	}
	require.NoError(t, ts.Store.FlushAudit()) // failed authentications are counted, then written
	ts.OK(ts.Admin, "audit.list", map[string]any{"method": "server.reboot"}, &page)
	outcomes := []string{}
	for _, r := range page.Records {
		outcomes = append(outcomes, r.Outcome)
	}
	assert.ElementsMatch(t, []string{"ok", "scope_denied", "invalid_key", "ok"}, outcomes)
}

func TestURLStyle_Errors(t *testing.T) {
	ts := newTestServer(t)
	base := urlServer(t, ts)
	limited := ts.CreateKey(ts.Admin, map[string][]string{"method": {"server.list"}}, "")
	var metered rpc.NewKeyInfo
	ts.OK(ts.Admin, "apikey.create", map[string]any{"rate_limit": map[string]any{"limit": 1, "interval_seconds": 90}, "scopes": map[string][]string{"method": {"server.list"}}}, &metered)

	for _, tt := range []struct {
		name, method, path, key string
		form                    url.Values
		status                  int
		errorType               string
	}{
		{"NoKey", "GET", "server.list", "", nil, 401, rpc.ErrIDMissingKey},
		{"BadKey", "GET", "server.list", "ffffffffffffffffffffffffffffffff", nil, 401, rpc.ErrIDInvalidKey},
		{"NoKeyUnknownMethod", "GET", "no.such", "", nil, 401, rpc.ErrIDMissingKey},
		{"UnknownMethod", "GET", "no.such", adminKey, nil, 404, rpc.ErrIDMethodNotFound},
		{"UnknownParam", "GET", "apikey.list?sizes=3", adminKey, nil, 400, rpc.ErrIDInvalidParams},
		{"BadBool", "POST", "apikey.list", adminKey, url.Values{"hydrate": {"yes"}}, 400, rpc.ErrIDInvalidParams},
		{"BadInt", "GET", "apikey.list?size=many", adminKey, nil, 400, rpc.ErrIDInvalidParams},
		{"Repeated", "GET", "apikey.info?id=a&id=b", adminKey, nil, 400, rpc.ErrIDInvalidParams},
		{"BadJSON", "POST", "apikey.create", adminKey, url.Values{"scopes": {`{"method":`}}, 400, rpc.ErrIDInvalidParams},
		{"NameNotTaken", "GET", "apikey.info/web1", adminKey, nil, 400, rpc.ErrIDInvalidParams},
		{"NameTwice", "GET", "server.reboot/web1?name=web2", adminKey, nil, 400, rpc.ErrIDInvalidParams},
		{"EmptyName", "GET", "server.reboot/", adminKey, nil, 404, rpc.ErrIDInvalidRequest},
		{"DeepPath", "GET", "server.reboot/a/b", adminKey, nil, 404, rpc.ErrIDInvalidRequest},
		{"NotFound", "GET", "apikey.info?id=01890a5d-ac96-774b-bcce-b302099a8057", adminKey, nil, 404, rpc.ErrIDKeyNotFound},
		{"Scope", "GET", "apikey.list", limited.Key, nil, 403, rpc.ErrIDScopeDenied},
		{"Put", "PUT", "server.list", adminKey, nil, 405, rpc.ErrIDHTTPMethod},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts.Unchanged(func() {
				status, h, body := urlCall(t, tt.method, base+tt.path, tt.key, tt.form)
				assert.Equal(t, tt.status, status, "%s", body)
				assert.Equal(t, tt.errorType, urlError(t, body).ErrorType)
				if status == 401 {
					assert.Equal(t, `Bearer realm="apikeyd"`, h.Get("WWW-Authenticate"))
				}
			})
		})
	}

	t.Run("RateLimited", func(t *testing.T) {
		status, _, _ := urlCall(t, "GET", base+"server.list", metered.Key, nil)
		require.Equal(t, http.StatusOK, status)
		status, h, body := urlCall(t, "GET", base+"server.list", metered.Key, nil)
		assert.Equal(t, http.StatusTooManyRequests, status)
		assert.Equal(t, rpc.ErrIDRateLimited, urlError(t, body).ErrorType)
		assert.Equal(t, "90", h.Get("Retry-After"))
	})
	t.Run("WrongContentType", func(t *testing.T) {
		req, err := http.NewRequest("POST", base+"server.list", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(adminKey, "")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	})
}

// TestURLStyle_Newline: every URL-style reply, result or error, ends with a
// newline, so a shell prompt does not follow it on the same line.
func TestURLStyle_Newline(t *testing.T) {
	ts := newTestServer(t)
	base := urlServer(t, ts)
	for _, tc := range []struct {
		what, method, target, key string
		status                    int
	}{
		{"result", http.MethodGet, base + "apikey.list", ts.Admin, http.StatusOK},
		{"unknown key", http.MethodGet, base + "apikey.list", "ffffffffffffffffffffffffffffffff", http.StatusUnauthorized},
		{"no method", http.MethodGet, base + "no.such", ts.Admin, http.StatusNotFound},
		{"bad path", http.MethodGet, base, ts.Admin, http.StatusNotFound},
		{"bad http method", http.MethodPut, base + "apikey.list", ts.Admin, http.StatusMethodNotAllowed},
	} {
		status, _, body := urlCall(t, tc.method, tc.target, tc.key, nil)
		assert.Equal(t, tc.status, status, "%s: %s", tc.what, body)
		require.NotEmpty(t, body, tc.what)
		assert.Equal(t, byte('\n'), body[len(body)-1], "%s: %q", tc.what, body)
		assert.True(t, json.Valid(body), "%s: %s", tc.what, body)
	}
}
