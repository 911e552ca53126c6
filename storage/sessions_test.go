package storage

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/mqim/mqim/chat"
)

func loadSessions(t *testing.T, db *DB) []chat.StoredSession {
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

// Ensure sessions and their events are stored, replaced, dropped and
// survive a reopen; a client id that prefixes another keeps its own events.
func TestSessions_SaveLoad(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	ctx := context.Background()
	ops := []chat.SessionOp{
		{Kind: chat.SessionPut, ClientID: "dave", Data: []byte("s1")},
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
	}
	if err := db.SaveSessions(ctx, ops); err != nil {
		t.Fatal(err)
	}
	want := []chat.StoredSession{
		{ClientID: "dave", State: []byte("s1"), Events: []chat.SessionEvent{{Key: 1, Data: []byte("e1")}, {Key: 2, Data: []byte("e2")}}},
		{ClientID: "dave-tab", State: []byte("t1"), Events: []chat.SessionEvent{{Key: 1, Data: []byte("t-e1")}}},
		{ClientID: "fresh", State: []byte("f2")},
	}
	if got := loadSessions(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %+v", got)
	}
	if err := db.SaveSessions(ctx, []chat.SessionOp{{Kind: chat.SessionPut, ClientID: "bad\x00id"}}); chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("NUL in client id: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir)
	if got := loadSessions(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen %+v", got)
	}
}

// Ensure a batch larger than one Badger transaction is split.
func TestSessions_LargeBatch(t *testing.T) {
	db := newTestDB(t)
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
