package scope_test

import (
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWithin walks Within's aspects: holder, limits, scopes, validity.
func TestWithin(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	rate := scope.Limits{RateLimit: 10, RateInterval: time.Minute}
	quota := scope.Limits{Quota: true}
	narrow := scope.Scopes{Method: []string{"server.*"}}
	for _, tt := range []struct {
		name      string
		caller, k scope.Authority
		aspect    string // "" when within
	}{
		{"unrestricted covers anything of the account", scope.Authority{Key: "c"}, scope.Authority{Scopes: narrow, Holder: "user:bob", ExpiresAt: at(time.Hour), Limits: rate}, ""},
		{"itself", scope.Authority{Key: "c", Scopes: narrow, ExpiresAt: at(time.Hour), Limits: rate, Holder: "user:a"},
			scope.Authority{Key: "c", Scopes: narrow, ExpiresAt: at(time.Hour), Limits: rate, Holder: "user:a"}, ""},

		{"holder: another holder", scope.Authority{Key: "c", Holder: "user:a"}, scope.Authority{Key: "k", Holder: "user:b"}, scope.AspectHolder},
		{"holder: the account's own key", scope.Authority{Key: "c", Holder: "sa:acme/ci"}, scope.Authority{Key: "k"}, scope.AspectHolder},
		{"holder: same holder", scope.Authority{Key: "c", Holder: "user:a"}, scope.Authority{Key: "k", Holder: "user:a"}, ""},

		{"limits: a limited caller makes no key", scope.Authority{Key: "c", Limits: rate}, scope.Authority{Limits: rate}, scope.AspectLimits},
		{"limits: nor acts on another, even limited", scope.Authority{Key: "c", Limits: quota}, scope.Authority{Key: "k", Limits: quota}, scope.AspectLimits},
		{"limits: nor sheds its own", scope.Authority{Key: "c", Limits: rate}, scope.Authority{Key: "c"}, scope.AspectLimits},
		{"limits: nor changes them", scope.Authority{Key: "c", Limits: rate}, scope.Authority{Key: "c", Limits: scope.Limits{RateLimit: 20, RateInterval: time.Minute}}, scope.AspectLimits},
		{"limits: unlimited may limit", scope.Authority{Key: "c"}, scope.Authority{Key: "k", Limits: quota}, ""},

		{"scopes: wider", scope.Authority{Key: "c", Scopes: narrow}, scope.Authority{Key: "k"}, scope.AspectScopes},
		{"scopes: narrower", scope.Authority{Key: "c", Scopes: narrow}, scope.Authority{Key: "k", Scopes: scope.Scopes{Method: []string{"server.list"}}}, ""},

		{"validity: no expiry under an expiring caller", scope.Authority{Key: "c", ExpiresAt: at(time.Hour)}, scope.Authority{Key: "k"}, scope.AspectValidity},
		{"validity: later expiry", scope.Authority{Key: "c", ExpiresAt: at(time.Hour)}, scope.Authority{Key: "k", ExpiresAt: at(time.Hour + time.Second)}, scope.AspectValidity},
		{"validity: same expiry", scope.Authority{Key: "c", ExpiresAt: at(time.Hour)}, scope.Authority{Key: "k", ExpiresAt: at(time.Hour)}, ""},
		{"validity: earlier expiry, later start", scope.Authority{Key: "c", ExpiresAt: at(time.Hour)}, scope.Authority{Key: "k", NotBefore: at(time.Minute), ExpiresAt: at(time.Minute * 2)}, ""},
		{"validity: an expired key acts at no time", scope.Authority{Key: "c", ExpiresAt: at(time.Hour)}, scope.Authority{Key: "k", ExpiresAt: at(-time.Hour)}, ""},
		{"validity: a past not_before counts from now", scope.Authority{Key: "c", NotBefore: at(-time.Hour)}, scope.Authority{Key: "k"}, ""},
		{"validity: not before the caller may act", scope.Authority{Key: "c", NotBefore: at(time.Hour)}, scope.Authority{Key: "k", NotBefore: at(time.Minute)}, scope.AspectValidity},
		{"validity: from when the caller may act", scope.Authority{Key: "c", NotBefore: at(time.Hour)}, scope.Authority{Key: "k", NotBefore: at(time.Hour)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := scope.Within(tt.caller, tt.k, now)
			if tt.aspect == "" {
				assert.NoError(t, err)
				return
			}
			var e *scope.Excess
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.aspect, e.Aspect)
			assert.NotEmpty(t, e.Reason)
		})
	}
}
