package chat

import (
	"context"
	"time"
)

// Store is the persistent state of the app. storage.DB implements it on
// Badger, storage/postgres on PostgreSQL; chat/storetest is the contract
// both pass, and another engine can take over by passing it too.
//
// Every method returns *Error values for domain conditions (CodeNotFound) and
// wraps engine failures as plain errors (reported as CodeDatabase).
type Store interface {
	// View runs fn in a read-only, consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error

	// Update runs fn in a read-write transaction: every write fn makes
	// commits atomically, or none does. On a write conflict with a concurrent
	// transaction fn is run again on a fresh snapshot, so fn must not have
	// side effects outside tx.
	Update(ctx context.Context, fn func(Tx) error) error

	// AppendRecord stores rec in rec.Conv and assigns rec.Seq, the next
	// sequence number of the conversation (1, 2, ...). rec.TS is raised to
	// one past the conversation's latest TS if it is not newer, so TS is
	// strictly increasing within a conversation (a TS cursor pages without
	// loss) and (TS, Seq) order equals append order. The append also keeps
	// the conversation index of its parties and moves the speaker's read
	// cursor (SyncStore) to the new Seq, in the same commit. The
	// record expires ttl after rec.TS (0: never). When AppendRecord returns
	// nil the record is durable to the configured sync level.
	AppendRecord(ctx context.Context, rec *Record, ttl time.Duration) error

	// Records returns at most limit records of conv with notBefore <= TS <
	// before: the latest ones, in ascending (TS, Seq) order. It costs a
	// bounded seek, not a scan, whatever the size of the store.
	Records(ctx context.Context, conv Conv, before, notBefore int64, limit int) ([]Record, error)

	// DeleteRecords removes every record of conv. The sequence counter is
	// kept: records appended later continue the numbering, so a client that
	// syncs "since seq N" never sees a number reused.
	DeleteRecords(ctx context.Context, conv Conv) error

	// UpdateRecord calls fn with the stored record seq of conv and, when fn
	// returns nil, stores the record as fn left it, with its key and
	// expiry unchanged (TS and Seq cannot change). A non-nil prior is an
	// earlier version kept in the record's edit list; a recalled record
	// drops its content, remark and edit list. fn may run more than once
	// (write conflicts). CodeNotFound when no such record is stored.
	UpdateRecord(ctx context.Context, conv Conv, seq uint64, fn func(rec *Record) (prior *Edit, err error)) error

	// RecordEdits returns the earlier versions of record seq of conv,
	// oldest first. CodeNotFound when no such record is stored.
	RecordEdits(ctx context.Context, conv Conv, seq uint64) ([]Edit, error)

	// Close flushes and closes the store.
	Close() error

	// ForgetReader removes every read cursor and conversation-list entry
	// of a reader (EraseUser).
	ForgetReader(ctx context.Context, reader string) error
	// ForgetConversation removes a two-party conversation: its records,
	// its cursor (the numbering starts again) and its parties' read
	// cursors and conversation-list entries (EraseUser with history).
	ForgetConversation(ctx context.Context, conv Conv) error

	SyncStore
}

// Tx is one transaction of a [Store]. Getters return an error with
// CodeNotFound when the object does not exist. Returned objects are copies
// the caller may change and Put back.
type Tx interface {
	// User returns the stored user context.
	User(id string) (*UserRecord, error)
	// PutUser creates or replaces a user context.
	PutUser(u *UserRecord) error
	// Users calls fn for every user in id order until fn returns an error.
	Users(fn func(*UserRecord) error) error

	// Friendship returns the friendship of a and b, in either order.
	Friendship(a, b string) (*Friendship, error)
	// PutFriendship stores f so that both f.From and f.To see it.
	PutFriendship(f *Friendship) error
	// DeleteFriendship removes the friendship of a and b; a missing one is no error.
	DeleteFriendship(a, b string) error
	// Friendships returns the friendships of uid, ordered by TS ascending.
	Friendships(uid string) ([]*Friendship, error)

	// MemberList returns group or room id; the result's Kind is kind.
	MemberList(kind ListKind, id string) (*MemberList, error)
	// PutMemberList creates or replaces l, a list of kind l.Kind, and keeps
	// the member index (owner and members) in step with it.
	PutMemberList(l *MemberList) error
	// PutGroup and PutRoom are PutMemberList with the kind set, for code
	// that builds a Group or Room value.
	PutGroup(g *Group) error
	PutRoom(r *Room) error
	// DeleteMemberList removes a list and its index entries; missing is no
	// error.
	DeleteMemberList(kind ListKind, id string) error
	// MemberLists calls fn for every list of kind in id order until fn
	// returns an error.
	MemberLists(kind ListKind, fn func(*MemberList) error) error
	// MemberListIDsOf returns the ids of the lists of kind uid owns or is a
	// member of.
	MemberListIDsOf(kind ListKind, uid string) ([]string, error)

	// Passenger returns a passenger.
	Passenger(id string) (*PassengerRecord, error)
	// PutPassenger creates or replaces a passenger.
	PutPassenger(p *PassengerRecord) error

	// Stranger returns the association of uid with other.
	Stranger(uid, other string) (*Stranger, error)
	// PutStranger creates or replaces one direction of an association.
	PutStranger(s *Stranger) error
	// Strangers returns the associations of uid, latest Last first.
	Strangers(uid string) ([]*Stranger, error)
	// DeleteStranger removes one direction of an association; missing is
	// no error.
	DeleteStranger(uid, other string) error
	// DeleteUser removes a user context; missing is no error.
	DeleteUser(id string) error

	// Account returns the access state of an identity (key
	// Identity.String()); CodeNotFound when none is stored.
	Account(id string) (*Account, error)
	// PutAccount creates or replaces an access state.
	PutAccount(a *Account) error
}
