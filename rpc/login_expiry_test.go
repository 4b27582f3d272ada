package rpc_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loginUntil is a user.create_apikey request for alice@acme at level
// full with expires_at set to ea.
func loginUntil(password string, ea any) map[string]any {
	p := login("alice@acme", password, "full")
	p["expires_at"] = ea
	return p
}

// TestUser_CreateAPIKeyExpiresAt: a login may ask for a key that expires,
// so that a key made for one session (the console's) does not outlive it
// when it cannot delete itself; the key stops working at that time.
func TestUser_CreateAPIKeyExpiresAt(t *testing.T) {
	ts := newTestServer(t)
	tenant := newAcmeWithAlice(ts)

	t.Run("OK", func(t *testing.T) {
		var k rpc.NewKeyInfo
		ts.ok("", "user.create_apikey", loginUntil("correct horse", fixedNow.Add(12*time.Hour).Format(time.RFC3339)), &k)
		require.NotNil(t, k.ExpiresAt, "the reply shows the expiry")
		assert.Equal(t, fixedNow.Add(12*time.Hour), *k.ExpiresAt)
		var info rpc.KeyInfo
		ts.ok(tenant, "apikey.info", map[string]any{"id": k.ID}, &info)
		require.NotNil(t, info.ExpiresAt, "the expiry is stored")
		assert.Equal(t, fixedNow.Add(12*time.Hour), *info.ExpiresAt)
		ts.ok(k.Key, "apikey.info", map[string]any{"id": k.ID}, nil)

		ts.advance(12*time.Hour - time.Second)
		ts.ok(k.Key, "apikey.info", map[string]any{"id": k.ID}, nil)
		ts.advance(time.Second)
		ts.fail(k.Key, "apikey.info", map[string]any{"id": k.ID}, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey)
	})
	t.Run("Discovery", func(t *testing.T) {
		var doc rpc.OpenRPC
		ts.ok(tenant, "rpc.discover", nil, &doc)
		var params []rpc.OpenRPCContent
		for _, m := range doc.Methods {
			if m.Name == "user.create_apikey" {
				params = m.Params
			}
		}
		require.NotEmpty(t, params, "discovery lists user.create_apikey")
		var ea *rpc.OpenRPCContent
		for i := range params {
			if params[i].Name == "expires_at" {
				ea = &params[i]
			}
		}
		require.NotNil(t, ea, "discovery lists expires_at: %+v", params)
		assert.False(t, ea.Required)
		var s struct {
			Type        string           `json:"type"`
			Description string           `json:"description"`
			AnyOf       []map[string]any `json:"anyOf"`
		}
		require.NoError(t, json.Unmarshal(ea.Schema, &s))
		assert.Equal(t, "string", s.Type)
		assert.Contains(t, s.Description, "in the future")
		assert.NotContains(t, s.Description, "not_before", "user.create_apikey has no not_before")
		require.Len(t, s.AnyOf, 2)
		assert.Equal(t, "date-time", s.AnyOf[1]["format"])
	})
	t.Run("OKAbsentOrEmpty", func(t *testing.T) {
		for _, p := range []map[string]any{login("alice@acme", "correct horse", "full"), loginUntil("correct horse", "")} {
			var k rpc.NewKeyInfo
			ts.ok("", "user.create_apikey", p, &k)
			assert.Nil(t, k.ExpiresAt, "no expires_at, or \"\": a key that never expires, as before")
		}
	})

	for _, tt := range []struct {
		name string
		ea   any
	}{
		{"ErrExpiryPast", "2020-01-01T00:00:00Z"},
		{"ErrExpiryNow", "now"},
		{"ErrExpiryFormat", "tomorrow"},
		{"ErrExpiryNoZone", "2030-01-02T03:04:05"},
		{"ErrExpiryType", 1767323045},
		{"ErrExpiryObject", map[string]any{"at": "2030-01-02T03:04:05Z"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ea := tt.ea
			if ea == "now" {
				ea = ts.Store.Now().Format(time.RFC3339) // not in the future
			}
			// Refused before the password is looked at: with the right
			// password or a wrong one, no key is made, no password is
			// hashed, and no failed login is counted.
			for _, pass := range []string{"correct horse", "wrong horse"} {
				runs := ts.hashRuns()
				ts.unchanged(func() {
					e := ts.fail("", "user.create_apikey", loginUntil(pass, ea), rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
					assert.Equal(t, "expires_at", e.Data.Field, "%+v", e)
					assert.Contains(t, e.Message, "expires_at")
				})
				assert.Equal(t, runs, ts.hashRuns(), "refused before hashing")
			}
		})
	}
	// Six refused calls with a wrong password above, yet the login is not
	// throttled: bad input is not a guess.
	var k rpc.NewKeyInfo
	ts.ok("", "user.create_apikey", login("alice@acme", "correct horse", "basic"), &k)
}
