package chat

import (
	"context"
	"strings"
)

// SyncStore is the part of [Store] behind history catch-up, the
// conversation list and read cursors. A reader is named by [ReaderKey].
type SyncStore interface {
	// RecordsAfter returns at most limit records of conv with Seq > after
	// and TS >= notBefore, oldest first. It costs a bounded seek.
	RecordsAfter(ctx context.Context, conv Conv, after uint64, notBefore int64, limit int) ([]Record, error)

	// Conversations returns at most limit conversations of user uid whose
	// latest record has TS < before, newest first: its friend, stranger and
	// passenger conversations and the groups it belongs to that have a
	// message. Kind, ID and Unread are left to the caller.
	Conversations(ctx context.Context, uid string, before int64, limit int) ([]Conversation, error)

	// LatestSeq returns the Seq and TS of the latest record appended to conv
	// (0, 0 when there is none).
	LatestSeq(ctx context.Context, conv Conv) (seq uint64, ts int64, err error)

	// MarkRead moves the read cursor of reader in conv to seq, clamped to
	// the latest Seq, if that is forward. It returns the cursor after the
	// call and whether it moved.
	MarkRead(ctx context.Context, reader string, conv Conv, seq uint64) (cur uint64, moved bool, err error)

	// ReadCursors returns the read cursor in conv of each reader (0: none).
	ReadCursors(ctx context.Context, conv Conv, readers []string) ([]uint64, error)
}

// Conversation is one entry of a user's conversation list.
type Conversation struct {
	Conv   Conv    `json:"-"`
	Kind   string  `json:"kind"`
	ID     string  `json:"id"`
	Seq    uint64  `json:"seq"`
	Read   uint64  `json:"read"`
	Unread uint64  `json:"unread"`
	TS     int64   `json:"ts"`
	Last   *Record `json:"last"`
}

// ReaderKey names the owner of a read cursor: a user by its id, a
// passenger as "passenger:<id>" (user ids cannot contain ':').
func ReaderKey(id Identity) string {
	if id.Kind == KindPassenger {
		return "passenger:" + id.ID
	}
	return id.ID
}

// Sides returns the reader keys of the two parties of a friend, stranger or
// passenger conversation; ok is false for groups.
func (c Conv) Sides() (a, b string, ok bool) {
	if len(c) < 2 || c[1] != ':' {
		return "", "", false
	}
	x, y, found := strings.Cut(string(c[2:]), "|")
	if !found {
		return "", "", false
	}
	switch c[0] {
	case 'f', 's':
		return x, y, true
	case 'p':
		return ReaderKey(Passenger(x)), y, true
	}
	return "", "", false
}

// View returns the kind and id under which uid sees conv ("" when uid is
// not a party of it).
func (c Conv) View(uid string) (kind, id string) {
	if len(c) < 2 || c[1] != ':' {
		return "", ""
	}
	rest := string(c[2:])
	if c[0] == 'g' {
		return ConvGroup, rest
	}
	x, y, ok := strings.Cut(rest, "|")
	if !ok {
		return "", ""
	}
	switch c[0] {
	case 'f', 's':
		kind = ConvFriend
		if c[0] == 's' {
			kind = ConvStranger
		}
		switch uid {
		case x:
			return kind, y
		case y:
			return kind, x
		}
	case 'p':
		if uid == y {
			return ConvPassenger, x
		}
	}
	return "", ""
}

// Conversations returns the conversation list of user uid (newest
// activity first, latest record before the cutoff before; 0 means now):
// friend, stranger and passenger chats and groups with a message, each with
// uid's read cursor and unread count. limit ≤ 0 is 50, at most 100.
//
// unread is Seq − read: one's own messages move one's own cursor, so every
// record past it is someone else's (a Seq gap left by a failed write, or a
// cleared group history, counts as unread until read).
func (s *Service) Conversations(ctx context.Context, uid string, before int64, limit int) ([]Conversation, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxListLimit)
	if before <= 0 {
		before = maxTS
	} else if before < secondsCutoffMillis {
		before *= 1000
	}
	list, err := s.store.Conversations(ctx, uid, before, limit)
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for _, c := range list {
		c.Kind, c.ID = c.Conv.View(uid)
		if c.Kind == "" {
			continue
		}
		if c.Seq > c.Read {
			c.Unread = c.Seq - c.Read
		}
		out = append(out, c)
	}
	return out, nil
}

const maxTS = int64(^uint64(0) >> 1)
