package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allowAll is a holder check that refuses no key.
func allowAll(store.Key) error { return nil }

// TestStore_HolderChecks: user and service account writes show the check
// every key the holder holds, in the writing transaction, and a refusal
// writes nothing.
func TestStore_HolderChecks(t *testing.T) {
	st := MustOpenStore(t)
	_, _, _, err := st.CreateAccount(context.Background(), "acme", "")
	require.NoError(t, err)
	_, err = st.CreateUser(context.Background(), "acme", "alice", "correct horse")
	require.NoError(t, err)
	_, err = st.CreateServiceAccount(context.Background(), "acme", "ci", "", true)
	require.NoError(t, err)
	holders := map[string]string{"user": store.UserOwner(store.LoginName("alice", "acme")), "sa": store.ServiceAccountOwner("acme", "ci")}
	held := map[string][]string{}
	for kind, owner := range holders {
		for range 3 {
			k, _, err := st.CreateKey(context.Background(), store.NewKey{Account: "acme", Owner: owner})
			require.NoError(t, err)
			held[kind] = append(held[kind], k.ID)
		}
	}
	errNo := errors.New("no")
	// refuseLast refuses the last key of kind, and records the keys seen.
	refuseLast := func(kind string, seen *[]string) func(store.Key) error {
		return func(k store.Key) error {
			*seen = append(*seen, k.ID)
			if k.ID == held[kind][len(held[kind])-1] {
				return errNo
			}
			return nil
		}
	}
	active := false
	for _, tt := range []struct {
		name, kind string
		write      func(check func(store.Key) error) error
	}{
		{"DeleteUser", "user", func(c func(store.Key) error) error { return st.DeleteUser(context.Background(), "acme", "alice", c) }},
		{"UpdateServiceAccount", "sa", func(c func(store.Key) error) error {
			_, err := st.UpdateServiceAccount(context.Background(), "acme", "ci", nil, &active, c)
			return err
		}},
		{"DeleteServiceAccount", "sa", func(c func(store.Key) error) error {
			return st.DeleteServiceAccount(context.Background(), "acme", "ci", c)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := st.Fingerprint()
			require.NoError(t, err)
			var seen []string
			require.ErrorIs(t, tt.write(refuseLast(tt.kind, &seen)), errNo)
			// A batched write may run twice: count each key once.
			slices.Sort(seen)
			assert.ElementsMatch(t, held[tt.kind], slices.Compact(seen), "the check sees every key held")
			after, err := st.Fingerprint()
			require.NoError(t, err)
			assert.Equal(t, before, after, "a refused write writes nothing")
		})
	}
	require.NoError(t, st.DeleteUser(context.Background(), "acme", "alice", allowAll))
	require.NoError(t, st.DeleteServiceAccount(context.Background(), "acme", "ci", allowAll))
	keys, err := st.Keys("acme")
	require.NoError(t, err)
	assert.Len(t, keys, 1, "only the account's first key is left")
}
