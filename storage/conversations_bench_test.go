package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
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

// BenchmarkAppendIndexMoves is BenchmarkAppendRecord's batched friend case
// (64 senders, one conversation each) with the TS of consecutive messages
// of a conversation activityLag apart, so that every append moves both
// parties' activity entries (2 deletes and 2 sets): the worst case of a
// slow chat, against the burst case where the entries stay put.
//
//	go test -run '^$' -bench AppendIndexMoves -benchtime 2s -count 3 ./storage/
func BenchmarkAppendIndexMoves(b *testing.B) {
	for _, c := range []struct {
		name string
		step int64
	}{{"burst", 0}, {"every-message", activityLag}} {
		b.Run(c.name, func(b *testing.B) {
			db, err := Open(Options{Dir: b.TempDir(), Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var ids atomic.Int64
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := ids.Add(1)
				conv := chat.FriendConv(fmt.Sprintf("user%05d", id), fmt.Sprintf("peer%05d", id))
				ctx := context.Background()
				ts := time.Now().UnixMilli()
				for pb.Next() {
					ts += c.step
					rec := chat.Record{Conv: conv, ID: "0123456789abcdef", Speaker: "user",
						Content: chat.Content{Body: "a typical short chat message of about sixty bytes of text"}, TS: ts}
					if err := db.AppendRecord(ctx, &rec, chat.DefaultRetention7d); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
