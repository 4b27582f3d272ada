package rpc

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeyInfo_AppendJSON proves the hand-written encoder writes exactly what
// encoding/json writes, for awkward strings too.
func TestKeyInfo_AppendJSON(t *testing.T) {
	when := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "tab\tnl\ncr\r",
		"\x00\x01\x1f\x7f", "ünïcødé ✓ 𝄞", "bad \xff utf8 \xc3", "line\u2028para\u2029", "😀",
	} {
		for _, info := range []KeyInfo{
			{ID: s, Comment: s, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			{ID: s, Created: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)},
			{ID: "x", Scopes: scope.Scopes{Method: []string{s, "a.*"}}, Comment: s},
			{ID: "x", Scopes: scope.Scopes{Name: []string{s}}},
			{ID: "x", Scopes: scope.Scopes{Method: []string{"a.b"}, Name: []string{s, "web1"}}},
			{ID: "x", Scopes: scope.Scopes{Name: []string{s}, Access: []string{"READ", "MANAGE"}}},
			{ID: "x", Scopes: scope.Scopes{Access: []string{"UPDATE"}}},
			{ID: "x", Owner: s},
			{ID: "x", Name: s, Description: s, Active: true, NotBefore: &when, ExpiresAt: &when, LastRotated: &when},
			{ID: "x", Name: "n", Active: false, ExpiresAt: &when},
			{ID: "x", LastUsedAt: &when, UseCount: 12345678901},
			{ID: "x", Owner: "user:alice", Comment: s},
			{ID: "x", RateLimit: &RateLimitInfo{Limit: 100, IntervalSeconds: 60}},
			{ID: "x", Quota: &QuotaInfo{Remaining: 0, Refill: ""}, Owner: s},
			{ID: "x", RateLimit: &RateLimitInfo{Limit: 1, IntervalSeconds: 86400}, Quota: &QuotaInfo{Remaining: 1 << 40, Refill: "monthly", RefillAmount: 5000}},
		} {
			want, err := json.Marshal(info)
			require.NoError(t, err)
			got := info.AppendJSON(nil)
			assert.Equal(t, string(want), string(got), "for %q", s)
			assert.True(t, utf8.Valid(got))

			created := NewKeyInfo{KeyInfo: info, Key: s}
			want, err = json.Marshal(created)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(created.AppendJSON(nil)))
		}
	}
}
