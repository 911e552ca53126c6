package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
