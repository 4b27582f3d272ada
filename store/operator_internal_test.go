package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store/kv"
)

// BenchmarkOperatorGuard is the check every write transaction makes, twice,
// when the operator account's only full key comes after 2,000 narrower
// ones: the key found last is tried first, so it costs one lookup.
func BenchmarkOperatorGuard(b *testing.B) {
	st, err := Open(filepath.Join(b.TempDir(), "apikeyd.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	err = st.update(context.Background(), func(tx kv.Tx) error {
		acct := accountRecord{Name: OperatorAccount, Created: time.Now()}
		if err := tx.Bucket(bucketAccounts).Put([]byte(OperatorAccount), acct.marshal()); err != nil {
			return err
		}
		for i := 0; i <= 2000; i++ {
			rec := &keyRecord{ID: newKeyID(), Account: OperatorAccount, Digest: digest(NewSecret()), Created: time.Now()}
			if i < 2000 {
				rec.Scopes = scope.Scopes{Method: []string{"server.list"}}
			}
			if err := putNewKey(tx, rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ResetTimer()
	err = st.view(func(tx kv.Tx) error {
		for i := 0; i < b.N; i++ {
			if !st.hasFullOperatorKey(tx, now) {
				b.Fatal("no full operator key found")
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
