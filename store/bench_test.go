package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apikeyd/apikeyd/store"
)

func benchStore(b *testing.B, opts store.Options) (*store.Store, string, store.Key) {
	opts.NoSync = true
	st := openStore(b, filepath.Join(b.TempDir(), "bench.db"), opts)
	var k store.Key
	var secret string
	var err error
	for i := 0; i < 1000; i++ {
		k, secret, err = st.CreateKey(context.Background(), store.NewKey{Account: "bench", Comment: "bench key"})
		if err != nil {
			b.Fatal(err)
		}
	}
	return st, secret, k
}

// BenchmarkKeyBySecret: authentication, from the cache and from bbolt.
func BenchmarkKeyBySecret(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			st, secret, _ := benchStore(b, store.Options{AuthCacheSize: bc.size})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.KeyBySecret(secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKey: apikey.info's read, by public id.
func BenchmarkKey(b *testing.B) {
	st, _, k := benchStore(b, store.Options{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Key("bench", k.ID); err != nil {
			b.Fatal(err)
		}
	}
}
