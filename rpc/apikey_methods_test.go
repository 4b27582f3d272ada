package rpc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var reSecretShape = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestAPIKey_Create(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ts := newTestServer(t)
		r := ts.call(ts.Admin, "apikey.create", map[string]any{
			"scopes":  map[string][]string{"method": {"server.reboot", "server.*", "server.reboot"}, "name": {"web2", "web1"}},
			"comment": "ünïcødé panel key",
		})
		require.Nil(t, r.Error)
		var k rpc.NewKeyInfo
		require.NoError(t, json.Unmarshal(r.Result, &k))
		assert.Regexp(t, reSecretShape, k.Key)
		assert.True(t, store.IsKeyID(k.ID))
		assert.Equal(t, []string{"server.*", "server.reboot"}, k.Scopes.Method, "sorted, duplicates dropped")
		assert.Equal(t, []string{"web1", "web2"}, k.Scopes.Name)
		assert.Equal(t, "ünïcødé panel key", k.Comment)
		assert.Equal(t, fixedNow, k.Created)
		assert.Contains(t, string(r.Result), `"created":"2026-01-02T03:04:05Z"`)

		// The secret works, and is shown by no other method.
		ts.ok(k.Key, "server.reboot", map[string]any{"name": "web1"}, nil)
		for _, m := range []struct {
			method string
			params any
		}{
			{"apikey.info", map[string]any{"id": k.ID}},
			{"apikey.info", map[string]any{"id": k.Key}},
			{"apikey.list", nil},
			{"apikey.add_scope", map[string]any{"id": k.ID, "scope_name": "name", "value": "web3"}},
			{"apikey.delete_scope", map[string]any{"id": k.ID, "scope_name": "name", "value": "web3"}},
		} {
			r := ts.call(ts.Admin, m.method, m.params)
			require.Nil(t, r.Error, m.method)
			assert.NotContains(t, string(r.Result), k.Key, "%s showed the secret", m.method)
		}
	})
	t.Run("OKPositionalAndEmpty", func(t *testing.T) {
		ts := newTestServer(t)
		var k rpc.NewKeyInfo
		ts.ok(ts.Admin, "apikey.create", []any{map[string][]string{"method": {"server.list"}}, "by position"}, &k)
		assert.Equal(t, []string{"server.list"}, k.Scopes.Method)
		assert.Equal(t, "by position", k.Comment)
		var bare rpc.NewKeyInfo
		ts.ok(ts.Admin, "apikey.create", nil, &bare)
		assert.True(t, bare.Scopes.IsUnrestricted())
		assert.Empty(t, bare.Comment)
		ts.ok(ts.Admin, "apikey.create", map[string]any{"scopes": nil, "comment": nil}, &k)
		ts.ok(ts.Admin, "apikey.create", map[string]any{"scopes": map[string]any{}}, &k)
		assert.Contains(t, string(ts.call(ts.Admin, "apikey.info", map[string]any{"id": k.ID}).Result), `"scopes":{}`)
	})
	t.Run("OKLimits", func(t *testing.T) {
		ts := newTestServer(t)
		var k rpc.NewKeyInfo
		ts.ok(ts.Admin, "apikey.create", map[string]any{"comment": strings.Repeat("x", 255)}, &k)
		ts.ok(ts.Admin, "apikey.create", map[string]any{"comment": strings.Repeat("é", 255)}, &k)
		ts.ok(ts.Admin, "apikey.create", map[string]any{"scopes": map[string][]string{"name": {strings.Repeat("n", 50)}}}, &k)
		ts.ok(ts.Admin, "apikey.create", map[string]any{"scopes": map[string][]string{"name": {strings.Repeat("ñ", 50)}}}, &k)
	})

	bad := []struct {
		name   string
		params any
		field  string
	}{
		{"ErrCommentTooLong", map[string]any{"comment": strings.Repeat("x", 256)}, "comment"},
		{"ErrCommentTooLongRunes", map[string]any{"comment": strings.Repeat("é", 256)}, "comment"},
		{"ErrCommentType", map[string]any{"comment": 42}, "comment"},
		{"ErrCommentObject", map[string]any{"comment": map[string]any{}}, "comment"},
		{"ErrScopesString", map[string]any{"scopes": "method"}, "scopes"},
		{"ErrScopesArray", map[string]any{"scopes": []string{"server.reboot"}}, "scopes"},
		{"ErrScopeValuesString", map[string]any{"scopes": map[string]any{"method": "server.reboot"}}, "scopes"},
		{"ErrScopeValueNumber", map[string]any{"scopes": map[string]any{"name": []any{1}}}, "scopes"},
		{"ErrScopeType", map[string]any{"scopes": map[string][]string{"region": {"eu"}}}, "scopes.region"},
		{"ErrScopeTypeCase", map[string]any{"scopes": map[string][]string{"Method": {"server.reboot"}}}, "scopes.Method"},
		{"ErrScopeValueTooLong", map[string]any{"scopes": map[string][]string{"name": {strings.Repeat("n", 51)}}}, "scopes.name[0]"},
		{"ErrScopeValueEmpty", map[string]any{"scopes": map[string][]string{"name": {"web1", ""}}}, "scopes.name[1]"},
		{"ErrScopeValueControl", map[string]any{"scopes": map[string][]string{"name": {"web\n1"}}}, "scopes.name[0]"},
		{"ErrMethodPatternCase", map[string]any{"scopes": map[string][]string{"method": {"Server.Reboot"}}}, "scopes.method[0]"},
		{"ErrMethodPatternTrailingDot", map[string]any{"scopes": map[string][]string{"method": {"server."}}}, "scopes.method[0]"},
		{"ErrMethodPatternStar", map[string]any{"scopes": map[string][]string{"method": {"*"}}}, "scopes.method[0]"},
		{"ErrTooManyValues", map[string]any{"scopes": map[string][]string{"name": manyNames(101)}}, "scopes.name"},
		{"ErrUnknownParam", map[string]any{"commment": "typo"}, "commment"},
		{"ErrParamCase", map[string]any{"Comment": "x"}, "Comment"},
		{"ErrTooManyPositional", []any{nil, "c", "", "", "", "", "", nil, nil, "extra"}, ""},
		{"ErrRateLimitType", map[string]any{"rate_limit": 100}, "rate_limit"},
		{"ErrRateLimitUnknownField", map[string]any{"rate_limit": map[string]any{"limit": 1, "interval_seconds": 1, "burst": 2}}, "rate_limit"},
		{"ErrRateLimitNegative", map[string]any{"rate_limit": map[string]any{"limit": -1, "interval_seconds": 60}}, "rate_limit"},
		{"ErrRateLimitNoInterval", map[string]any{"rate_limit": map[string]any{"limit": 10}}, "rate_limit"},
		{"ErrRateLimitLongInterval", map[string]any{"rate_limit": map[string]any{"limit": 10, "interval_seconds": 86401}}, "rate_limit"},
		{"ErrRateLimitFractional", map[string]any{"rate_limit": map[string]any{"limit": 1.5, "interval_seconds": 60}}, "rate_limit"},
		{"ErrQuotaNegative", map[string]any{"quota": map[string]any{"remaining": -1}}, "quota"},
		{"ErrQuotaType", map[string]any{"quota": "lots"}, "quota"},
		{"ErrQuotaBadRefill", map[string]any{"quota": map[string]any{"remaining": 5, "refill": "hourly", "refill_amount": 5}}, "quota"},
		{"ErrQuotaRefillNoAmount", map[string]any{"quota": map[string]any{"remaining": 5, "refill": "daily"}}, "quota"},
		{"ErrQuotaUnknownField", map[string]any{"quota": map[string]any{"remaining": 5, "reset": "daily"}}, "quota"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t)
			ts.unchanged(func() {
				e := ts.fail(ts.Admin, "apikey.create", tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
				assert.Equal(t, tt.field, e.Data.Field)
				if tt.field != "" {
					assert.Contains(t, e.Message, tt.field)
				}
			})
		})
	}
	t.Run("ErrDuplicateParam", func(t *testing.T) {
		ts := newTestServer(t)
		ts.unchanged(func() {
			_, body := ts.post(ts.Admin, `{"jsonrpc":"2.0","method":"apikey.create","params":{"comment":"a","comment":"b"},"id":1}`)
			assert.Contains(t, string(body), `"code":-32602`)
		})
	})
}

func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "web" + strings.Repeat("x", i%40) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	return out
}

// idMethods are the methods that take a key id, with params that are
// otherwise valid, to test id handling on each.
func idMethods(id any) []struct {
	method string
	params map[string]any
} {
	return []struct {
		method string
		params map[string]any
	}{
		{"apikey.info", map[string]any{"id": id}},
		{"apikey.delete", map[string]any{"id": id}},
		{"apikey.add_scope", map[string]any{"id": id, "scope_name": "name", "value": "web9"}},
		{"apikey.delete_scope", map[string]any{"id": id, "scope_name": "name", "value": "web1"}},
		{"apikey.update", map[string]any{"id": id, "comment": "changed"}},
		{"apikey.rotate", map[string]any{"id": id}},
	}
}

func TestAPIKey_IDs(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, map[string][]string{"name": {"web1"}}, "target")
	other, otherSecret, err := ts.Store.CreateKey(context.Background(), store.NewKey{Account: "other", Comment: "another account"})
	require.NoError(t, err)

	t.Run("ErrWrongShape", func(t *testing.T) {
		for _, id := range []any{
			42, 4.5, true, map[string]any{"id": k.ID}, []string{k.ID},
			"", "not a key", "{" + k.ID + "}", k.ID + " ", " " + k.Key, "ключ", strings.Repeat("n", 65),
		} {
			for _, m := range idMethods(id) {
				ts.unchanged(func() {
					e := ts.fail(ts.Admin, m.method, m.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
					assert.Equal(t, "id", e.Data.Field, "%s with id %v", m.method, id)
				})
			}
		}
	})
	t.Run("ErrMissing", func(t *testing.T) {
		for _, m := range idMethods(nil) {
			delete(m.params, "id")
			ts.unchanged(func() {
				e := ts.fail(ts.Admin, m.method, m.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
				assert.Equal(t, "id", e.Data.Field)
				assert.Contains(t, e.Message, "required")
			})
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		// Unknown ids, unknown secrets, and another account's id and secret
		// all get the same error, word for word.
		var first *wireError
		// Strings of no other shape are key names: unknown ones are not found.
		for _, id := range []string{
			"01890a5d-ac96-774b-bcce-b302099a8057", "ffffffffffffffffffffffffffffffff", other.ID, otherSecret,
			"not-an-id", k.Key[:31], k.Key + "0", strings.ToUpper(k.Key), strings.ToUpper(k.ID),
		} {
			for _, m := range idMethods(id) {
				ts.unchanged(func() {
					e := ts.fail(ts.Admin, m.method, m.params, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
					if first == nil {
						first = e
					}
					assert.Equal(t, *first, *e, "%s with id %s", m.method, id)
				})
			}
		}
		var keys []rpc.KeyInfo
		ts.ok(ts.Admin, "apikey.list", nil, &keys)
		for _, info := range keys {
			assert.NotEqual(t, other.ID, info.ID, "list shows another account's key")
		}
		// The other account's key itself still works and was not changed.
		got, err := ts.Store.Key("other", other.ID)
		require.NoError(t, err)
		assert.Equal(t, "another account", got.Comment)
	})
	t.Run("OKBySecret", func(t *testing.T) {
		var byID, bySecret rpc.KeyInfo
		ts.ok(ts.Admin, "apikey.info", map[string]any{"id": k.ID}, &byID)
		ts.ok(ts.Admin, "apikey.info", []any{k.Key}, &bySecret)
		assert.Equal(t, byID, bySecret)
	})
}

func TestAPIKey_List(t *testing.T) {
	ts := newTestServer(t)
	var keys []rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.list", nil, &keys)
	require.Len(t, keys, 1, "the operator key")
	a := ts.createKey(ts.Admin, nil, "a")
	b := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.list"}}, "b")
	ts.ok(b.Key, "apikey.list", []any{}, &keys)
	require.Len(t, keys, 3)
	assert.Equal(t, a.KeyInfo, keys[1])
	// b has been used once since it was created: to make this call.
	used := b.KeyInfo
	used.UseCount, used.LastUsedAt = 1, &fixedNow
	assert.Equal(t, used, keys[2])
	ts.ok(ts.Admin, "apikey.list", map[string]any{}, &keys)
	ts.unchanged(func() {
		ts.fail(ts.Admin, "apikey.list", map[string]any{"id": a.ID}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
		ts.fail(ts.Admin, "apikey.list", []any{1}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
	})
}

func TestAPIKey_Delete(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, nil, "doomed")
	r := ts.call(ts.Admin, "apikey.delete", map[string]any{"id": k.ID})
	require.Nil(t, r.Error)
	assert.JSONEq(t, `{}`, string(r.Result))
	ts.fail(k.Key, "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	ts.fail(ts.Admin, "apikey.info", map[string]any{"id": k.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)
	ts.fail(ts.Admin, "apikey.delete", map[string]any{"id": k.ID}, rpc.CodeNotFound, rpc.ErrIDKeyNotFound)

	// By secret, and a key deleting itself.
	self := ts.createKey(ts.Admin, nil, "self")
	ts.ok(self.Key, "apikey.delete", []any{self.Key}, nil)
	ts.fail(self.Key, "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
}

func TestAPIKey_AddDeleteScope(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, map[string][]string{"name": {"web1"}}, "k")
	var info rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.add_scope", map[string]any{"id": k.ID, "scope_name": "method", "value": "server.reboot"}, &info)
	assert.Equal(t, []string{"server.reboot"}, info.Scopes.Method)
	ts.ok(ts.Admin, "apikey.add_scope", []any{k.Key, "name", "web0"}, &info)
	assert.Equal(t, []string{"web0", "web1"}, info.Scopes.Name)
	ts.unchanged(func() {
		ts.ok(ts.Admin, "apikey.add_scope", []any{k.ID, "name", "web0"}, &info) // already there: same value set
	})
	ts.ok(k.Key, "server.reboot", []any{"web0"}, nil)

	ts.ok(ts.Admin, "apikey.delete_scope", map[string]any{"id": k.ID, "scope_name": "name", "value": "web0"}, &info)
	assert.Equal(t, []string{"web1"}, info.Scopes.Name)
	ts.fail(k.Key, "server.reboot", []any{"web0"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)

	before := info
	ts.ok(ts.Admin, "apikey.delete_scope", map[string]any{"id": k.ID, "scope_name": "method", "value": "server.list"}, &info)
	before.UseCount, info.UseCount = 0, 0 // the refused call above was a use
	assert.Equal(t, before, info, "an absent value is no error and changes nothing")

	for _, method := range []string{"apikey.add_scope", "apikey.delete_scope"} {
		for _, tt := range []struct {
			name   string
			params map[string]any
			field  string
		}{
			{"ErrScopeNameUnknown", map[string]any{"id": k.ID, "scope_name": "region", "value": "x"}, "scope_name"},
			{"ErrScopeNameCase", map[string]any{"id": k.ID, "scope_name": "Method", "value": "x"}, "scope_name"},
			{"ErrScopeNameEmpty", map[string]any{"id": k.ID, "scope_name": "", "value": "x"}, "scope_name"},
			{"ErrScopeNameType", map[string]any{"id": k.ID, "scope_name": 1, "value": "x"}, "scope_name"},
			{"ErrScopeNameMissing", map[string]any{"id": k.ID, "value": "x"}, "scope_name"},
			{"ErrValueTooLong", map[string]any{"id": k.ID, "scope_name": "name", "value": strings.Repeat("v", 51)}, "value"},
			{"ErrValueEmpty", map[string]any{"id": k.ID, "scope_name": "name", "value": ""}, "value"},
			{"ErrValueType", map[string]any{"id": k.ID, "scope_name": "name", "value": 7}, "value"},
			{"ErrValueArray", map[string]any{"id": k.ID, "scope_name": "name", "value": []string{"a"}}, "value"},
			{"ErrValueMissing", map[string]any{"id": k.ID, "scope_name": "name"}, "value"},
			{"ErrMethodValue", map[string]any{"id": k.ID, "scope_name": "method", "value": "Server.*"}, "value"},
			{"ErrUnknownParam", map[string]any{"id": k.ID, "scope_name": "name", "value": "v", "values": "w"}, "values"},
		} {
			t.Run(method+"/"+tt.name, func(t *testing.T) {
				ts.unchanged(func() {
					e := ts.fail(ts.Admin, method, tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
					assert.Equal(t, tt.field, e.Data.Field)
				})
			})
		}
	}
	t.Run("ErrTooManyValues", func(t *testing.T) {
		full := ts.createKey(ts.Admin, map[string][]string{"name": manyNames(100)}, "full")
		ts.unchanged(func() {
			ts.fail(ts.Admin, "apikey.add_scope", []any{full.ID, "name", "one-more"}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
		})
	})
}

// TestAPIKey_NoEscalation: a key may create or change keys only within its
// own reach, judged on the resulting key and on the key it changes.
func TestAPIKey_NoEscalation(t *testing.T) {
	ts := newTestServer(t)
	mgr := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.*", "server.reboot"}}, "manager")
	named := ts.createKey(ts.Admin, map[string][]string{"name": {"web1"}}, "named")
	admin := ts.call(ts.Admin, "apikey.list", nil)
	var all []rpc.KeyInfo
	require.NoError(t, json.Unmarshal(admin.Result, &all))
	adminID := all[0].ID

	// Within reach.
	sub := ts.createKey(mgr.Key, map[string][]string{"method": {"server.reboot"}}, "narrower")
	ts.createKey(mgr.Key, map[string][]string{"method": {"server.reboot"}, "name": {"web1"}}, "narrower still")
	ts.createKey(mgr.Key, map[string][]string{"method": {"apikey.info", "apikey.*"}}, "within the wildcard")

	refusals := []struct {
		name   string
		method string
		params any
	}{
		{"CreateUnrestricted", "apikey.create", map[string]any{}},
		{"CreateWider", "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"server.*"}}}},
		{"CreateOtherMethod", "apikey.create", map[string]any{"scopes": map[string][]string{"method": {"server.list"}}}},
		{"CreateNameOnly", "apikey.create", map[string]any{"scopes": map[string][]string{"name": {"web1"}}}},
		{"AddScopeWider", "apikey.add_scope", []any{sub.ID, "method", "server.list"}},
		{"AddScopeWildcard", "apikey.add_scope", []any{sub.ID, "method", "server.*"}},
		{"DeleteLastValue", "apikey.delete_scope", []any{sub.ID, "method", "server.reboot"}},
		{"DeleteLastValueOfOwnType", "apikey.delete_scope", []any{sub.ID, "method", "server.reboot"}},
		{"DeleteWiderKey", "apikey.delete", []any{adminID}},
		{"NarrowWiderKey", "apikey.add_scope", []any{adminID, "method", "server.reboot"}},
		{"ChangeWiderKey", "apikey.delete_scope", []any{named.ID, "name", "web1"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				ts.fail(mgr.Key, tt.method, tt.params, rpc.CodeForbidden, rpc.ErrIDEscalation)
			})
		})
	}
	t.Run("OKNarrowSelf", func(t *testing.T) {
		var info rpc.KeyInfo
		ts.ok(mgr.Key, "apikey.add_scope", []any{sub.ID, "name", "web1"}, &info)
		assert.Equal(t, []string{"web1"}, info.Scopes.Name)
		ts.ok(mgr.Key, "apikey.delete_scope", []any{mgr.ID, "method", "server.reboot"}, &info)
		assert.Equal(t, []string{"apikey.*"}, info.Scopes.Method)
	})
	t.Run("DeleteOwnLastValue", func(t *testing.T) {
		solo := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.*"}}, "solo")
		ts.unchanged(func() {
			ts.fail(solo.Key, "apikey.delete_scope", []any{solo.ID, "method", "apikey.*"}, rpc.CodeForbidden, rpc.ErrIDEscalation)
		})
	})
	t.Run("OKAdminWidens", func(t *testing.T) {
		var info rpc.KeyInfo
		ts.ok(ts.Admin, "apikey.delete_scope", []any{named.ID, "name", "web1"}, &info)
		assert.True(t, info.Scopes.IsUnrestricted())
	})
	t.Run("NameScopedKeyCannotManage", func(t *testing.T) {
		k := ts.createKey(ts.Admin, map[string][]string{"name": {"web1"}}, "name only")
		ts.unchanged(func() {
			for _, m := range []string{"apikey.create", "apikey.list"} {
				ts.fail(k.Key, m, nil, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
			}
		})
	})
}

func TestAPIKey_Authentication(t *testing.T) {
	ts := newTestServer(t)
	k := ts.createKey(ts.Admin, map[string][]string{"method": {"apikey.list"}}, "auth")
	list := `{"jsonrpc":"2.0","method":"apikey.list","id":1}`
	send := func(header string) wireResponse {
		req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(list))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		status, body := ts.do(req)
		require.Equal(t, http.StatusOK, status)
		var r wireResponse
		require.NoError(t, json.Unmarshal(body, &r))
		return r
	}
	basic := func(user, pass string) string {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(user, pass)
		return req.Header.Get("Authorization")
	}
	for _, h := range []string{"Bearer " + k.Key, "bearer " + k.Key, "Bearer  " + k.Key, basic(k.Key, ""), basic(k.Key, "anything")} {
		assert.Nil(t, send(h).Error, "header %q", h)
	}
	missing := send("")
	require.NotNil(t, missing.Error)
	assert.Equal(t, int64(rpc.CodeUnauthenticated), missing.Error.Code)
	assert.Equal(t, rpc.ErrIDMissingKey, missing.Error.Data.ErrorID)

	var first *wireError
	for _, h := range []string{
		"Bearer " + k.Key[:31], "Bearer " + strings.ToUpper(k.Key),
		"Token " + k.Key, "Basic !!!", basic("", k.Key), "Bearer", k.Key,
	} {
		r := send(h)
		require.NotNil(t, r.Error, "header %q", h)
		if first == nil {
			first = r.Error
		}
		assert.Equal(t, *first, *r.Error, "header %q: malformed keys and schemes look alike", h)
	}
	assert.Equal(t, rpc.ErrIDInvalidKey, first.Data.ErrorID)
	// A well-formed unknown key: the same code and id, a message that does
	// not blame its form.
	unknown := send("Bearer ffffffffffffffffffffffffffffffff").Error
	require.NotNil(t, unknown)
	assert.Equal(t, first.Code, unknown.Code)
	assert.Equal(t, first.Data, unknown.Data)
	assert.NotEqual(t, first.Message, unknown.Message)
	assert.NotContains(t, ts.Log.String(), k.Key)
}

var _ = time.Second
