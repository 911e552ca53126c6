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

// resolveRead checks that reader may read ref, under the rules of a say
// to the same target (resolveConv: a friend, a member of the group, an
// existing stranger, passenger or user), and returns the conversation.
// Reads keep their own codes for a user naming a user/ conversation
// (CodeInvalid) or itself as a friend (CodeConflict).
func (s *Service) resolveRead(ctx context.Context, reader Identity, ref ConvRef) (convParties, error) {
	if !ValidID(reader.ID) {
		return convParties{}, Errorf(CodeInvalid, "invalid reader id %q", truncate(reader.ID, 64))
	}
	if reader.Kind == KindUser && ValidID(ref.ID) {
		switch {
		case ref.Kind == ConvUser:
			return convParties{}, Errorf(CodeInvalid, "unknown conversation kind %q", ref.Kind)
		case ref.Kind == ConvFriend && ref.ID == reader.ID:
			return convParties{}, Errorf(CodeConflict, "cannot read a chat with oneself")
		}
	}
	cp, unlock, err := s.resolveConv(ctx, reader, ref, true)
	unlock()
	return cp, err
}

// MarkRead moves reader's read cursor in its conversation kind/id (named
// from the reader's side) forward to seq, never past the latest message.
// When it moves, every session of the reader gets the read event and, in
// a friend, stranger or passenger chat, the other party gets a receipt.
// It returns the cursor after the call. Push is untouched.
func (s *Service) MarkRead(ctx context.Context, reader Identity, kind, id string, seq uint64) (uint64, error) {
	cp, err := s.resolveRead(ctx, reader, ConvRef{Kind: kind, ID: id})
	if err != nil {
		return 0, err
	}
	cur, moved, err := s.store.MarkRead(ctx, ReaderKey(reader), cp.conv, seq)
	if err != nil || !moved {
		return cur, err
	}
	b, _ := json.Marshal(ReadEvent{Kind: kind, ID: id, Seq: cur})
	s.Publisher.Publish(reader, EventRead, b, "")
	if cp.conv.Kind() != 'g' { // the other party of a friend, stranger or passenger chat
		peer := cp.parties[1]
		b, _ := json.Marshal(ReceiptEvent{Kind: peer.ref.Kind, ID: peer.ref.ID, Seq: cur, TS: s.nowMillis()})
		s.Publisher.Publish(peer.who, EventReceipt, b, "")
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
