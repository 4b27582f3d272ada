package rpc_test

import (
	"encoding/json"
	"testing"

	"github.com/apikeyd/apikeyd/rpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func auditAll(ts *testServer, key string, params map[string]any) []rpc.AuditEntry {
	ts.t.Helper()
	var out []rpc.AuditEntry
	after := uint64(0)
	for {
		p := map[string]any{"after": after, "limit": 3}
		for k, v := range params {
			p[k] = v
		}
		var page rpc.AuditPage
		ts.ok(key, "audit.list", p, &page)
		out = append(out, page.Records...)
		if page.Next == 0 {
			return out
		}
		require.LessOrEqual(ts.t, len(page.Records), 3)
		after = page.Next
	}
}

// TestAudit counts the records against the calls made: every mutation,
// failed or not, is one record; failed authentications and lockouts are
// counted, one record per source, method, outcome and minute; successful
// reads are none.
func TestAudit(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme) // 1 (operator)
	tenant := acme.FirstKey.Key

	k := ts.createKey(tenant, map[string][]string{"method": {"server.list"}}, "k")                                // 1 acme
	ts.ok(tenant, "apikey.add_scope", []any{k.ID, "method", "server.reboot"}, nil)                                // 2 acme
	ts.fail(tenant, "apikey.add_scope", []any{k.ID, "ip", "x"}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)    // 3 acme, failed
	ts.ok(tenant, "apikey.info", []any{k.ID}, nil)                                                                // read: none
	ts.ok(tenant, "apikey.list", nil, nil)                                                                        // read: none
	ts.ok(k.Key, "server.list", nil, nil)                                                                         // READ class: none
	ts.ok(k.Key, "server.reboot", []any{"web1"}, nil)                                                             // 4 acme (UPDATE)
	ts.fail(k.Key, "apikey.delete", []any{k.ID}, rpc.CodeForbidden, rpc.ErrIDScopeDenied)                         // 5 acme, denied
	ts.fail("ffffffffffffffffffffffffffffffff", "apikey.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDInvalidKey) // 1 (no account)
	ts.fail("", "server.list", nil, rpc.CodeUnauthenticated, rpc.ErrIDMissingKey)                                 // 2 (no account)
	ts.ok(tenant, "user.create", []any{"alice", "correct horse"}, nil)                                            // 6 acme
	for i := 0; i < 5; i++ {                                                                                      // 3, 4 (no account): 4 failed, 1 locked
		ts.call("", "user.create_apikey", login("alice@acme", "wrong horse", "basic"))
	}
	ts.fail(tenant, "apikey.delete", []any{"(secret)"}, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams) // 7 acme
	ts.ok(tenant, "apikey.delete", []any{k.Key}, nil)                                                  // 8 acme, by secret

	acmeRecords := auditAll(ts, tenant, nil)
	require.Len(t, acmeRecords, 8, "acme sees exactly its own records")
	for _, r := range acmeRecords {
		assert.Equal(t, "acme", r.Account)
		assert.Equal(t, "127.0.0.1", r.SourceIP)
		assert.False(t, r.Time.IsZero())
	}
	assert.Equal(t, "apikey.create", acmeRecords[0].Method)
	assert.Equal(t, "ok", acmeRecords[0].Outcome)
	assert.Equal(t, acme.FirstKey.ID, acmeRecords[0].Actor)
	assert.Equal(t, k.ID, acmeRecords[1].Target)
	assert.Equal(t, rpc.ErrIDInvalidParams, acmeRecords[2].Outcome)
	assert.Equal(t, "server.reboot", acmeRecords[3].Method)
	assert.Equal(t, "web1", acmeRecords[3].Target)
	assert.Equal(t, rpc.ErrIDScopeDenied, acmeRecords[4].Outcome)
	assert.Equal(t, "(malformed)", acmeRecords[6].Target)
	assert.Equal(t, "(a key, named by its secret)", acmeRecords[7].Target)

	// Failed authentications are counted per source, method, outcome and
	// minute, and written by the background flush.
	require.NoError(t, ts.Store.FlushAudit())
	all := auditAll(ts, ts.Admin, nil)
	require.Len(t, all, 8+1+4, "the operator sees every record")
	var unauth, locked uint64
	for _, r := range all {
		switch r.Outcome {
		case rpc.ErrIDInvalidKey, rpc.ErrIDMissingKey, rpc.ErrIDLoginFailed:
			unauth += r.Count
			assert.Empty(t, r.Account)
		case rpc.ErrIDLoginLocked:
			locked += r.Count
			assert.Empty(t, r.Actor, "anyone can name any user: not kept")
		default:
			assert.Equal(t, uint64(1), r.Count)
		}
	}
	assert.Equal(t, uint64(2+4), unauth)
	assert.Equal(t, uint64(1), locked)

	// Filters.
	byMethod := auditAll(ts, ts.Admin, map[string]any{"method": "user.create_apikey"})
	assert.Len(t, byMethod, 2, "failed and locked")
	byOutcome := auditAll(ts, tenant, map[string]any{"outcome": "ok"})
	assert.Len(t, byOutcome, 5)
	future := auditAll(ts, ts.Admin, map[string]any{"since": "2030-01-01T00:00:00Z"})
	assert.Empty(t, future)
	past := auditAll(ts, ts.Admin, map[string]any{"until": "2000-01-01T00:00:00Z"})
	assert.Empty(t, past)

	// No secret and no password in any record.
	raw, err := json.Marshal(all)
	require.NoError(t, err)
	for _, secret := range []string{ts.Admin, tenant, k.Key, "wrong horse", "correct horse"} {
		assert.NotContains(t, string(raw), secret)
	}
}

func TestAudit_Errors(t *testing.T) {
	ts := newTestServer(t)
	for _, tt := range []struct {
		name   string
		params map[string]any
		field  string
	}{
		{"ErrSince", map[string]any{"since": "yesterday"}, "since"},
		{"ErrUntil", map[string]any{"until": 5}, "until"},
		{"ErrLimitHigh", map[string]any{"limit": 1001}, "limit"},
		{"ErrLimitNegative", map[string]any{"limit": -1}, "limit"},
		{"ErrLimitType", map[string]any{"limit": "ten"}, "limit"},
		{"ErrAfterNegative", map[string]any{"after": -1}, "after"},
		{"ErrUnknown", map[string]any{"account": "acme"}, "account"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := ts.fail(ts.Admin, "audit.list", tt.params, rpc.CodeInvalidParams, rpc.ErrIDInvalidParams)
			assert.Equal(t, tt.field, e.Data.Field)
		})
	}
	// Reads of the trail are not themselves audited.
	var page rpc.AuditPage
	ts.ok(ts.Admin, "audit.list", nil, &page)
	assert.Empty(t, page.Records)
}

// TestAudit_LoginInUsersAccount: a successful login is in the trail of the
// user's account, where its owner can see it; a failed one, which names no
// account for sure, only in the operator's.
func TestAudit_LoginInUsersAccount(t *testing.T) {
	ts := newTestServer(t)
	var acme rpc.NewAccountInfo
	ts.ok(ts.Admin, "account.create", []any{"acme"}, &acme)
	ts.ok(acme.FirstKey.Key, "user.create", []any{"alice", "correct horse"}, nil)
	ts.createUserKey("alice@acme", "correct horse", "basic")
	ts.fail("", "user.create_apikey", login("alice@acme", "wrong horse", "basic"), rpc.CodeUnauthenticated, rpc.ErrIDLoginFailed)

	var page rpc.AuditPage
	ts.ok(acme.FirstKey.Key, "audit.list", map[string]any{"method": "user.create_apikey"}, &page)
	require.Len(t, page.Records, 1)
	assert.Equal(t, "acme", page.Records[0].Account)
	assert.Equal(t, "user:alice@acme", page.Records[0].Actor)
	assert.Equal(t, "ok", page.Records[0].Outcome)
	require.NoError(t, ts.Store.FlushAudit()) // failures are counted, then written
	ts.ok(ts.Admin, "audit.list", map[string]any{"method": "user.create_apikey"}, &page)
	assert.Len(t, page.Records, 2)
}
