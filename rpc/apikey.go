package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// MaxCommentLen is the longest comment accepted, in characters (Memset's limit).
const MaxCommentLen = 255

// KeyInfo is a key as apikey.* methods return it (Memset's apikey.info).
type KeyInfo struct {
	ID string `json:"id"`
	// Name is unique among the keys of the same account and holder.
	Name    string       `json:"name,omitempty"`
	Scopes  scope.Scopes `json:"scopes"`
	Comment string       `json:"comment"`
	// Description is free text, up to 65,535 characters.
	Description string `json:"description,omitempty"`
	// Active is false for a key switched off with apikey.update.
	Active bool `json:"active"`
	// Created is whole seconds in UTC, so it encodes as RFC 3339 like
	// "2026-01-02T03:04:05Z"; so are the other times.
	Created     time.Time  `json:"created"`
	NotBefore   *time.Time `json:"not_before,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	LastRotated *time.Time `json:"last_rotated,omitempty"`
	// LastUsedAt and UseCount tell when the key last authenticated a call
	// and how many it has; they lag by at most a few seconds.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	UseCount   int64      `json:"use_count,omitempty"`
	// RateLimit and Quota are the key's limits, when it has them.
	RateLimit *RateLimitInfo `json:"rate_limit,omitempty"`
	Quota     *QuotaInfo     `json:"quota,omitempty"`
	// Owner is the user or service account holding the key ("user:alice",
	// "sa:acme/ci"); absent for keys of the account itself.
	Owner string `json:"owner,omitempty"`
}

// NewKeyInfo is apikey.create's reply: the key's info and, this once, its
// secret in "key".
type NewKeyInfo struct {
	KeyInfo
	Key string `json:"key"`
}

// AppendJSON appends i as encoding/json would encode it, without
// reflection: apikey.info is on the hot path.
func (i KeyInfo) AppendJSON(dst []byte) []byte {
	str := func(name, v string) {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
		dst = jsonwire.AppendString(dst, v)
	}
	tm := func(name string, t time.Time) {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':', '"')
		dst = t.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	dst = append(dst, `{"id":`...)
	dst = jsonwire.AppendString(dst, i.ID)
	if i.Name != "" {
		str("name", i.Name)
	}
	dst = append(dst, `,"scopes":{`...)
	first := true
	for _, typ := range scope.Types {
		vals := i.Scopes.Values(typ)
		if len(vals) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = jsonwire.AppendString(dst, typ)
		dst = append(dst, ':', '[')
		for j, v := range vals {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = jsonwire.AppendString(dst, v)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, '}')
	str("comment", i.Comment)
	if i.Description != "" {
		str("description", i.Description)
	}
	dst = strconv.AppendBool(append(dst, `,"active":`...), i.Active)
	tm("created", i.Created)
	for _, t := range []struct {
		name string
		t    *time.Time
	}{{"not_before", i.NotBefore}, {"expires_at", i.ExpiresAt}, {"last_rotated", i.LastRotated}, {"last_used_at", i.LastUsedAt}} {
		if t.t != nil {
			tm(t.name, *t.t)
		}
	}
	if i.UseCount != 0 {
		dst = strconv.AppendInt(append(dst, `,"use_count":`...), i.UseCount, 10)
	}
	if r := i.RateLimit; r != nil {
		dst = strconv.AppendInt(append(dst, `,"rate_limit":{"limit":`...), r.Limit, 10)
		dst = strconv.AppendInt(append(dst, `,"interval_seconds":`...), r.IntervalSeconds, 10)
		dst = append(dst, '}')
	}
	if q := i.Quota; q != nil {
		dst = strconv.AppendInt(append(dst, `,"quota":{"remaining":`...), q.Remaining, 10)
		dst = jsonwire.AppendString(append(dst, `,"refill":`...), q.Refill)
		dst = strconv.AppendInt(append(dst, `,"refill_amount":`...), q.RefillAmount, 10)
		dst = append(dst, '}')
	}
	if i.Owner != "" {
		str("owner", i.Owner)
	}
	return append(dst, '}')
}

// AppendJSON appends n as encoding/json would encode it. NewKeyInfo must
// define it: the promoted KeyInfo.AppendJSON would drop "key".
func (n NewKeyInfo) AppendJSON(dst []byte) []byte {
	dst = n.KeyInfo.AppendJSON(dst)
	dst = append(dst[:len(dst)-1], `,"key":`...)
	dst = jsonwire.AppendString(dst, n.Key)
	return append(dst, '}')
}

func keyInfo(k store.Key) KeyInfo {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		p := new(time.Time) // only set times cost an allocation
		*p = t.UTC()
		return p
	}
	info := KeyInfo{
		ID: k.ID, Name: k.Name, Scopes: k.Scopes, Comment: k.Comment, Description: k.Description,
		Active: k.Active, Created: k.Created.UTC(), Owner: k.Owner,
		NotBefore: opt(k.NotBefore), ExpiresAt: opt(k.ExpiresAt), LastRotated: opt(k.LastRotated),
		LastUsedAt: opt(k.LastUsed), UseCount: k.UseCount,
	}
	if k.Rate.Limit > 0 {
		info.RateLimit = &RateLimitInfo{Limit: k.Rate.Limit, IntervalSeconds: int64(k.Rate.Interval / time.Second)}
	}
	if k.HasQuota {
		info.Quota = &QuotaInfo{Remaining: k.Quota.Remaining, Refill: k.Quota.Refill, RefillAmount: k.Quota.RefillAmount}
	}
	return info
}

// RateLimitInfo is a key's rate limit: Limit calls per IntervalSeconds.
type RateLimitInfo struct {
	Limit           int64 `json:"limit"`
	IntervalSeconds int64 `json:"interval_seconds"`
}

// QuotaInfo is a key's quota: calls remaining, refilled to RefillAmount each
// day or month (UTC) when Refill says so.
type QuotaInfo struct {
	Remaining    int64  `json:"remaining"`
	Refill       string `json:"refill"`
	RefillAmount int64  `json:"refill_amount"`
}

// readLimits decodes the rate_limit and quota params, strictly: unknown
// members are errors. A nil raw value leaves its result nil.
func readLimits(rawRate, rawQuota json.RawMessage) (*store.RateLimit, *store.Quota, error) {
	var rate *store.RateLimit
	var quota *store.Quota
	if rawRate != nil {
		var r RateLimitInfo
		if err := decodeStrict(rawRate, &r); err != nil {
			return nil, nil, InvalidParam("rate_limit", "must be an object like {\"limit\": 100, \"interval_seconds\": 60}")
		}
		rate = &store.RateLimit{Limit: r.Limit, Interval: time.Duration(r.IntervalSeconds) * time.Second}
		if err := store.ValidLimits(*rate, nil); err != nil {
			return nil, nil, InvalidParam("rate_limit", "%s", err.Error())
		}
	}
	if rawQuota != nil {
		var q QuotaInfo
		if err := decodeStrict(rawQuota, &q); err != nil {
			return nil, nil, InvalidParam("quota", "must be an object like {\"remaining\": 1000, \"refill\": \"monthly\", \"refill_amount\": 1000}")
		}
		quota = &store.Quota{Remaining: q.Remaining, Refill: q.Refill, RefillAmount: q.RefillAmount}
		if err := store.ValidLimits(store.RateLimit{}, quota); err != nil {
			return nil, nil, InvalidParam("quota", "%s", err.Error())
		}
	}
	return rate, quota, nil
}

// limited reports whether k has a rate limit or a quota. Such a key may not
// make keys or change limits: any key it made without them would be a way
// around its own.
func limited(k *store.Key) bool { return k.Rate.Limit > 0 || k.HasQuota }

func decodeStrict(raw json.RawMessage, v any) error {
	if jsonwire.Kind(raw) != '{' {
		return errors.New("not an object")
	}
	return strictUnmarshal(raw, v)
}

type createParams struct {
	Scopes  map[string][]string `json:"scopes" schema:"scopes"`
	Comment string              `json:"comment" schema:"comment"`
	// ServiceAccount names a service account of this account to hold the key.
	ServiceAccount string          `json:"service_account" schema:"identity_name_or_empty"`
	Name           *string         `json:"name" schema:"key_name"` // absent for a key without a name; "" is refused
	Description    string          `json:"description" schema:"description"`
	NotBefore      string          `json:"not_before" schema:"time"`
	ExpiresAt      string          `json:"expires_at" schema:"expiry"`
	RateLimit      json.RawMessage `json:"rate_limit" schema:"rate_limit"`
	Quota          json.RawMessage `json:"quota" schema:"quota"`
}

type idParams struct {
	ID string `json:"id" rpc:"required" schema:"key_ref"`
}

type scopeParams struct {
	ID        string `json:"id" rpc:"required" schema:"key_ref"`
	ScopeName string `json:"scope_name" rpc:"required" schema:"scope_type"`
	Value     string `json:"value" rpc:"required" schema:"scope_value"`
}

// registerAPIKey registers every apikey method: the handlers of
// apikey.list are in apikey_list.go, those of update, rotate and verify in
// apikey_lifecycle.go.
func registerAPIKey(s *Server) {
	h := apikeyHandlers{store: s.store, server: s}
	for _, m := range []Method{
		typedAppend(Method{Name: "apikey.create", Mutates: true, Summary: "Create a key in this account, at most as wide as the calling key."}, h.create),
		typedAppend(Method{Name: "apikey.info", Summary: "Describe a key of this account."}, h.info),
		Typed(Method{Name: "apikey.list", Summary: "List the keys of this account: all of them, or filtered, sorted and paged."}, h.list),
		Typed(Method{Name: "apikey.delete", Mutates: true, Summary: "Delete a key of this account."}, h.delete),
		typedAppend(Method{Name: "apikey.add_scope", Mutates: true, Summary: "Add one value to one scope type of a key."}, h.addScope),
		typedAppend(Method{Name: "apikey.delete_scope", Mutates: true, Summary: "Remove one value from one scope type of a key."}, h.deleteScope),
		typedAppend(Method{Name: "apikey.update", Mutates: true, Summary: "Change a key's name, description, comment, active flag or validity period."}, h.update),
		typedAppend(Method{Name: "apikey.rotate", Mutates: true, Summary: "Give a key a new secret, keeping the old one for a grace period."}, h.rotate),
		Typed(Method{Name: "apikey.verify", Summary: "Say whether a key may make a given call, and why not."}, h.verify),
	} {
		m.Access = scope.Manage // managing keys is MANAGE
		s.Register(m)
	}
}

type apikeyHandlers struct {
	store  *store.Store
	server *Server // for apikey.verify, which reads the method table
}

type noParams struct{}

// caller returns the calling key, shared and read-only; every apikey method
// needs one.
func caller(ctx context.Context) *store.Key {
	k := sharedKey(ctx)
	if k == nil {
		panic("rpc: apikey method ran without an authenticated key")
	}
	return k
}

var (
	errLimitedCaller = Errorf(CodeForbidden, ErrIDEscalation,
		"a key with a rate limit or quota may not create keys or change any key's limits, which would let it shed its own")
	errOtherHolder = Errorf(CodeForbidden, ErrIDEscalation,
		"a key held by a user or service account may make keys only for that same holder")
)

// sameHolder reports whether key me may see target at all: a key held by a
// user or service account sees only keys of its own holder (others are as
// if absent); keys of the account itself see every key of the account.
func sameHolder(me *store.Key, target store.Key) bool {
	return me.Owner == "" || me.Owner == target.Owner
}

func (h apikeyHandlers) create(ctx context.Context, p createParams) (NewKeyInfo, error) {
	me := caller(ctx)
	scopes, err := scope.FromMap("scopes", p.Scopes)
	if err != nil {
		return NewKeyInfo{}, err
	}
	if err := validComment(p.Comment); err != nil {
		return NewKeyInfo{}, err
	}
	if p.Name != nil && *p.Name == "" {
		return NewKeyInfo{}, InvalidParam("name", "must be 1 to 64 of A-Z a-z 0-9 . _ -; leave it out for a key without a name")
	}
	if err := validKeyName(deref(p.Name)); err != nil {
		return NewKeyInfo{}, err
	}
	if err := validDescription(p.Description); err != nil {
		return NewKeyInfo{}, err
	}
	notBefore, expiresAt, err := validTimes(h.store.Now(), p.NotBefore, p.ExpiresAt, time.Time{}, time.Time{})
	if err != nil {
		return NewKeyInfo{}, err
	}
	rate, quota, err := readLimits(p.RateLimit, p.Quota)
	if err != nil {
		return NewKeyInfo{}, err
	}
	if rate == nil {
		rate = &store.RateLimit{}
	}
	// A key held by a user or service account makes keys of the same
	// holder, so that deleting or deactivating the holder stops them too.
	owner := me.Owner
	if p.ServiceAccount != "" {
		if err := validIdentityName("service_account", p.ServiceAccount); err != nil {
			return NewKeyInfo{}, err
		}
		owner = store.ServiceAccountOwner(me.Account, p.ServiceAccount)
	}
	// The new key, judged whole against the caller: holder, limits,
	// scopes and validity window.
	res := store.Key{Scopes: scopes, Owner: owner, NotBefore: notBefore, ExpiresAt: expiresAt, Rate: *rate}
	if quota != nil {
		res.HasQuota, res.Quota = true, *quota
	}
	now := h.store.Now()
	if err := within(me, res, now, asResult); err != nil {
		return NewKeyInfo{}, err
	}
	if p.ServiceAccount != "" {
		if _, err := h.store.ServiceAccount(me.Account, p.ServiceAccount); err != nil {
			return NewKeyInfo{}, err
		}
	}
	k, secret, err := h.store.CreateKey(ctx, store.NewKey{
		Account: me.Account, Scopes: scopes, Comment: p.Comment, Owner: owner,
		Name: deref(p.Name), Description: p.Description, NotBefore: notBefore, ExpiresAt: expiresAt,
		Rate: *rate, Quota: quota,
		// The caller's key as it is when the new key is written: still
		// usable, and still wide enough, however it changed meanwhile.
		By:    me.ID,
		Check: func(by store.Key) error { return within(&by, res, now, asResult) },
	})
	if err != nil {
		return NewKeyInfo{}, err
	}
	return NewKeyInfo{KeyInfo: keyInfo(k), Key: secret}, nil
}

func (h apikeyHandlers) info(ctx context.Context, p idParams) (KeyInfo, error) {
	if err := validRef(p.ID); err != nil {
		return KeyInfo{}, err
	}
	me := caller(ctx)
	ref, err := h.resolve(me, p.ID)
	if err != nil {
		return KeyInfo{}, err
	}
	k, err := h.store.Key(me.Account, ref)
	if err != nil {
		return KeyInfo{}, err
	}
	if !sameHolder(me, k) {
		return KeyInfo{}, store.ErrNotFound
	}
	return keyInfo(k), nil
}

func (h apikeyHandlers) delete(ctx context.Context, p idParams) (struct{}, error) {
	me := caller(ctx)
	if err := validRef(p.ID); err != nil {
		return struct{}{}, err
	}
	ref, err := h.resolve(me, p.ID)
	if err != nil {
		return struct{}{}, err
	}
	err = h.store.DeleteKey(ctx, me.Account, ref, func(target store.Key) error {
		return within(me, target, h.store.Now(), asTarget)
	})
	return struct{}{}, err
}

func (h apikeyHandlers) addScope(ctx context.Context, p scopeParams) (KeyInfo, error) {
	return h.changeScope(ctx, p, func(vals []string) []string { return append(vals, p.Value) })
}

func (h apikeyHandlers) deleteScope(ctx context.Context, p scopeParams) (KeyInfo, error) {
	return h.changeScope(ctx, p, func(vals []string) []string {
		out := make([]string, 0, len(vals))
		for _, v := range vals {
			if v != p.Value {
				out = append(out, v)
			}
		}
		return out
	})
}

// changeScope applies change to the values of one scope type of a key, in
// one transaction, if the calling key covers the key both before and after.
func (h apikeyHandlers) changeScope(ctx context.Context, p scopeParams, change func([]string) []string) (KeyInfo, error) {
	me := caller(ctx)
	if err := validRef(p.ID); err != nil {
		return KeyInfo{}, err
	}
	if err := scope.ValidType("scope_name", p.ScopeName); err != nil {
		return KeyInfo{}, err
	}
	if err := scope.ValidValue("value", p.ScopeName, p.Value); err != nil {
		return KeyInfo{}, err
	}
	ref, err := h.resolve(me, p.ID)
	if err != nil {
		return KeyInfo{}, err
	}
	now := h.store.Now()
	k, err := h.store.UpdateScopes(ctx, me.Account, ref, func(target store.Key) (scope.Scopes, error) {
		if err := within(me, target, now, asTarget); err != nil {
			return scope.Scopes{}, err
		}
		next := target.Scopes.With(p.ScopeName, change(target.Scopes.Clone().Values(p.ScopeName)))
		next, err := scope.Normalize("scopes", next)
		if err != nil {
			return scope.Scopes{}, err
		}
		res := target
		res.Scopes = next
		if err := within(me, res, now, asResult); err != nil {
			return scope.Scopes{}, err
		}
		return next, nil
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return keyInfo(k), nil
}

// validRef checks that an id parameter is a key id or a secret in shape, a
// key name, or a holder and a key name ("<owner>/<name>").
func validRef(ref string) error {
	if store.IsKeyID(ref) || store.IsSecret(ref) || validKeyName(ref) == nil && ref != "" {
		return nil
	}
	if _, _, ok := splitHolderRef(ref); ok {
		return nil
	}
	return InvalidParam("id", "must be a key id (a UUID, as apikey.create returns in \"id\"), a key (32 lowercase hex digits), a key name, or a holder and a key name (\"user:alice@acme/deploy\", \"sa:acme/ci/deploy\", \"account/deploy\")")
}

// resolve turns a ref that is a key name into the key's id, looked up among
// the keys of the caller's account and holder; "<owner>/<name>" looks among
// the keys of that holder of the caller's account, which only a key of the
// account itself or a key of that holder may name: to any other it is
// key_not_found. Ids and secrets pass as they are.
func (h apikeyHandlers) resolve(me *store.Key, ref string) (string, error) {
	if store.IsKeyID(ref) || store.IsSecret(ref) {
		return ref, nil
	}
	if owner, name, ok := splitHolderRef(ref); ok {
		if me.Owner != "" && owner != me.Owner {
			return "", store.ErrNotFound
		}
		return h.store.KeyIDByName(me.Account, owner, name)
	}
	return h.store.KeyIDByName(me.Account, me.Owner, ref)
}

// splitHolderRef splits "<owner>/<name>": owner as replies show it
// ("account", "user:<login name>", "sa:<account>/<service account>") and a
// key name. Key names hold no "/", so the last one divides them. The owner
// of the account's own keys is "".
func splitHolderRef(ref string) (owner, name string, ok bool) {
	i := strings.LastIndexByte(ref, '/')
	if i < 0 {
		return "", "", false
	}
	owner, name = ref[:i], ref[i+1:]
	if name == "" || validKeyName(name) != nil {
		return "", "", false
	}
	switch {
	case owner == "account":
		return "", name, true
	case len(owner) > len("user:") && strings.HasPrefix(owner, "user:"),
		len(owner) > len("sa:") && strings.HasPrefix(owner, "sa:"):
		return owner, name, true
	}
	return "", "", false
}

// validKeyName checks a key name: empty (no name), or 1 to 64 of
// [A-Za-z0-9._-] that is neither a key id nor a secret in shape.
func validKeyName(name string) error {
	if name == "" {
		return nil
	}
	if err := validIdentityName("name", name); err != nil {
		return err
	}
	if store.IsKeyID(name) || store.IsSecret(name) {
		return InvalidParam("name", "must not look like a key id or a key")
	}
	return nil
}

// validTimes parses not_before and expires_at (RFC 3339; absent keeps cur*),
// and checks that an expiry lies in the future and after not_before.
func validTimes(now time.Time, notBefore, expiresAt string, curNB, curEA time.Time) (time.Time, time.Time, error) {
	nb, ea := curNB, curEA
	var err error
	if notBefore != "" {
		if nb, err = time.Parse(time.RFC3339, notBefore); err != nil {
			return nb, ea, InvalidParam("not_before", "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
		}
		nb = nb.UTC().Truncate(time.Second)
	}
	if expiresAt != "" {
		if ea, err = time.Parse(time.RFC3339, expiresAt); err != nil {
			return nb, ea, InvalidParam("expires_at", "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
		}
		ea = ea.UTC().Truncate(time.Second)
		if !ea.After(now) {
			return nb, ea, InvalidParam("expires_at", "must be in the future")
		}
	}
	if !nb.IsZero() && !ea.IsZero() && !ea.After(nb) {
		return nb, ea, InvalidParam("expires_at", "must be after not_before")
	}
	return nb, ea, nil
}

func validComment(c string) error {
	if n := utf8.RuneCountInString(c); n > MaxCommentLen {
		return InvalidParam("comment", "must be at most %d characters, got %d", MaxCommentLen, n)
	}
	return nil
}
