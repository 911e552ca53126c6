package chat

import (
	"context"
	"encoding/json"
)

// EventTyping is the inbox event of a typing indicator.
const EventTyping = "typing"

// TypingEvent is the payload of the typing event: the conversation as the
// receiver names it, and who is typing.
type TypingEvent struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	From string `json:"from"`
}

// typingRate is how many typing events a second are forwarded for one
// sender in one conversation: clients send one per keystroke.
const typingRate = 1

// Typing tells the other party of a friend, stranger or passenger chat, or
// every other online member of a group, that from is typing in ref. The
// sender must be allowed to say to ref (CodeUnauthorized, CodeNotFound as
// for say). Nothing is stored, pushed or queued for offline sessions.
//
// At most one typing a second per sender and conversation is forwarded;
// forwarded is false for the ones dropped, which are not errors.
func (s *Service) Typing(ctx context.Context, from Identity, ref ConvRef) (forwarded bool, err error) {
	cp, unlock, err := s.resolveConv(ctx, from, ref, true)
	if err != nil {
		return false, err
	}
	defer unlock()
	if !s.typing.Allow(from.String()+"\x00"+string(cp.conv), s.Now()) {
		return false, nil
	}
	var last ConvRef
	var b []byte
	for _, p := range cp.parties {
		if p.who == from || !s.Presence.Online(p.who) {
			continue
		}
		if b == nil || p.ref != last {
			b, _ = json.Marshal(TypingEvent{Kind: p.ref.Kind, ID: p.ref.ID, From: from.ID})
			last = p.ref
		}
		s.Publisher.Publish(p.who, EventTyping, b, "")
	}
	return true, nil
}
