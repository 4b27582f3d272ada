package rpc_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyPage is apikey.list's paged reply, with items of either form.
type keyPage struct {
	Items      []rpc.KeyInfo `json:"items"`
	Total      int           `json:"total"`
	Size       int           `json:"size"`
	Page       int           `json:"page"`
	TotalPages int           `json:"total_pages"`
	NextCursor string        `json:"next_cursor"`
}

func (ts *testServer) listPage(key string, params map[string]any) keyPage {
	ts.t.Helper()
	var p keyPage
	ts.ok(key, "apikey.list", params, &p)
	return p
}

func ids(items []rpc.KeyInfo) []string {
	out := make([]string, len(items))
	for i, k := range items {
		out[i] = k.ID
	}
	return out
}

// walk follows next_cursor from the first page of params to the end and
// returns every id seen, checking each page's total.
func (ts *testServer) walk(key string, params map[string]any, wantTotal int) []string {
	ts.t.Helper()
	var seen []string
	p := ts.listPage(key, params)
	for pages := 0; ; pages++ {
		require.Less(ts.t, pages, 1000, "the walk does not end")
		assert.Equal(ts.t, wantTotal, p.Total)
		seen = append(seen, ids(p.Items)...)
		if p.NextCursor == "" {
			return seen
		}
		next := map[string]any{"cursor": p.NextCursor}
		for k, v := range params {
			next[k] = v
		}
		p = ts.listPage(key, next)
	}
}

// listFixture makes an account of 25 keys besides the operator's: key-00
// to key-24, every third inactive, the first five held by service account
// ci, each a minute apart.
func listFixture(t *testing.T) (*testServer, []rpc.NewKeyInfo) {
	ts := newTestServer(t)
	ts.ok(ts.Admin, "service_account.create", map[string]any{"name": "ci"}, nil)
	var keys []rpc.NewKeyInfo
	for i := 0; i < 25; i++ {
		params := map[string]any{"name": fmt.Sprintf("key-%02d", i), "comment": fmt.Sprint(i)}
		if i < 5 {
			params["service_account"] = "ci"
		}
		var k rpc.NewKeyInfo
		ts.ok(ts.Admin, "apikey.create", params, &k)
		if i%3 == 0 {
			ts.ok(ts.Admin, "apikey.update", map[string]any{"id": k.ID, "active": false}, nil)
		}
		keys = append(keys, k)
		ts.advance(time.Minute)
	}
	return ts, keys
}

func TestList_MemsetShape(t *testing.T) {
	ts, keys := listFixture(t)
	// No params, an empty object or an empty array: Memset's array of
	// every key, oldest first, in full.
	for _, params := range []any{nil, map[string]any{}, []any{}} {
		var all []rpc.KeyInfo
		ts.ok(ts.Admin, "apikey.list", params, &all)
		require.Len(t, all, 26)
		assert.Equal(t, keys[24].ID, all[25].ID)
		assert.NotNil(t, all[1].Scopes)
	}
}

func TestList_Pages(t *testing.T) {
	ts, keys := listFixture(t)
	p := ts.listPage(ts.Admin, map[string]any{"size": 10})
	assert.Equal(t, 26, p.Total)
	assert.Equal(t, 10, p.Size)
	assert.Equal(t, 1, p.Page)
	assert.Equal(t, 3, p.TotalPages)
	require.Len(t, p.Items, 10)
	assert.Equal(t, keys[0].ID, p.Items[1].ID, "the operator's key is oldest")
	assert.NotEmpty(t, p.NextCursor)

	p = ts.listPage(ts.Admin, map[string]any{"size": 10, "page": 3})
	assert.Equal(t, 3, p.Page)
	require.Len(t, p.Items, 6)
	assert.Equal(t, keys[24].ID, p.Items[5].ID)
	assert.Empty(t, p.NextCursor)
	p = ts.listPage(ts.Admin, map[string]any{"size": 10, "page": 4})
	assert.Empty(t, p.Items)
	assert.Equal(t, 26, p.Total)

	// The default size is 20; items are summaries unless hydrated.
	var raw struct {
		Items []map[string]any `json:"items"`
		Size  int              `json:"size"`
	}
	ts.ok(ts.Admin, "apikey.list", map[string]any{"page": 1}, &raw)
	assert.Equal(t, 20, raw.Size)
	require.Len(t, raw.Items, 20)
	assert.NotContains(t, raw.Items[1], "scopes")
	assert.Equal(t, "key-00", raw.Items[1]["name"])
	ts.ok(ts.Admin, "apikey.list", map[string]any{"page": 1, "hydrate": true}, &raw)
	assert.Contains(t, raw.Items[1], "scopes")
	for _, item := range raw.Items {
		assert.NotContains(t, item, "key", "a list never carries a secret")
	}
}

func TestList_CursorWalks(t *testing.T) {
	ts, keys := listFixture(t)
	var all []rpc.KeyInfo
	ts.ok(ts.Admin, "apikey.list", nil, &all)
	created := ids(all)

	assert.Equal(t, created, ts.walk(ts.Admin, map[string]any{"size": 7}, 26))
	assert.Equal(t, created, ts.walk(ts.Admin, map[string]any{"size": 1, "sort_by": "asc:created"}, 26))
	reversed := slices.Clone(created)
	slices.Reverse(reversed)
	assert.Equal(t, reversed, ts.walk(ts.Admin, map[string]any{"size": 4, "sort_by": "desc:created"}, 26))

	// By name: named keys in name order, the unnamed operator key last.
	byName := append(ids(keyInfos(keys)), all[0].ID)
	assert.Equal(t, byName, ts.walk(ts.Admin, map[string]any{"size": 6, "sort_by": "name"}, 26))
	desc := slices.Clone(byName[:25])
	slices.Reverse(desc)
	assert.Equal(t, append(desc, all[0].ID), ts.walk(ts.Admin, map[string]any{"size": 5, "sort_by": "desc:name"}, 26))

	// With a filter, a walk sees exactly the matches, in both orders.
	var active []string
	for i, k := range keys {
		if i%3 != 0 {
			active = append(active, k.ID)
		}
	}
	assert.Equal(t, active, ts.walk(ts.Admin, map[string]any{"size": 3, "active": true, "name": "startswith:key-"}, 16))
	slices.Reverse(active)
	assert.Equal(t, active, ts.walk(ts.Admin, map[string]any{"size": 3, "active": true, "name": "startswith:key-", "sort_by": "desc:created"}, 16))

	// A key created during a walk in created order appears at its end.
	p := ts.listPage(ts.Admin, map[string]any{"size": 20})
	var late rpc.NewKeyInfo
	ts.ok(ts.Admin, "apikey.create", map[string]any{"name": "late"}, &late)
	p = ts.listPage(ts.Admin, map[string]any{"size": 20, "cursor": p.NextCursor})
	assert.Equal(t, late.ID, p.Items[len(p.Items)-1].ID)
	assert.Equal(t, 27, p.Total)
}

func keyInfos(keys []rpc.NewKeyInfo) []rpc.KeyInfo {
	out := make([]rpc.KeyInfo, len(keys))
	for i, k := range keys {
		out[i] = k.KeyInfo
	}
	return out
}

func TestList_Filters(t *testing.T) {
	ts, keys := listFixture(t)
	// Use keys 10 and 11 an hour later; rotate key 12; give 13 an expiry.
	ts.advance(time.Hour)
	ts.ok(keys[10].Key, "server.list", nil, nil)
	ts.advance(time.Minute)
	ts.ok(keys[11].Key, "server.list", nil, nil)
	ts.ok(ts.Admin, "apikey.rotate", []any{keys[12].ID}, nil)
	ts.ok(ts.Admin, "apikey.update", map[string]any{"id": keys[13].ID, "expires_at": "2027-01-01T00:00:00Z"}, nil)
	usedAt := fixedNow.Add(25*time.Minute + time.Hour).Format(time.RFC3339)

	for _, tt := range []struct {
		name   string
		params map[string]any
		want   []int // indexes into keys; -1 is the operator key
	}{
		{"NameEquals", map[string]any{"name": "key-07"}, []int{7}},
		{"NameExplicitEquals", map[string]any{"name": "equals:key-07"}, []int{7}},
		{"NameStartsWith", map[string]any{"name": "startswith:key-2"}, []int{20, 21, 22, 23, 24}},
		{"NameEndsWith", map[string]any{"name": "endswith:4"}, []int{4, 14, 24}},
		{"NameContains", map[string]any{"name": "contains:y-1"}, []int{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
		{"Inactive", map[string]any{"active": false}, []int{0, 3, 6, 9, 12, 15, 18, 21, 24}},
		{"OwnerSA", map[string]any{"owner": "sa:operator/ci"}, []int{0, 1, 2, 3, 4}},
		{"OwnerSAInactive", map[string]any{"owner": "sa:operator/ci", "active": false}, []int{0, 3}},
		{"OwnerAccount", map[string]any{"owner": "account", "name": "startswith:key-0"}, []int{5, 6, 7, 8, 9}},
		{"OwnerUnknown", map[string]any{"owner": "user:nobody"}, nil},
		{"CreatedRange", map[string]any{"created": []string{"gte:" + fixedNow.Add(3*time.Minute).Format(time.RFC3339), "lt:" + fixedNow.Add(6*time.Minute).Format(time.RFC3339)}}, []int{3, 4, 5}},
		{"CreatedEq", map[string]any{"created": fixedNow.Add(8 * time.Minute).Format(time.RFC3339)}, []int{8}},
		{"CreatedBefore", map[string]any{"created": "lt:" + fixedNow.Format(time.RFC3339)}, nil},
		{"LastUsed", map[string]any{"last_used_at": "gte:" + usedAt, "name": "startswith:key-"}, []int{10, 11}},
		{"LastRotated", map[string]any{"last_rotated": "gt:2000-01-01T00:00:00Z"}, []int{12}},
		{"ExpiresAt", map[string]any{"expires_at": "lte:2027-01-01T00:00:00+00:00"}, []int{13}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			params := map[string]any{"size": 100}
			for k, v := range tt.params {
				params[k] = v
			}
			p := ts.listPage(ts.Admin, params)
			want := []string{}
			for _, i := range tt.want {
				want = append(want, keys[i].ID)
			}
			assert.Equal(t, want, append([]string{}, ids(p.Items)...))
			assert.Equal(t, len(want), p.Total)
		})
	}

	// Sorting by last use puts the used keys first, most recent first with
	// desc, and the rest after, in id order.
	p := ts.listPage(ts.Admin, map[string]any{"sort_by": "desc:last_used_at", "name": "startswith:key-", "size": 3})
	assert.Equal(t, []string{keys[11].ID, keys[10].ID, keys[24].ID}, ids(p.Items))
	assert.Equal(t, 25, p.Total)
	p = ts.listPage(ts.Admin, map[string]any{"sort_by": "last_used_at", "name": "startswith:key-", "size": 3})
	assert.Equal(t, []string{keys[10].ID, keys[11].ID, keys[0].ID}, ids(p.Items))
}

func TestList_Holders(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	tenant := acme.FirstKey.Key
	ts.ok(tenant, "user.create", []any{"alice", "correct horse"}, nil)
	alice := ts.createUserKey("alice@acme", "correct horse", "full")
	var mine rpc.NewKeyInfo
	ts.ok(alice.Key, "apikey.create", map[string]any{"name": "mine", "scopes": map[string][]string{"access": {"READ", "MANAGE"}}}, &mine)
	ts.createKey(tenant, nil, "the tenant's")

	// Alice's keys see only Alice's keys, whatever the filter says.
	p := ts.listPage(alice.Key, map[string]any{"size": 10})
	assert.Equal(t, []string{alice.ID, mine.ID}, ids(p.Items))
	assert.Equal(t, 2, p.Total)
	p = ts.listPage(alice.Key, map[string]any{"owner": "account"})
	assert.Empty(t, p.Items)
	assert.Zero(t, p.Total)
	p = ts.listPage(alice.Key, map[string]any{"owner": "user:alice@acme", "sort_by": "desc:created"})
	assert.Equal(t, []string{mine.ID, alice.ID}, ids(p.Items))

	// The tenant sees its account, and never the operator's keys.
	p = ts.listPage(tenant, map[string]any{"size": 10})
	assert.Equal(t, 4, p.Total)
	assert.NotContains(t, ids(p.Items), ts.Admin)
	p = ts.listPage(tenant, map[string]any{"owner": "user:alice@acme"})
	assert.Equal(t, 2, p.Total)
	p = ts.listPage(ts.Admin, map[string]any{"size": 10})
	assert.Equal(t, 1, p.Total, "the operator lists its own account's keys")

	// A cursor from one account's walk names a place, not a key: used by
	// another account it shows only that account's keys.
	first := ts.listPage(tenant, map[string]any{"size": 1})
	p = ts.listPage(ts.Admin, map[string]any{"size": 10, "cursor": first.NextCursor})
	for _, id := range ids(p.Items) {
		assert.NotEqual(t, acme.FirstKey.ID, id)
		assert.NotEqual(t, mine.ID, id)
	}

	// Name scopes restrict the name filter: a key scoped to the name
	// "mine" lists only by that exact name.
	scoped := ts.createKey(tenant, map[string][]string{"method": {"apikey.list"}, "name": {"mine"}}, "")
	p = ts.listPage(scoped.Key, map[string]any{"name": "mine"})
	assert.Equal(t, []string{mine.ID}, ids(p.Items))
	ts.fail(scoped.Key, "apikey.list", map[string]any{"name": "startswith:m"}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
	ts.fail(scoped.Key, "apikey.list", map[string]any{"size": 5}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)
}

func TestList_BadInput(t *testing.T) {
	ts, _ := listFixture(t)
	byName := ts.listPage(ts.Admin, map[string]any{"size": 2, "sort_by": "name"})
	require.NotEmpty(t, byName.NextCursor)
	long := make([]byte, 600)
	for i := range long {
		long[i] = 'A'
	}
	for _, tt := range []struct {
		name   string
		params map[string]any
		field  string
	}{
		{"SizeZero", map[string]any{"size": 0}, "size"},
		{"SizeTooBig", map[string]any{"size": 10001}, "size"},
		{"SizeString", map[string]any{"size": "20"}, "size"},
		{"SizeFraction", map[string]any{"size": 2.5}, "size"},
		{"PageZero", map[string]any{"page": 0}, "page"},
		{"PageNegative", map[string]any{"page": -3}, "page"},
		{"PageHuge", map[string]any{"page": 1 << 40}, "page"},
		{"PageAndCursor", map[string]any{"page": 2, "cursor": byName.NextCursor, "sort_by": "name"}, "page"},
		{"CursorGarbage", map[string]any{"cursor": "not a cursor!"}, "cursor"},
		{"CursorBase64Junk", map[string]any{"cursor": "eyJzIjoiY3JlYXRlZCJ9"}, "cursor"},
		{"CursorTooLong", map[string]any{"cursor": string(long)}, "cursor"},
		{"CursorOtherSort", map[string]any{"cursor": byName.NextCursor}, "cursor"},
		{"CursorNumber", map[string]any{"cursor": 5}, "cursor"},
		{"SortUnknown", map[string]any{"sort_by": "secret"}, "sort_by"},
		{"SortBadDirection", map[string]any{"sort_by": "up:created"}, "sort_by"},
		{"SortType", map[string]any{"sort_by": []string{"name"}}, "sort_by"},
		{"NameEmptyText", map[string]any{"name": "contains:"}, "name"},
		{"NameBadOperator", map[string]any{"name": "like:key"}, "name"},
		{"NameBadChars", map[string]any{"name": "key 1"}, "name"},
		{"NameTooLong", map[string]any{"name": string(long[:65])}, "name"},
		{"ActiveString", map[string]any{"active": "yes"}, "active"},
		{"OwnerBad", map[string]any{"owner": "bob"}, "owner"},
		{"OwnerBadSA", map[string]any{"owner": "sa:ci"}, "owner"},
		{"CreatedWord", map[string]any{"created": "yesterday"}, "created"},
		{"CreatedBadOp", map[string]any{"created": "after:2026-01-01T00:00:00Z"}, "created"},
		{"CreatedNumber", map[string]any{"created": 1700000000}, "created"},
		{"CreatedEmptyList", map[string]any{"created": []string{}}, "created"},
		{"CreatedTooMany", map[string]any{"created": []string{"gt:2026-01-01T00:00:00Z", "gt:2026-01-01T00:00:00Z", "gt:2026-01-01T00:00:00Z", "gt:2026-01-01T00:00:00Z", "gt:2026-01-01T00:00:00Z"}}, "created"},
		{"LastUsedNotTime", map[string]any{"last_used_at": "gte:soon"}, "last_used_at"},
		{"HydrateNumber", map[string]any{"hydrate": 1}, "hydrate"},
		{"Unknown", map[string]any{"limit": 5}, "limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts.unchanged(func() {
				e := ts.fail(ts.Admin, "apikey.list", tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
				assert.Equal(t, tt.field, e.Data.Field)
			})
		})
	}
}
