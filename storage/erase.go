package storage

import (
	"context"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

// Erasure (chat.EraseStore): what is left of a user once its context,
// friendships, memberships and strangers are gone.

// DeleteUser removes a user context; a missing one is no error.
func (t *tx) DeleteUser(id string) error {
	if badPart(id) {
		return nil
	}
	return t.del(key(tagUser, id), "user", id)
}

// DeleteStranger removes one direction of a stranger association.
func (t *tx) DeleteStranger(uid, other string) error {
	if badPart(uid) || badPart(other) {
		return nil
	}
	return t.del(key(tagStranger, uid, other), "stranger", uid+"-"+other)
}

// ForgetReader removes every read cursor and conversation-list entry of
// reader (cr␀<reader>␀*, ca␀<reader>␀*).
func (db *DB) ForgetReader(ctx context.Context, reader string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if badPart(reader) {
		return nil
	}
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()
	db.barrier()
	return db.deletePrefixes(fmt.Sprintf("reader %q", reader), prefix(tagReadCursor, reader), activityPrefix(reader))
}

// ForgetConversation removes every trace of a two-party conversation:
// its records (DeleteRecords), its cursor, and its parties' read cursors
// and conversation-list entries. Unlike DeleteRecords, the numbering
// starts again at 1 if the conversation is ever resumed.
func (db *DB) ForgetConversation(ctx context.Context, conv chat.Conv) error {
	if err := db.DeleteRecords(ctx, conv); err != nil {
		return err
	}
	a, b, ok := conv.Sides()
	if !ok || badPart(string(conv)) {
		return nil
	}
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()
	st := db.acquire(conv)
	defer db.release(st)
	st.mu.Lock()
	defer st.mu.Unlock()
	db.barrier()
	wb := db.bdb.NewWriteBatch()
	err := db.bdb.View(func(txn *badger.Txn) error {
		_, _, cs, err := getCursorSync(txn, conv)
		if err != nil {
			return err
		}
		keys := [][]byte{cursorKey(conv)}
		for _, side := range []string{a, b} {
			if badPart(side) {
				continue
			}
			keys = append(keys, readCursorKey(side, conv))
			if cs.idxTS != noIndex && !strings.HasPrefix(side, "passenger:") {
				keys = append(keys, activityKey(side, cs.idxTS, conv))
			}
		}
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = wb.Flush()
	} else {
		wb.Cancel()
	}
	st.loaded = false // the cursor is gone: reload (as none) on the next append
	if err != nil {
		return fmt.Errorf("storage: forget conversation %q: %w", conv, err)
	}
	return nil
}

// deletePrefixes deletes every key under the prefixes.
func (db *DB) deletePrefixes(what string, prefixes ...[]byte) error {
	wb := db.bdb.NewWriteBatch()
	err := db.bdb.View(func(txn *badger.Txn) error {
		for _, p := range prefixes {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
			for it.Rewind(); it.Valid(); it.Next() {
				if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
					it.Close()
					return err
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		wb.Cancel()
		return fmt.Errorf("storage: delete %s: %w", what, err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("storage: delete %s: %w", what, err)
	}
	return nil
}

// Keys calls fn with every key of the store, in order (diagnostics and
// the erasure tests' trace scan). Values are not read.
func (db *DB) Keys(ctx context.Context, fn func(key string) error) error {
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()
	db.barrier()
	return db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(string(it.Item().Key())); err != nil {
				return err
			}
		}
		return nil
	})
}
