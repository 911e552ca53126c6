package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
)

// History benchmark stores are expensive to build (the 1M one holds 2M
// records), so each size is built once per test binary run and shared by
// every b.N round and sub-benchmark; TestMain removes them.
var benchStores = struct {
	sync.Mutex
	m map[int]*historyStore
}{m: map[int]*historyStore{}}

// historyStore is a store whose target conversation holds n records at
// base, base+step, ... and which holds n more records spread over
// otherConvs other conversations, written interleaved in time order like a
// live server would.
type historyStore struct {
	db   *DB
	dir  string
	conv chat.Conv
	n    int
	base int64
	step int64
	load time.Duration
}

const (
	otherConvs = 200
	historyTS0 = int64(1_750_000_000_000) // ms
	historyDT  = int64(10)                // ms between two records
)

func TestMain(m *testing.M) {
	code := m.Run()
	benchStores.Lock()
	for _, s := range benchStores.m {
		// Teardown after the benchmarks: nothing left to measure.
		_ = s.db.Close()
		_ = os.RemoveAll(s.dir)
	}
	benchStores.Unlock()
	os.Exit(code)
}

// historyStoreOf returns the shared store of size n, building it on first use.
func historyStoreOf(b *testing.B, n int) *historyStore {
	b.Helper()
	benchStores.Lock()
	defer benchStores.Unlock()
	if s := benchStores.m[n]; s != nil {
		return s
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("mqim-history-%d-", n))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	db, err := Open(Options{Dir: dir, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	s := &historyStore{dir: dir, conv: chat.GroupConv("7f3a9c0e5b2d4f6a8c1e3b5d7f9a0c2e"), n: n, base: historyTS0, step: historyDT}
	if err := bulkLoadHistory(db, s.conv, n, otherConvs); err != nil {
		b.Fatal(err)
	}
	// Closing flushes the memtables, so queries run against on-disk tables
	// as they would on a server that has been up for a while.
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if s.db, err = Open(Options{Dir: dir, Logger: zerolog.Nop()}); err != nil {
		b.Fatal(err)
	}
	// A long-running server's LSM tree has settled into its lower levels;
	// a freshly bulk-loaded one has not, and its background compactions
	// would compete with the queries being measured.
	if err := s.db.bdb.Flatten(2); err != nil {
		b.Fatal(err)
	}
	s.load = time.Since(start)
	b.Logf("built history store: %d + %d records over %d other conversations in %v, %d MiB of tables",
		n, n, otherConvs, s.load.Round(time.Millisecond), tableBytes(dir)>>20)
	benchStores.m[n] = s
	return s
}

// tableBytes returns the size of the SST files in dir.
func tableBytes(dir string) int64 {
	var n int64
	files, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// bulkLoadHistory writes n records of conv and n records spread over
// others other conversations (named to sort on both sides of conv) through
// one WriteBatch, plus the conversation cursors.
func bulkLoadHistory(db *DB, conv chat.Conv, n, others int) error {
	wb := db.bdb.NewWriteBatch()
	defer wb.Cancel()
	convs := make([]chat.Conv, others)
	seqs := make([]uint64, others)
	for i := range convs {
		if i%2 == 0 {
			convs[i] = chat.GroupConv(fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15))
		} else {
			convs[i] = chat.FriendConv(fmt.Sprintf("user%04d", i), fmt.Sprintf("user%04d", i+7))
		}
	}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	p := recPrefix(conv)
	var ts int64
	for j := range n {
		ts = historyTS0 + int64(j)*historyDT
		if err := wb.Set(recKey(p, ts, uint64(j+1)), benchRecordValue(rng)); err != nil {
			return err
		}
		o := j % others
		seqs[o]++
		if err := wb.Set(recKey(recPrefix(convs[o]), ts, seqs[o]), benchRecordValue(rng)); err != nil {
			return err
		}
	}
	if err := wb.Set(cursorKey(conv), encodeCursor(uint64(n), ts)); err != nil {
		return err
	}
	for o, c := range convs {
		if err := wb.Set(cursorKey(c), encodeCursor(seqs[o], ts)); err != nil {
			return err
		}
	}
	return wb.Flush()
}

var benchWords = strings.Fields(`the a to you and is it in of for on that are be
	this with have not at we do what can so will how now see ok yes no hi thanks
	meeting tomorrow tonight lunch coffee later sure great sounds good call me
	when where photo sent here there home work late sorry love haha lol`)

// benchRecordValue returns an encoded record with a random id and a body of
// 3 to 20 random words, so that blocks compress like real chat text rather
// than like one repeated string.
func benchRecordValue(rng *rand.Rand) []byte {
	var body strings.Builder
	for i := range 3 + rng.IntN(18) {
		if i > 0 {
			body.WriteByte(' ')
		}
		body.WriteString(benchWords[rng.IntN(len(benchWords))])
	}
	return encodeRecordValue(recordValue{
		ID:      fmt.Sprintf("%016x", rng.Uint64()),
		Speaker: fmt.Sprintf("user%04d", rng.IntN(10000)),
		Body:    body.String(),
	})
}

// BenchmarkHistory measures "the latest 20 records before ts" on a
// conversation of 10,000 and of 1,000,000 records. The cost must not grow
// with the size of the conversation or of the store.
//
//	go test -run '^$' -bench BenchmarkHistory -benchtime 20000x ./storage/
func BenchmarkHistory(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	for _, n := range sizes {
		name := fmt.Sprintf("records=%dk", n/1000)
		b.Run(name+"/cutoff=random", func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("1M-record store skipped in -short mode")
			}
			s := historyStoreOf(b, n)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(uint64(n), 42))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				j := 20 + rng.IntN(n-20)
				before := s.base + int64(j)*s.step
				recs, err := s.db.Records(ctx, s.conv, before, before-chat.DefaultRetention7d.Milliseconds(), 20)
				if err != nil || len(recs) != 20 || recs[19].TS != before-s.step {
					b.Fatalf("Records(before %d) = %d records, %v", before, len(recs), err)
				}
			}
		})
		b.Run(name+"/cutoff=now", func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("1M-record store skipped in -short mode")
			}
			s := historyStoreOf(b, n)
			ctx := context.Background()
			before := s.base + int64(n)*s.step + 1
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				recs, err := s.db.Records(ctx, s.conv, before, 0, 20)
				if err != nil || len(recs) != 20 {
					b.Fatalf("Records() = %d records, %v", len(recs), err)
				}
			}
		})
	}
}

// BenchmarkHistoryRatio runs the random-cutoff query on the 10k and the 1M
// store alternately, in rounds of 200 queries each, and reports the median
// ns per query of each size and their ratio. Alternating rounds make the
// ratio robust against other load on the machine, which moves both sizes
// alike; the requirement is ratio <= 1.5.
//
//	go test -run '^$' -bench BenchmarkHistoryRatio -benchtime 100x ./storage/
func BenchmarkHistoryRatio(b *testing.B) {
	if testing.Short() {
		b.Skip("1M-record store skipped in -short mode")
	}
	small, large := historyStoreOf(b, 10_000), historyStoreOf(b, 1_000_000)
	ctx := context.Background()
	const round = 200
	query := func(s *historyStore, rng *rand.Rand) time.Duration {
		start := time.Now()
		for range round {
			before := s.base + int64(20+rng.IntN(s.n-20))*s.step
			recs, err := s.db.Records(ctx, s.conv, before, 0, 20)
			if err != nil || len(recs) != 20 {
				b.Fatalf("Records() = %d records, %v", len(recs), err)
			}
		}
		return time.Since(start) / round
	}
	rngS, rngL := rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(2, 2))
	var ds, dl []time.Duration
	b.ResetTimer()
	for b.Loop() {
		ds = append(ds, query(small, rngS))
		dl = append(dl, query(large, rngL))
	}
	slices.Sort(ds)
	slices.Sort(dl)
	ms, ml := ds[len(ds)/2], dl[len(dl)/2]
	b.ReportMetric(float64(ms.Nanoseconds()), "ns/query-10k")
	b.ReportMetric(float64(ml.Nanoseconds()), "ns/query-1M")
	b.ReportMetric(float64(ml)/float64(ms), "ratio")
}

// BenchmarkAppendRecord measures AppendRecord from 64 concurrent senders (as
// many MQTT clients waiting for their PUBACK) with SyncWrites off and on.
// With convs=own each sender writes its own friend conversation; with
// convs=shared all write one group conversation. mode=txn-per-append is the
// design without the committer goroutine, for comparison: every append
// commits its own transaction while holding its conversation's mutex
// (Badger's write loop still groups concurrent commits, but each one pays
// for a transaction, and with SyncWrites for its own share of fsyncs).
//
//	go test -run '^$' -bench BenchmarkAppendRecord -benchtime 2s ./storage/
func BenchmarkAppendRecord(b *testing.B) {
	for _, syncWrites := range []bool{false, true} {
		for _, c := range []struct{ mode, convs string }{
			{"batched", "own"}, {"txn-per-append", "own"}, {"batched", "shared"},
		} {
			b.Run(fmt.Sprintf("sync=%v/mode=%s/convs=%s", syncWrites, c.mode, c.convs), func(b *testing.B) {
				benchAppend(b, syncWrites, c.mode == "batched", c.convs == "shared")
			})
		}
	}
}

func benchAppend(b *testing.B, syncWrites, batched, shared bool) {
	db, err := Open(Options{Dir: b.TempDir(), SyncWrites: syncWrites, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	appendFn := db.AppendRecord
	if !batched {
		appendFn = db.appendTxnPerRecord
	}
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
			if err := appendFn(ctx, &rec, chat.DefaultRetention7d); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer() // the deferred Close is not part of the measurement
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// appendTxnPerRecord is AppendRecord without the committer: the append
// commits its own transaction while holding the conversation's mutex (to
// keep Seq order equal to commit order). Benchmark baseline only.
func (db *DB) appendTxnPerRecord(ctx context.Context, rec *chat.Record, ttl time.Duration) error {
	val := encodeRecordValue(recordValue{ID: rec.ID, Speaker: rec.Speaker, Media: rec.Content.Media,
		Body: rec.Content.Body, Remark: rec.Remark})
	st := db.acquire(rec.Conv)
	defer db.release(st)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := db.load(st, rec.Conv); err != nil {
		return err
	}
	seq, ts := st.seq+1, max(rec.TS, st.ts)
	r := &appendReq{key: recKey(recPrefix(rec.Conv), ts, seq), val: val, expiresAt: expiresAt(ts, ttl),
		cursor: cursorKey(rec.Conv), cursorVal: encodeCursor(seq, ts)}
	if err := db.bdb.Update(func(txn *badger.Txn) error { return addAppend(txn, r) }); err != nil {
		return err
	}
	st.seq, st.ts = seq, ts
	rec.Seq, rec.TS = seq, ts
	return nil
}
