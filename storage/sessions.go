package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

// MQTT sessions (chat.SessionStore): the state of a persistent session and
// the events queued for it, both opaque here.
const (
	tagSession      = "ms" // ms␀<client id>            → session state
	tagSessionEvent = "me" // me␀<client id>␀<key:8>   → queued event
)

var _ chat.SessionStore = (*DB)(nil)

func sessionEventKey(clientID string, k uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix(tagSessionEvent, clientID), k)
}

// SaveSessions implements chat.SessionStore. The ops share transactions,
// as many as fit in one Badger transaction.
func (db *DB) SaveSessions(ctx context.Context, ops []chat.SessionOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()

	txn := db.bdb.NewTransaction(true)
	defer func() { txn.Discard() }()
	for i := 0; i < len(ops); {
		err := applySessionOp(txn, ops[i])
		if errors.Is(err, badger.ErrTxnTooBig) {
			// Commit what fits and redo this op in a fresh transaction.
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("storage: commit sessions: %w", err)
			}
			txn = db.bdb.NewTransaction(true)
			continue
		}
		if err != nil {
			return err
		}
		i++
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("storage: commit sessions: %w", err)
	}
	return nil
}

func applySessionOp(txn *badger.Txn, op chat.SessionOp) error {
	if err := checkParts("client", op.ClientID); err != nil {
		return err
	}
	dropEvents := func() error { return deletePrefix(txn, prefix(tagSessionEvent, op.ClientID)) }
	switch op.Kind {
	case chat.SessionPut:
		if err := dropEvents(); err != nil {
			return err
		}
		return txn.Set(key(tagSession, op.ClientID), op.Data)
	case chat.SessionDrop:
		if err := dropEvents(); err != nil {
			return err
		}
		return txn.Delete(key(tagSession, op.ClientID))
	case chat.SessionPutEvent:
		return txn.Set(sessionEventKey(op.ClientID, op.Key), op.Data)
	case chat.SessionDropEvent:
		return txn.Delete(sessionEventKey(op.ClientID, op.Key))
	}
	return fmt.Errorf("storage: unknown session op %d", op.Kind)
}

// LoadSessions implements chat.SessionStore. Events whose session has no
// state (an event written after its session was dropped) are deleted.
func (db *DB) LoadSessions(ctx context.Context, fn func(chat.StoredSession) error) error {
	var orphans [][]byte
	err := db.View(ctx, func(ctx chat.Tx) error {
		t := ctx.(*tx)
		var sessions []chat.StoredSession
		err := t.scan(prefix(tagSession), false, func(k, val []byte) error {
			sessions = append(sessions, chat.StoredSession{ClientID: lastPart(k), State: bytes.Clone(val)})
			return nil
		})
		if err != nil {
			return err
		}
		known := map[string]*chat.StoredSession{}
		for i := range sessions {
			known[sessions[i].ClientID] = &sessions[i]
		}
		p := prefix(tagSessionEvent)
		err = t.scan(p, false, func(k, val []byte) error {
			rest := k[len(p):]
			if len(rest) < 9 {
				return nil
			}
			s := known[string(rest[:len(rest)-9])]
			if s == nil {
				orphans = append(orphans, bytes.Clone(k))
				return nil
			}
			s.Events = append(s.Events, chat.SessionEvent{Key: binary.BigEndian.Uint64(rest[len(rest)-8:]), Data: bytes.Clone(val)})
			return nil
		})
		if err != nil {
			return err
		}
		for _, s := range sessions {
			if err := fn(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(orphans) == 0 {
		return err
	}
	return db.bdb.Update(func(txn *badger.Txn) error {
		for _, k := range orphans {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// LoadSession implements chat.SessionStore.
func (db *DB) LoadSession(ctx context.Context, clientID string) (chat.StoredSession, bool, error) {
	s := chat.StoredSession{ClientID: clientID}
	found := false
	if err := checkParts("client", clientID); err != nil {
		return s, false, err
	}
	err := db.View(ctx, func(ctx chat.Tx) error {
		t := ctx.(*tx)
		item, err := t.txn.Get(key(tagSession, clientID))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if s.State, err = item.ValueCopy(nil); err != nil {
			return err
		}
		found = true
		p := prefix(tagSessionEvent, clientID)
		return t.scan(p, false, func(k, val []byte) error {
			if rest := k[len(p):]; len(rest) == 8 {
				s.Events = append(s.Events, chat.SessionEvent{Key: binary.BigEndian.Uint64(rest), Data: bytes.Clone(val)})
			}
			return nil
		})
	})
	if err != nil || !found {
		return chat.StoredSession{ClientID: clientID}, false, err
	}
	return s, true, nil
}
