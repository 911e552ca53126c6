package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

// Ensure a recall keeps id, seq, speaker and ts, drops content, remark and
// earlier versions, and keeps the record's expiry; an edit keeps the
// earlier version, listed oldest first.
func TestUpdateRecord_RecallAndEdit(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	conv := chat.FriendConv("alice", "bob")
	now := time.Now().UnixMilli()
	first := chat.Record{Conv: conv, ID: "m1", Speaker: "alice", Content: chat.Content{Body: "hi bbo"}, Remark: "r", TS: now}
	if err := db.AppendRecord(ctx, &first, time.Hour); err != nil {
		t.Fatal(err)
	}
	second := mustAppend(t, db, conv, "bob", now, time.Hour)

	edit := func(seq uint64, body string, at int64) {
		t.Helper()
		err := db.UpdateRecord(ctx, conv, seq, func(r *chat.Record) (*chat.Edit, error) {
			prior := &chat.Edit{Content: r.Content, TS: at}
			r.Content, r.Edited = chat.Content{Body: body}, at
			return prior, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	edit(first.Seq, "hi bob", now+10)
	edit(first.Seq, "hi bob!", now+20)
	edits, err := db.RecordEdits(ctx, conv, first.Seq)
	want := []chat.Edit{{Content: chat.Content{Body: "hi bbo"}, TS: now + 10}, {Content: chat.Content{Body: "hi bob"}, TS: now + 20}}
	if err != nil || fmt.Sprint(edits) != fmt.Sprint(want) {
		t.Errorf("edits = %+v, %v; want %+v", edits, err, want)
	}
	recs := mustRecords(t, db, conv, now+2, 0, 10)
	if r := recs[0]; r.Content.Body != "hi bob!" || r.Edited != now+20 || r.Remark != "r" || r.ID != "m1" || r.Recalled {
		t.Errorf("edited record = %+v", r)
	}
	if edits, err := db.RecordEdits(ctx, conv, second.Seq); err != nil || len(edits) != 0 || edits == nil {
		t.Errorf("edits of an unedited record = %#v, %v; want []", edits, err)
	}

	err = db.UpdateRecord(ctx, conv, first.Seq, func(r *chat.Record) (*chat.Edit, error) {
		r.Recalled = true
		return &chat.Edit{Content: r.Content, TS: now + 30}, nil // ignored: recalled
	})
	if err != nil {
		t.Fatal(err)
	}
	recs = mustRecords(t, db, conv, now+2, 0, 10)
	want0 := chat.Record{Conv: conv, ID: "m1", Seq: first.Seq, Speaker: "alice", TS: now, Recalled: true, Edited: now + 20}
	if fmt.Sprint(recs[0]) != fmt.Sprint(want0) || recs[1].Content.Body != second.Content.Body {
		t.Errorf("after recall = %+v, want %+v", recs, want0)
	}
	if edits, err := db.RecordEdits(ctx, conv, first.Seq); err != nil || len(edits) != 0 {
		t.Errorf("edits of a recalled record = %+v, %v; want none", edits, err)
	}
	// The expiry is the record's own.
	_ = db.bdb.View(func(txn *badger.Txn) error {
		_, key, exp, err := getRecord(txn, conv, first.Seq)
		if err != nil || exp != expiresAt(now, time.Hour) {
			t.Errorf("expiry of %x = %d, %v; want %d", key, exp, err, expiresAt(now, time.Hour))
		}
		return nil
	})

	// fn's error is returned and nothing is written.
	boom := chat.Errorf(chat.CodeUnauthorized, "no")
	err = db.UpdateRecord(ctx, conv, second.Seq, func(r *chat.Record) (*chat.Edit, error) {
		r.Content.Body = "changed"
		return nil, boom
	})
	if !errors.Is(err, boom) || mustRecords(t, db, conv, now+2, 0, 10)[1].Content.Body != second.Content.Body {
		t.Errorf("refused update: %v, record %+v", err, mustRecords(t, db, conv, now+2, 0, 10)[1])
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
