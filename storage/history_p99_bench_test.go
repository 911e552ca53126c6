package storage

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkHistoryP99 measures the tail of "the latest 20 records before a
// random point" on the 10,000- and the 1,000,000-record conversation:
// single queries alternate between the two stores, each is timed, and the
// benchmark reports p50 and p99 of each size and the ratio of the p99s
// (the requirement is p99(1M) <= 1.5 x p99(10k)). b.N counts query pairs.
//
//	go test -run '^$' -bench HistoryP99 -benchtime 20000x ./storage/
func BenchmarkHistoryP99(b *testing.B) {
	if testing.Short() {
		b.Skip("1M-record store skipped in -short mode")
	}
	small, large := historyStoreOf(b, 10_000), historyStoreOf(b, 1_000_000)
	ctx := context.Background()
	rngS, rngL := rand.New(rand.NewPCG(3, 3)), rand.New(rand.NewPCG(4, 4))
	query := func(s *historyStore, rng *rand.Rand) time.Duration {
		before := s.base + int64(20+rng.IntN(s.n-20))*s.step
		start := time.Now()
		recs, err := s.db.Records(ctx, s.conv, before, 0, 20)
		d := time.Since(start)
		if err != nil || len(recs) != 20 {
			b.Fatalf("Records() = %d records, %v", len(recs), err)
		}
		return d
	}
	// Warm both stores' block caches and iterators like a running server.
	for range 2000 {
		query(small, rngS)
		query(large, rngL)
	}
	var ds, dl []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ds = append(ds, query(small, rngS))
		dl = append(dl, query(large, rngL))
	}
	b.StopTimer()
	slices.Sort(ds)
	slices.Sort(dl)
	q := func(d []time.Duration, p float64) float64 {
		return float64(d[min(int(p*float64(len(d))), len(d)-1)].Nanoseconds())
	}
	b.ReportMetric(q(ds, 0.5), "p50-ns-10k")
	b.ReportMetric(q(ds, 0.99), "p99-ns-10k")
	b.ReportMetric(q(dl, 0.5), "p50-ns-1M")
	b.ReportMetric(q(dl, 0.99), "p99-ns-1M")
	b.ReportMetric(q(dl, 0.99)/q(ds, 0.99), "p99-ratio")
}
