package rpc_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/rpc/urlstyle"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postRaw posts body as the admin and decodes the single reply.
func (ts *testServer) postRaw(body string) wireResponse {
	ts.t.Helper()
	status, reply := ts.post(ts.Admin, body)
	require.Equal(ts.t, http.StatusOK, status, "reply: %s", reply)
	require.True(ts.t, json.Valid(reply), "the reply is not valid JSON: %q", reply)
	var r wireResponse
	require.NoError(ts.t, json.Unmarshal(reply, &r), "reply: %s", reply)
	return r
}

// TestStrict_NestedNames: the exact-name rule holds at every depth of
// params, not only at its top: a name twice, or a second name differing
// only in case, is refused with invalid_params naming the param, and
// nothing is stored.
func TestStrict_NestedNames(t *testing.T) {
	ts := newTestServer(t)
	target := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.info"}}, "target")
	for _, tc := range []struct {
		name, body, field string
	}{
		{"DuplicateScopeType", `{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"method":["apikey.info"],"method":["apikey.*"]}},"id":1}`, "scopes"},
		{"DuplicateScopeTypeEscaped", `{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"method":["apikey.info"],"m\u0065thod":["apikey.*"]}},"id":1}`, "scopes"},
		{"CaseVariantScopeType", `{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"method":["apikey.info"],"METHOD":["apikey.*"]}},"id":1}`, "scopes"},
		{"CaseVariantRateLimit", `{"jsonrpc":"2.0","method":"apikey.create","params":{"rate_limit":{"limit":5,"LIMIT":500,"interval_seconds":60}},"id":1}`, "rate_limit"},
		{"DuplicateRateLimit", `{"jsonrpc":"2.0","method":"apikey.create","params":{"rate_limit":{"limit":5,"limit":500,"interval_seconds":60}},"id":1}`, "rate_limit"},
		{"CaseVariantQuota", `{"jsonrpc":"2.0","method":"apikey.create","params":{"quota":{"remaining":5,"Remaining":500}},"id":1}`, "quota"},
		{"UpdateCaseVariantRateLimit", `{"jsonrpc":"2.0","method":"apikey.update","params":{"id":"` + target.ID + `","rate_limit":{"limit":5,"Limit":500,"interval_seconds":60}},"id":1}`, "rate_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.unchanged(func() {
				r := ts.postRaw(tc.body)
				require.NotNil(t, r.Error, "accepted: %s", r.Result)
				assert.Equal(t, int64(rpc.CodeInvalidParams), r.Error.Code, "%+v", r.Error)
				assert.Equal(t, rpc.ErrIDInvalidParams, r.Error.Data.ErrorID)
				assert.True(t, strings.HasPrefix(r.Error.Data.Field, tc.field), "field %q", r.Error.Data.Field)
				assert.Equal(t, json.RawMessage("1"), r.ID)
			})
		})
	}
	t.Run("MessageNamesTheMember", func(t *testing.T) {
		r := ts.postRaw(`{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"method":["a.b"],"method":["c.d"]}},"id":1}`)
		require.NotNil(t, r.Error)
		assert.Contains(t, r.Error.Message, "scopes")
		assert.Contains(t, r.Error.Message, "twice")
	})
	t.Run("OK", func(t *testing.T) {
		// The same shapes, once each, are accepted as before.
		var out rpc.NewKeyInfo
		ts.ok(ts.Admin, "apikey.create", map[string]any{
			"scopes":     map[string][]string{"method": {"apikey.info"}},
			"rate_limit": map[string]int{"limit": 5, "interval_seconds": 60},
		}, &out)
		var info rpc.KeyInfo
		ts.ok(ts.Admin, "apikey.info", map[string]string{"id": out.ID}, &info)
		require.NotNil(t, info.RateLimit)
		assert.Equal(t, int64(5), info.RateLimit.Limit)
		assert.Equal(t, []string{"apikey.info"}, info.Scopes.Method)
	})
}

// TestStrict_InvalidUTF8: a body that is not UTF-8 is not JSON (RFC 8259,
// 8.1). Invalid bytes, overlong forms, encoded surrogates and unpaired
// surrogate escapes are refused as a parse error wherever they are (id,
// method, params, a nested member name), the reply is valid JSON, and
// nothing is stored with a replacement character in place of the bytes.
func TestStrict_InvalidUTF8(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct{ name, body string }{
		{"OverlongIDString", "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.list\",\"id\":\"\xc0\xaf\"}"},
		{"InvalidIDByte", "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.list\",\"id\":\"a\xffb\"}"},
		{"EncodedSurrogateComment", "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"comment\":\"x\xed\xa0\x80\"},\"id\":1}"},
		{"OverlongComment", "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"comment\":\"\xe0\x80\xaf\"},\"id\":1}"},
		{"BeyondUnicode", "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"comment\":\"\xf4\x90\x80\x80\"},\"id\":1}"},
		{"LoneHighSurrogateEscape", `{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"x\ud800"},"id":1}`},
		{"LoneLowSurrogateEscape", `{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"\udc00"},"id":1}`},
		{"ReversedSurrogateEscapes", `{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"\udc00\ud800"},"id":1}`},
		{"NestedName", "{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"scopes\":{\"meth\xc1\xafod\":[\"a.b\"]}},\"id\":1}"},
		{"InBatch", "[{\"jsonrpc\":\"2.0\",\"method\":\"apikey.list\",\"id\":1},{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"comment\":\"\xff\"},\"id\":2}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.unchanged(func() {
				r := ts.postRaw(tc.body)
				require.NotNil(t, r.Error, "accepted: %s", r.Result)
				assert.Equal(t, int64(rpc.CodeParseError), r.Error.Code)
				assert.Equal(t, rpc.ErrIDParse, r.Error.Data.ErrorID)
				assert.Equal(t, json.RawMessage("null"), r.ID)
			})
		})
	}
	t.Run("OK", func(t *testing.T) {
		// Valid UTF-8, raw or as an escaped surrogate pair, is kept exactly.
		r := ts.postRaw(`{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"é😀\ud83d\ude00"},"id":"é"}`)
		require.Nil(t, r.Error, "%+v", r.Error)
		assert.Equal(t, json.RawMessage(`"é"`), r.ID)
		var out rpc.NewKeyInfo
		require.NoError(t, json.Unmarshal(r.Result, &out))
		var info rpc.KeyInfo
		ts.ok(ts.Admin, "apikey.info", map[string]string{"id": out.ID}, &info)
		assert.Equal(t, "é😀😀", info.Comment)
	})
}

// TestStrict_URLStyleInvalidUTF8: Memset's URL style takes fields from a
// query or a form, which percent-encoding can fill with any bytes. A field
// name, value or path segment that is not UTF-8 is refused, not stored
// with replacement characters.
func TestStrict_URLStyleInvalidUTF8(t *testing.T) {
	ts := newTestServer(t)
	base := urlServer(t, ts)
	for _, tc := range []struct{ name, target, form string }{
		{"QueryValue", "apikey.create?comment=a%C0%AFb", ""},
		{"QueryName", "apikey.create?comm%FFent=x", ""},
		{"FormValue", "apikey.create", "comment=%ED%A0%80"},
		{"PathName", "server.reboot/web%FF1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.unchanged(func() {
				var req *http.Request
				var err error
				if tc.form != "" {
					req, err = http.NewRequest(http.MethodPost, base+tc.target, strings.NewReader(tc.form))
					require.NoError(t, err)
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				} else {
					req, err = http.NewRequest(http.MethodGet, base+tc.target, nil)
					require.NoError(t, err)
				}
				req.SetBasicAuth(ts.Admin, "")
				status, body := ts.do(req)
				assert.Equal(t, http.StatusBadRequest, status, "%s", body)
				var e urlstyle.Error
				require.NoError(t, json.Unmarshal(body, &e), "%s", body)
				assert.Equal(t, rpc.ErrIDInvalidParams, e.ErrorType)
				assert.Contains(t, e.Error, "UTF-8")
			})
		})
	}
	t.Run("OK", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, base+"apikey.create?comment="+url.QueryEscape("é"), nil)
		require.NoError(t, err)
		req.SetBasicAuth(ts.Admin, "")
		status, body := ts.do(req)
		require.Equal(t, http.StatusOK, status, "%s", body)
		var out rpc.NewKeyInfo
		require.NoError(t, json.Unmarshal(body, &out))
		assert.Equal(t, "é", out.Comment)
	})
}

// TestStrict_WebSocket: the same rules over the WebSocket, whichever way a
// message is read there (through jsonrpc2 or straight to the call path):
// the same reply as over HTTP, and nothing stored.
func TestStrict_WebSocket(t *testing.T) {
	ts := newTestServer(t)
	_, url := serveWS(t, ts)
	ws, _, err := dialWS(t, url, "Bearer "+ts.Admin)
	require.NoError(t, err)
	for _, tc := range []struct {
		body string
		code int64
	}{
		{`{"jsonrpc":"2.0","method":"apikey.create","params":{"scopes":{"method":["apikey.info"],"method":["apikey.*"]}},"id":1}`, rpc.CodeInvalidParams},
		{`{"jsonrpc":"2.0","method":"apikey.create","params":{"rate_limit":{"limit":5,"LIMIT":500,"interval_seconds":60}},"id":"a"}`, rpc.CodeInvalidParams},
		{"{\"jsonrpc\":\"2.0\",\"method\":\"apikey.create\",\"params\":{\"comment\":\"\xc0\xaf\"},\"id\":2}", rpc.CodeParseError},
		{"{\"jsonrpc\":\"2.0\",\"method\":\"apikey.list\",\"id\":\"\xed\xa0\x80\"}", rpc.CodeParseError},
		{`{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"\ud800"},"id":3}`, rpc.CodeParseError},
	} {
		ts.unchanged(func() {
			require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(tc.body)))
			require.NoError(t, ws.SetReadDeadline(time.Now().Add(3*time.Second)))
			_, viaWS, err := ws.ReadMessage()
			require.NoError(t, err, tc.body)
			require.True(t, json.Valid(viaWS), "%q", viaWS)
			var r wireResponse
			require.NoError(t, json.Unmarshal(viaWS, &r))
			require.NotNil(t, r.Error, "%q accepted: %s", tc.body, viaWS)
			assert.Equal(t, tc.code, r.Error.Code, "%q", tc.body)
			status, viaHTTP := ts.post(ts.Admin, tc.body)
			require.Equal(t, http.StatusOK, status)
			assert.JSONEq(t, string(viaHTTP), string(viaWS), "%q", tc.body)
		})
	}
}
