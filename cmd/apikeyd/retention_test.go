package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseFlags_AuditRetention: --audit-retention defaults to 90 days,
// has its environment twin, takes 0 for forever and refuses a negative
// period.
func TestParseFlags_AuditRetention(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	m := NewMain(&bytes.Buffer{})
	require.NoError(t, m.ParseFlags(nil, env(nil)))
	assert.Equal(t, 90*24*time.Hour, m.Config.AuditRetention)

	m = NewMain(&bytes.Buffer{})
	require.NoError(t, m.ParseFlags(nil, env(map[string]string{"APIKEYD_AUDIT_RETENTION": "720h"})))
	assert.Equal(t, 30*24*time.Hour, m.Config.AuditRetention)

	m = NewMain(&bytes.Buffer{})
	require.NoError(t, m.ParseFlags([]string{"--audit-retention", "0"}, env(map[string]string{"APIKEYD_AUDIT_RETENTION": "720h"})))
	assert.Zero(t, m.Config.AuditRetention, "0 keeps records forever")

	m = NewMain(&bytes.Buffer{})
	assert.ErrorContains(t, m.ParseFlags([]string{"--audit-retention", "-1h"}, env(nil)), "--audit-retention")
	m = NewMain(&bytes.Buffer{})
	assert.ErrorContains(t, m.ParseFlags(nil, env(map[string]string{"APIKEYD_AUDIT_RETENTION": "90 days"})), "APIKEYD_AUDIT_RETENTION")
}
