package storage

import (
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure RecordsAfter returns Seq > after, oldest first, at most limit,
// from any point (inside and across the 64-record index blocks), within
// notBefore, and after a wipe of the conversation.
func TestRecordsAfter(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	conv := chat.GroupConv("g")
	const n = 300
	for range n {
		mustAppend(t, db, conv, "a", 1000, 0) // same ms: TS 1000, 1001, ...
	}
	for _, after := range []uint64{0, 1, 62, 63, 64, 65, 127, 128, 200, 299, 300, 5000} {
		recs, err := db.RecordsAfter(ctx, conv, after, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := min(10, max(0, n-int(after)))
		if len(recs) != want {
			t.Fatalf("after %d: %d records, want %d", after, len(recs), want)
		}
		for i, r := range recs {
			if r.Seq != after+uint64(i)+1 || r.TS != 1000+int64(r.Seq)-1 {
				t.Fatalf("after %d: record %d = seq %d ts %d", after, i, r.Seq, r.TS)
			}
		}
	}
	// notBefore hides the older records: the first one returned is the
	// first within retention.
	recs, err := db.RecordsAfter(ctx, conv, 10, 1100, 5)
	if err != nil || len(recs) != 5 || recs[0].Seq != 101 {
		t.Fatalf("after 10, notBefore 1100 = %v, %v; want 5 from seq 101", seqs(recs), err)
	}
	// A wipe removes the seq index too; numbering continues.
	if err := db.DeleteRecords(ctx, conv); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, db, conv, "a", 0, 0)
	if recs, err := db.RecordsAfter(ctx, conv, 0, 0, 10); err != nil || !equal(seqs(recs), []uint64{n + 1}) {
		t.Fatalf("after a wipe = %v, %v", seqs(recs), err)
	}
	if recs, _ := db.RecordsAfter(ctx, conv, ^uint64(0), 0, 10); len(recs) != 0 {
		t.Errorf("after max = %v", seqs(recs))
	}
}
