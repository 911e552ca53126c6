package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
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
