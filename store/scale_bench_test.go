package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// BenchmarkScale builds one account of 1,000 keys and one of 1,000,000 and
// measures, in each, authentication (from bbolt and from the cache) and a
// page of apikey.list: the first, one 90% deep reached by cursor, the same
// by page number, and a filtered first page. It reports the file's size.
// Building the large store takes a minute or two:
//
//	make bench-scale
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "scale.db")
			f := buildScaleStore(b, path, n)
			info, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			mb := float64(info.Size()) / (1 << 20)
			b.Logf("keys=%d: file %.1f MiB, built in %s", n, mb, f.built.Round(time.Millisecond))

			st, err := Open(path, Options{NoSync: true, AuthCacheSize: -1, UsageFlush: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = st.Close() }()
			b.Run("auth/uncached", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := st.KeyBySecret(f.secrets[i%len(f.secrets)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(mb, "MiB-file")
			})
			list := func(name string, q KeyQuery, want int) {
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						p, err := st.ListKeys(q)
						if err != nil {
							b.Fatal(err)
						}
						if len(p.Keys) != want || p.Total == 0 {
							b.Fatalf("got %d keys of %d, want %d", len(p.Keys), p.Total, want)
						}
					}
				})
			}
			list("list/first", KeyQuery{Account: "big", Limit: 20}, 20)
			list("list/deep-cursor", KeyQuery{Account: "big", Limit: 20, After: &Position{ID: f.deepID}}, 20)
			list("list/deep-page", KeyQuery{Account: "big", Limit: 20, Offset: n * 9 / 10}, 20)
			active := true
			list("list/filtered-first", KeyQuery{Account: "big", Limit: 20, Active: &active}, 20)

			// Authentication as the server does it: through the cache.
			_ = st.Close()
			st, err = Open(path, Options{NoSync: true, UsageFlush: -1})
			if err != nil {
				b.Fatal(err)
			}
			for _, secret := range f.secrets { // warm the cache
				if _, err := st.KeyBySecret(secret); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("auth/cached", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := st.KeyBySecret(f.secrets[i%len(f.secrets)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}

type scaleFixture struct {
	secrets []string // of 1,000 keys spread over the store
	deepID  string   // the id of the key 90% of the way through
	built   time.Duration
}

// buildScaleStore writes n keys of one account in transactions of 10,000,
// through the same putNewKey that CreateKey uses.
func buildScaleStore(b *testing.B, path string, n int) scaleFixture {
	start := time.Now()
	st, err := Open(path, Options{NoSync: true, UsageFlush: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var f scaleFixture
	every := max(n/1000, 1)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const chunk = 10_000
	for done := 0; done < n; done += chunk {
		err := st.update(context.Background(), func(tx kv.Tx) error {
			for i := done; i < min(done+chunk, n); i++ {
				secret := NewSecret()
				rec := &keyRecord{
					ID: newKeyID(), Account: "big", Digest: digest(secret),
					Comment: "scale", Created: created.Add(time.Duration(i) * time.Second),
					Name: fmt.Sprintf("key-%07d", i),
				}
				if err := putNewKey(tx, rec); err != nil {
					return err
				}
				if i%every == 0 {
					f.secrets = append(f.secrets, secret)
				}
				if i == n*9/10 {
					f.deepID = rec.ID
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	f.built = time.Since(start)
	return f
}
