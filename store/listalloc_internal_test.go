package store

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListKeys_FilteredAllocation: in an account of 20,000 keys, the first
// page under each filter allocates well under 1 MiB, as apikey.list must
// at a million keys (make bench-scale measures that); a list that read
// and copied every key, as lists once did, allocates about 16 MiB here.
func TestListKeys_FilteredAllocation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 20,000 keys")
	}
	const n = 20_000
	st, err := Open(filepath.Join(t.TempDir(), "apikeyd.db"), Options{NoSync: true, UsageFlush: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for done := 0; done < n; done += 2000 {
		require.NoError(t, st.update(context.Background(), func(tx kv.Tx) error {
			for i := done; i < done+2000; i++ {
				created := epoch.Add(time.Duration(i) * time.Second)
				rec := &keyRecord{ID: newKeyID(), Account: "big", Digest: digest(NewSecret()), Created: created,
					Name: fmt.Sprintf("key-%05d", i), Inactive: i%10 == 0}
				if i%4 == 0 {
					rec.ExpiresAt = created.Add(24 * time.Hour)
				}
				if err := putNewKey(tx, rec); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	on, off := true, false
	mid := epoch.Add(n / 2 * time.Second)
	all, err := st.Keys("big")
	require.NoError(t, err)
	inHour := func(v time.Time) bool { return !v.Before(mid) && v.Before(mid.Add(time.Hour)) }
	for _, tt := range []struct {
		name string
		q    KeyQuery
		want func(k *Key) bool // the same filter, tested on every key
	}{
		{"NameEquals", KeyQuery{Name: NameFilter{NameEquals, "key-10000"}}, func(k *Key) bool { return k.Name == "key-10000" }},
		{"NameStartsWith", KeyQuery{Name: NameFilter{NameStartsWith, "key-100"}}, func(k *Key) bool { return strings.HasPrefix(k.Name, "key-100") }},
		{"NameContains", KeyQuery{Name: NameFilter{NameContains, "999"}}, func(k *Key) bool { return strings.Contains(k.Name, "999") }},
		{"Active", KeyQuery{Active: &on}, func(k *Key) bool { return k.Active }},
		{"Inactive", KeyQuery{Active: &off}, func(k *Key) bool { return !k.Active }},
		{"OwnerAccount", KeyQuery{OwnerSet: true}, func(k *Key) bool { return k.Owner == "" }},
		{"CreatedHour", KeyQuery{Created: []TimeCond{{"gte", mid}, {"lt", mid.Add(time.Hour)}}}, func(k *Key) bool { return inHour(k.Created) }},
		{"ExpiresAt", KeyQuery{ExpiresAt: []TimeCond{{"gt", mid.Add(24 * time.Hour)}}}, func(k *Key) bool { return k.ExpiresAt.After(mid.Add(24 * time.Hour)) }},
		{"ActiveCreatedHour", KeyQuery{Active: &on, Created: []TimeCond{{"gte", mid}, {"lt", mid.Add(time.Hour)}}}, func(k *Key) bool { return k.Active && inHour(k.Created) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			q.Account, q.Limit = "big", 20
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			p, err := st.ListKeys(q)
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			var want []string
			for _, k := range all {
				if tt.want(&k) {
					want = append(want, k.ID)
				}
			}
			require.NotEmpty(t, want)
			assert.Equal(t, len(want), p.Total)
			var got []string
			for _, k := range p.Keys {
				got = append(got, k.ID)
			}
			assert.Equal(t, want[:min(20, len(want))], got)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<10), "bytes allocated")
		})
	}
}
