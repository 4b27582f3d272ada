package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	operatorSecret  = "0123456789abcdef0123456789abcdef"
	recoveredSecret = "fedcba9876543210fedcba9876543210"
)

func TestIsFullOperatorKey(t *testing.T) {
	full := store.Key{Account: store.OperatorAccount, Active: true}
	assert.True(t, store.IsFullOperatorKey(full, testNow))
	past := full
	past.NotBefore = testNow.Add(-time.Hour)
	assert.True(t, store.IsFullOperatorKey(past, testNow), "valid already")
	for name, change := range map[string]func(*store.Key){
		"OtherAccount": func(k *store.Key) { k.Account = "acme" },
		"Inactive":     func(k *store.Key) { k.Active = false },
		"Expiring":     func(k *store.Key) { k.ExpiresAt = testNow.Add(100 * 365 * 24 * time.Hour) },
		"NotYetValid":  func(k *store.Key) { k.NotBefore = testNow.Add(time.Second) },
		"MethodScope":  func(k *store.Key) { k.Scopes = scope.Scopes{Method: []string{"apikey.*"}} },
		"IPScope":      func(k *store.Key) { k.Scopes = scope.Scopes{IP: []string{"0.0.0.0/0"}} },
		"RateLimit":    func(k *store.Key) { k.Rate = store.RateLimit{Limit: 1, Interval: time.Second} },
		"Quota":        func(k *store.Key) { k.HasQuota = true },
	} {
		k := full
		change(&k)
		assert.False(t, store.IsFullOperatorKey(k, testNow), name)
	}
}

// TestStore_OperatorRecovery: a file whose operator account is gone (so no
// full operator key) is not frozen by the rule; RecoverOperator recreates
// the account with a full key, which the rule then keeps.
func TestStore_OperatorRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := openStore(t, path, store.Options{NoSync: true, Now: func() time.Time { return testNow }})
	_, created, err := st.Bootstrap(operatorSecret)
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, st.Close())

	db := openRaw(t, path)
	require.NoError(t, db.Update(func(tx kv.Tx) error {
		return tx.Bucket([]byte("accounts")).Delete([]byte(store.OperatorAccount))
	}))
	require.NoError(t, db.Close())

	st = MustOpenStoreAt(t, path)
	ok, err := st.HasFullOperatorKey()
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, st.DeleteKey(context.Background(), store.OperatorAccount, operatorSecret, func(store.Key) error { return nil }),
		"a file without a full operator key is not frozen")

	k, err := st.RecoverOperator(recoveredSecret)
	require.NoError(t, err)
	assert.True(t, store.IsFullOperatorKey(k, testNow))
	_, err = st.Account(store.OperatorAccount)
	require.NoError(t, err, "the operator account is back")
	got, err := st.KeyBySecret(recoveredSecret)
	require.NoError(t, err)
	assert.Equal(t, k.ID, got.ID)
	ok, err = st.HasFullOperatorKey()
	require.NoError(t, err)
	assert.True(t, ok)
	records, _, err := st.AuditRecords(store.AuditQuery{Account: store.OperatorAccount})
	require.NoError(t, err)
	require.NotEmpty(t, records)
	assert.Equal(t, "recover-operator", records[len(records)-1].Method)
	assert.Equal(t, k.ID, records[len(records)-1].Target)

	before := snapshot(t, st)
	err = st.DeleteKey(context.Background(), store.OperatorAccount, k.ID, func(store.Key) error { return nil })
	require.ErrorIs(t, err, store.ErrLastOperatorKey)
	require.ErrorIs(t, err, store.ErrConflict)
	assert.Equal(t, before, snapshot(t, st))
	_, err = st.RecoverOperator(recoveredSecret)
	require.ErrorIs(t, err, store.ErrConflict, "a secret in use")
	assert.Equal(t, before, snapshot(t, st))
}
