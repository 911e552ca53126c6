package chat

import "context"

// SessionStore keeps the MQTT sessions of persistent clients (their state
// and the events queued for them while disconnected) across restarts. The
// store treats values as opaque bytes; the real-time layer encodes them.
type SessionStore interface {
	// SaveSessions applies ops in order. Each op is atomic; a failed op
	// stops the rest.
	SaveSessions(ctx context.Context, ops []SessionOp) error
	// LoadSessions calls fn for every stored session, in client id order,
	// with its events in key order.
	LoadSessions(ctx context.Context, fn func(StoredSession) error) error
	// LoadSession returns the stored session of one client id, with its
	// events in key order; ok is false when none is stored. A cluster node
	// reads it to take over a session another node held.
	LoadSession(ctx context.Context, clientID string) (s StoredSession, ok bool, err error)
}

// SessionOpKind says what a [SessionOp] does.
type SessionOpKind uint8

const (
	// SessionPut replaces the session's state with Data and drops its
	// events.
	SessionPut SessionOpKind = iota + 1
	// SessionDrop deletes the session and its events.
	SessionDrop
	// SessionPutEvent stores event Key of the session as Data.
	SessionPutEvent
	// SessionDropEvent deletes event Key of the session.
	SessionDropEvent
)

// SessionOp is one change to the stored sessions.
type SessionOp struct {
	Kind     SessionOpKind
	ClientID string
	Key      uint64
	Data     []byte
}

// SessionEvent is a stored event of a session.
type SessionEvent struct {
	Key  uint64
	Data []byte
}

// StoredSession is a session as [SessionStore.LoadSessions] returns it.
type StoredSession struct {
	ClientID string
	State    []byte
	Events   []SessionEvent
}
