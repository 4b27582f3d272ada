package rpc

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/apikeyd/apikeyd/store"
)

type updateParams struct {
	ID          string  `json:"id" rpc:"required" schema:"key_ref"`
	Name        *string `json:"name" schema:"key_name_or_empty"`
	Description *string `json:"description" schema:"description"`
	Comment     *string `json:"comment" schema:"comment"`
	Active      *bool   `json:"active"`
	// NotBefore and ExpiresAt are RFC 3339 times; "" clears the bound.
	NotBefore *string `json:"not_before" schema:"time"`
	ExpiresAt *string `json:"expires_at" schema:"expiry"`
	// RateLimit sets the rate limit; a limit of 0 removes it.
	RateLimit json.RawMessage `json:"rate_limit" schema:"rate_limit"`
	// Quota sets the quota; RemoveQuota removes it.
	Quota       json.RawMessage `json:"quota" schema:"quota"`
	RemoveQuota bool            `json:"remove_quota"`
}

type rotateParams struct {
	ID                  string `json:"id" rpc:"required" schema:"key_ref"`
	RetainPeriodMinutes int    `json:"retain_period_minutes" schema:"retain_minutes"`
}

// MaxRetainMinutes is the longest grace period of a rotated-out secret: a week.
const MaxRetainMinutes = 7 * 24 * 60

type verifyParams struct {
	Key    string `json:"key" rpc:"required" schema:"secret"`
	Method string `json:"method" rpc:"required" schema:"method_name"`
	Name   string `json:"name"`
	// IP is the address the call would come from, for keys with an ip scope.
	IP string `json:"ip" schema:"ip"`
}

// Verification is apikey.verify's reply, as Unkey's verifyKey: whether the
// key may make the call, a reason code, and the key's id when the caller
// may see it.
type Verification struct {
	Valid bool   `json:"valid"`
	Code  string `json:"code"`
	KeyID string `json:"key_id,omitempty"`
	// Remaining is the key's quota left after this verification, when it
	// has a quota; RetryAfterMs says when a limited key may call again.
	Remaining    *int64 `json:"remaining,omitempty"`
	RetryAfterMs int64  `json:"retry_after_ms,omitempty"`
}

func (h apikeyHandlers) update(ctx context.Context, p updateParams) (KeyInfo, error) {
	me := caller(ctx)
	if err := validRef(p.ID); err != nil {
		return KeyInfo{}, err
	}
	var c store.KeyChange
	c.Name, c.Description, c.Comment, c.Active = p.Name, p.Description, p.Comment, p.Active
	if p.Name != nil {
		if err := validKeyName(*p.Name); err != nil {
			return KeyInfo{}, err
		}
	}
	if p.Description != nil {
		if err := validDescription(*p.Description); err != nil {
			return KeyInfo{}, err
		}
	}
	if p.Comment != nil {
		if err := validComment(*p.Comment); err != nil {
			return KeyInfo{}, err
		}
	}
	// Times are checked here as far as they can be without the key (form,
	// future, order when both are given), so that bad input is refused
	// whether or not the key exists; against the key's own bounds below.
	if _, _, err := validTimes(h.store.Now(), deref(p.NotBefore), deref(p.ExpiresAt), time.Time{}, time.Time{}); err != nil {
		return KeyInfo{}, err
	}
	rate, quota, err := readLimits(p.RateLimit, p.Quota)
	if err != nil {
		return KeyInfo{}, err
	}
	c.Rate = rate
	if (rate != nil || quota != nil || p.RemoveQuota) && limited(me) {
		return KeyInfo{}, errLimitedCaller
	}
	switch {
	case p.RemoveQuota && quota != nil:
		return KeyInfo{}, InvalidParam("remove_quota", "cannot be given with quota")
	case p.RemoveQuota:
		var none *store.Quota
		c.Quota = &none
	case quota != nil:
		c.Quota = &quota
	}
	ref, err := h.resolve(me, p.ID)
	if err != nil {
		return KeyInfo{}, err
	}
	now := h.store.Now()
	k, err := h.store.UpdateKey(ctx, me.Account, ref, func(target store.Key) (store.KeyChange, error) {
		if err := within(me, target, now, asTarget); err != nil {
			return c, err
		}
		nb, ea := target.NotBefore, target.ExpiresAt
		var err error
		if nb, ea, err = validTimes(now, deref(p.NotBefore), deref(p.ExpiresAt), nb, ea); err != nil {
			return c, err
		}
		if p.NotBefore != nil && *p.NotBefore == "" {
			nb = time.Time{}
		}
		if p.ExpiresAt != nil && *p.ExpiresAt == "" {
			ea = time.Time{}
		}
		c.NotBefore, c.ExpiresAt = &nb, &ea
		// The key as the change leaves it must lie within the caller too:
		// no clearing or extending an expiry beyond the caller's.
		res := target
		res.NotBefore, res.ExpiresAt = nb, ea
		if c.Rate != nil {
			res.Rate = *c.Rate
		}
		if c.Quota != nil {
			res.HasQuota, res.Quota = *c.Quota != nil, store.Quota{}
			if res.HasQuota {
				res.Quota = **c.Quota
			}
		}
		if err := within(me, res, now, asResult); err != nil {
			return c, err
		}
		return c, nil
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return keyInfo(k), nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (h apikeyHandlers) rotate(ctx context.Context, p rotateParams) (NewKeyInfo, error) {
	me := caller(ctx)
	if err := validRef(p.ID); err != nil {
		return NewKeyInfo{}, err
	}
	if p.RetainPeriodMinutes < 0 || p.RetainPeriodMinutes > MaxRetainMinutes {
		return NewKeyInfo{}, InvalidParam("retain_period_minutes", "must be 0 to %d", MaxRetainMinutes)
	}
	ref, err := h.resolve(me, p.ID)
	if err != nil {
		return NewKeyInfo{}, err
	}
	k, secret, err := h.store.RotateKey(ctx, me.Account, ref, time.Duration(p.RetainPeriodMinutes)*time.Minute, func(target store.Key) error {
		// The caller gets the target's new secret: the target must lie
		// within it in every way, so a limited caller rotates only itself.
		return within(me, target, h.store.Now(), asTarget)
	})
	if err != nil {
		return NewKeyInfo{}, err
	}
	return NewKeyInfo{KeyInfo: keyInfo(k), Key: secret}, nil
}

// verify answers for keys of the caller's account (every account, for the
// operator); any other key is not_found, as an unknown one. It answers as
// the call would be answered: the key's status is the store's (the status
// the chain's store.AuthKey applies), its limits are spent before the
// access decision, as the chain spends them, and the decision is authorize's.
func (h apikeyHandlers) verify(ctx context.Context, p verifyParams) (Verification, error) {
	me := caller(ctx)
	if !store.IsSecret(p.Key) {
		return Verification{}, InvalidParam("key", "must be a key (32 lowercase hex digits)")
	}
	var clientIP netip.Addr
	if p.IP != "" {
		a, err := netip.ParseAddr(p.IP)
		if err != nil {
			return Verification{}, InvalidParam("ip", "must be an IPv4 or IPv6 address")
		}
		clientIP = a.Unmap()
	}
	m := h.server.methods[p.Method]
	if m == nil {
		return Verification{}, InvalidParam("method", "is not a method of this server")
	}
	k, status, err := h.store.InspectSecret(p.Key)
	if err != nil {
		return Verification{}, err
	}
	visible := status != store.StatusNotFound && (k.Account == me.Account || me.Account == store.OperatorAccount) && sameHolder(me, k)
	if !needsKey(m) {
		// The call needs no key and looks at none: whatever key is sent,
		// it is allowed, and nothing is spent.
		out := Verification{Valid: true, Code: codeOpen}
		if visible {
			out.KeyID = k.ID
		}
		return out, nil
	}
	if !visible {
		return Verification{Code: string(store.StatusNotFound)}, nil
	}
	out := Verification{Code: string(status), KeyID: k.ID}
	if status != store.StatusValid {
		return out, nil
	}
	// The call spends a call of the key's limits before its access is
	// decided (docs/api.md, "Rate limits and quotas"); so does this.
	left, err := h.store.Spend(&k)
	if left >= 0 {
		out.Remaining = &left
	}
	if err != nil {
		e := toError(err)
		out.Code, out.RetryAfterMs = e.ID, e.RetryAfterMs
		return out, nil
	}
	if err := authorize(&k, accessQuery{method: m, name: p.Name, hasName: p.Name != "", clientIP: clientIP}); err != nil {
		out.Code = toError(err).ID
		return out, nil
	}
	out.Valid = true
	return out, nil
}

// codeOpen is apikey.verify's code for a method that needs no key.
const codeOpen = "open"
