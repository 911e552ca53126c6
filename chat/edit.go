package chat

import (
	"context"
	"time"
)

// DefaultEditWindow is how long a speaker may edit its message.
const DefaultEditWindow = 24 * time.Hour

// EventEdit is the inbox event of an edited message.
const EventEdit = "edit"

// Edit is an earlier version of an edited message: its content and when it
// was replaced (ms).
type Edit struct {
	Content Content `json:"content"`
	TS      int64   `json:"ts"`
}

// EditEvent is the payload of the edit event: the conversation as the
// receiver names it, the message's seq, its new content and the time of
// the edit.
type EditEvent struct {
	Kind    string  `json:"kind"`
	ID      string  `json:"id"`
	Seq     uint64  `json:"seq"`
	Content Content `json:"content"`
	Edited  int64   `json:"edited"`
}

// Edit replaces the content of text message seq of the conversation ref
// as from names it. Only the speaker may, only a text message (media 0),
// within Options.EditWindow of the message's ts: otherwise
// CodeUnauthorized. The new content must be text too (CodeInvalid) and
// within MaxBodyLen (CodeTooLong). An unknown, expired or recalled seq is
// CodeNotFound. from must be allowed to say to ref now.
//
// The replaced content is kept in the message's edit list (RecordEdits);
// history shows the new content with "edited". Every session of every
// party, from's included, gets the edit event; nothing is pushed. It
// returns the edit's time, which is strictly later than the message's
// previous edit, so the versions of a message never share a ts.
func (s *Service) Edit(ctx context.Context, from Identity, ref ConvRef, seq uint64, content Content) (edited int64, err error) {
	if content.Media != MediaText {
		return 0, Errorf(CodeInvalid, "only text (media 0) can replace a message")
	}
	if content.Body == "" {
		return 0, Errorf(CodeInvalid, "content.body is required")
	}
	if len(content.Body) > s.opts.MaxBodyLen {
		return 0, Errorf(CodeTooLong, "content.body is longer than %d bytes", s.opts.MaxBodyLen)
	}
	cp, unlock, err := s.resolveConv(ctx, from, ref, true)
	if err != nil {
		return 0, err
	}
	defer unlock()
	now := s.nowMillis()
	err = s.store.UpdateRecord(ctx, cp.conv, seq, func(rec *Record) (*Edit, error) {
		switch {
		case rec.Recalled:
			return nil, Errorf(CodeNotFound, "message %d was recalled", seq)
		case rec.Speaker != from.ID:
			return nil, Errorf(CodeUnauthorized, "only the speaker may edit message %d", seq)
		case rec.Content.Media != MediaText:
			return nil, Errorf(CodeUnauthorized, "message %d is not text", seq)
		}
		if w := s.opts.EditWindow; w >= 0 && now-rec.TS > w.Milliseconds() {
			return nil, Errorf(CodeUnauthorized, "message %d is older than the edit window (%s)", seq, w)
		}
		edited = max(now, rec.Edited+1)
		prior := &Edit{Content: rec.Content, TS: edited}
		rec.Content, rec.Edited = content, edited
		return prior, nil
	})
	if err != nil {
		return 0, err
	}
	s.tellParties(&cp, EventEdit, func(r ConvRef) any {
		return EditEvent{Kind: r.Kind, ID: r.ID, Seq: seq, Content: content, Edited: edited}
	})
	return edited, nil
}

// EditMessage is Edit for a publish to edit/{kind}/{id} (payload
// {"seq":N,"content":{"media":0,"body":".."},"ack"?:n}): the session gets
// the ack event on success when the payload had an ack number, and the
// error event on failure.
func (s *Service) EditMessage(ctx context.Context, from Identity, session string, ref ConvRef, payload []byte) error {
	r, err := parseSeqRequest(payload, true, s.opts.MaxBodyLen)
	var ts int64
	if err == nil {
		ts, err = s.Edit(ctx, from, ref, r.Seq, r.Content)
	}
	s.answerVerb(from, session, r.Ack, ts, err)
	return err
}

// FriendEdits returns the earlier versions of message seq of the friend
// chat of uid and fid, oldest first (an unedited message has none).
// CodeNotFound for an unknown or expired seq. Like FriendHistory, it does
// not require the two to be friends still.
func (s *Service) FriendEdits(ctx context.Context, uid, fid string, seq uint64) ([]Edit, error) {
	return s.recordEdits(ctx, ConvFriend, uid, fid, seq)
}

// StrangerEdits is FriendEdits for the stranger chat of uid and sid.
func (s *Service) StrangerEdits(ctx context.Context, uid, sid string, seq uint64) ([]Edit, error) {
	return s.recordEdits(ctx, ConvStranger, uid, sid, seq)
}

// GroupEdits is FriendEdits for group gid (CodeNotFound for an unknown
// group).
func (s *Service) GroupEdits(ctx context.Context, gid string, seq uint64) ([]Edit, error) {
	return s.recordEdits(ctx, ConvGroup, gid, "", seq)
}

// PassengerEdits is FriendEdits for the chat of passenger pid with user
// uid (CodeNotFound for an unknown passenger).
func (s *Service) PassengerEdits(ctx context.Context, pid, uid string, seq uint64) ([]Edit, error) {
	return s.recordEdits(ctx, ConvPassenger, pid, uid, seq)
}

func (s *Service) recordEdits(ctx context.Context, kind, a, b string, seq uint64) ([]Edit, error) {
	conv, err := s.historyConv(ctx, kind, a, b)
	if err != nil {
		return nil, err
	}
	return s.store.RecordEdits(ctx, conv, seq)
}
