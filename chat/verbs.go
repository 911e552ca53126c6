package chat

import (
	"context"
	"encoding/json"
)

// Conversation kinds as a party names a conversation: the second level of
// the read/, recall/, edit/ and typing/ topics, the kind of the
// conversation list and of the REST conversation paths.
// Rooms keep no history and have none of these verbs.
const (
	ConvFriend    = "friend"
	ConvGroup     = "group"
	ConvStranger  = "stranger"
	ConvPassenger = "passenger" // a user's chat with a passenger
	ConvUser      = "user"      // a passenger's chat with a user
)

// ConvRef names a conversation from one party's side: for alice, her chat
// with bob is {friend, bob}; for passenger p, its chat with user alice is
// {user, alice}.
type ConvRef struct {
	Kind string
	ID   string
}

// party is one side of a conversation and the name it gives it.
type party struct {
	who Identity
	ref ConvRef
}

// convParties is a conversation resolved from one party's ConvRef.
type convParties struct {
	conv    Conv
	parties []party // every party, the caller included
	owner   string  // the group owner; empty for other kinds
}

// resolveConv resolves ref as named by from. With check, from must be
// allowed to say to the target now (friends, a member, the target exists:
// the rules of say); without it (the master key) the target need only
// exist. The membership read lock is taken as say takes it, so a change
// that has returned applies; the caller must call unlock.
func (s *Service) resolveConv(ctx context.Context, from Identity, ref ConvRef, check bool) (cp convParties, unlock func(), err error) {
	unlock = func() {}
	if !ValidID(ref.ID) {
		return cp, unlock, Errorf(CodeInvalid, "invalid conversation id %q", truncate(ref.ID, 64))
	}
	me := ref.Kind
	switch {
	case from.Kind == KindPassenger && ref.Kind != ConvUser,
		from.Kind == KindUser && ref.Kind == ConvUser:
		return cp, unlock, Errorf(CodeUnauthorized, "a %s has no %s conversations", from.Kind, ref.Kind)
	case from.Kind != KindUser && from.Kind != KindPassenger:
		return cp, unlock, Errorf(CodeUnauthorized, "unknown sender")
	}
	lock := func(key string) {
		mu := s.lockKey(key)
		mu.RLock()
		unlock = mu.RUnlock
	}
	userExists := func(uid string) error {
		if err := s.store.View(ctx, func(tx Tx) error { _, err := tx.User(uid); return err }); err != nil {
			return notFound(err, "user", uid)
		}
		return nil
	}
	switch ref.Kind {
	case ConvUser: // passenger → user
		if err = userExists(ref.ID); err != nil {
			return cp, unlock, err
		}
		cp.conv = PassengerConv(from.ID, ref.ID)
		cp.parties = []party{{from, ref}, {User(ref.ID), ConvRef{ConvPassenger, from.ID}}}
	case ConvPassenger: // user → passenger
		err = s.store.View(ctx, func(tx Tx) error { _, err := tx.Passenger(ref.ID); return err })
		if err != nil {
			return cp, unlock, notFound(err, "passenger", ref.ID)
		}
		cp.conv = PassengerConv(ref.ID, from.ID)
		cp.parties = []party{{from, ref}, {Passenger(ref.ID), ConvRef{ConvUser, from.ID}}}
	case ConvFriend:
		// No one is its own friend: areFriends refuses from.ID == ref.ID
		// with the code say gives.
		cp.conv = FriendConv(from.ID, ref.ID)
		if check {
			lock(string(cp.conv))
			err = s.areFriends(ctx, cp.conv, from.ID, ref.ID)
		}
		cp.parties = []party{{from, ref}, {User(ref.ID), ConvRef{me, from.ID}}}
	case ConvStranger:
		if from.ID == ref.ID {
			return cp, unlock, Errorf(CodeConflict, "no stranger conversation with oneself")
		}
		if err = userExists(ref.ID); err != nil {
			return cp, unlock, err
		}
		cp.conv = StrangerConv(from.ID, ref.ID)
		cp.parties = []party{{from, ref}, {User(ref.ID), ConvRef{me, from.ID}}}
	case ConvGroup:
		lock(GroupList.lockKey(ref.ID))
		var g *MemberList
		if g, err = s.listMembers(ctx, GroupList, ref.ID); err != nil {
			err = notFound(err, "group", ref.ID)
			break
		}
		if check && !g.HasMember(from.ID) {
			err = Errorf(CodeUnauthorized, "%s is not a member of group %s", from.ID, ref.ID)
			break
		}
		cp.conv, cp.owner = GroupConv(ref.ID), g.Owner
		for _, m := range g.Everyone() {
			cp.parties = append(cp.parties, party{User(m), ref})
		}
	default:
		return cp, unlock, Errorf(CodeInvalid, "unknown conversation kind %q", truncate(ref.Kind, 32))
	}
	if err != nil {
		unlock()
		return convParties{}, func() {}, err
	}
	return cp, unlock, nil
}

// tellParties publishes event to every session of every party (the
// caller's sessions included: its other devices must follow too). payload
// returns the event as one party names the conversation; parties naming it
// alike (a group's members) share one encoding.
func (s *Service) tellParties(cp *convParties, event string, payload func(ConvRef) any) {
	var last ConvRef
	var b []byte
	for _, p := range cp.parties {
		if b == nil || p.ref != last {
			b, _ = json.Marshal(payload(p.ref))
			last = p.ref
		}
		s.Publisher.Publish(p.who, event, b, "")
	}
}

// seqRequest is the payload of a recall or edit publish.
type seqRequest struct {
	Seq     uint64
	Content Content
	Ack     *int64
}

// parseSeqRequest reads {"seq":N,"ack"?:n} and, withContent, the content
// of an edit ({"content":{"media":0,"body":".."}}). Even on error the ack
// number is returned when it could be read, for the error event.
func parseSeqRequest(payload []byte, withContent bool, maxBodyLen int) (seqRequest, error) {
	var r seqRequest
	var raw struct {
		Seq     json.RawMessage `json:"seq"`
		Content json.RawMessage `json:"content"`
		Ack     json.RawMessage `json:"ack"`
	}
	obj, err := jsonObject(payload)
	if err == nil {
		err = json.Unmarshal(obj, &raw)
	}
	if err != nil {
		return r, Errorf(CodeInvalid, "payload is not a JSON object")
	}
	if !isNull(raw.Ack) {
		n, ok := jsonInt(raw.Ack)
		if !ok {
			return r, Errorf(CodeInvalid, "ack must be an integer")
		}
		r.Ack = &n
	}
	n, ok := jsonInt(raw.Seq)
	if !ok || n <= 0 {
		return r, Errorf(CodeInvalid, "seq must be a positive integer")
	}
	r.Seq = uint64(n)
	if withContent {
		r.Content, _, _, err = parseBody(raw.Content, nil, nil, maxBodyLen)
	}
	return r, err
}

// answerVerb tells the session that published a recall or edit how it
// went: the ack event on success when the payload had an ack number, the
// error event (with the ack number) on failure, as for say.
func (s *Service) answerVerb(from Identity, session string, ack *int64, ts int64, err error) {
	if err != nil {
		s.sayRefused(from, session, ack, err)
		return
	}
	if ack != nil && session != "" {
		b := appendAckEvent(nil, &AckEvent{Ack: *ack, TS: ts})
		s.Publisher.PublishSession(session, from, EventAck, b)
	}
}

// RefuseVerb sends the error event for a recall, edit or typing publish
// the transport refused before the Service saw it (a malformed topic).
// The payload is read only for its ack number.
func (s *Service) RefuseVerb(from Identity, session string, payload []byte, err error) {
	r, _ := parseSeqRequest(payload, false, s.opts.MaxBodyLen)
	s.sayRefused(from, session, r.Ack, err)
}
