package storage

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

// Ensure an edit and a recall keep the record's Badger expiry (the
// behaviour of UpdateRecord on every engine is in chat/storetest).
func TestUpdateRecord_KeepsExpiry(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	conv := chat.FriendConv("alice", "bob")
	now := time.Now().UnixMilli()
	first := chat.Record{Conv: conv, ID: "m1", Speaker: "alice", Content: chat.Content{Body: "hi bbo"}, TS: now}
	if err := db.AppendRecord(ctx, &first, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, recall := range []bool{false, true} {
		err := db.UpdateRecord(ctx, conv, first.Seq, func(r *chat.Record) (*chat.Edit, error) {
			prior := &chat.Edit{Content: r.Content, TS: now + 10}
			r.Content, r.Edited, r.Recalled = chat.Content{Body: "hi bob"}, now+10, recall
			return prior, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = db.bdb.View(func(txn *badger.Txn) error {
			_, key, exp, err := getRecord(txn, conv, first.Seq)
			if err != nil || exp != expiresAt(now, time.Hour) {
				t.Errorf("recall %v: expiry of %x = %d, %v; want %d", recall, key, exp, err, expiresAt(now, time.Hour))
			}
			return nil
		})
	}
}

// Ensure changed records round-trip and new records keep format 1.
func TestRecordValue_Changed(t *testing.T) {
	plain := recordValue{ID: "id", Speaker: "alice", Body: "b"}
	if b := encodeRecordValue(plain); b[0] != recordFormat {
		t.Errorf("a new record is format %d, want %d", b[0], recordFormat)
	}
	for _, v := range []recordValue{
		{ID: "id", Speaker: "alice", Recalled: true},
		{ID: "id", Speaker: "alice", Body: "new", Edited: 1_700_000_000_123},
		{ID: "id", Speaker: "alice", Recalled: true, Edited: 5},
	} {
		b := encodeRecordValue(v)
		var got recordValue
		if err := decodeRecordValue(b, &got); err != nil || got != v || b[0] != recordFormatChanged {
			t.Errorf("round trip of %+v = %+v, %v (format %d)", v, got, err, b[0])
		}
		for i := range len(b) - 1 {
			if err := decodeRecordValue(b[:i], new(recordValue)); err == nil {
				t.Errorf("decode of %d/%d bytes of %+v succeeded", i, len(b), v)
			}
		}
	}
}

// BenchmarkUpdateRecord measures finding a record by seq (the binary
// search over TS), and finding and rewriting it, in a conversation of
// 100,000 records spread over a week, next to another as large.
func BenchmarkUpdateRecord(b *testing.B) {
	db := newTestDB(b)
	ctx := context.Background()
	const n = 100_000
	conv, other := chat.GroupConv("g"), chat.GroupConv("h")
	start := time.Now().Add(-7 * 24 * time.Hour).UnixMilli()
	step := (7 * 24 * time.Hour).Milliseconds() / n
	for i := range n {
		mustAppend(b, db, conv, "a", start+int64(i)*step, 0)
		mustAppend(b, db, other, "a", start+int64(i)*step, 0)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	b.Run("op=find", func(b *testing.B) { // RecordEdits: the search, a Get, an empty scan
		for b.Loop() {
			if _, err := db.RecordEdits(ctx, conv, 1+rng.Uint64N(n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=update", func(b *testing.B) { // the search and a one-key commit
		for b.Loop() {
			if err := db.UpdateRecord(ctx, conv, 1+rng.Uint64N(n), func(*chat.Record) (*chat.Edit, error) { return nil, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
