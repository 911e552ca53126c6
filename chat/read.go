package chat

import (
	"context"
	"encoding/json"
)

// Events of read cursors.
const (
	// EventRead goes to every session of the reader: its cursor moved.
	EventRead = "read"
	// EventReceipt goes to the other party of a friend, stranger or
	// passenger conversation: the reader has read up to seq.
	EventReceipt = "receipt"
)

// ReadEvent is the payload of the read event.
type ReadEvent struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
}

// ReceiptEvent is the payload of the receipt event; ID is the reader.
type ReceiptEvent struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
	TS   int64  `json:"ts"`
}

// GroupReads lists who of a group has read a message.
type GroupReads struct {
	Read   []string `json:"read"`
	Unread []string `json:"unread"`
}

// ParseRead parses a read payload {"seq":N}, N ≥ 0.
func ParseRead(payload []byte) (uint64, error) {
	var raw struct {
		Seq json.RawMessage `json:"seq"`
	}
	obj, err := jsonObject(payload)
	if err == nil {
		err = json.Unmarshal(obj, &raw)
	}
	if err != nil || isNull(raw.Seq) {
		return 0, Errorf(CodeInvalid, `read payload must be {"seq":N}`)
	}
	n, ok := jsonInt(raw.Seq)
	if !ok || n < 0 {
		return 0, Errorf(CodeInvalid, "seq must be a non-negative integer")
	}
	return uint64(n), nil
}

// readTarget is a conversation resolved for a reader.
type readTarget struct {
	conv Conv
	// peer gets the receipt, named kind/id from its side; nil for groups.
	peer             *Identity
	peerKind, peerID string
}

// resolveRead checks that reader may read kind/id, under the rules of a
// say to the same target (a friend, a member of the group, an existing
// stranger, passenger or user), and returns the conversation.
func (s *Service) resolveRead(ctx context.Context, reader Identity, kind, id string) (readTarget, error) {
	var t readTarget
	if !ValidID(reader.ID) {
		return t, Errorf(CodeInvalid, "invalid reader id %q", truncate(reader.ID, 64))
	}
	if !ValidID(id) {
		return t, Errorf(CodeInvalid, "invalid conversation id %q", truncate(id, 64))
	}
	exists := func(what string, get func(Tx) error) error {
		if err := s.store.View(ctx, get); err != nil {
			return notFound(err, what, id)
		}
		return nil
	}
	if reader.Kind == KindPassenger {
		if kind != ConvUser {
			return t, Errorf(CodeUnauthorized, "a passenger may only read its chats with users")
		}
		if err := exists("user", func(tx Tx) error { _, err := tx.User(id); return err }); err != nil {
			return t, err
		}
		p := User(id)
		return readTarget{conv: PassengerConv(reader.ID, id), peer: &p, peerKind: ConvPassenger, peerID: reader.ID}, nil
	}
	if reader.Kind != KindUser {
		return t, Errorf(CodeUnauthorized, "unknown reader")
	}
	switch kind {
	case ConvFriend:
		if id == reader.ID {
			return t, Errorf(CodeConflict, "cannot read a chat with oneself")
		}
		t.conv = FriendConv(reader.ID, id)
		mu := s.lockKey(string(t.conv))
		mu.RLock()
		err := s.areFriends(ctx, t.conv, reader.ID, id)
		mu.RUnlock()
		if err != nil {
			return t, err
		}
	case ConvGroup:
		mu := s.lockKey(GroupList.lockKey(id))
		mu.RLock()
		g, err := s.listMembers(ctx, GroupList, id)
		mu.RUnlock()
		if err != nil {
			return t, notFound(err, "group", id)
		}
		if !g.HasMember(reader.ID) {
			return t, Errorf(CodeUnauthorized, "%s is not a member of group %s", reader.ID, id)
		}
		return readTarget{conv: GroupConv(id)}, nil
	case ConvStranger:
		if id == reader.ID {
			return t, Errorf(CodeConflict, "cannot read a chat with oneself")
		}
		if err := exists("user", func(tx Tx) error { _, err := tx.User(id); return err }); err != nil {
			return t, err
		}
		t.conv = StrangerConv(reader.ID, id)
	case ConvPassenger:
		if err := exists("passenger", func(tx Tx) error { _, err := tx.Passenger(id); return err }); err != nil {
			return t, err
		}
		p := Passenger(id)
		return readTarget{conv: PassengerConv(id, reader.ID), peer: &p, peerKind: ConvUser, peerID: reader.ID}, nil
	default:
		return t, Errorf(CodeInvalid, "unknown conversation kind %q", truncate(kind, 32))
	}
	p := User(id)
	t.peer, t.peerKind, t.peerID = &p, kind, reader.ID
	return t, nil
}

// MarkRead moves reader's read cursor in its conversation kind/id (named
// from the reader's side) forward to seq, never past the latest message.
// When it moves, every session of the reader gets the read event and, in
// a friend, stranger or passenger chat, the other party gets a receipt.
// It returns the cursor after the call. Push is untouched.
func (s *Service) MarkRead(ctx context.Context, reader Identity, kind, id string, seq uint64) (uint64, error) {
	t, err := s.resolveRead(ctx, reader, kind, id)
	if err != nil {
		return 0, err
	}
	cur, moved, err := s.store.MarkRead(ctx, ReaderKey(reader), t.conv, seq)
	if err != nil || !moved {
		return cur, err
	}
	b, _ := json.Marshal(ReadEvent{Kind: kind, ID: id, Seq: cur})
	s.Publisher.Publish(reader, EventRead, b, "")
	if t.peer != nil {
		b, _ := json.Marshal(ReceiptEvent{Kind: t.peerKind, ID: t.peerID, Seq: cur, TS: s.nowMillis()})
		s.Publisher.Publish(*t.peer, EventReceipt, b, "")
	}
	return cur, nil
}

// ReadFromSession is MarkRead for a read publish (payload {"seq":N}) of a
// live session; a refusal also sends the error event to that session.
func (s *Service) ReadFromSession(ctx context.Context, reader Identity, session, kind, id string, payload []byte) error {
	seq, err := ParseRead(payload)
	if err == nil {
		_, err = s.MarkRead(ctx, reader, kind, id, seq)
	}
	if err != nil {
		s.sayRefused(reader, session, nil, err)
	}
	return err
}

// GroupReadsOf returns which members of group gid (owner and members now)
// have read its message seq: their cursor is at or past it. Returns
// CodeNotFound for an unknown group or a seq not yet handed out.
func (s *Service) GroupReadsOf(ctx context.Context, gid string, seq uint64) (GroupReads, error) {
	out := GroupReads{Read: []string{}, Unread: []string{}}
	g, err := s.MemberList(ctx, GroupList, gid)
	if err != nil {
		return out, err
	}
	conv := GroupConv(gid)
	latest, _, err := s.store.LatestSeq(ctx, conv)
	if err != nil {
		return out, err
	}
	if seq == 0 || seq > latest {
		return out, Errorf(CodeNotFound, "group %s has no message %d", gid, seq)
	}
	members := g.Everyone()
	curs, err := s.store.ReadCursors(ctx, conv, members)
	if err != nil {
		return out, err
	}
	for i, m := range members {
		if curs[i] >= seq {
			out.Read = append(out.Read, m)
		} else {
			out.Unread = append(out.Unread, m)
		}
	}
	return out, nil
}
