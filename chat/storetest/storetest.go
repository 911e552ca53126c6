// Package storetest is the behavioural contract of [chat.Store] and
// [chat.SessionStore], run against every engine: the Badger store
// (storage) and the PostgreSQL store (storage/postgres) call [Run] and
// [RunReopen] from their tests. It imports only chat and the standard
// library, so that no engine depends on another.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
)

// Run runs the contract tests, each on a store open returns: empty, and
// closed by open's cleanup when the subtest ends. A store that is also a
// [chat.SessionStore] runs the session tests too.
func Run(t *testing.T, open func(t *testing.T) chat.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db chat.Store)
	}{
		{"AppendRecord_SeqAndTS", testAppendRecord_SeqAndTS},
		{"AppendRecord_Concurrent", testAppendRecord_Concurrent},
		{"AppendRecord_ConcurrentGapFree", testAppendRecord_ConcurrentGapFree},
		{"Records_Paging", testRecords_Paging},
		{"Records_Isolation", testRecords_Isolation},
		{"Records_TTL", testRecords_TTL},
		{"DeleteRecords", testDeleteRecords},
		{"DeleteRecords_Concurrent", testDeleteRecords_Concurrent},
		{"RecordsAfter", testRecordsAfter},
		{"Conversations", testConversations},
		{"Forget", testForget},
		{"UpdateRecord_FindsEverySeq", testUpdateRecord_FindsEverySeq},
		{"UpdateRecord_RecallAndEdit", testUpdateRecord_RecallAndEdit},
		{"UpdateRecord_ExpiredAndDeleted", testUpdateRecord_ExpiredAndDeleted},
		{"UpdateRecord_Concurrent", testUpdateRecord_Concurrent},
		{"DB_Close", testDB_Close},
		{"DB_ContextCanceled", testDB_ContextCanceled},
		{"DB_UpdateRollback", testDB_UpdateRollback},
		{"DB_ViewReadOnly", testDB_ViewReadOnly},
		{"DB_UpdateRetriesConflict", testDB_UpdateRetriesConflict},
		{"DB_UpdateConcurrentCounter", testDB_UpdateConcurrentCounter},
		{"Tx_User", testTx_User},
		{"Tx_Friendship", testTx_Friendship},
		{"Tx_Group", testTx_Group},
		{"Tx_Room", testTx_Room},
		{"Tx_Passenger", testTx_Passenger},
		{"Tx_Stranger", testTx_Stranger},
		{"Tx_Account", testTx_Account},
		{"Tx_ReadYourWrites", testTx_ReadYourWrites},
		{"Sessions_SaveLoad", sessions(testSessions_SaveLoad)},
		{"Sessions_LargeBatch", sessions(testSessions_LargeBatch)},
		{"Sessions_LoadOne", sessions(testSessions_LoadOne)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// RunReopen runs the tests that close a store and open it again. place
// prepares fresh, empty storage and returns a function opening it; each
// call of that function opens the same storage anew (closed by its
// cleanup, so closing twice must be fine).
func RunReopen(t *testing.T, place func(t *testing.T) func(t *testing.T) chat.Store) {
	t.Run("Reopen", func(t *testing.T) { testReopen(t, place(t)) })
	t.Run("Sessions_Reopen", func(t *testing.T) { testSessions_Reopen(t, place(t)) })
}

// sessions adapts a session test; a store without sessions skips it.
func sessions(fn func(t *testing.T, db chat.SessionStore)) func(t *testing.T, db chat.Store) {
	return func(t *testing.T, db chat.Store) {
		ss, ok := db.(chat.SessionStore)
		if !ok {
			t.Skipf("%T is not a chat.SessionStore", db)
		}
		fn(t, ss)
	}
}

const maxTS = int64(math.MaxInt64)

func equal[T comparable](a, b []T) bool { return slices.Equal(a, b) }

// until polls cond until it holds, failing after timeout (a bound on a
// wait, not a timed assertion).
func until(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ensure N concurrent appends to one conversation get exactly the Seq
// numbers 1..N: no gap, no duplicate.
func testAppendRecord_ConcurrentGapFree(t *testing.T, db chat.Store) {
	conv := chat.GroupConv("hot")
	const n = 64
	got := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := chat.Record{Conv: conv, Speaker: fmt.Sprint("w", i), TS: 1000}
			if err := db.AppendRecord(context.Background(), &rec, 0); err != nil {
				t.Error(err)
			}
			got[i] = rec.Seq
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("sorted seqs = %v, want 1..%d", got, n)
		}
	}
	if seq, ts, err := db.LatestSeq(t.Context(), conv); err != nil || seq != n || ts != 1000+n-1 {
		t.Errorf("LatestSeq() = %d, %d, %v; want %d, %d", seq, ts, err, n, 1000+n-1)
	}
}

// Ensure ForgetReader removes a reader's cursors and conversation list,
// and ForgetConversation removes a two-party conversation whose
// numbering then starts again.
func testForget(t *testing.T, db chat.Store) {
	ctx := t.Context()
	friend, other := chat.FriendConv("alice", "bob"), chat.FriendConv("alice", "carol")
	mustAppend(t, db, friend, "bob", 100, 0)
	mustAppend(t, db, friend, "bob", 110, 0)
	mustAppend(t, db, other, "carol", 120, 0)
	if _, _, err := db.MarkRead(ctx, "alice", friend, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.ForgetReader(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.Conversations(ctx, "alice", maxTS, 50); err != nil || len(cs) != 0 {
		t.Errorf("alice's conversations after ForgetReader = %+v, %v; want none", cs, err)
	}
	if curs, err := db.ReadCursors(ctx, friend, []string{"alice"}); err != nil || curs[0] != 0 {
		t.Errorf("alice's cursor after ForgetReader = %v, %v; want 0", curs, err)
	}
	if cs, err := db.Conversations(ctx, "bob", maxTS, 50); err != nil || len(cs) != 1 {
		t.Errorf("bob's conversations = %+v, %v; want the friend chat", cs, err)
	}

	if err := db.ForgetConversation(ctx, friend); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.Conversations(ctx, "bob", maxTS, 50); err != nil || len(cs) != 0 {
		t.Errorf("bob's conversations after ForgetConversation = %+v, %v; want none", cs, err)
	}
	if seq, _, err := db.LatestSeq(ctx, friend); err != nil || seq != 0 {
		t.Errorf("LatestSeq() after ForgetConversation = %d, %v; want 0", seq, err)
	}
	if rec := mustAppend(t, db, friend, "bob", 5, 0); rec.Seq != 1 || rec.TS != 5 {
		t.Errorf("append after ForgetConversation = seq %d ts %d, want 1, 5", rec.Seq, rec.TS)
	}
	if recs := mustRecords(t, db, other, maxTS, 0, 10); len(recs) != 1 {
		t.Errorf("another conversation lost records: %v", seqs(recs))
	}
}

// Ensure Close is idempotent and every method fails afterwards.
func testDB_Close(t *testing.T, db chat.Store) {
	ctx := context.Background()
	if err := db.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close() error = %v", err)
	}
	noop := func(chat.Tx) error { return nil }
	if err := db.View(ctx, noop); err == nil {
		t.Error("View() after Close error = nil")
	}
	if err := db.Update(ctx, noop); err == nil {
		t.Error("Update() after Close error = nil")
	}
	if err := db.AppendRecord(ctx, &chat.Record{Conv: "g:x"}, 0); err == nil {
		t.Error("AppendRecord() after Close error = nil")
	}
	if _, err := db.Records(ctx, "g:x", 10, 0, 10); err == nil {
		t.Error("Records() after Close error = nil")
	}
	if err := db.DeleteRecords(ctx, "g:x"); err == nil {
		t.Error("DeleteRecords() after Close error = nil")
	}
}

func testTx_Account(t *testing.T, db chat.Store) {
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.Account("user:alice"); !chat.IsNotFound(err) {
			t.Errorf("Account(missing) error = %v, want not found", err)
		}
		return nil
	})
	want := &chat.Account{ID: "user:alice"}
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutAccount(want) })
	mustView(t, db, func(tx chat.Tx) error {
		got, err := tx.Account("user:alice")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Account() = %+v, %v; want %+v", got, err, want)
		}
		return nil
	})
}

// Ensure sessions and their events are stored, replaced and dropped; a
// client id that prefixes another keeps its own events.
func testSessions_SaveLoad(t *testing.T, db chat.SessionStore) {
	saveSessionFixture(t, db)
	if got := loadSessions(t, db); !reflect.DeepEqual(got, sessionFixture) {
		t.Fatalf("loaded %+v", got)
	}
	if err := db.SaveSessions(t.Context(), []chat.SessionOp{{Kind: chat.SessionPut, ClientID: "bad\x00id"}}); chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("NUL in client id: %v", err)
	}
}

// Ensure LoadSession returns one session as LoadSessions does, and none
// for a client id without state (dropped, or never stored).
func testSessions_LoadOne(t *testing.T, db chat.SessionStore) {
	saveSessionFixture(t, db)
	for _, want := range sessionFixture {
		got, ok, err := db.LoadSession(t.Context(), want.ClientID)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("LoadSession(%q) = %+v, %v, %v; want %+v", want.ClientID, got, ok, err, want)
		}
	}
	for _, id := range []string{"gone", "never", "dav"} {
		if got, ok, err := db.LoadSession(t.Context(), id); err != nil || ok || got.State != nil || got.Events != nil {
			t.Errorf("LoadSession(%q) = %+v, %v, %v; want none", id, got, ok, err)
		}
	}
	if _, _, err := db.LoadSession(t.Context(), "bad\x00id"); chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("NUL in client id: %v", err)
	}
}

var sessionFixture = []chat.StoredSession{
	{ClientID: "dave", State: []byte("s1"), Events: []chat.SessionEvent{{Key: 1, Data: []byte("e1")}, {Key: 2, Data: []byte("e2")}, {Key: 1 << 63, Data: []byte("e-big")}}},
	{ClientID: "dave-tab", State: []byte("t1"), Events: []chat.SessionEvent{{Key: 1, Data: []byte("t-e1")}}},
	{ClientID: "fresh", State: []byte("f2")},
}

func saveSessionFixture(t *testing.T, db chat.SessionStore) {
	t.Helper()
	ops := []chat.SessionOp{
		{Kind: chat.SessionPut, ClientID: "dave", Data: []byte("s1")},
		{Kind: chat.SessionPutEvent, ClientID: "dave", Key: 1 << 63, Data: []byte("e-big")},
		{Kind: chat.SessionPutEvent, ClientID: "dave", Key: 2, Data: []byte("e2")},
		{Kind: chat.SessionPutEvent, ClientID: "dave", Key: 1, Data: []byte("e1")},
		{Kind: chat.SessionPutEvent, ClientID: "dave", Key: 3, Data: []byte("e3")},
		{Kind: chat.SessionDropEvent, ClientID: "dave", Key: 3},
		{Kind: chat.SessionPut, ClientID: "dave-tab", Data: []byte("t1")},
		{Kind: chat.SessionPutEvent, ClientID: "dave-tab", Key: 1, Data: []byte("t-e1")},
		{Kind: chat.SessionPut, ClientID: "gone", Data: []byte("g")},
		{Kind: chat.SessionPutEvent, ClientID: "gone", Key: 1, Data: []byte("g-e1")},
		{Kind: chat.SessionDrop, ClientID: "gone"},
		{Kind: chat.SessionPut, ClientID: "fresh", Data: []byte("f")},
		{Kind: chat.SessionPutEvent, ClientID: "fresh", Key: 1, Data: []byte("f-e1")},
		{Kind: chat.SessionPut, ClientID: "fresh", Data: []byte("f2")},
		// An event of a session that is gone is dropped by the next load.
		{Kind: chat.SessionPutEvent, ClientID: "gone", Key: 2, Data: []byte("g-e2")},
	}
	if err := db.SaveSessions(t.Context(), ops); err != nil {
		t.Fatal(err)
	}
}

// Ensure sessions survive a close and reopen.
func testSessions_Reopen(t *testing.T, open func(t *testing.T) chat.Store) {
	db := open(t)
	ss, ok := db.(chat.SessionStore)
	if !ok {
		t.Skipf("%T is not a chat.SessionStore", db)
	}
	saveSessionFixture(t, ss)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t)
	if got := loadSessions(t, db.(chat.SessionStore)); !reflect.DeepEqual(got, sessionFixture) {
		t.Fatalf("after reopen %+v", got)
	}
}

// Ensure everything survives a close and reopen, and sequence numbers and
// TS continue where they stopped.
func testReopen(t *testing.T, open func(t *testing.T) chat.Store) {
	ctx := context.Background()
	db := open(t)
	mustUpdate(t, db, func(tx chat.Tx) error {
		return errors.Join(
			tx.PutUser(&chat.UserRecord{ID: "alice", Created: 1}),
			tx.PutFriendship(&chat.Friendship{ID: "f1", From: "alice", To: "bob", TS: 5}),
			tx.PutGroup(&chat.Group{ID: "g1", Owner: "alice", Members: []string{"bob"}}),
			tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"carol"}}),
			tx.PutPassenger(&chat.PassengerRecord{ID: "p1"}),
			tx.PutStranger(&chat.Stranger{User: "alice", Other: "dave", TS: 1, Last: 2}),
		)
	})
	conv := chat.GroupConv("g1")
	for i := range 3 {
		mustAppend(t, db, conv, "alice", int64(100+i), 0)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}

	db = open(t)
	mustView(t, db, func(tx chat.Tx) error {
		if u, err := tx.User("alice"); err != nil || u.Created != 1 {
			t.Errorf("User() = %+v, %v", u, err)
		}
		if _, err := tx.Friendship("bob", "alice"); err != nil {
			t.Errorf("Friendship() error = %v", err)
		}
		if ids, err := tx.MemberListIDsOf(chat.GroupList, "bob"); err != nil || len(ids) != 1 {
			t.Errorf("GroupIDsOf(bob) = %v, %v", ids, err)
		}
		if ids, err := tx.MemberListIDsOf(chat.RoomList, "carol"); err != nil || len(ids) != 1 {
			t.Errorf("RoomIDsOf(carol) = %v, %v", ids, err)
		}
		if _, err := tx.Passenger("p1"); err != nil {
			t.Errorf("Passenger() error = %v", err)
		}
		if _, err := tx.Stranger("alice", "dave"); err != nil {
			t.Errorf("Stranger() error = %v", err)
		}
		return nil
	})
	// An older TS is raised past the latest one stored before the restart.
	rec := mustAppend(t, db, conv, "bob", 50, 0)
	if rec.Seq != 4 || rec.TS != 103 {
		t.Errorf("append after reopen = seq %d ts %d, want seq 4 ts 103", rec.Seq, rec.TS)
	}
	recs, err := db.Records(ctx, conv, 1000, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(recs); !equal(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("Records() seqs = %v, want [1 2 3 4]", got)
	}
}

func mustAppend(tb testing.TB, db chat.Store, conv chat.Conv, speaker string, ts int64, ttl time.Duration) chat.Record {
	tb.Helper()
	rec := chat.Record{Conv: conv, Speaker: speaker, Content: chat.Content{Body: fmt.Sprint("at ", ts)}, TS: ts}
	if err := db.AppendRecord(context.Background(), &rec, ttl); err != nil {
		tb.Fatalf("AppendRecord(%s) error = %v", conv, err)
	}
	return rec
}

func mustRecords(tb testing.TB, db chat.Store, conv chat.Conv, before, notBefore int64, limit int) []chat.Record {
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

func testAppendRecord_SeqAndTS(t *testing.T, db chat.Store) {
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
func testAppendRecord_Concurrent(t *testing.T, db chat.Store) {
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

func testRecords_Paging(t *testing.T, db chat.Store) {
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
func testRecords_Isolation(t *testing.T, db chat.Store) {
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
func testRecords_TTL(t *testing.T, db chat.Store) {
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
	until(t, "the record with a 1s TTL to expire", 5*time.Second, func() bool {
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

func testDeleteRecords(t *testing.T, db chat.Store) {
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
func testDeleteRecords_Concurrent(t *testing.T, db chat.Store) {
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

func mustUpdate(tb testing.TB, db chat.Store, fn func(chat.Tx) error) {
	tb.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		tb.Fatalf("Update() error = %v", err)
	}
}

func mustView(tb testing.TB, db chat.Store, fn func(chat.Tx) error) {
	tb.Helper()
	if err := db.View(context.Background(), fn); err != nil {
		tb.Fatalf("View() error = %v", err)
	}
}

// Ensure a canceled context stops every method before it starts.
func testDB_ContextCanceled(t *testing.T, db chat.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	fn := func(chat.Tx) error { called = true; return nil }
	if err := db.View(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Errorf("View() error = %v, want context.Canceled", err)
	}
	if err := db.Update(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Errorf("Update() error = %v, want context.Canceled", err)
	}
	if called {
		t.Error("fn was called with a canceled context")
	}
	if err := db.AppendRecord(ctx, &chat.Record{Conv: "g:x"}, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendRecord() error = %v, want context.Canceled", err)
	}
	if _, err := db.Records(ctx, "g:x", 10, 0, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("Records() error = %v, want context.Canceled", err)
	}
	if err := db.DeleteRecords(ctx, "g:x"); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteRecords() error = %v, want context.Canceled", err)
	}
}

// Ensure Update is atomic: an error from fn discards its writes and is
// returned unchanged.
func testDB_UpdateRollback(t *testing.T, db chat.Store) {
	want := chat.Errorf(chat.CodeInvalid, "no")
	err := db.Update(context.Background(), func(tx chat.Tx) error {
		if err := tx.PutUser(&chat.UserRecord{ID: "alice"}); err != nil {
			return err
		}
		return want
	})
	if err != want {
		t.Fatalf("Update() error = %v, want %v", err, want)
	}
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.User("alice"); !chat.IsNotFound(err) {
			t.Errorf("User() after rollback error = %v, want not found", err)
		}
		return nil
	})
}

// Ensure View is read-only: a put fails with a storage error, not a panic.
func testDB_ViewReadOnly(t *testing.T, db chat.Store) {
	err := db.View(context.Background(), func(tx chat.Tx) error {
		return tx.PutUser(&chat.UserRecord{ID: "alice"})
	})
	if err == nil || chat.ErrorCode(err) != chat.CodeDatabase {
		t.Fatalf("PutUser() in View error = %v, want a database error", err)
	}
}

// Ensure a write conflict re-runs fn on a fresh snapshot, so a
// read-modify-write loses no update.
func testDB_UpdateRetriesConflict(t *testing.T, db chat.Store) {
	ctx := context.Background()
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutUser(&chat.UserRecord{ID: "c", TS: 0}) })

	// The first run of fn reads c, then lets a competing update commit
	// before it writes: its commit must conflict and fn must run again.
	var runs atomic.Int32
	read := make(chan struct{})
	competed := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- db.Update(ctx, func(tx chat.Tx) error {
			u, err := tx.User("c")
			if err != nil {
				return err
			}
			if runs.Add(1) == 1 {
				close(read)
				<-competed
			}
			u.TS++
			return tx.PutUser(u)
		})
	}()
	<-read
	mustUpdate(t, db, func(tx chat.Tx) error {
		u, err := tx.User("c")
		if err != nil {
			return err
		}
		u.TS++
		return tx.PutUser(u)
	})
	close(competed)
	if err := <-errc; err != nil {
		t.Fatalf("Update() error = %v", err)
	}
	if got := runs.Load(); got != 2 {
		t.Errorf("fn runs = %d, want 2", got)
	}
	mustView(t, db, func(tx chat.Tx) error {
		u, err := tx.User("c")
		if err != nil {
			return err
		}
		if u.TS != 2 {
			t.Errorf("counter = %d, want 2 (an update was lost)", u.TS)
		}
		return nil
	})
}

// Ensure many concurrent read-modify-write updates of one key lose nothing.
func testDB_UpdateConcurrentCounter(t *testing.T, db chat.Store) {
	ctx := context.Background()
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutUser(&chat.UserRecord{ID: "c"}) })
	const n = 4
	errc := make(chan error, n)
	for range n {
		go func() {
			errc <- db.Update(ctx, func(tx chat.Tx) error {
				u, err := tx.User("c")
				if err != nil {
					return err
				}
				u.TS++
				return tx.PutUser(u)
			})
		}()
	}
	ok := 0
	for range n {
		if err := <-errc; err == nil {
			ok++
		} else if !strings.Contains(err.Error(), "gave up") {
			t.Fatalf("Update() error = %v", err)
		}
	}
	mustView(t, db, func(tx chat.Tx) error {
		u, _ := tx.User("c")
		if u.TS != int64(ok) {
			t.Errorf("counter = %d, want %d successful updates", u.TS, ok)
		}
		return nil
	})
}

// Ensure RecordsAfter returns Seq > after, oldest first, at most limit,
// from any point (inside and across the 64-record index blocks), within
// notBefore, and after a wipe of the conversation.
func testRecordsAfter(t *testing.T, db chat.Store) {
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
func testConversations(t *testing.T, db chat.Store) {
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

// touch runs UpdateRecord with an fn that changes nothing and returns the
// record it was given.
func touch(db chat.Store, conv chat.Conv, seq uint64) (chat.Record, error) {
	var got chat.Record
	err := db.UpdateRecord(context.Background(), conv, seq, func(r *chat.Record) (*chat.Edit, error) {
		got = *r
		return nil, nil
	})
	return got, err
}

// Ensure the binary search finds every record by seq whatever the spacing
// of the TS (runs of equal TS, gaps of any size, TS raised by older
// appends), and refuses seqs that are not stored.
func testUpdateRecord_FindsEverySeq(t *testing.T, db chat.Store) {
	conv := chat.GroupConv("g")
	other := chat.GroupConv("ga") // sorts right after g's records
	rng := rand.New(rand.NewPCG(1, 2))
	ts := int64(1_700_000_000_000)
	var want []chat.Record
	for i := range 300 {
		switch rng.IntN(4) {
		case 0: // same ms
		case 1:
			ts += rng.Int64N(3)
		case 2:
			ts += rng.Int64N(1 << 30)
		case 3:
			ts -= 5 // raised to the latest by AppendRecord
		}
		rec := chat.Record{Conv: conv, ID: fmt.Sprint("m", i), Speaker: "a", Content: chat.Content{Body: fmt.Sprint(i)}, TS: ts}
		if err := db.AppendRecord(t.Context(), &rec, 0); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
		mustAppend(t, db, other, "b", ts, 0)
	}
	for _, w := range want {
		got, err := touch(db, conv, w.Seq)
		if err != nil || got.ID != w.ID || got.TS != w.TS || got.Seq != w.Seq || got.Content != w.Content {
			t.Fatalf("seq %d: got %+v, %v; want %+v", w.Seq, got, err, w)
		}
	}
	for _, seq := range []uint64{0, uint64(len(want) + 1), 1 << 40} {
		if _, err := touch(db, conv, seq); !chat.IsNotFound(err) {
			t.Errorf("seq %d: error %v, want not found", seq, err)
		}
	}
	if _, err := touch(db, chat.GroupConv("none"), 1); !chat.IsNotFound(err) {
		t.Errorf("empty conversation: %v, want not found", err)
	}
}

// Ensure a recall keeps id, seq, speaker and ts, drops content, remark and
// earlier versions, and keeps the record's expiry; an edit keeps the
// earlier version, listed oldest first.
func testUpdateRecord_RecallAndEdit(t *testing.T, db chat.Store) {
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

// Ensure expired and deleted records cannot be changed, and DeleteRecords
// removes the earlier versions too.
func testUpdateRecord_ExpiredAndDeleted(t *testing.T, db chat.Store) {
	ctx := t.Context()
	now := time.Now().UnixMilli()
	old := chat.GroupConv("old")
	rec := mustAppend(t, db, old, "a", now-2*time.Hour.Milliseconds(), time.Hour)
	if _, err := touch(db, old, rec.Seq); !chat.IsNotFound(err) {
		t.Errorf("expired record: %v, want not found", err)
	}
	if _, err := db.RecordEdits(ctx, old, rec.Seq); !chat.IsNotFound(err) {
		t.Errorf("edits of an expired record: %v, want not found", err)
	}

	g := chat.GroupConv("g")
	r := mustAppend(t, db, g, "a", now, 0)
	err := db.UpdateRecord(ctx, g, r.Seq, func(r *chat.Record) (*chat.Edit, error) {
		p := &chat.Edit{Content: r.Content, TS: now + 1}
		r.Content.Body, r.Edited = "new", now+1
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRecords(ctx, g); err != nil {
		t.Fatal(err)
	}
	if _, err := touch(db, g, r.Seq); !chat.IsNotFound(err) {
		t.Errorf("deleted record: %v, want not found", err)
	}
	if _, err := db.RecordEdits(ctx, g, r.Seq); !chat.IsNotFound(err) {
		t.Errorf("edits of a deleted record: %v, want not found", err)
	}
}

// Ensure concurrent edits of one record all land (write conflicts are
// retried) and appends to the conversation go on meanwhile.
func testUpdateRecord_Concurrent(t *testing.T, db chat.Store) {
	ctx := t.Context()
	conv := chat.GroupConv("g")
	r := mustAppend(t, db, conv, "a", 1000, 0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			err := db.UpdateRecord(ctx, conv, r.Seq, func(r *chat.Record) (*chat.Edit, error) {
				at := r.Edited + 1
				p := &chat.Edit{Content: r.Content, TS: at}
				r.Content.Body, r.Edited = fmt.Sprint("v", i), at
				return p, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			mustAppend(t, db, conv, "b", 1000, 0)
		}()
	}
	wg.Wait()
	edits, err := db.RecordEdits(ctx, conv, r.Seq)
	if err != nil || len(edits) != 8 {
		t.Fatalf("edits = %+v, %v; want 8", edits, err)
	}
	for i, e := range edits {
		if e.TS != int64(i+1) {
			t.Errorf("edit %d at %d, want %d", i, e.TS, i+1)
		}
	}
	if got := len(mustRecords(t, db, conv, 2000, 0, 100)); got != 9 {
		t.Errorf("%d records, want 9", got)
	}
}

func testTx_User(t *testing.T, db chat.Store) {
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.User("alice"); chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("User(missing) code = %d, want %d", chat.ErrorCode(err), chat.CodeNotFound)
		}
		return nil
	})

	want := &chat.UserRecord{
		ID:         "alice",
		Attributes: chat.Attributes{"age": json.RawMessage(`20`), "tags": json.RawMessage(`{"a":[1,2.50]}`)},
		Installs:   []string{"i1"},
		Created:    10,
		TS:         11,
	}
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutUser(want) })
	mustView(t, db, func(tx chat.Tx) error {
		got, err := tx.User("alice")
		if err != nil {
			t.Fatalf("User() error = %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("User() = %+v, want %+v", got, want)
		}
		// The returned object is a copy.
		got.Installs[0] = "changed"
		again, _ := tx.User("alice")
		if again.Installs[0] != "i1" {
			t.Error("User() returned shared memory")
		}
		return nil
	})

	// Update, and list in id order.
	mustUpdate(t, db, func(tx chat.Tx) error {
		u, err := tx.User("alice")
		if err != nil {
			return err
		}
		u.TS = 12
		return errors.Join(tx.PutUser(u), tx.PutUser(&chat.UserRecord{ID: "Zed"}), tx.PutUser(&chat.UserRecord{ID: "bob"}))
	})
	mustView(t, db, func(tx chat.Tx) error {
		var ids []string
		err := tx.Users(func(u *chat.UserRecord) error {
			ids = append(ids, u.ID)
			if u.ID == "alice" && u.TS != 12 {
				t.Errorf("updated TS = %d, want 12", u.TS)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Users() error = %v", err)
		}
		if want := []string{"Zed", "alice", "bob"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("Users() ids = %v, want %v", ids, want)
		}
		// fn's error stops the walk and comes back unchanged.
		stop := errors.New("stop")
		n := 0
		if err := tx.Users(func(*chat.UserRecord) error { n++; return stop }); err != stop || n != 1 {
			t.Errorf("Users(stop) = %v after %d calls, want stop after 1", err, n)
		}
		return nil
	})

	// Keys cannot be forged with NUL.
	err := db.Update(t.Context(), func(tx chat.Tx) error { return tx.PutUser(&chat.UserRecord{ID: "a\x00b"}) })
	if chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("PutUser(NUL id) code = %d, want %d", chat.ErrorCode(err), chat.CodeInvalid)
	}
	err = db.Update(t.Context(), func(tx chat.Tx) error { return tx.PutUser(&chat.UserRecord{}) })
	if chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("PutUser(empty id) code = %d, want %d", chat.ErrorCode(err), chat.CodeInvalid)
	}
}

func testTx_Friendship(t *testing.T, db chat.Store) {
	put := func(f *chat.Friendship) {
		t.Helper()
		mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutFriendship(f) })
	}
	put(&chat.Friendship{ID: "ab", From: "alice", To: "bob", NS: "app", TS: 30})
	put(&chat.Friendship{ID: "ca", From: "carol", To: "alice", NS: "app", TS: 10})
	put(&chat.Friendship{ID: "ad", From: "alice", To: "dave", NS: "app", TS: 20})
	// "al" is a prefix of "alice": its friendships must not leak into alice's.
	put(&chat.Friendship{ID: "xx", From: "al", To: "zoe", NS: "app", TS: 1})

	mustView(t, db, func(tx chat.Tx) error {
		for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
			f, err := tx.Friendship(pair[0], pair[1])
			if err != nil || f.ID != "ab" || f.From != "alice" {
				t.Errorf("Friendship(%s, %s) = %+v, %v", pair[0], pair[1], f, err)
			}
		}
		if _, err := tx.Friendship("bob", "carol"); !chat.IsNotFound(err) {
			t.Errorf("Friendship(missing) error = %v, want not found", err)
		}
		return nil
	})
	assertFriends(t, db, "alice", []string{"ca", "ad", "ab"})
	assertFriends(t, db, "bob", []string{"ab"})
	assertFriends(t, db, "carol", []string{"ca"})
	assertFriends(t, db, "al", []string{"xx"})
	assertFriends(t, db, "nobody", []string{})

	// Replacing updates both sides.
	put(&chat.Friendship{ID: "ab", From: "alice", To: "bob", NS: "app", TS: 5})
	assertFriends(t, db, "alice", []string{"ab", "ca", "ad"})
	assertFriends(t, db, "bob", []string{"ab"})

	// Delete from either side; deleting again is no error.
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.DeleteFriendship("bob", "alice") })
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.DeleteFriendship("alice", "bob") })
	assertFriends(t, db, "alice", []string{"ca", "ad"})
	assertFriends(t, db, "bob", []string{})
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.Friendship("alice", "bob"); !chat.IsNotFound(err) {
			t.Errorf("Friendship(deleted) error = %v, want not found", err)
		}
		return nil
	})
}

func assertFriends(tb testing.TB, db chat.Store, uid string, want []string) {
	tb.Helper()
	mustView(tb, db, func(tx chat.Tx) error {
		fs, err := tx.Friendships(uid)
		if err != nil {
			tb.Fatalf("Friendships(%s) error = %v", uid, err)
		}
		got := []string{}
		for _, f := range fs {
			got = append(got, f.ID)
		}
		if !reflect.DeepEqual(got, want) {
			tb.Errorf("Friendships(%s) = %v, want %v", uid, got, want)
		}
		return nil
	})
}

func assertIDs(tb testing.TB, what string, got []string, err error, want []string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s error = %v", what, err)
	}
	if got == nil || !reflect.DeepEqual(got, want) {
		tb.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// listFixture opens a store for the member-list tests of kind. listsOf
// checks the lists of kind a user belongs to; put stores a list as kind.
func listFixture(t *testing.T, db chat.Store, kind chat.ListKind) (listsOf func(uid string, want ...string), put func(*chat.MemberList)) {
	listsOf = func(uid string, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		mustView(t, db, func(tx chat.Tx) error {
			ids, err := tx.MemberListIDsOf(kind, uid)
			assertIDs(t, fmt.Sprintf("MemberListIDsOf(%s, %s)", kind, uid), ids, err, want)
			return nil
		})
	}
	put = func(l *chat.MemberList) {
		t.Helper()
		l.Kind = kind
		mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutMemberList(l) })
	}
	return listsOf, put
}

// checkList checks that list id of kind reads back as want (nil: missing,
// with CodeNotFound).
func checkList(t *testing.T, db chat.Store, kind chat.ListKind, id string, want *chat.MemberList) {
	t.Helper()
	mustView(t, db, func(tx chat.Tx) error {
		got, err := tx.MemberList(kind, id)
		if want == nil && chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("MemberList(%s, %s) = %+v, %v; want not found", kind, id, got, err)
		}
		if want != nil && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("MemberList(%s, %s) = %+v, %v; want %+v", kind, id, got, err, want)
		}
		return nil
	})
}

// checkLists checks the ids MemberLists visits for kind.
func checkLists(t *testing.T, db chat.Store, kind chat.ListKind, want ...string) {
	t.Helper()
	mustView(t, db, func(tx chat.Tx) error {
		var ids []string
		err := tx.MemberLists(kind, func(l *chat.MemberList) error {
			if l.Kind != kind {
				t.Errorf("MemberLists(%s) visits %s of kind %s", kind, l.ID, l.Kind)
			}
			ids = append(ids, l.ID)
			return nil
		})
		assertIDs(t, fmt.Sprintf("MemberLists(%s)", kind), ids, err, want)
		return nil
	})
}

// deleteList deletes list id twice: the second time is no error.
func deleteList(t *testing.T, db chat.Store, kind chat.ListKind, id string) {
	t.Helper()
	for range 2 {
		mustUpdate(t, db, func(tx chat.Tx) error { return tx.DeleteMemberList(kind, id) })
	}
	checkList(t, db, kind, id, nil)
}

func testTx_Group(t *testing.T, db chat.Store) {
	groupsOf, put := listFixture(t, db, chat.GroupList)
	checkList(t, db, chat.GroupList, "g1", nil)

	g1 := &chat.Group{ID: "g1", Owner: "alice", Members: []string{"bob", "carol"},
		Attributes: chat.Attributes{"name": json.RawMessage(`"fans"`)}, TS: 7}
	put(g1)
	// The owner listed as a member too is indexed once.
	put(&chat.Group{ID: "g2", Owner: "bob", Members: []string{"bob", "alice"}})
	checkList(t, db, chat.GroupList, "g1", g1)
	groupsOf("alice", "g1", "g2")
	groupsOf("bob", "g1", "g2")
	groupsOf("carol", "g1")
	groupsOf("dave")

	// Member removed, member added, owner changed (the old owner is no
	// longer indexed unless still a member).
	put(&chat.Group{ID: "g1", Owner: "dave", Members: []string{"bob", "erin"}})
	groupsOf("alice", "g2")
	groupsOf("carol")
	groupsOf("dave", "g1")
	groupsOf("erin", "g1")
	groupsOf("bob", "g1", "g2")
	checkLists(t, db, chat.GroupList, "g1", "g2")

	// Delete removes the group and every index entry; again is no error.
	deleteList(t, db, chat.GroupList, "g1")
	groupsOf("dave")
	groupsOf("erin")
	groupsOf("bob", "g2")

	// A member id that would break the key layout is refused.
	err := db.Update(t.Context(), func(tx chat.Tx) error {
		return tx.PutGroup(&chat.Group{ID: "g3", Owner: "alice", Members: []string{"x\x00y"}})
	})
	if chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("PutGroup(NUL member) code = %d, want %d", chat.ErrorCode(err), chat.CodeInvalid)
	}
}

func testTx_Room(t *testing.T, db chat.Store) {
	roomsOf, put := listFixture(t, db, chat.RoomList)
	checkList(t, db, chat.RoomList, "r1", nil)
	r1 := &chat.Room{ID: "r1", Members: []string{"alice", "bob"}, Attributes: chat.Attributes{}, TS: 3}
	put(r1)
	put(&chat.Room{ID: "r0", Members: []string{"bob"}})
	checkList(t, db, chat.RoomList, "r1", r1)
	roomsOf("alice", "r1")
	roomsOf("bob", "r0", "r1")

	put(&chat.Room{ID: "r1", Members: []string{"bob", "carol"}})
	roomsOf("alice")
	roomsOf("carol", "r1")
	roomsOf("bob", "r0", "r1")
	checkLists(t, db, chat.RoomList, "r0", "r1")

	deleteList(t, db, chat.RoomList, "r1")
	roomsOf("carol")
	roomsOf("bob", "r0")
}

func testTx_Passenger(t *testing.T, db chat.Store) {
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.Passenger("p1"); chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("Passenger(missing) code = %d, want %d", chat.ErrorCode(err), chat.CodeNotFound)
		}
		return nil
	})
	want := &chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{"k": json.RawMessage(`true`)}, TS: 4}
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutPassenger(want) })
	want.TS = 5
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutPassenger(want) })
	mustView(t, db, func(tx chat.Tx) error {
		got, err := tx.Passenger("p1")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Passenger() = %+v, %v; want %+v", got, err, want)
		}
		// Users and passengers are separate namespaces.
		if _, err := tx.User("p1"); !chat.IsNotFound(err) {
			t.Errorf("User(p1) error = %v, want not found", err)
		}
		return nil
	})
}

func testTx_Stranger(t *testing.T, db chat.Store) {
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.Stranger("alice", "bob"); chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("Stranger(missing) code = %d, want %d", chat.ErrorCode(err), chat.CodeNotFound)
		}
		return nil
	})
	mustUpdate(t, db, func(tx chat.Tx) error {
		return errors.Join(
			tx.PutStranger(&chat.Stranger{User: "alice", Other: "bob", TS: 1, Last: 10}),
			tx.PutStranger(&chat.Stranger{User: "alice", Other: "carol", TS: 2, Last: 30}),
			tx.PutStranger(&chat.Stranger{User: "alice", Other: "dave", TS: 3, Last: 20}),
			tx.PutStranger(&chat.Stranger{User: "bob", Other: "alice", TS: 1, Last: 10}),
		)
	})
	strangers := func(uid string) []string {
		var out []string
		mustView(t, db, func(tx chat.Tx) error {
			ss, err := tx.Strangers(uid)
			if err != nil {
				t.Fatalf("Strangers(%s) error = %v", uid, err)
			}
			out = []string{}
			for _, s := range ss {
				out = append(out, s.Other)
			}
			return nil
		})
		return out
	}
	if got, want := strangers("alice"), []string{"carol", "dave", "bob"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Strangers(alice) = %v, want %v", got, want)
	}
	// One direction only: bob sees alice, carol sees nobody.
	if got := strangers("carol"); len(got) != 0 {
		t.Errorf("Strangers(carol) = %v, want none", got)
	}

	// A new message moves bob to the front.
	mustUpdate(t, db, func(tx chat.Tx) error {
		s, err := tx.Stranger("alice", "bob")
		if err != nil {
			return err
		}
		s.Last = 40
		return tx.PutStranger(s)
	})
	if got, want := strangers("alice"), []string{"bob", "carol", "dave"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Strangers(alice) after update = %v, want %v", got, want)
	}
	mustView(t, db, func(tx chat.Tx) error {
		s, err := tx.Stranger("alice", "bob")
		if err != nil || s.TS != 1 || s.Last != 40 {
			t.Errorf("Stranger() = %+v, %v", s, err)
		}
		return nil
	})
}

// Ensure a Tx sees its own writes, including in the indexes.
func testTx_ReadYourWrites(t *testing.T, db chat.Store) {
	mustUpdate(t, db, func(tx chat.Tx) error {
		if err := tx.PutGroup(&chat.Group{ID: "g", Owner: "alice"}); err != nil {
			return err
		}
		ids, err := tx.MemberListIDsOf(chat.GroupList, "alice")
		assertIDs(t, "MemberListIDsOf in tx", ids, err, []string{"g"})
		if err := tx.PutFriendship(&chat.Friendship{ID: "f", From: "alice", To: "bob"}); err != nil {
			return err
		}
		fs, err := tx.Friendships("bob")
		if err != nil || len(fs) != 1 {
			t.Errorf("Friendships in tx = %v, %v", fs, err)
		}
		return nil
	})
}

func loadSessions(t *testing.T, db chat.SessionStore) []chat.StoredSession {
	t.Helper()
	var got []chat.StoredSession
	if err := db.LoadSessions(context.Background(), func(s chat.StoredSession) error {
		got = append(got, s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// Ensure a batch larger than one Badger transaction is split.
func testSessions_LargeBatch(t *testing.T, db chat.SessionStore) {
	ops := []chat.SessionOp{{Kind: chat.SessionPut, ClientID: "big", Data: []byte("s")}}
	payload := make([]byte, 4<<10)
	const n = 2000 // 8 MB: several transactions of a 16 MB memtable
	for i := range n {
		ops = append(ops, chat.SessionOp{Kind: chat.SessionPutEvent, ClientID: "big", Key: uint64(i), Data: payload})
	}
	if err := db.SaveSessions(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	got := loadSessions(t, db)
	if len(got) != 1 || len(got[0].Events) != n {
		t.Fatalf("loaded %d sessions, %s events", len(got), fmt.Sprint(len(got[0].Events)))
	}
}
