package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/chat/storetest"
	"github.com/mqim/mqim/storage/postgres/pgtest"
)

// openURL opens the store at url, closed when tb ends.
func openURL(tb testing.TB, url string, opts Options) *DB {
	tb.Helper()
	opts.URL = url
	opts.Logger = zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
	db, err := Open(context.Background(), opts)
	if err != nil {
		tb.Fatalf("Open() error = %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// newTestDB opens a store on a fresh database.
func newTestDB(tb testing.TB) *DB { return openURL(tb, pgtest.URL(tb), Options{}) }

// The contract shared with every engine (chat/storetest).
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chat.Store { return newTestDB(t) })
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) chat.Store {
		url := pgtest.URL(t)
		return func(t *testing.T) chat.Store { return openURL(t, url, Options{}) }
	})
}

// Ensure several nodes opening one new database at once apply each
// migration once (the advisory lock) and all end at the latest version.
func TestOpen_ConcurrentMigrations(t *testing.T) {
	url := pgtest.URL(t)
	const nodes = 4
	dbs := make(chan *DB, nodes)
	for range nodes {
		go func() {
			db, err := Open(context.Background(), Options{URL: url})
			if err != nil {
				t.Error(err)
			}
			dbs <- db
		}()
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for range nodes {
		db := <-dbs
		if db == nil {
			continue
		}
		t.Cleanup(func() { _ = db.Close() })
		if v, err := db.SchemaVersion(t.Context()); err != nil || v != len(ms) {
			t.Errorf("SchemaVersion() = %d, %v; want %d", v, err, len(ms))
		}
		var n int
		if err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM mqim_schema`).Scan(&n); err != nil || n != len(ms) {
			t.Errorf("mqim_schema rows = %d, %v; want %d", n, err, len(ms))
		}
	}
}

// Ensure a database migrated by a newer mqim is refused, and a bad URL or
// an unreachable server is an error.
func TestOpen_Errors(t *testing.T) {
	url := pgtest.URL(t)
	db := openURL(t, url, Options{})
	if _, err := db.pool.Exec(t.Context(), `INSERT INTO mqim_schema (version, name) VALUES (999, 'future')`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), Options{URL: url}); err == nil {
		t.Error("Open(newer schema) error = nil")
	}
	for _, u := range []string{"", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", "::not a url"} {
		if _, err := Open(t.Context(), Options{URL: u}); err == nil {
			t.Errorf("Open(%q) error = nil", u)
		}
	}
}

// Ensure the retention loop deletes expired records in bounded batches,
// with their earlier versions, and keeps the others and the counter.
func TestRetention(t *testing.T) {
	db := openURL(t, pgtest.URL(t), Options{RetentionInterval: -1, RetentionBatch: 7})
	ctx := t.Context()
	now := time.Now().UnixMilli()
	old, keep := chat.GroupConv("old"), chat.GroupConv("keep")
	for i := range 25 {
		rec := chat.Record{Conv: old, Speaker: "a", TS: now - 2*time.Hour.Milliseconds() + int64(i)}
		if err := db.AppendRecord(ctx, &rec, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		rec := chat.Record{Conv: keep, Speaker: "a", TS: now}
		if err := db.AppendRecord(ctx, &rec, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// The earlier version of a kept record stays.
	if err := db.UpdateRecord(ctx, keep, 1, func(r *chat.Record) (*chat.Edit, error) {
		p := &chat.Edit{Content: r.Content, TS: now + 5}
		r.Content.Body, r.Edited = "new", now+5
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	var total int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM records`).Scan(&total); err != nil || total != 28 {
		t.Fatalf("records before retention = %d, %v; want 28 (expired rows are only hidden)", total, err)
	}
	n, err := db.DeleteExpired(ctx)
	if err != nil || n != 25 {
		t.Fatalf("DeleteExpired() = %d, %v; want 25", n, err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM records`).Scan(&total); err != nil || total != 3 {
		t.Errorf("records after retention = %d, %v; want 3", total, err)
	}
	if edits, err := db.RecordEdits(ctx, keep, 1); err != nil || len(edits) != 1 {
		t.Errorf("edits of a kept record = %v, %v", edits, err)
	}
	if seq, _, err := db.LatestSeq(ctx, old); err != nil || seq != 25 {
		t.Errorf("LatestSeq(old) = %d, %v; want 25: the counter outlives its records", seq, err)
	}

	// The loop itself: started by Open, it deletes on its own.
	url := pgtest.URL(t)
	looped := openURL(t, url, Options{RetentionInterval: 10 * time.Millisecond})
	rec := chat.Record{Conv: old, Speaker: "a", TS: now - 2*time.Hour.Milliseconds()}
	if err := looped.AppendRecord(ctx, &rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := looped.pool.QueryRow(ctx, `SELECT count(*) FROM records`).Scan(&total); err != nil {
			t.Fatal(err)
		}
		if total == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention loop left %d expired records", total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ensure an append PostgreSQL refuses (here a conversation name that is
// not UTF-8) fails alone: the appends committed in the same batch get
// their Seq, gap-free, and the refused one leaves no trace.
func TestAppendRecord_BadRecordFailsAlone(t *testing.T) {
	db := newTestDB(t)
	conv := chat.GroupConv("g")
	const n = 32
	var wg sync.WaitGroup
	seqs := make(chan uint64, n)
	for i := range n {
		wg.Go(func() {
			if i%4 == 0 {
				rec := chat.Record{Conv: "g:\xff", Speaker: "a", TS: 1}
				if err := db.AppendRecord(context.Background(), &rec, 0); err == nil || chat.ErrorCode(err) != chat.CodeDatabase {
					t.Errorf("AppendRecord(bad conv) error = %v, want a database error", err)
				}
				return
			}
			rec := chat.Record{Conv: conv, Speaker: "a", TS: 1}
			if err := db.AppendRecord(context.Background(), &rec, 0); err != nil {
				t.Error(err)
				return
			}
			seqs <- rec.Seq
		})
	}
	wg.Wait()
	close(seqs)
	got := gapFree(t, seqs)
	if len(got) != n-n/4 {
		t.Fatalf("%d appends stored, want %d", len(got), n-n/4)
	}
	var rows int
	if err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM records`).Scan(&rows); err != nil || rows != n-n/4 {
		t.Errorf("records = %d, %v; want %d", rows, err, n-n/4)
	}
}

// Ensure several nodes (stores on one database) appending to one
// conversation at once get the Seq numbers 1..N between them, and each
// sees the others' records and counter.
func TestAppendRecord_SeveralNodes(t *testing.T) {
	url := pgtest.URL(t)
	nodes := []*DB{openURL(t, url, Options{}), openURL(t, url, Options{}), openURL(t, url, Options{})}
	conv := chat.GroupConv("shared")
	const each = 40
	var wg sync.WaitGroup
	seqs := make(chan uint64, len(nodes)*each)
	for i, db := range nodes {
		for j := range each {
			wg.Go(func() {
				rec := chat.Record{Conv: conv, Speaker: fmt.Sprint("n", i), TS: int64(1000 + j)}
				if err := db.AppendRecord(context.Background(), &rec, 0); err != nil {
					t.Error(err)
					return
				}
				seqs <- rec.Seq
			})
		}
	}
	wg.Wait()
	close(seqs)
	if got := gapFree(t, seqs); len(got) != len(nodes)*each {
		t.Fatalf("%d appends stored, want %d", len(got), len(nodes)*each)
	}
	for i, db := range nodes {
		recs, err := db.Records(t.Context(), conv, maxInt64, 0, 1000)
		if err != nil || len(recs) != len(nodes)*each {
			t.Fatalf("node %d: Records() = %d records, %v", i, len(recs), err)
		}
		for k := 1; k < len(recs); k++ {
			if recs[k].Seq != recs[k-1].Seq+1 || recs[k].TS <= recs[k-1].TS {
				t.Fatalf("node %d: records %d,%d out of order: %+v %+v", i, k-1, k, recs[k-1], recs[k])
			}
		}
		if seq, _, err := db.LatestSeq(t.Context(), conv); err != nil || seq != uint64(len(nodes)*each) {
			t.Errorf("node %d: LatestSeq() = %d, %v", i, seq, err)
		}
	}
}

// Ensure a login storm succeeds: many new users logging in at once (each
// a read that finds nothing, then an insert, in a SERIALIZABLE
// transaction) conflict on the index pages their predicate locks cover;
// the retry backs off until every one commits, as a reconnect storm after
// a node dies needs.
func TestUpdate_LoginStorm(t *testing.T) {
	db := newTestDB(t)
	svc := chat.NewService(db, chat.Options{AppID: "app"})
	const n = 256
	errs := make(chan error, n)
	var start sync.WaitGroup
	start.Add(1)
	for i := range n {
		go func() {
			start.Wait()
			errs <- svc.Login(context.Background(), chat.LoginRequest{Identity: chat.User(fmt.Sprintf("storm-%02d", i)), Install: "dev"})
		}()
	}
	start.Done()
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("login: %v", err)
		}
	}
	err := db.View(context.Background(), func(tx chat.Tx) error {
		count := 0
		err := tx.Users(func(*chat.UserRecord) error { count++; return nil })
		if count != n {
			t.Errorf("%d users stored, want %d", count, n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// gapFree drains seqs and fails t unless, sorted, they are 1, 2, 3, …
// without a gap or a repeat; it returns them sorted.
func gapFree(t *testing.T, seqs <-chan uint64) []uint64 {
	t.Helper()
	var got []uint64
	for s := range seqs {
		got = append(got, s)
	}
	slices.Sort(got)
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("seqs = %v, want 1..%d", got, len(got))
		}
	}
	return got
}
