package rpc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/apikeyd/apikeyd/store"
)

// apikey.list, as Memset's with no params: every key of the account. Given
// any param it answers as ZenML's lists do: filters, a sort, one page by
// number or by cursor, and the total.

// List limits.
const (
	DefaultPageSize = 20
	MaxPageSize     = 10_000
	// maxTimeConditions bounds the conditions on one time field.
	maxTimeConditions = 4
)

type listParams struct {
	// Name filters by key name: exact, or "contains:", "startswith:",
	// "endswith:" followed by the text. It is also the "name" that name
	// scopes restrict.
	Name   *string `json:"name" schema:"list_name"`
	Active *bool   `json:"active"`
	// Owner is "account" (keys of no user or service account), or an owner
	// as replies show it ("user:alice", "sa:acme/ci").
	Owner *string `json:"owner" schema:"owner"`
	// Time filters: a condition or a list of them, each "gt:", "gte:",
	// "lt:", "lte:" or "eq:" and an RFC 3339 time, or a bare time (eq).
	Created     json.RawMessage `json:"created" schema:"time_filter"`
	LastUsedAt  json.RawMessage `json:"last_used_at" schema:"time_filter"`
	LastRotated json.RawMessage `json:"last_rotated" schema:"time_filter"`
	ExpiresAt   json.RawMessage `json:"expires_at" schema:"time_filter"`
	// SortBy is a field of store.SortFields, optionally prefixed "asc:" or
	// "desc:"; the default is "created".
	SortBy  *string `json:"sort_by" schema:"sort_by"`
	Page    *int    `json:"page" schema:"page"`
	Size    *int    `json:"size" schema:"size"`
	Cursor  *string `json:"cursor" schema:"cursor"`
	Hydrate *bool   `json:"hydrate"`
}

// given reports whether any param was given: without any, apikey.list
// answers as Memset's does.
func (p *listParams) given() bool {
	return p.Name != nil || p.Active != nil || p.Owner != nil || p.Created != nil || p.LastUsedAt != nil ||
		p.LastRotated != nil || p.ExpiresAt != nil || p.SortBy != nil || p.Page != nil || p.Size != nil ||
		p.Cursor != nil || p.Hydrate != nil
}

// KeyList is a page of apikey.list.
type KeyList struct {
	// Items are KeyInfo when hydrate is true, else KeySummary.
	Items      any    `json:"items"`
	Total      int    `json:"total"`
	Size       int    `json:"size"`
	Page       int    `json:"page,omitempty"`
	TotalPages int    `json:"total_pages"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// KeySummary is a key in a list without hydrate.
type KeySummary struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Comment string    `json:"comment"`
	Active  bool      `json:"active"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner,omitempty"`
}

func (h apikeyHandlers) list(ctx context.Context, p listParams) (any, error) {
	me := caller(ctx)
	if !p.given() {
		return h.listAll(me)
	}
	q := store.KeyQuery{Account: me.Account, Limit: DefaultPageSize}
	if me.Owner != "" { // a holder's key sees only keys of its holder
		q.Owner, q.OwnerSet = me.Owner, true
	}
	if p.Name != nil {
		f, err := nameFilter(*p.Name)
		if err != nil {
			return nil, err
		}
		q.Name = f
	}
	q.Active = p.Active
	empty := false
	if p.Owner != nil {
		owner, err := ownerFilter(*p.Owner)
		if err != nil {
			return nil, err
		}
		if q.OwnerSet && owner != q.Owner {
			empty = true
		}
		q.Owner, q.OwnerSet = owner, true
	}
	for _, tf := range []struct {
		field string
		raw   json.RawMessage
		dst   *[]store.TimeCond
	}{
		{"created", p.Created, &q.Created},
		{"last_used_at", p.LastUsedAt, &q.LastUsed},
		{"last_rotated", p.LastRotated, &q.LastRotated},
		{"expires_at", p.ExpiresAt, &q.ExpiresAt},
	} {
		if tf.raw == nil {
			continue
		}
		conds, err := timeFilter(tf.field, tf.raw)
		if err != nil {
			return nil, err
		}
		*tf.dst = conds
	}
	if p.SortBy != nil {
		dir, field, found := strings.Cut(*p.SortBy, ":")
		if !found {
			dir, field = "asc", dir
		}
		if dir != "asc" && dir != "desc" || !isSortField(field) {
			return nil, InvalidParam("sort_by", "must be one of %s, optionally after \"asc:\" or \"desc:\"", strings.Join(store.SortFields, ", "))
		}
		q.Sort, q.Desc = field, dir == "desc"
	}
	if p.Size != nil {
		if *p.Size < 1 || *p.Size > MaxPageSize {
			return nil, InvalidParam("size", "must be 1 to %d", MaxPageSize)
		}
		q.Limit = *p.Size
	}
	page := 0
	if p.Page != nil {
		if p.Cursor != nil {
			return nil, InvalidParam("page", "cannot be given with cursor")
		}
		// At most a billion keys deep: beyond any real account.
		if *p.Page < 1 || *p.Page > 1_000_000_000/q.Limit {
			return nil, InvalidParam("page", "must be 1 to %d for size %d", 1_000_000_000/q.Limit, q.Limit)
		}
		page = *p.Page
		q.Offset = (page - 1) * q.Limit
	}
	if p.Cursor != nil {
		pos, err := decodeCursor(*p.Cursor, q.Sort, q.Desc)
		if err != nil {
			return nil, err
		}
		q.After = &pos
	} else if page == 0 {
		page = 1
	}
	out := KeyList{Size: q.Limit, Items: []KeySummary{}}
	if p.Hydrate != nil && *p.Hydrate {
		out.Items = []KeyInfo{}
	}
	if p.Cursor == nil {
		out.Page = page
	}
	if empty {
		return out, nil
	}
	res, err := h.store.ListKeys(q)
	if err != nil {
		return nil, err
	}
	out.Total = res.Total
	out.TotalPages = (res.Total + q.Limit - 1) / q.Limit
	if res.Next != nil {
		out.NextCursor = encodeCursor(q.Sort, q.Desc, *res.Next)
	}
	if p.Hydrate != nil && *p.Hydrate {
		items := make([]KeyInfo, len(res.Keys))
		for i, k := range res.Keys {
			items[i] = keyInfo(k)
		}
		out.Items = items
	} else {
		items := make([]KeySummary, len(res.Keys))
		for i, k := range res.Keys {
			items[i] = KeySummary{ID: k.ID, Name: k.Name, Comment: k.Comment, Active: k.Active, Created: k.Created.UTC(), Owner: k.Owner}
		}
		out.Items = items
	}
	return out, nil
}

// listAll is Memset's apikey.list(): every key the caller may see.
func (h apikeyHandlers) listAll(me *store.Key) ([]KeyInfo, error) {
	keys, err := h.store.Keys(me.Account)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		if sameHolder(me, k) {
			out = append(out, keyInfo(k))
		}
	}
	return out, nil
}

func isSortField(f string) bool {
	for _, s := range store.SortFields {
		if f == s {
			return true
		}
	}
	return false
}

func nameFilter(v string) (store.NameFilter, error) {
	op, text, found := strings.Cut(v, ":")
	if !found {
		op, text = store.NameEquals, v
	}
	if err := validIdentityName("name", text); err != nil {
		return store.NameFilter{}, InvalidParam("name", "must be a key name, or \"contains:\", \"startswith:\" or \"endswith:\" and part of one")
	}
	switch op {
	case store.NameEquals, store.NameContains, store.NameStartsWith, store.NameEndsWith:
		return store.NameFilter{Op: op, Text: text}, nil
	}
	return store.NameFilter{}, InvalidParam("name", "operator must be equals, contains, startswith or endswith, got %q", truncate(op, 20))
}

// ownerFilter reads the owner param into a store owner ("" for the
// account's own keys).
func ownerFilter(v string) (string, error) {
	bad := InvalidParam("owner", "must be \"account\", \"user:<name>@<account>\" or \"sa:<account>/<name>\"")
	switch kind, rest, _ := strings.Cut(v, ":"); {
	case v == "account":
		return "", nil
	case kind == "user" && validLoginName(rest) == nil:
		return v, nil
	case kind == "sa":
		acct, name, ok := strings.Cut(rest, "/")
		if ok && validIdentityName("owner", acct) == nil && validIdentityName("owner", name) == nil {
			return v, nil
		}
	}
	return "", bad
}

// timeFilter reads one condition, or a list of them, on a time field. A
// key without that time matches no condition.
func timeFilter(field string, raw json.RawMessage) ([]store.TimeCond, error) {
	var conds []string
	switch jsonwire.Kind(raw) {
	case '"':
		var c string
		if json.Unmarshal(raw, &c) != nil {
			return nil, InvalidParam(field, "must be a string")
		}
		conds = []string{c}
	case '[':
		if json.Unmarshal(raw, &conds) != nil || len(conds) == 0 || len(conds) > maxTimeConditions {
			return nil, InvalidParam(field, "must be a condition or a list of 1 to %d", maxTimeConditions)
		}
	default:
		return nil, InvalidParam(field, "must be a condition like \"gte:2026-01-02T15:04:05Z\", or a list of them")
	}
	parsed := make([]store.TimeCond, len(conds))
	for i, c := range conds {
		op, at, found := strings.Cut(c, ":")
		switch op {
		case "eq", "gt", "gte", "lt", "lte":
		default:
			found = false
		}
		if !found {
			op, at = "eq", c
		}
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return nil, InvalidParam(field, "each condition must be gt, gte, lt, lte or eq, a colon, and an RFC 3339 time like 2026-01-02T15:04:05Z")
		}
		parsed[i] = store.TimeCond{Op: op, At: t}
	}
	return parsed, nil
}

// Cursors are opaque to clients: the sort they belong to and the position
// of the last key of a page, as base64url JSON. A cursor only names a
// place among the caller's own keys, so a forged one can reach no other.
type cursor struct {
	Sort  string `json:"s"`
	Desc  bool   `json:"d,omitempty"`
	Value string `json:"v,omitempty"`
	ID    string `json:"i"`
}

const maxCursorLen = 512

func encodeCursor(sort string, desc bool, pos store.Position) string {
	b, _ := json.Marshal(cursor{Sort: sort, Desc: desc, Value: pos.Value, ID: pos.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, sort string, desc bool) (store.Position, error) {
	bad := InvalidParam("cursor", "must be a next_cursor of an earlier page")
	if len(s) > maxCursorLen {
		return store.Position{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.Position{}, bad
	}
	var c cursor
	if strictUnmarshal(b, &c) != nil || !store.IsKeyID(c.ID) || len(c.Value) > 100 {
		return store.Position{}, bad
	}
	if c.Sort != sort || c.Desc != desc {
		return store.Position{}, InvalidParam("cursor", "belongs to another sort_by; give the sort_by of the page it came from")
	}
	return store.Position{Value: c.Value, ID: c.ID}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
