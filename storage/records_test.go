package storage

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

func mustAppend(tb testing.TB, db *DB, conv chat.Conv, speaker string, ts int64, ttl time.Duration) chat.Record {
	tb.Helper()
	rec := chat.Record{Conv: conv, Speaker: speaker, Content: chat.Content{Body: fmt.Sprint("at ", ts)}, TS: ts}
	if err := db.AppendRecord(context.Background(), &rec, ttl); err != nil {
		tb.Fatalf("AppendRecord(%s) error = %v", conv, err)
	}
	return rec
}

func mustRecords(tb testing.TB, db *DB, conv chat.Conv, before, notBefore int64, limit int) []chat.Record {
	tb.Helper()
	recs, err := db.Records(context.Background(), conv, before, notBefore, limit)
	if err != nil {
		tb.Fatalf("Records(%s) error = %v", conv, err)
	}
	if recs == nil {
		tb.Fatalf("Records(%s) = nil, want a non-nil slice", conv)
	}
	return recs
}

func seqs(recs []chat.Record) []uint64 {
	out := []uint64{}
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func tss(recs []chat.Record) []int64 {
	out := []int64{}
	for _, r := range recs {
		out = append(out, r.TS)
	}
	return out
}

func equal[T comparable](a, b []T) bool { return slices.Equal(a, b) }

func TestAppendRecord_SeqAndTS(t *testing.T) {
	db := newTestDB(t)
	conv := chat.FriendConv("alice", "bob")

	in := chat.Record{Conv: conv, ID: "m1", Speaker: "alice",
		Content: chat.Content{Media: chat.MediaImage, Body: `{"url":"x"}`}, Remark: "r", TS: 100}
	if err := db.AppendRecord(t.Context(), &in, 0); err != nil {
		t.Fatal(err)
	}
	if in.Seq != 1 || in.TS != 100 {
		t.Errorf("first append = seq %d ts %d, want 1, 100", in.Seq, in.TS)
	}
	older := mustAppend(t, db, conv, "bob", 90, 0)
	if older.Seq != 2 || older.TS != 101 {
		t.Errorf("older append = seq %d ts %d, want 2, 101 (TS raised past the latest)", older.Seq, older.TS)
	}
	newer := mustAppend(t, db, conv, "bob", 150, 0)
	if newer.Seq != 3 || newer.TS != 150 {
		t.Errorf("newer append = seq %d ts %d, want 3, 150", newer.Seq, newer.TS)
	}
	// Another conversation has its own sequence.
	if other := mustAppend(t, db, chat.GroupConv("g"), "bob", 1, 0); other.Seq != 1 {
		t.Errorf("other conv seq = %d, want 1", other.Seq)
	}

	recs := mustRecords(t, db, conv, 1000, 0, 10)
	if len(recs) != 3 {
		t.Fatalf("Records() = %d records, want 3", len(recs))
	}
	if !reflect.DeepEqual(recs[0], in) {
		t.Errorf("Records()[0] = %+v, want %+v", recs[0], in)
	}
	if !equal(seqs(recs), []uint64{1, 2, 3}) || !equal(tss(recs), []int64{100, 101, 150}) {
		t.Errorf("Records() seqs %v ts %v", seqs(recs), tss(recs))
	}

	err := db.AppendRecord(t.Context(), &chat.Record{Conv: "g:a\x00b"}, 0)
	if chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("AppendRecord(NUL conv) code = %d, want %d", chat.ErrorCode(err), chat.CodeInvalid)
	}
}

// Ensure concurrent appends to one conversation get unique, gap-free Seq
// numbers and that (TS, Seq) order equals Seq order. Run with -race.
func TestAppendRecord_Concurrent(t *testing.T) {
	db := newTestDB(t)
	convs := []chat.Conv{chat.GroupConv("hot"), chat.GroupConv("hot2"), chat.FriendConv("a", "b")}
	const writers, each = 8, 150
	var wg sync.WaitGroup
	got := make([][]uint64, len(convs))
	var mu sync.Mutex
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				c := i % len(convs)
				// Clocks disagree: some writers are behind.
				rec := chat.Record{Conv: convs[c], Speaker: fmt.Sprint("w", w), TS: int64(1000 + i - w*5)}
				if err := db.AppendRecord(context.Background(), &rec, 0); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[c] = append(got[c], rec.Seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for c, conv := range convs {
		n := len(got[c])
		slices.Sort(got[c])
		for i, s := range got[c] {
			if s != uint64(i+1) {
				t.Fatalf("%s: sorted seqs[%d] = %d, want %d (duplicate or gap)", conv, i, s, i+1)
			}
		}
		recs := mustRecords(t, db, conv, 1<<40, 0, n+10)
		if len(recs) != n {
			t.Fatalf("%s: Records() = %d, want %d", conv, len(recs), n)
		}
		for i := 1; i < n; i++ {
			if recs[i].Seq != recs[i-1].Seq+1 || recs[i].TS < recs[i-1].TS {
				t.Fatalf("%s: records %d,%d out of order: %+v %+v", conv, i-1, i, recs[i-1], recs[i])
			}
		}
	}
}

func TestRecords_Paging(t *testing.T) {
	db := newTestDB(t)
	conv := chat.GroupConv("g1")
	for i := range 50 {
		mustAppend(t, db, conv, "alice", int64(1000+10*i), 0) // ts 1000..1490
	}

	// before is exclusive; the latest limit records, ascending.
	recs := mustRecords(t, db, conv, 1200, 0, 5)
	if want := []int64{1150, 1160, 1170, 1180, 1190}; !equal(tss(recs), want) {
		t.Errorf("Records(before 1200, limit 5) ts = %v, want %v", tss(recs), want)
	}
	recs = mustRecords(t, db, conv, 1201, 0, 2)
	if want := []int64{1190, 1200}; !equal(tss(recs), want) {
		t.Errorf("Records(before 1201) ts = %v, want %v", tss(recs), want)
	}
	// notBefore is inclusive.
	recs = mustRecords(t, db, conv, 1200, 1170, 10)
	if want := []int64{1170, 1180, 1190}; !equal(tss(recs), want) {
		t.Errorf("Records(notBefore 1170) ts = %v, want %v", tss(recs), want)
	}
	// Nothing before the first record, everything before a far cutoff.
	if recs := mustRecords(t, db, conv, 1000, 0, 10); len(recs) != 0 {
		t.Errorf("Records(before first) = %v, want none", tss(recs))
	}
	if recs := mustRecords(t, db, conv, 1<<62, 0, 100); len(recs) != 50 || recs[0].Seq != 1 {
		t.Errorf("Records(all) = %d records, first seq %d", len(recs), recs[0].Seq)
	}
	// The unbounded cutoff the service uses for "latest record".
	if recs := mustRecords(t, db, conv, math.MaxInt64, math.MinInt64, 1); len(recs) != 1 || recs[0].Seq != 50 {
		t.Errorf("Records(MaxInt64, limit 1) = %v, want seq 50", seqs(recs))
	}
	// Degenerate arguments return an empty page.
	for _, c := range []struct{ before, notBefore int64 }{{1200, 1200}, {1100, 1200}} {
		if recs := mustRecords(t, db, conv, c.before, c.notBefore, 10); len(recs) != 0 {
			t.Errorf("Records(%d, %d) = %v, want none", c.before, c.notBefore, tss(recs))
		}
	}
	if recs := mustRecords(t, db, conv, 2000, 0, 0); len(recs) != 0 {
		t.Errorf("Records(limit 0) = %v, want none", tss(recs))
	}

	// Paging backwards with the oldest TS held visits every record once.
	var all []uint64
	for before := int64(1 << 40); ; {
		page := mustRecords(t, db, conv, before, 0, 7)
		if len(page) == 0 {
			break
		}
		all = append(seqs(page), all...)
		before = page[0].TS
	}
	if len(all) != 50 || all[0] != 1 || all[49] != 50 || !slices.IsSorted(all) {
		t.Errorf("paged seqs = %v", all)
	}
}

// Ensure a conversation never sees the records of another one, in
// particular one whose key starts with its own.
func TestRecords_Isolation(t *testing.T) {
	db := newTestDB(t)
	convs := []chat.Conv{"g:ab", "g:abc", "g:a", "f:a|b", "f:a|bc", "p:x|a", "p:x|ab"}
	for i, c := range convs {
		for j := range i + 1 {
			mustAppend(t, db, c, string(c), int64(100+j), 0)
		}
	}
	for i, c := range convs {
		recs := mustRecords(t, db, c, 1000, 0, 100)
		if len(recs) != i+1 {
			t.Errorf("Records(%s) = %d records, want %d", c, len(recs), i+1)
		}
		for _, r := range recs {
			if r.Speaker != string(c) || r.Conv != c {
				t.Errorf("Records(%s) returned a record of %s", c, r.Speaker)
			}
		}
	}
	if recs := mustRecords(t, db, "g:", 1000, 0, 100); len(recs) != 0 {
		t.Errorf("Records(g:) = %d records, want none", len(recs))
	}
}

// Ensure expired records are never returned: TTL counts from rec.TS.
func TestRecords_TTL(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	now := time.Now().UnixMilli()

	// Written two hours late with a one-hour TTL: already expired.
	old := chat.GroupConv("old")
	mustAppend(t, db, old, "a", now-2*time.Hour.Milliseconds(), time.Hour)
	if recs := mustRecords(t, db, old, now+1, 0, 10); len(recs) != 0 {
		t.Errorf("expired record returned: %+v", recs)
	}

	conv := chat.GroupConv("short")
	mustAppend(t, db, conv, "a", now, time.Second)
	mustAppend(t, db, conv, "a", now, 0) // kept for ever; stamped now+1
	if recs := mustRecords(t, db, conv, now+2, 0, 10); len(recs) != 2 {
		t.Fatalf("Records() before expiry = %d records, want 2", len(recs))
	}
	testwait.Until(t, "the record with a 1s TTL to expire", 5*time.Second, func() bool {
		recs, err := db.Records(ctx, conv, now+2, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs) == 1 && recs[0].Seq == 2
	})
	// Expiry does not reset the sequence.
	if rec := mustAppend(t, db, conv, "a", now, 0); rec.Seq != 3 {
		t.Errorf("seq after expiry = %d, want 3", rec.Seq)
	}
}

func TestDeleteRecords(t *testing.T) {
	db := newTestDB(t)
	conv, other := chat.GroupConv("g1"), chat.GroupConv("g10")
	for i := range 20 {
		mustAppend(t, db, conv, "a", int64(100+i), 0)
		mustAppend(t, db, other, "a", int64(100+i), 0)
	}
	if err := db.DeleteRecords(t.Context(), conv); err != nil {
		t.Fatalf("DeleteRecords() error = %v", err)
	}
	if recs := mustRecords(t, db, conv, 1000, 0, 100); len(recs) != 0 {
		t.Errorf("Records() after delete = %d records, want none", len(recs))
	}
	if recs := mustRecords(t, db, other, 1000, 0, 100); len(recs) != 20 {
		t.Errorf("other conv after delete = %d records, want 20", len(recs))
	}
	// The counter continues (a syncing client never sees a seq reused), and
	// TS still only moves forward.
	if rec := mustAppend(t, db, conv, "a", 5, 0); rec.Seq != 21 || rec.TS != 120 {
		t.Errorf("append after delete = seq %d ts %d, want 21, 120", rec.Seq, rec.TS)
	}
	// Deleting a missing conversation is no error.
	if err := db.DeleteRecords(t.Context(), "g:none"); err != nil {
		t.Errorf("DeleteRecords(missing) error = %v", err)
	}
}

// Ensure DeleteRecords racing with appends leaves a consistent conversation:
// whatever survives has strictly increasing, unique sequence numbers.
func TestDeleteRecords_Concurrent(t *testing.T) {
	db := newTestDB(t)
	conv := chat.GroupConv("g")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				rec := chat.Record{Conv: conv, Speaker: fmt.Sprint(w), TS: int64(i)}
				if err := db.AppendRecord(context.Background(), &rec, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := db.DeleteRecords(context.Background(), conv); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	recs := mustRecords(t, db, conv, 1<<40, 0, 1000)
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("record %d has seq %d after %d; seqs %v", i, recs[i].Seq, recs[i-1].Seq, seqs(recs))
		}
	}
}

// Ensure a conversation whose cursor was evicted from memory, or lost,
// continues its sequence.
func TestAppendRecord_CursorReload(t *testing.T) {
	db := newTestDB(t)
	conv := chat.GroupConv("g")
	for i := range 3 {
		mustAppend(t, db, conv, "a", int64(10+i), 0)
	}

	// Fill the state map with idle conversations: the next new one evicts.
	db.convMu.Lock()
	for i := range maxConvStates {
		db.convs[chat.Conv(fmt.Sprint("x:", i))] = &convState{}
	}
	db.convMu.Unlock()
	mustAppend(t, db, chat.GroupConv("new"), "a", 1, 0)
	db.convMu.Lock()
	n := len(db.convs)
	delete(db.convs, conv)
	db.convMu.Unlock()
	if n > maxConvStates*3/4+1 {
		t.Errorf("states after eviction = %d, want <= %d", n, maxConvStates*3/4+1)
	}
	if rec := mustAppend(t, db, conv, "a", 0, 0); rec.Seq != 4 || rec.TS != 13 {
		t.Errorf("append after eviction = seq %d ts %d, want 4, 13", rec.Seq, rec.TS)
	}

	// Without a cursor key the last record key is used.
	if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Delete(cursorKey(conv)) }); err != nil {
		t.Fatal(err)
	}
	db.convMu.Lock()
	delete(db.convs, conv)
	db.convMu.Unlock()
	if rec := mustAppend(t, db, conv, "a", 0, 0); rec.Seq != 5 || rec.TS != 14 {
		t.Errorf("append without cursor = seq %d ts %d, want 5, 14", rec.Seq, rec.TS)
	}
}

func TestKeys(t *testing.T) {
	for _, ts := range []int64{-1 << 62, -1, 0, 1, 1 << 40} {
		k := recKey(recPrefix("g:x"), ts, 7)
		gotTS, gotSeq, ok := parseRecKey(k)
		if !ok || gotTS != ts || gotSeq != 7 {
			t.Errorf("parseRecKey(recKey(%d, 7)) = %d, %d, %v", ts, gotTS, gotSeq, ok)
		}
	}
	// Byte order equals (TS, Seq) order, negatives included.
	var keys [][]byte
	for _, ts := range []int64{-5, -1, 0, 3} {
		for _, seq := range []uint64{1, 2} {
			keys = append(keys, recKey(recPrefix("g:x"), ts, seq))
		}
	}
	if !slices.IsSortedFunc(keys, func(a, b []byte) int { return slices.Compare(a, b) }) {
		t.Error("record keys are not in (TS, Seq) order")
	}
	if got := lastPart(key(tagUserGroup, "u", "g1")); got != "g1" {
		t.Errorf("lastPart = %q, want g1", got)
	}
	if seq, ts, ok := decodeCursor(encodeCursor(9, 1234)); !ok || seq != 9 || ts != 1234 {
		t.Errorf("cursor round trip = %d, %d, %v", seq, ts, ok)
	}
	if got := expiresAt(1000, 0); got != 0 {
		t.Errorf("expiresAt(no ttl) = %d, want 0", got)
	}
	if got := expiresAt(1500, time.Second); got != 3 {
		t.Errorf("expiresAt(1.5s + 1s) = %d, want 3 (rounded up)", got)
	}
	if got := expiresAt(-5000, time.Second); got != 1 {
		t.Errorf("expiresAt(long ago) = %d, want 1", got)
	}
}

func TestRecordValue(t *testing.T) {
	for _, v := range []recordValue{
		{},
		{ID: "id", Speaker: "alice", Media: chat.MediaVideo, Body: "héllo\x00 wörld", Remark: "r"},
		{Media: -7, Body: string(make([]byte, 70_000))},
	} {
		var got recordValue
		if err := decodeRecordValue(encodeRecordValue(v), &got); err != nil || got != v {
			t.Errorf("round trip of %+.40v = %+.40v, %v", v, got, err)
		}
	}
	// Truncated or foreign values are errors, never panics.
	full := encodeRecordValue(recordValue{ID: "id", Speaker: "alice", Body: "body", Remark: "r"})
	for i := range len(full) - 1 {
		if err := decodeRecordValue(full[:i], new(recordValue)); err == nil {
			t.Errorf("decode of %d/%d bytes succeeded", i, len(full))
		}
	}
	for _, b := range [][]byte{nil, []byte(`{"s":"x"}`), {recordFormat, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if err := decodeRecordValue(b, new(recordValue)); err == nil {
			t.Errorf("decode of %q succeeded", b)
		}
	}
}
