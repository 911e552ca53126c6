package storage

import (
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

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

// Ensure Conversations lists a user's friend, stranger, passenger and group
// conversations by latest record, newest first, with the latest Seq, the
// user's read cursor (moved by its own messages and MarkRead, forward
// only, never past the latest) and the last record; pages with before;
// and lists a group only once it has a message.
func TestConversations(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	mustUpdate(t, db, func(tx chat.Tx) error {
		for _, g := range []string{"g1", "quiet"} {
			if err := tx.PutGroup(&chat.Group{ID: g, Owner: "zed", Members: []string{"alice"}}); err != nil {
				return err
			}
		}
		return nil
	})
	friend, stranger := chat.FriendConv("alice", "bob"), chat.StrangerConv("carol", "alice")
	pass, group := chat.PassengerConv("alice", "alice"), chat.GroupConv("g1")
	mustAppend(t, db, friend, "bob", 100, 0)
	mustAppend(t, db, friend, "alice", 100, 0) // ts 101, alice's cursor 2
	mustAppend(t, db, stranger, "carol", 200, 0)
	p := chat.Record{Conv: pass, Speaker: "alice", SpeakerKind: chat.KindPassenger, TS: 300} // a passenger named alice
	if err := db.AppendRecord(ctx, &p, 0); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, db, group, "zed", 250, 0)
	mustAppend(t, db, group, "zed", 260, 0)
	mustAppend(t, db, chat.FriendConv("bob", "dave"), "dave", 999, 0)
	mustAppend(t, db, friend, "bob", 150, 0) // friend moves above the stranger chat

	type row struct {
		conv      chat.Conv
		seq, read uint64
		ts        int64
	}
	list := func(before int64, limit int) []row {
		t.Helper()
		cs, err := db.Conversations(ctx, "alice", before, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []row
		for _, c := range cs {
			if c.Last == nil || c.Last.Seq != c.Seq || c.Last.TS != c.TS {
				t.Fatalf("%s: last %+v does not match seq %d ts %d", c.Conv, c.Last, c.Seq, c.TS)
			}
			out = append(out, row{c.Conv, c.Seq, c.Read, c.TS})
		}
		return out
	}
	want := []row{{pass, 1, 0, 300}, {group, 2, 0, 260}, {stranger, 1, 0, 200}, {friend, 3, 2, 150}}
	if got := list(maxTS, 50); !slices.Equal(got, want) {
		t.Fatalf("Conversations() = %v\nwant %v", got, want)
	}
	if got := list(maxTS, 2); !slices.Equal(got, want[:2]) {
		t.Errorf("limit 2 = %v", got)
	}
	if got := list(260, 2); !slices.Equal(got, want[2:]) {
		t.Errorf("before 260 = %v", got)
	}

	// Read cursors move forward only and stop at the latest seq.
	for _, c := range []struct {
		seq, cur uint64
		moved    bool
	}{{1, 2, false}, {9, 3, true}, {2, 3, false}} {
		cur, moved, err := db.MarkRead(ctx, "alice", friend, c.seq)
		if err != nil || cur != c.cur || moved != c.moved {
			t.Errorf("MarkRead(%d) = %d, %v, %v; want %d, %v", c.seq, cur, moved, err, c.cur, c.moved)
		}
	}
	if got := list(maxTS, 50)[3]; got.read != 3 {
		t.Errorf("friend read = %d, want 3", got.read)
	}
	curs, err := db.ReadCursors(ctx, pass, []string{"alice", "passenger:alice", "nobody"})
	if err != nil || !slices.Equal(curs, []uint64{0, 1, 0}) {
		t.Errorf("passenger conv cursors = %v, %v; want the passenger's at 1", curs, err)
	}
	// bob sees the same friend conversation; dave's chat is not alice's.
	cs, err := db.Conversations(ctx, "bob", maxTS, 50)
	if err != nil || len(cs) != 2 || cs[0].Conv != chat.FriendConv("bob", "dave") || cs[1].Read != 3 {
		t.Errorf("bob's conversations = %+v, %v", cs, err)
	}
	// A cleared group leaves the list.
	if err := db.DeleteRecords(ctx, group); err != nil {
		t.Fatal(err)
	}
	if got := list(maxTS, 50); len(got) != 3 || slices.ContainsFunc(got, func(r row) bool { return r.conv == group }) {
		t.Errorf("after clearing the group = %v", got)
	}
}

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
