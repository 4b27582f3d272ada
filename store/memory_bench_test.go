package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store/kv"
)

// BenchmarkMemory fills a store of 1,000 keys and one of 1,000,000,
// opens it as the server does (auth cache and usage tracking on),
// authenticates every key once, as a call would (AuthKey, then RecordUse),
// writes the uses, and reports the process's resident memory: all of it
// (VmRSS), the part that is pages of the mapped data file (from
// /proc/self/smaps), the Go heap in use, and what the store adds per key
// beyond the file's pages. The stores are kept in the temp dir between runs:
//
//	make bench-memory
func BenchmarkMemory(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			path := filepath.Join(os.TempDir(), fmt.Sprintf("apikeyd-memory-%d-v%d.db", n, SchemaVersion))
			buildMemoryStore(b, path, n)
			for b.Loop() {
				runtime.GC()
				debug.FreeOSMemory()
				rss0, file0 := residentKiB(b, path)
				st, err := Open(path, Options{NoSync: true})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for i := range n {
					k, err := st.AuthKey(memorySecret(i))
					if err != nil {
						b.Fatal(err)
					}
					st.RecordUse(k.ID)
				}
				warm := time.Since(start)
				if err := st.FlushUsage(); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				debug.FreeOSMemory()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				rss, file := residentKiB(b, path)
				beyond := float64((rss-file)-(rss0-file0)) * 1024 / float64(n)
				b.ReportMetric(float64(rss)/1024, "MiB-rss")
				b.ReportMetric(float64(file)/1024, "MiB-file-rss")
				b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
				b.ReportMetric(beyond, "B/key-beyond-file")
				b.Logf("keys=%d: VmRSS %d KiB (%d before open), of it the data file's pages %d KiB (%d before), heap in use %d KiB; %.0f B a key beyond the file's pages; %d authentications in %s",
					n, rss, rss0, file, file0, ms.HeapInuse/1024, beyond, n, warm.Round(time.Millisecond))
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// memorySecret is the secret of the i-th key of a memory store: derived,
// so that nothing holds a million of them.
func memorySecret(i int) string {
	h := sha256.Sum256([]byte("apikeyd-memory-" + strconv.Itoa(i)))
	return hex.EncodeToString(h[:SecretLen/2])
}

// buildMemoryStore writes n keys of one account, each with a name, once.
func buildMemoryStore(b *testing.B, path string, n int) {
	if _, err := os.Stat(path); err == nil {
		return
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	st, err := Open(tmp, Options{NoSync: true, UsageFlush: -1})
	if err != nil {
		b.Fatal(err)
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const chunk = 10_000
	for done := 0; done < n; done += chunk {
		err := st.update(context.Background(), func(tx kv.Tx) error {
			for i := done; i < min(done+chunk, n); i++ {
				rec := &keyRecord{
					ID: newKeyID(), Account: "big", Digest: digest(memorySecret(i)),
					Comment: "memory", Created: created.Add(time.Duration(i) * time.Second),
					Name: fmt.Sprintf("key-%07d", i),
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
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
}

// residentKiB returns the process's VmRSS and the resident part of its
// mappings of the file at path, in KiB.
func residentKiB(b *testing.B, path string) (rss, file int64) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status:", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		b.Skip("no /proc/self/smaps:", err)
	}
	defer f.Close()
	abs, _ := filepath.Abs(path)
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's header line
			in = len(fields) >= 6 && fields[len(fields)-1] == abs
			continue
		}
		if in && fields[0] == "Rss:" {
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			file += v
		}
	}
	return rss, file
}
