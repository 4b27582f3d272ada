package scope

import (
	"fmt"
	"time"
)

// Authority is everything a key carries that bounds what it may do: its
// scopes, its validity window, its limits and its holder. "No escalation"
// compares two of them with Within: the key making a call, and a key it
// creates, changes or acts on.
type Authority struct {
	// Key is the key's id; empty for a key not yet created.
	Key    string
	Scopes Scopes
	// NotBefore and ExpiresAt bound when the key authenticates; zero means
	// no bound.
	NotBefore, ExpiresAt time.Time
	Limits               Limits
	// Holder is the user or service account holding the key ("user:alice",
	// "sa:acme/ci"), or empty for a key of the account itself.
	Holder string
}

// Limits are a key's rate limit and quota, as far as authority goes. The
// calls left in a quota are not part of it: they change with every call.
type Limits struct {
	// RateLimit calls per RateInterval; RateLimit 0 means no rate limit.
	RateLimit    int64
	RateInterval time.Duration
	// Quota says whether the key has a quota, refilled to RefillAmount as
	// Refill says ("", "daily", "monthly").
	Quota        bool
	Refill       string
	RefillAmount int64
}

// Any reports whether l limits anything.
func (l Limits) Any() bool { return l.RateLimit > 0 || l.Quota }

// Aspects of an authority that Within judges, in the order it judges them;
// Excess.Aspect holds one of them.
const (
	AspectHolder   = "holder"
	AspectLimits   = "limits"
	AspectScopes   = "scopes"
	AspectValidity = "validity"
)

// Excess says how a key reaches beyond an authority: which aspect, and why.
// Reason is fit for a client: it names no value the caller could not see.
type Excess struct {
	Aspect string
	Reason string
}

func (e *Excess) Error() string { return "beyond the caller's authority: " + e.Reason }

// Within reports whether key k lies within the authority of caller, judged
// from now on: nil when every call k could make, caller could make too, or
// an *Excess naming the first aspect in which k reaches further. It is the
// one test of "no escalation": a caller may create a key, change one (judged
// on the key as it is and as it would be), rotate, switch off or delete one,
// or change or delete a holder with its keys, only when each key concerned
// lies within its authority. The rules, by aspect:
//
//   - holder: a key held by a user or service account reaches only keys of
//     that same holder; a key of the account itself reaches every holder.
//   - limits: a key with a rate limit or a quota reaches only itself, with
//     the same limits. Any other key, limited or not, would spend from a
//     budget of its own, so that making, rotating or reviving it would be a
//     way around the caller's.
//   - scopes: caller's scopes cover k's in every type (Covers).
//   - validity: k can authenticate no earlier than caller can, and no later.
//     Only the time from now on counts: neither key can act in the past,
//     and a key whose window has closed can act at no time at all.
func Within(caller, k Authority, now time.Time) error {
	if caller.Holder != "" && k.Holder != caller.Holder {
		return &Excess{Aspect: AspectHolder, Reason: "the key belongs to another holder"}
	}
	if caller.Limits.Any() && (k.Key == "" || k.Key != caller.Key || k.Limits != caller.Limits) {
		return &Excess{Aspect: AspectLimits, Reason: "a key with a rate limit or quota may act only on itself, and may not change its own limits"}
	}
	if !Covers(caller.Scopes, k.Scopes) {
		return &Excess{Aspect: AspectScopes, Reason: "the key's scopes reach beyond the caller's"}
	}
	kStart, kEnd := window(k, now)
	if !kEnd.IsZero() && !kEnd.After(kStart) {
		return nil // k can act at no time from now on
	}
	cStart, cEnd := window(caller, now)
	if kStart.Before(cStart) {
		return &Excess{Aspect: AspectValidity, Reason: fmt.Sprintf("the key would be valid before the caller is, from %s", cStart.UTC().Format(time.RFC3339))}
	}
	if !cEnd.IsZero() && (kEnd.IsZero() || kEnd.After(cEnd)) {
		return &Excess{Aspect: AspectValidity, Reason: fmt.Sprintf("the key would outlive the caller, which expires at %s", cEnd.UTC().Format(time.RFC3339))}
	}
	return nil
}

// window returns when a can authenticate from now on: from start, until
// end (zero: no end).
func window(a Authority, now time.Time) (start, end time.Time) {
	start = now
	if a.NotBefore.After(now) {
		start = a.NotBefore
	}
	return start, a.ExpiresAt
}
