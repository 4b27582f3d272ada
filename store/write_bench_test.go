package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apikeyd/apikeyd/store"
)

// BenchmarkCreateKey: apikey.create's write, with its audit record in its
// transaction as the server makes it, durable (fdatasync) on the disk of
// the temp dir, from one writer and from 64 at once (group commit):
//
//	go test ./store -run '^$' -bench CreateKey -benchtime 2s
//
// The same file serves the run: keys accumulate as they do in a server.
func BenchmarkCreateKey(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st := openStore(b, filepath.Join(b.TempDir(), "bench.db"), store.Options{})
			ctx := context.Background()
			create := func() {
				a := store.NewCallAudit(func() (store.AuditRecord, bool) {
					return store.AuditRecord{Account: "bench", Actor: "k", Method: "apikey.create", SourceIP: "127.0.0.1"}, true
				})
				if _, _, err := st.CreateKey(store.WithCallAudit(ctx, a), store.NewKey{Account: "bench", Comment: "w"}); err != nil {
					b.Error(err)
				}
			}
			var n atomic.Int64
			n.Store(int64(b.N))
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for n.Add(-1) >= 0 {
						create()
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}
