package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
)

// BenchmarkConversations measures the conversation list of a user with
// 10,000 friend conversations (two records each) and 20 groups, limit 50:
// each query is timed and p50/p99 reported, for the first page
// (before=now) and for pages at a random before. The requirement is p99
// under 5 ms.
//
//	go test -run '^$' -bench Conversations -benchtime 2000x ./storage/
func BenchmarkConversations(b *testing.B) {
	db, err := Open(Options{Dir: b.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const convs, groups = 10_000, 20
	if err := db.Update(ctx, func(tx chat.Tx) error {
		for g := range groups {
			if err := tx.PutGroup(&chat.Group{ID: fmt.Sprintf("g%02d", g), Owner: "alice", Members: []string{"bob"}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	base := time.Now().UnixMilli() - int64(convs)*10
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 { // concurrent appends share commits
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < convs+groups; i += 64 {
				conv := chat.FriendConv("alice", fmt.Sprintf("u%05d", i))
				if i >= convs {
					conv = chat.GroupConv(fmt.Sprintf("g%02d", i-convs))
				}
				for k := range 2 {
					rec := chat.Record{Conv: conv, ID: "0123456789abcdef", Speaker: []string{"alice", "bob"}[k],
						Content: chat.Content{Body: "a typical short chat message"}, TS: base + int64(i)*10 + int64(k)}
					if err := db.AppendRecord(ctx, &rec, chat.DefaultRetention7d); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	query := func(before int64) time.Duration {
		start := time.Now()
		cs, err := db.Conversations(ctx, "alice", before, 50)
		d := time.Since(start)
		if err != nil || len(cs) != 50 {
			b.Fatalf("Conversations() = %d, %v", len(cs), err)
		}
		return d
	}
	randomBefore := func() int64 { return base + int64(100+rng.IntN(convs-100))*10 }
	for range 200 {
		query(maxTS)
		query(randomBefore())
	}
	var first, deep []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		first = append(first, query(maxTS))
		deep = append(deep, query(randomBefore()))
	}
	b.StopTimer()
	q := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[min(int(p*float64(len(d))), len(d)-1)].Microseconds())
	}
	b.ReportMetric(q(first, 0.5), "p50-µs-first")
	b.ReportMetric(q(first, 0.99), "p99-µs-first")
	b.ReportMetric(q(deep, 0.5), "p50-µs-random")
	b.ReportMetric(q(deep, 0.99), "p99-µs-random")
}
