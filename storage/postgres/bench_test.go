package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/storage/postgres/pgtest"
)

// BenchmarkAppendRecord measures AppendRecord from 64 concurrent senders,
// as storage's benchmark of the same name does for Badger: convs=own, each
// sender its own friend conversation; convs=shared, all one group (every
// append queues on the group's counter row).
//
//	go test -run '^$' -bench BenchmarkAppendRecord -benchtime 2s ./storage/postgres/
func BenchmarkAppendRecord(b *testing.B) {
	for _, shared := range []bool{false, true} {
		name := "convs=own"
		if shared {
			name = "convs=shared"
		}
		b.Run(name, func(b *testing.B) {
			db := openURL(b, pgtest.URL(b), Options{MaxConns: 64})
			// Open the pool's connections (login, statement preparation)
			// before the clock starts: 64 senders hold 64 connections.
			var warm sync.WaitGroup
			for i := range 64 {
				warm.Go(func() {
					for range 5 {
						rec := chat.Record{Conv: chat.GroupConv(fmt.Sprint("warm", i)), Speaker: "user", TS: 1}
						if err := db.AppendRecord(context.Background(), &rec, 0); err != nil {
							b.Error(err)
						}
					}
				})
			}
			warm.Wait()
			var ids atomic.Int64
			b.SetParallelism(32) // 64 senders on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := ids.Add(1)
				conv := chat.FriendConv(fmt.Sprintf("user%05d", id), fmt.Sprintf("peer%05d", id))
				if shared {
					conv = chat.GroupConv("5d41402abc4b2a76b9719d911017c592")
				}
				ctx := context.Background()
				for pb.Next() {
					rec := chat.Record{Conv: conv, ID: "0123456789abcdef", Speaker: "user",
						Content: chat.Content{Body: "a typical short chat message of about sixty bytes of text"},
						TS:      time.Now().UnixMilli()}
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

// BenchmarkHistory measures a history page (Records, 20 records) on a
// conversation of n records in a store holding as many more in 200 other
// conversations, like storage's BenchmarkHistory: at a random cutoff and
// at "now".
//
//	go test -run '^$' -bench BenchmarkHistory ./storage/postgres/
func BenchmarkHistory(b *testing.B) {
	const ts0, dt = int64(1_750_000_000_000), int64(10)
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("records=%dk", n/1000), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("1M-record store skipped in -short mode")
			}
			db := openURL(b, pgtest.URL(b), Options{RetentionInterval: -1})
			ctx := context.Background()
			conv := chat.GroupConv("7f3a9c0e5b2d4f6a8c1e3b5d7f9a0c2e")
			data := `{"id":"0123456789abcdef","speaker":"user","body":"a typical short chat message of about sixty bytes of text"}`
			args := []any{string(conv), ts0, dt, data, n}
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`INSERT INTO records (conv, seq, ts, data) SELECT $1, i, $2::bigint + i * $3::bigint, $4::json FROM generate_series(1, $5::int) i`, args},
				{`INSERT INTO records (conv, seq, ts, data) SELECT 'g:other' || (i % 200), i, $1::bigint + i * $2::bigint, $3::json FROM generate_series(1, $4::int) i`, args[1:]},
				{`INSERT INTO conversations (conv, seq, ts) VALUES ($1, $2::bigint, $3::bigint)`, []any{string(conv), n, ts0 + int64(n)*dt}},
				{`ANALYZE records`, nil},
			} {
				if _, err := db.pool.Exec(ctx, q.sql, q.args...); err != nil {
					b.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(uint64(n), 42))
			b.Run("cutoff=random", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					j := 21 + rng.IntN(n-21)
					before := ts0 + int64(j)*dt
					recs, err := db.Records(ctx, conv, before, 0, 20)
					if err != nil || len(recs) != 20 || recs[19].TS != before-dt {
						b.Fatalf("Records(before %d) = %d records, %v", before, len(recs), err)
					}
				}
			})
			b.Run("cutoff=now", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					recs, err := db.Records(ctx, conv, maxInt64, 0, 20)
					if err != nil || len(recs) != 20 {
						b.Fatalf("Records() = %d records, %v", len(recs), err)
					}
				}
			})
		})
	}
}

const maxInt64 = int64(^uint64(0) >> 1)
