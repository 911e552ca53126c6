package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/chat"
)

// MQTT sessions (chat.SessionStore): mqtt_sessions holds the state of a
// persistent session, mqtt_session_events the events queued for it; both
// are opaque bytes here.

// eventKey maps an event key to bigint keeping its order: the sign bit is
// flipped, so unsigned order is signed order.
func eventKey(k uint64) int64 { return int64(k ^ (1 << 63)) }

func eventKeyOf(v int64) uint64 { return uint64(v) ^ (1 << 63) }

// SaveSessions implements chat.SessionStore: the ops run in order in one
// transaction, sent as one batch.
func (db *DB) SaveSessions(ctx context.Context, ops []chat.SessionOp) error {
	if err := db.enter(ctx); err != nil {
		return err
	}
	for _, op := range ops {
		if err := checkParts("client", op.ClientID); err != nil {
			return err
		}
		if op.Kind < chat.SessionPut || op.Kind > chat.SessionDropEvent {
			return fmt.Errorf("postgres: unknown session op %d", op.Kind)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db.pool, func(ptx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, op := range ops {
			switch op.Kind {
			case chat.SessionPut:
				b.Queue(`DELETE FROM mqtt_session_events WHERE client_id = $1`, op.ClientID)
				b.Queue(`INSERT INTO mqtt_sessions (client_id, state) VALUES ($1, $2)
					ON CONFLICT (client_id) DO UPDATE SET state = EXCLUDED.state`, op.ClientID, nonNil(op.Data))
			case chat.SessionDrop:
				b.Queue(`DELETE FROM mqtt_session_events WHERE client_id = $1`, op.ClientID)
				b.Queue(`DELETE FROM mqtt_sessions WHERE client_id = $1`, op.ClientID)
			case chat.SessionPutEvent:
				b.Queue(`INSERT INTO mqtt_session_events (client_id, key, data) VALUES ($1, $2, $3)
					ON CONFLICT (client_id, key) DO UPDATE SET data = EXCLUDED.data`, op.ClientID, eventKey(op.Key), nonNil(op.Data))
			case chat.SessionDropEvent:
				b.Queue(`DELETE FROM mqtt_session_events WHERE client_id = $1 AND key = $2`, op.ClientID, eventKey(op.Key))
			}
		}
		return ptx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: save sessions: %w", err)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// LoadSessions implements chat.SessionStore. Sessions and events are read
// in one snapshot; events whose session has no state (written after their
// session was dropped) are deleted afterwards.
func (db *DB) LoadSessions(ctx context.Context, fn func(chat.StoredSession) error) error {
	if err := db.enter(ctx); err != nil {
		return err
	}
	var sessions []chat.StoredSession
	orphans := false
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ptx pgx.Tx) error {
		rows, err := ptx.Query(ctx, `SELECT client_id, state FROM mqtt_sessions ORDER BY client_id`)
		if err != nil {
			return err
		}
		var id string
		var state []byte
		if _, err := pgx.ForEachRow(rows, []any{&id, &state}, func() error {
			sessions = append(sessions, chat.StoredSession{ClientID: id, State: append([]byte(nil), state...)})
			return nil
		}); err != nil {
			return err
		}
		known := make(map[string]*chat.StoredSession, len(sessions))
		for i := range sessions {
			known[sessions[i].ClientID] = &sessions[i]
		}
		rows, err = ptx.Query(ctx, `SELECT client_id, key, data FROM mqtt_session_events ORDER BY client_id, key`)
		if err != nil {
			return err
		}
		var key int64
		var data []byte
		_, err = pgx.ForEachRow(rows, []any{&id, &key, &data}, func() error {
			s := known[id]
			if s == nil {
				orphans = true
				return nil
			}
			s.Events = append(s.Events, chat.SessionEvent{Key: eventKeyOf(key), Data: append([]byte(nil), data...)})
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: load sessions: %w", err)
	}
	for _, s := range sessions {
		if err := fn(s); err != nil {
			return err
		}
	}
	if orphans {
		if _, err := db.pool.Exec(ctx, `DELETE FROM mqtt_session_events e
			WHERE NOT EXISTS (SELECT 1 FROM mqtt_sessions s WHERE s.client_id = e.client_id)`); err != nil {
			return fmt.Errorf("postgres: delete orphan session events: %w", err)
		}
	}
	return nil
}

// LoadSession implements chat.SessionStore: the state and the events in
// one snapshot.
func (db *DB) LoadSession(ctx context.Context, clientID string) (chat.StoredSession, bool, error) {
	s := chat.StoredSession{ClientID: clientID}
	if err := checkParts("client", clientID); err != nil {
		return s, false, err
	}
	if err := db.enter(ctx); err != nil {
		return s, false, err
	}
	found := false
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ptx pgx.Tx) error {
		s.State, s.Events = nil, nil
		err := ptx.QueryRow(ctx, `SELECT state FROM mqtt_sessions WHERE client_id = $1`, clientID).Scan(&s.State)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		rows, err := ptx.Query(ctx, `SELECT key, data FROM mqtt_session_events WHERE client_id = $1 ORDER BY key`, clientID)
		if err != nil {
			return err
		}
		var key int64
		var data []byte
		_, err = pgx.ForEachRow(rows, []any{&key, &data}, func() error {
			s.Events = append(s.Events, chat.SessionEvent{Key: eventKeyOf(key), Data: append([]byte(nil), data...)})
			return nil
		})
		return err
	})
	if err != nil {
		return chat.StoredSession{ClientID: clientID}, false, fmt.Errorf("postgres: load session: %w", err)
	}
	if !found {
		return chat.StoredSession{ClientID: clientID}, false, nil
	}
	return s, true, nil
}
