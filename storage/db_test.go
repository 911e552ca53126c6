package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
)

// newTestDB opens a store in a fresh temp dir, closed when the test ends.
func newTestDB(tb testing.TB) *DB {
	tb.Helper()
	return openTestDB(tb, tb.TempDir())
}

// openTestDB opens the store in dir, closed when the test ends (closing
// twice is fine, so a test may close it earlier to reopen the dir).
func openTestDB(tb testing.TB, dir string) *DB {
	tb.Helper()
	// Badger logs its table housekeeping at info level; keep -v output readable.
	db, err := Open(Options{Dir: dir, Logger: zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)})
	if err != nil {
		tb.Fatalf("Open(%s) error = %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close() error = %v", err)
		}
	})
	return db
}

func mustUpdate(tb testing.TB, db *DB, fn func(chat.Tx) error) {
	tb.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		tb.Fatalf("Update() error = %v", err)
	}
}

func mustView(tb testing.TB, db *DB, fn func(chat.Tx) error) {
	tb.Helper()
	if err := db.View(context.Background(), fn); err != nil {
		tb.Fatalf("View() error = %v", err)
	}
}

// Ensure a locked directory and a directory that cannot be created are
// errors, not panics.
func TestOpen_Errors(t *testing.T) {
	t.Run("Locked", func(t *testing.T) {
		dir := t.TempDir()
		openTestDB(t, dir)
		_, err := Open(Options{Dir: dir, Logger: zerolog.New(zerolog.NewTestWriter(t))})
		if err == nil || !strings.HasPrefix(err.Error(), "storage: open") {
			t.Fatalf("second Open() error = %v, want storage: open ...", err)
		}
	})
	t.Run("DirIsFile", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(Options{Dir: filepath.Join(file, "db")}); err == nil {
			t.Fatal("Open(under a file) error = nil, want error")
		}
	})
	t.Run("NoDir", func(t *testing.T) {
		if _, err := Open(Options{}); err == nil {
			t.Fatal("Open(no dir) error = nil, want error")
		}
	})
	t.Run("Garbage", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("not a manifest"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(Options{Dir: dir}); err == nil {
			t.Fatal("Open(damaged MANIFEST) error = nil, want error")
		}
	})
}

// Ensure in-memory mode works for tools.
func TestOpen_InMemory(t *testing.T) {
	db, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatalf("Open(InMemory) error = %v", err)
	}
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutUser(&chat.UserRecord{ID: "alice"}) })
	if err := db.AppendRecord(context.Background(), &chat.Record{Conv: "g:x", Speaker: "alice", TS: 1}, 0); err != nil {
		t.Fatalf("AppendRecord() error = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
}

// Ensure Close is idempotent and every method fails cleanly afterwards.
func TestDB_Close(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	if err := db.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close() error = %v", err)
	}
	noop := func(chat.Tx) error { return nil }
	if err := db.View(ctx, noop); !errors.Is(err, errClosed) {
		t.Errorf("View() after Close error = %v, want %v", err, errClosed)
	}
	if err := db.Update(ctx, noop); !errors.Is(err, errClosed) {
		t.Errorf("Update() after Close error = %v, want %v", err, errClosed)
	}
	if err := db.AppendRecord(ctx, &chat.Record{Conv: "g:x"}, 0); !errors.Is(err, errClosed) {
		t.Errorf("AppendRecord() after Close error = %v, want %v", err, errClosed)
	}
	if _, err := db.Records(ctx, "g:x", 10, 0, 10); !errors.Is(err, errClosed) {
		t.Errorf("Records() after Close error = %v, want %v", err, errClosed)
	}
	if err := db.DeleteRecords(ctx, "g:x"); !errors.Is(err, errClosed) {
		t.Errorf("DeleteRecords() after Close error = %v, want %v", err, errClosed)
	}
}

// Ensure a canceled context stops every method before it starts.
func TestDB_ContextCanceled(t *testing.T) {
	db := newTestDB(t)
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
func TestDB_UpdateRollback(t *testing.T) {
	db := newTestDB(t)
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
func TestDB_ViewReadOnly(t *testing.T) {
	db := newTestDB(t)
	err := db.View(context.Background(), func(tx chat.Tx) error {
		return tx.PutUser(&chat.UserRecord{ID: "alice"})
	})
	if err == nil || chat.ErrorCode(err) != chat.CodeDatabase {
		t.Fatalf("PutUser() in View error = %v, want a database error", err)
	}
}

// Ensure a write conflict re-runs fn on a fresh snapshot, so a
// read-modify-write loses no update.
func TestDB_UpdateRetriesConflict(t *testing.T) {
	db := newTestDB(t)
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
func TestDB_UpdateConcurrentCounter(t *testing.T) {
	db := newTestDB(t)
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

// Ensure everything survives a close and reopen of the same directory, and
// sequence numbers continue where they stopped.
func TestDB_Reopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := openTestDB(t, dir)
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

	db = openTestDB(t, dir)
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

// Ensure Badger's log lines reach the zerolog logger at the mapped levels.
func TestBadgerLogger(t *testing.T) {
	var sb strings.Builder
	l := badgerLogger{zerolog.New(&sb).Level(zerolog.WarnLevel)}
	l.Errorf("boom %d\n", 1)
	l.Warningf("careful")
	l.Infof("chatty")
	l.Debugf("chattier")
	out := sb.String()
	if !strings.Contains(out, `"level":"error"`) || !strings.Contains(out, `"message":"boom 1"`) {
		t.Errorf("error line missing: %s", out)
	}
	if !strings.Contains(out, `"level":"warn"`) {
		t.Errorf("warning line missing: %s", out)
	}
	if strings.Contains(out, "chatty") || strings.Contains(out, "chattier") {
		t.Errorf("info/debug lines logged at level warn: %s", out)
	}
	// The zero logger discards everything without panicking.
	badgerLogger{}.Errorf("dropped")
}
