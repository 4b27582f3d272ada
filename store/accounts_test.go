package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStore_Accounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := MustOpenStoreAt(t, path)
	_, _, err := st.Bootstrap("00112233445566778899aabbccddeeff")
	require.NoError(t, err)
	op, err := st.Account(store.OperatorAccount)
	require.NoError(t, err)
	assert.Equal(t, 1, op.Keys)

	a, k, secret, err := st.CreateAccount(context.Background(), "acme", "Acme")
	require.NoError(t, err)
	assert.Equal(t, store.Account{Name: "acme", Comment: "Acme", Created: testNow, Keys: 1}, a)
	assert.Equal(t, "acme", k.Account)
	_, _, _, err = st.CreateAccount(context.Background(), "acme", "again")
	assert.ErrorIs(t, err, store.ErrAccountExists)
	assert.ErrorIs(t, err, store.ErrConflict)

	_, err = st.Account("nobody")
	assert.ErrorIs(t, err, store.ErrAccountNotFound)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, st.DeleteAccount(context.Background(), store.OperatorAccount, allowAll), store.ErrOperatorAccount)
	assert.ErrorIs(t, st.DeleteAccount(context.Background(), "nobody", allowAll), store.ErrAccountNotFound)

	// Survives a reopen.
	require.NoError(t, st.Close())
	st = MustOpenStoreAt(t, path)
	all, err := st.Accounts()
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, "acme", all[0].Name)

	_, err = st.KeyBySecret(secret) // cached
	require.NoError(t, err)
	require.NoError(t, st.DeleteAccount(context.Background(), "acme", allowAll))
	_, err = st.KeyBySecret(secret)
	assert.ErrorIs(t, err, store.ErrNotFound, "a key of a deleted account still authenticates")
	keys, err := st.Keys("acme")
	require.NoError(t, err)
	assert.Empty(t, keys)
}

// TestStore_ServiceAccountInactiveSurvivesReopen: an inactive service
// account's keys stay dead after a restart.
func TestStore_ServiceAccountInactiveSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	st := MustOpenStoreAt(t, path)
	_, _, _, err := st.CreateAccount(context.Background(), "acme", "")
	require.NoError(t, err)
	_, err = st.CreateServiceAccount(context.Background(), "acme", "ci", "", true)
	require.NoError(t, err)
	_, secret, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: store.ServiceAccountOwner("acme", "ci")})
	require.NoError(t, err)
	_, err = st.KeyBySecret(secret)
	require.NoError(t, err)
	inactive := false
	_, err = st.UpdateServiceAccount(context.Background(), "acme", "ci", nil, &inactive, allowAll)
	require.NoError(t, err)
	_, err = st.KeyBySecret(secret)
	assert.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, st.Close())
	st = MustOpenStoreAt(t, path)
	_, err = st.KeyBySecret(secret)
	assert.ErrorIs(t, err, store.ErrNotFound, "reopening revived an inactive service account's key")
	active := true
	_, err = st.UpdateServiceAccount(context.Background(), "acme", "ci", nil, &active, allowAll)
	require.NoError(t, err)
	_, err = st.KeyBySecret(secret)
	assert.NoError(t, err)
}
