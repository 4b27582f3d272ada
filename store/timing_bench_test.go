package store_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
)

// The timing benchmarks run only under `make timing`: each takes its own
// fixed number of samples, whatever b.N is.
var (
	timing        = flag.Bool("timing", false, "run the BenchmarkTiming benchmarks")
	timingKeys    = flag.Int("timing.keys", 100_000, "samples of each population in BenchmarkTiming_KeyLookup")
	timingLogins  = flag.Int("timing.logins", 2_000, "samples of each population in BenchmarkTiming_Login")
	timingMaxAbsT = 5.0
)

// welch is Welch's t statistic of two samples, with their means.
func welch(a, b []float64) (t, meanA, meanB float64) {
	stats := func(x []float64) (mean, variance float64) {
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		for _, v := range x {
			variance += (v - mean) * (v - mean)
		}
		return mean, variance / float64(len(x)-1)
	}
	ma, va := stats(a)
	mb, vb := stats(b)
	return (ma - mb) / math.Sqrt(va/float64(len(a))+vb/float64(len(b))), ma, mb
}

// interleave times n calls of each of two populations, in a random order
// within each pair, so that drift (frequency scaling, other load, the heap
// growing) falls on both alike. call(pop, i) makes the i-th call of
// population pop (0 or 1); its inputs are made before timing starts.
func interleave(n int, call func(pop, i int)) (a, b []float64) {
	a, b = make([]float64, n), make([]float64, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		first := rng.IntN(2)
		for _, pop := range []int{first, 1 - first} {
			start := time.Now()
			call(pop, i)
			d := float64(time.Since(start).Nanoseconds())
			if pop == 0 {
				a[i] = d
			} else {
				b[i] = d
			}
		}
	}
	return a, b
}

func reportWelch(b *testing.B, what string, a, c []float64, nameA, nameC string) {
	t, ma, mc := welch(a, c)
	b.ReportMetric(t, "welch-t")
	b.ReportMetric(ma, "ns/"+nameA)
	b.ReportMetric(mc, "ns/"+nameC)
	b.ReportMetric(float64(len(a)), "samples-each")
	msg := fmt.Sprintf("%s: %d samples each; mean %s %.0f ns, %s %.0f ns; Welch's t %.2f", what, len(a), nameA, ma, nameC, mc, t)
	b.Log(msg)
	if math.Abs(t) >= timingMaxAbsT {
		b.Errorf("%s: |t| >= %.0f: the two can be told apart by timing", msg, timingMaxAbsT)
	}
}

// BenchmarkTiming_KeyLookup compares authenticating a random wrong key with
// authenticating a near miss of a real key (its secret with the last digit
// changed): both must fail in times no one can tell apart, or a caller
// could learn how close a guess came.
func BenchmarkTiming_KeyLookup(b *testing.B) {
	if !*timing {
		b.Skip("run by make timing (-timing)")
	}
	st := openStore(b, filepath.Join(b.TempDir(), "timing.db"), store.Options{NoSync: true})
	var err error
	secrets := make([]string, 1000)
	for i := range secrets {
		if _, secrets[i], err = st.CreateKey(context.Background(), store.NewKey{Account: "timing", Comment: "timing key"}); err != nil {
			b.Fatal(err)
		}
	}
	n := *timingKeys
	wrong, near := make([]string, n), make([]string, n)
	for i := 0; i < n; i++ {
		wrong[i] = store.NewSecret()
		s := secrets[i%len(secrets)]
		last := byte('0')
		if s[len(s)-1] == '0' {
			last = '1'
		}
		near[i] = s[:len(s)-1] + string(last)
	}
	lookup := func(pop, i int) {
		secret := wrong[i]
		if pop == 1 {
			secret = near[i]
		}
		if _, err := st.KeyBySecret(secret); !errors.Is(err, store.ErrNotFound) {
			b.Fatalf("a wrong secret: %v", err)
		}
	}
	interleave(min(n, 10_000), lookup) // warm up
	b.ResetTimer()
	for range b.N {
		a, c := interleave(n, lookup)
		reportWelch(b, "key lookup", a, c, "wrong-key", "near-miss")
	}
}

// BenchmarkTiming_Login compares a login for an unknown user with one for a
// known user with a wrong password, over the whole of store.Login. Each
// costs an argon2id run (~30 ms), so it takes 2,000 samples of each by
// default rather than 100,000 (which would take about two hours): enough
// for a difference of a fraction of a millisecond to show.
func BenchmarkTiming_Login(b *testing.B) {
	if !*timing {
		b.Skip("run by make timing (-timing)")
	}
	st := openStore(b, filepath.Join(b.TempDir(), "timing.db"), store.Options{NoSync: true,
		MaxLoginFailures: math.MaxInt32, MaxUserLoginFailures: math.MaxInt32})
	ctx := context.Background()
	if _, _, _, err := st.CreateAccount(context.Background(), "timing", ""); err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "timing", "alice", "correct horse battery staple"); err != nil {
		b.Fatal(err)
	}
	known, unknown := store.LoginName("alice", "timing"), store.LoginName("bob", "timing")
	login := func(pop, i int) {
		name := unknown
		if pop == 1 {
			name = known
		}
		// A source per guess, so that no throttling enters the timing.
		source := fmt.Sprintf("10.%d.%d.%d", pop, i>>8&0xff, i&0xff)
		if _, err := st.Login(ctx, name, "wrong password", source); !errors.Is(err, store.ErrLoginFailed) {
			b.Fatalf("login %s: %v", name, err)
		}
	}
	interleave(20, login) // warm up
	b.ResetTimer()
	for range b.N {
		a, c := interleave(*timingLogins, login)
		reportWelch(b, "login", a, c, "unknown-user", "known-user")
	}
}

// TestWelch holds the statistic the timing benchmarks report to a value
// worked by hand: means 2.5 and 3.5, variances 5/3, so t = -1/sqrt(5/6).
func TestWelch(t *testing.T) {
	tv, ma, mb := welch([]float64{1, 2, 3, 4}, []float64{2, 3, 4, 5})
	assert.InDelta(t, -1/math.Sqrt(5.0/6), tv, 1e-12)
	assert.Equal(t, 2.5, ma)
	assert.Equal(t, 3.5, mb)
	tv, _, _ = welch([]float64{10, 11, 10, 11, 10, 11}, []float64{20, 21, 20, 21, 20, 21})
	assert.Less(t, tv, -10.0, "clearly different samples")
}
