package storage

import (
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

// Ensure a stale activity entry (one an append whose commit failed could
// leave behind) does not list its conversation twice.
func TestConversations_StaleEntry(t *testing.T) {
	db := newTestDB(t)
	conv := chat.FriendConv("alice", "bob")
	mustAppend(t, db, conv, "bob", 100, 0)
	mustAppend(t, db, conv, "bob", 200, 0)
	if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(activityKey("alice", 150, conv), nil) }); err != nil {
		t.Fatal(err)
	}
	cs, err := db.Conversations(t.Context(), "alice", maxTS, 50)
	if err != nil || len(cs) != 1 || cs[0].Seq != 2 || cs[0].TS != 200 {
		t.Errorf("Conversations() = %+v, %v; want the conversation once at seq 2", cs, err)
	}
}

// Ensure the activity entries lag by less than activityLag and the list is
// still exact: a conversation whose entry is older but whose latest
// record is newer sorts first, at any limit, and each party keeps one
// entry however many messages moved it.
func TestConversations_Lag(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	a, b, c := chat.FriendConv("alice", "a1"), chat.FriendConv("alice", "b1"), chat.StrangerConv("alice", "c1")
	mustAppend(t, db, a, "a1", 10_000, 0) // entry at 10,000
	mustAppend(t, db, b, "b1", 10_000+activityLag/2, 0)
	mustAppend(t, db, a, "a1", 10_000+activityLag-1, 0) // within the lag: a's entry stays
	mustAppend(t, db, c, "c1", 5_000, 0)
	for i := range 50 { // c moves its entry every other message
		mustAppend(t, db, c, "c1", 5_000+int64(i+1)*activityLag/2, 0)
	}
	for limit, want := range map[int][]chat.Conv{1: {a}, 2: {a, b}, 3: {a, b, c}} {
		cs, err := db.Conversations(ctx, "alice", maxTS, limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []chat.Conv
		for _, x := range cs {
			got = append(got, x.Conv)
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d = %v, want %v", limit, got, want)
		}
	}
	if cs, err := db.Conversations(ctx, "alice", 10_000+activityLag-1, 5); err != nil || len(cs) != 2 || cs[0].Conv != b || cs[1].Conv != c {
		t.Errorf("before a's latest = %+v, %v; want b1, c1", cs, err)
	}
	n := 0
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: activityPrefix("c1")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Errorf("c1 has %d activity entries (%v), want 1", n, err)
	}
}

// Ensure the cursor value round-trips, reads the older 16-byte form, and
// refuses a truncated value.
func TestCursorSync(t *testing.T) {
	for _, c := range []struct {
		seq uint64
		ts  int64
		cs  convSync
	}{
		{1, 1_795_639_137_604, convSync{idxTS: 1_795_639_137_604, own: [2]uint64{1, 0}}},
		{1 << 40, -5, convSync{idxTS: noIndex, own: [2]uint64{1 << 40, 7}}},
		{3, 0, convSync{idxTS: -100, own: [2]uint64{}}},
	} {
		b := encodeCursorSync(c.seq, c.ts, c.cs)
		seq, ts, cs, ok := decodeCursorSync(b)
		if !ok || seq != c.seq || ts != c.ts || cs != c.cs {
			t.Errorf("round trip of %+v = %d %d %+v %v", c, seq, ts, cs, ok)
		}
		if seq, ts, ok := decodeCursor(b); !ok || seq != c.seq || ts != c.ts {
			t.Errorf("decodeCursor(%x) = %d %d %v", b, seq, ts, ok)
		}
		if _, _, ok := decodeCursor(b[:len(b)-1]); ok {
			t.Errorf("truncated %x decoded", b[:len(b)-1])
		}
	}
	if seq, ts, ok := decodeCursor(encodeCursor(9, 1234)); !ok || seq != 9 || ts != 1234 || decodeConvSync(encodeCursor(9, 1234)).idxTS != noIndex {
		t.Errorf("16-byte cursor = %d %d %v", seq, ts, ok)
	}
}
