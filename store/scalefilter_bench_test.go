package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

var filterEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// buildFilterStore: as buildScaleStore, every 10th key switched off, every
// 4th with an expiry, every 100th rotated.
func buildFilterStore(b *testing.B, path string, n int) {
	if _, err := os.Stat(path); err == nil {
		return
	}
	st, err := Open(path+".tmp", Options{NoSync: true, UsageFlush: -1})
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 10_000
	for done := 0; done < n; done += chunk {
		err := st.update(context.Background(), func(tx kv.Tx) error {
			for i := done; i < min(done+chunk, n); i++ {
				created := filterEpoch.Add(time.Duration(i) * time.Second)
				rec := &keyRecord{
					ID: newKeyID(), Account: "big", Digest: digest(NewSecret()),
					Comment: "scale", Created: created, Name: fmt.Sprintf("key-%07d", i),
					Inactive: i%10 == 0,
				}
				if i%4 == 0 {
					rec.ExpiresAt = created.Add(365 * 24 * time.Hour)
				}
				if i%100 == 0 {
					rec.LastRotated = created.Add(24 * time.Hour)
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
	}
	st.Close()
	os.Rename(path+".tmp", path)
}

func BenchmarkScaleFilters(b *testing.B) {
	n := 1_000_000
	path := filepath.Join(os.TempDir(), fmt.Sprintf("apikeyd-scale-filters-%d.db", n))
	buildFilterStore(b, path, n)
	start := time.Now()
	st, err := Open(path, Options{NoSync: true, AuthCacheSize: -1, UsageFlush: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("opened %s in %s", path, time.Since(start).Round(time.Millisecond))
	defer st.Close()
	at := func(d time.Duration) time.Time { return filterEpoch.Add(d) }
	mid := 500_000 * time.Second
	on, off := true, false
	span := func(lo, hi time.Time) []TimeCond { return []TimeCond{{"gte", lo}, {"lt", hi}} }
	for _, f := range []struct {
		name string
		q    KeyQuery
		err  error
	}{
		{"name=equals", KeyQuery{Name: NameFilter{NameEquals, "key-0500000"}}, nil},
		{"name=startswith", KeyQuery{Name: NameFilter{NameStartsWith, "key-05000"}}, nil},
		{"name=contains", KeyQuery{Name: NameFilter{NameContains, "-05000"}}, ErrListTooBroad},
		{"active=true", KeyQuery{Active: &on}, nil},
		{"active=false", KeyQuery{Active: &off}, nil},
		{"owner=account", KeyQuery{OwnerSet: true}, nil},
		{"created=1h", KeyQuery{Created: span(at(mid), at(mid+time.Hour))}, nil},
		{"expires_at=1d", KeyQuery{ExpiresAt: span(at(mid+365*24*time.Hour), at(mid+366*24*time.Hour))}, nil},
		{"last_rotated=all", KeyQuery{LastRotated: []TimeCond{{"gt", at(0)}}}, nil},
		{"last_used_at=any", KeyQuery{LastUsed: []TimeCond{{"gt", at(0)}}}, ErrListTooBroad},
		{"active+created=1h", KeyQuery{Active: &on, Created: span(at(mid), at(mid+time.Hour))}, nil},
		{"created=all", KeyQuery{Created: []TimeCond{{"gte", at(0)}}}, nil},
		{"created=half", KeyQuery{Created: []TimeCond{{"gte", at(mid)}}}, nil},
		{"owner+active+name=startswith", KeyQuery{OwnerSet: true, Active: &on, Name: NameFilter{NameStartsWith, "key-05"}}, nil},
	} {
		f.q.Account, f.q.Limit = "big", 20
		b.Run("filter/"+f.name, func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if _, err := st.ListKeys(f.q); !errors.Is(err, f.err) {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}
