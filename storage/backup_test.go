package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
)

// Ensure a backup taken while writers append holds every record appended
// before it started, that the restored store continues the sequence, and
// that the meta travels with it.
func TestBackup_RestoreUnderWrites(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	mustUpdate(t, db, func(tx chat.Tx) error {
		return tx.PutUser(&chat.UserRecord{ID: "alice", Created: 1})
	})
	conv := chat.GroupConv("g1")
	for i := range 500 {
		mustAppend(t, db, conv, "alice", int64(1000+i), 0)
	}

	// Writers keep appending during the backup.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other := chat.GroupConv("busy" + string(rune('a'+w)))
			for !stop.Load() {
				rec := chat.Record{Conv: other, Speaker: "bob", Content: chat.Content{Body: "x"}, TS: 1}
				if err := db.AppendRecord(ctx, &rec, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var buf bytes.Buffer
	err := db.Backup(ctx, &buf, []byte(`{"app":"x"}`))
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup() error = %v", err)
	}
	file := buf.Bytes()
	if meta, err := VerifyBackup(bytes.NewReader(file)); err != nil || string(meta) != `{"app":"x"}` {
		t.Fatalf("VerifyBackup() = %q, %v", meta, err)
	}

	dir := filepath.Join(t.TempDir(), "db")
	meta, err := Restore(ctx, Options{Dir: dir, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}, bytes.NewReader(file))
	if err != nil || string(meta) != `{"app":"x"}` {
		t.Fatalf("Restore() = %q, %v", meta, err)
	}
	restored := openTestDB(t, dir)
	recs := mustRecords(t, restored, conv, 1<<40, 0, 1000)
	if len(recs) != 500 || recs[0].Seq != 1 || recs[499].Seq != 500 {
		t.Fatalf("restored %d records (first %+v), want seq 1..500", len(recs), recs[0])
	}
	mustView(t, restored, func(tx chat.Tx) error {
		if u, err := tx.User("alice"); err != nil || u.Created != 1 {
			t.Errorf("User() = %+v, %v", u, err)
		}
		return nil
	})
	if rec := mustAppend(t, restored, conv, "alice", 5000, 0); rec.Seq != 501 {
		t.Errorf("append after restore: seq %d, want 501", rec.Seq)
	}

	// A non-empty directory is refused and left alone.
	if _, err := Restore(ctx, Options{Dir: dir}, bytes.NewReader(file)); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Restore(non-empty) error = %v", err)
	}
}

// Ensure a foreign, truncated, damaged or newer-version file is refused and
// leaves nothing behind.
func TestRestore_RefusesBadFiles(t *testing.T) {
	db := newTestDB(t)
	mustAppend(t, db, chat.GroupConv("g"), "alice", 1, 0)
	var buf bytes.Buffer
	if err := db.Backup(context.Background(), &buf, nil); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	flip := bytes.Clone(good)
	flip[len(flip)-40] ^= 1 // inside the last frame
	newer := bytes.Clone(good)
	newer[len(backupMagic)] = 2
	cases := map[string][]byte{
		"Foreign":   []byte("PK\x03\x04 this is a zip file, not a backup"),
		"Empty":     nil,
		"Truncated": good[:len(good)-33],
		"NoEnd":     good[:len(good)-36],
		"Flipped":   flip,
		"Newer":     newer,
		"Trailing":  append(bytes.Clone(good), 0),
	}
	for name, file := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := VerifyBackup(bytes.NewReader(file)); err == nil {
				t.Errorf("VerifyBackup() error = nil")
			}
			dir := filepath.Join(t.TempDir(), "db")
			_, err := Restore(context.Background(), Options{Dir: dir}, bytes.NewReader(file))
			if err == nil {
				t.Fatalf("Restore() error = nil")
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("Restore() left %d entries in %s after %v", len(entries), dir, err)
			}
		})
	}
}

// Ensure Open reports a directory held by another process as ErrLocked
// (cmd/mqim's backup then asks the server instead).
func TestOpen_LockedIsErrLocked(t *testing.T) {
	dir := t.TempDir()
	openTestDB(t, dir)
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open(locked) error = %v, want ErrLocked", err)
	}
}

// Ensure a cancelled backup stops with the context's error.
func TestBackup_Cancelled(t *testing.T) {
	db := newTestDB(t)
	mustAppend(t, db, chat.GroupConv("g"), "alice", 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	if err := db.Backup(ctx, &buf, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Backup(cancelled) error = %v, want context.Canceled", err)
	}
	if _, err := VerifyBackup(&buf); err == nil {
		t.Fatal("the partial output of a cancelled backup verifies")
	}
}

// Ensure a backup is one snapshot: transactions that each write two keys
// at opposite ends of the key space, committed all through the backup,
// are in it whole or not at all. Badger's Stream splits the key space
// into ranges and each producer goroutine reads at its own timestamp;
// Backup uses one producer. The window between two producers' starts is
// tiny, so this invariant check rarely catches two producers (it did not
// in 5 runs): the guarantee is by construction, the test keeps it honest.
func TestBackup_OneSnapshot(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	// Enough data on disk, in tables, for Badger to split the key space.
	pad := bytes.Repeat([]byte("x"), 512)
	for batch := range 10 {
		txn := db.bdb.NewTransaction(true)
		for i := range 500 {
			k := fmt.Sprintf("%c/pad/%05d", 'b'+byte((batch*500+i)%24), batch*500+i)
			if err := txn.Set([]byte(k), pad); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; !stop.Load(); n++ {
			txn := db.bdb.NewTransaction(true)
			v := []byte(fmt.Sprint(n))
			if err := errors.Join(txn.Set([]byte(fmt.Sprintf("a/pair/%08d", n)), v), txn.Set([]byte(fmt.Sprintf("z/pair/%08d", n)), v)); err != nil {
				t.Error(err)
				return
			}
			if err := txn.Commit(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var buf bytes.Buffer
	err := db.Backup(context.Background(), &buf, nil)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	rdir := filepath.Join(t.TempDir(), "db")
	if _, err := Restore(context.Background(), Options{Dir: rdir}, &buf); err != nil {
		t.Fatal(err)
	}
	restored := openTestDB(t, rdir)
	count := func(prefix string) map[string]bool {
		got := map[string]bool{}
		txn := restored.bdb.NewTransaction(false)
		defer txn.Discard()
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			got[strings.TrimPrefix(string(it.Item().Key()), prefix)] = true
		}
		return got
	}
	a, z := count("a/pair/"), count("z/pair/")
	for k := range a {
		if !z[k] {
			t.Errorf("pair %s: first half in the backup, second not", k)
		}
	}
	for k := range z {
		if !a[k] {
			t.Errorf("pair %s: second half in the backup, first not", k)
		}
	}
	t.Logf("%d whole pairs in the backup", len(a))
}
