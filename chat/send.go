package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SayTarget is where a say goes: the MaxIM to.type and the target id. A
// passenger's target is always a user, with TypeFriend (MaxIM ACTOR).
type SayTarget struct {
	Type int
	ID   string
}

// SayMessage is a parsed say payload (docs/maxim.md §4.2) without its
// target, which the transport carries (docs/protocol.md §3.1).
type SayMessage struct {
	// ToID and ToType are the payload's own "to", when it has one; a say
	// whose "to" contradicts its target is refused.
	ToID   *string
	ToType *int
	// Content is normalised: media defaults to 0, a non-string body is
	// turned into a string.
	Content Content
	Remark  string
	// Ack is the client's ack number, nil when absent.
	Ack  *int64
	Push *PushSettings
}

// SayResult is what Say accepted.
type SayResult struct {
	ID  string // message id
	Seq uint64 // per-conversation sequence number; 0 for rooms (not stored)
	TS  int64  // server time of the message, ms
	// Conv is the conversation the message was stored in; empty for rooms.
	Conv Conv
}

// ParseSay parses a say payload: a JSON object, or (SDK-JS0) a JSON string
// holding one. The client's ts is ignored. Even when it fails, the returned
// message carries the ack number if one could be read, so that the error
// event can name it.
func ParseSay(payload []byte, maxBodyLen int) (SayMessage, error) {
	if m, ok := parseSayFast(payload, maxBodyLen); ok {
		return m, nil
	}
	return parseSaySlow(payload, maxBodyLen)
}

// parseSaySlow is ParseSay on encoding/json, for every payload outside the
// subset of parseSayFast and for every error. It is the reference the fast
// path is tested against: change both together.
func parseSaySlow(payload []byte, maxBodyLen int) (SayMessage, error) {
	var m SayMessage
	var raw struct {
		To      json.RawMessage `json:"to"`
		Content json.RawMessage `json:"content"`
		Remark  json.RawMessage `json:"remark"`
		Ack     json.RawMessage `json:"ack"`
		Push    json.RawMessage `json:"push"`
	}
	obj, err := jsonObject(payload)
	if err == nil {
		err = json.Unmarshal(obj, &raw)
	}
	if err != nil {
		return m, Errorf(CodeInvalid, "say payload is not a JSON object")
	}
	if !isNull(raw.Ack) {
		n, ok := jsonInt(raw.Ack)
		if !ok {
			return m, Errorf(CodeInvalid, "ack must be an integer")
		}
		m.Ack = &n
	}
	if !isNull(raw.To) {
		var to struct {
			ID   json.RawMessage `json:"id"`
			Type json.RawMessage `json:"type"`
		}
		if err := json.Unmarshal(raw.To, &to); err != nil {
			return m, Errorf(CodeInvalid, "to must be an object")
		}
		if !isNull(to.ID) {
			var id string
			if err := json.Unmarshal(to.ID, &id); err != nil {
				return m, Errorf(CodeInvalid, "to.id must be a string")
			}
			m.ToID = &id
		}
		if !isNull(to.Type) {
			n, ok := jsonInt(to.Type)
			if !ok || n < math.MinInt32 || n > math.MaxInt32 {
				return m, Errorf(CodeInvalid, "to.type must be an integer")
			}
			t := int(n)
			m.ToType = &t
		}
	}
	m.Content, m.Remark, m.Push, err = parseBody(raw.Content, raw.Remark, raw.Push, maxBodyLen)
	return m, err
}

// parseBody parses the content, remark and push fields shared by say and
// system messages.
func parseBody(content, remark, push json.RawMessage, maxBodyLen int) (c Content, rem string, p *PushSettings, err error) {
	if isNull(content) {
		return c, "", nil, Errorf(CodeInvalid, "content.body is required")
	}
	var rc struct {
		Media json.RawMessage `json:"media"`
		Body  json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(content, &rc); err != nil {
		return c, "", nil, Errorf(CodeInvalid, "content must be an object")
	}
	if !isNull(rc.Media) {
		n, ok := jsonInt(rc.Media)
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return c, "", nil, Errorf(CodeInvalid, "content.media must be an integer")
		}
		c.Media = int(n)
	}
	body, ok := bodyText(rc.Body)
	if !ok || body == "" {
		return c, "", nil, Errorf(CodeInvalid, "content.body is required")
	}
	if len(body) > maxBodyLen {
		return c, "", nil, Errorf(CodeTooLong, "content.body is longer than %d bytes", maxBodyLen)
	}
	c.Body = body
	if !isNull(remark) {
		rem, _ = bodyText(remark)
		if len(rem) > maxBodyLen {
			return c, "", nil, Errorf(CodeTooLong, "remark is longer than %d bytes", maxBodyLen)
		}
	}
	if !isNull(push) {
		p = new(PushSettings)
		if err := json.Unmarshal(push, p); err != nil {
			return c, "", nil, Errorf(CodeInvalid, "push must be an object of push settings")
		}
	}
	return c, rem, p, nil
}

// bodyText normalises a content.body (docs/maxim.md §4.2): a string as is;
// an array becomes its first element (SDK-JS0 sends the upload result, an
// array of URLs); any other value becomes its JSON text. ok is false for a
// missing body: absent, null or an empty array.
func bodyText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil || len(arr) == 0 {
			return "", false
		}
		first := bytes.TrimSpace(arr[0])
		if isNull(first) {
			return "", false
		}
		if first[0] == '"' {
			return bodyText(first)
		}
		return compactText(first)
	}
	return compactText(raw)
}

// compactText returns the compact JSON text of raw. json.Compact keeps
// invalid UTF-8 inside strings as it is; each invalid byte becomes U+FFFD,
// as json.Unmarshal does for a string body, so that every body is valid
// UTF-8 and reads back as stored.
func compactText(raw json.RawMessage) (string, bool) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", false
	}
	s := buf.String()
	if utf8.ValidString(s) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String(), true
}

// jsonObject returns payload when it is a JSON object, or the object held
// in a JSON string (SDK-JS0 emits say as JSON.stringify(req)).
func jsonObject(payload []byte) ([]byte, error) {
	p := bytes.TrimSpace(payload)
	if len(p) > 0 && p[0] == '"' {
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return nil, err
		}
		p = bytes.TrimSpace([]byte(s))
	}
	if len(p) == 0 || p[0] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	return p, nil
}

// jsonInt reads an integer: a JSON number with no fraction, or a string of
// digits (lenient with clients that stringify numbers).
func jsonInt(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	var f json.Number
	if json.Unmarshal(raw, &f) != nil {
		return 0, false
	}
	if n, err := f.Int64(); err == nil {
		return n, true
	}
	x, err := f.Float64()
	if err != nil || x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
		return 0, false
	}
	return int64(x), true
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// checkTarget applies the rules that need no store: who may send to which
// kind of target, the target id, and the payload's own "to".
func (m *SayMessage) checkTarget(from Identity, t SayTarget) error {
	switch from.Kind {
	case KindUser:
		if t.Type < TypeFriend || t.Type > TypeStranger {
			return Errorf(CodeInvalid, "unknown target type %d", t.Type)
		}
	case KindPassenger:
		if t.Type != TypeFriend {
			return Errorf(CodeUnauthorized, "a passenger may only send to users")
		}
	default:
		return Errorf(CodeUnauthorized, "unknown sender")
	}
	if !ValidID(t.ID) {
		return Errorf(CodeInvalid, "invalid target id %q", truncate(t.ID, 64))
	}
	if m.ToID != nil && *m.ToID != t.ID {
		return Errorf(CodeInvalid, "to.id %q contradicts the target %q", truncate(*m.ToID, 64), t.ID)
	}
	if m.ToType != nil && *m.ToType != t.Type {
		return Errorf(CodeInvalid, "to.type %d contradicts the target type %d", *m.ToType, t.Type)
	}
	return nil
}

// Say sends a chat message from a live session (docs/maxim.md §4.2,
// docs/protocol.md §3.1). payload is the say object; the target comes from the
// transport. Say:
//
//  1. parses and validates the payload (content.body required, media
//     default 0, body normalised, at most MaxBodyLen bytes → CodeTooLong);
//  2. checks the routing rule of the target type: friend (must be friends),
//     group (member or owner), room (member), passenger (exists), stranger
//     (user exists, not oneself), and for a passenger sender the user exists;
//  3. stamps the server time, a message id and (Store.AppendRecord) the
//     conversation's next sequence number, and stores it with the retention
//     of its conversation (rooms are not stored);
//  4. delivers message to every recipient session, yourself to the sender's
//     other sessions (users only, never session), ack to session when the
//     payload had an ack number, and offline push for friend and group
//     messages.
//
// Membership is checked at send time, under the read lock of the group,
// room or friendship, held until the message is handed to delivery: a
// membership change that has returned applies to the next say. The check
// reads the store only on a miss of the membership cache, which every
// change empties under the write lock (see memberCache).
//
// A refused say is neither stored nor delivered; Say returns an *Error with
// its MaxIM code and also sends the error event to session (docs/protocol.md
// §3.2), naming the ack number when there is one.
func (s *Service) Say(ctx context.Context, from Identity, session string, target SayTarget, payload []byte) (SayResult, error) {
	msg, err := ParseSay(payload, s.opts.MaxBodyLen)
	if err == nil {
		err = msg.checkTarget(from, target)
	}
	var res SayResult
	if err == nil {
		res, err = s.say(ctx, from, session, target, &msg)
	}
	if err != nil {
		s.sayRefused(from, session, msg.Ack, err)
		return SayResult{}, err
	}
	return res, nil
}

// RefuseSay sends the error event for a say the transport refused before
// Say could run (a malformed send topic, a kind of topic the sender may not
// use). The payload is read only for its ack number.
func (s *Service) RefuseSay(from Identity, session string, payload []byte, err error) {
	msg, _ := ParseSay(payload, s.opts.MaxBodyLen)
	s.sayRefused(from, session, msg.Ack, err)
}

func (s *Service) sayRefused(from Identity, session string, ack *int64, err error) {
	code := ErrorCode(err)
	if code == CodeInternal {
		s.Log.Error("say failed", "from", from.String(), "session", session, "error", err)
	}
	if session == "" {
		return
	}
	b, _ := json.Marshal(ErrorEvent{Ack: ack, ErrorCode: code, ErrorMessage: ErrorMessage(err)})
	s.Publisher.PublishSession(session, from, EventError, b)
}

// sayRoute is what the routing rule of one say resolved to.
type sayRoute struct {
	conv       Conv       // empty: not stored (rooms)
	from, to   Peer       // of the message event
	self       *Peer      // to of the yourself event; nil: no yourself (passenger sender)
	recipients []Identity // who gets the message event
	stranger   bool       // upsert the stranger association both ways
	pushable   bool       // friend and group messages may be pushed
	// offline are the recipients without a session when the route was
	// resolved, with their bound installs (only when pushable).
	offline []*UserRecord
}

func (s *Service) say(ctx context.Context, from Identity, session string, t SayTarget, msg *SayMessage) (SayResult, error) {
	rec := Record{ID: NewMessageID(), Speaker: from.ID, SpeakerKind: from.Kind, Content: msg.Content, Remark: msg.Remark, TS: s.nowMillis()}
	var r sayRoute
	err := func() error {
		unlock, err := s.route(ctx, from, t, &r)
		if err != nil {
			return err
		}
		defer unlock()
		if r.stranger {
			if err := s.touchStrangers(ctx, from.ID, t.ID, rec.TS); err != nil {
				return err
			}
		}
		if r.conv != "" {
			rec.Conv = r.conv
			if err := s.store.AppendRecord(ctx, &rec, s.ttl(r.conv)); err != nil {
				return fmt.Errorf("store message: %w", err)
			}
		}
		s.deliverSay(from, session, &r, &rec)
		return nil
	}()
	if err != nil {
		return SayResult{}, err
	}
	if msg.Ack != nil {
		b := appendAckEvent(make([]byte, 0, 48), &AckEvent{Ack: *msg.Ack, TS: rec.TS})
		s.Publisher.PublishSession(session, from, EventAck, b)
	}
	if r.pushable && msg.Push.Enabled() {
		s.pushMessage(ctx, &r, &rec, msg.Push)
	}
	return SayResult{ID: rec.ID, Seq: rec.Seq, TS: rec.TS, Conv: r.conv}, nil
}

// route resolves the routing rule of a say and returns the unlock function
// of the membership lock it took (a no-op when none is needed).
func (s *Service) route(ctx context.Context, from Identity, t SayTarget, r *sayRoute) (unlock func(), err error) {
	unlock = func() {}
	lock := func(key string) {
		mu := s.lockKey(key)
		mu.RLock()
		unlock = mu.RUnlock
	}
	var offlineCandidates []string
	if from.Kind == KindPassenger {
		// Passenger to user: from.type 3 (docs/maxim.md §11 A13).
		err = s.store.View(ctx, func(tx Tx) error { _, err := tx.User(t.ID); return err })
		if err != nil {
			return unlock, notFound(err, "user", t.ID)
		}
		r.conv = PassengerConv(from.ID, t.ID)
		r.from = Peer{ID: from.ID, Type: TypePassenger}
		r.to = Peer{ID: t.ID, Type: TypePassenger}
		r.recipients = []Identity{User(t.ID)}
		return unlock, nil
	}
	self := Peer{ID: t.ID, Type: t.Type}
	r.self = &self
	switch t.Type {
	case TypeFriend:
		r.conv = FriendConv(from.ID, t.ID)
		lock(string(r.conv))
		err = s.areFriends(ctx, r.conv, from.ID, t.ID)
		r.from = Peer{ID: from.ID, Type: TypeFriend}
		r.to = Peer{ID: t.ID, Type: TypeFriend}
		r.recipients = []Identity{User(t.ID)}
		r.pushable = true
		offlineCandidates = []string{t.ID}
	case TypeGroup, TypeRoom:
		kind := ListKind(t.Type)
		lock(kind.lockKey(t.ID))
		var l *MemberList
		l, err = s.listMembers(ctx, kind, t.ID)
		if err != nil {
			err = notFound(err, kind.String(), t.ID)
			break
		}
		if !l.HasMember(from.ID) {
			err = Errorf(CodeUnauthorized, "%s is not a member of %s %s", from.ID, kind, t.ID)
			break
		}
		r.from = Peer{ID: from.ID, Type: t.Type, GID: t.ID}
		r.to = Peer{ID: t.ID, Type: t.Type}
		// Rooms reach online members only and keep nothing
		// (docs/maxim.md §1.5).
		onlineOnly := kind.onlineOnly()
		if !onlineOnly {
			r.conv = listKinds[kind].conv(t.ID)
			r.pushable = true
		}
		for _, m := range l.Everyone() {
			if m == from.ID || onlineOnly && !s.Presence.Online(User(m)) {
				continue
			}
			r.recipients = append(r.recipients, User(m))
			if r.pushable {
				offlineCandidates = append(offlineCandidates, m)
			}
		}
	case TypePassenger:
		// User to passenger: the passenger sees from.type 0
		// (docs/maxim.md §11 A13); to.type follows from.type.
		err = s.store.View(ctx, func(tx Tx) error { _, err := tx.Passenger(t.ID); return err })
		if err != nil {
			err = notFound(err, "passenger", t.ID)
			break
		}
		r.conv = PassengerConv(t.ID, from.ID)
		r.from = Peer{ID: from.ID, Type: TypeFriend}
		r.to = Peer{ID: t.ID, Type: TypeFriend}
		r.recipients = []Identity{Passenger(t.ID)}
	case TypeStranger:
		if t.ID == from.ID {
			err = Errorf(CodeConflict, "cannot send a stranger message to oneself")
			break
		}
		err = s.store.View(ctx, func(tx Tx) error { _, err := tx.User(t.ID); return err })
		if err != nil {
			err = notFound(err, "user", t.ID)
			break
		}
		r.conv = StrangerConv(from.ID, t.ID)
		r.from = Peer{ID: from.ID, Type: TypeStranger}
		r.to = Peer{ID: t.ID, Type: TypeStranger}
		r.recipients = []Identity{User(t.ID)}
		r.stranger = true
	}
	if err == nil && r.pushable {
		err = s.offlineUsers(ctx, offlineCandidates, &r.offline)
	}
	if err != nil {
		unlock()
		return func() {}, err
	}
	return unlock, nil
}

// notFound turns a not-found error about kind id into a client message, and
// wraps any other store error.
func notFound(err error, kind, id string) error {
	if IsNotFound(err) {
		return Errorf(CodeNotFound, "%s %q does not exist", kind, id)
	}
	return fmt.Errorf("read %s %s: %w", kind, id, err)
}

// offlineUsers appends the records of the users among ids that have no
// session and at least one bound install: the candidates for offline push.
func (s *Service) offlineUsers(ctx context.Context, ids []string, out *[]*UserRecord) error {
	var offline []string
	for _, id := range ids {
		if !s.Presence.Online(User(id)) {
			offline = append(offline, id)
		}
	}
	if len(offline) == 0 {
		return nil
	}
	return s.store.View(ctx, func(tx Tx) error {
		for _, id := range offline {
			u, err := tx.User(id)
			if IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read user %s: %w", id, err)
			}
			if len(u.Installs) > 0 {
				*out = append(*out, u)
			}
		}
		return nil
	})
}

// touchStrangers upserts the stranger association of a and b in both
// directions: TS is the first contact, Last the latest message.
func (s *Service) touchStrangers(ctx context.Context, a, b string, ts int64) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		for _, p := range [][2]string{{a, b}, {b, a}} {
			st, err := tx.Stranger(p[0], p[1])
			if IsNotFound(err) {
				st, err = &Stranger{User: p[0], Other: p[1], TS: ts}, nil
			}
			if err != nil {
				return err
			}
			st.Last = max(st.Last, ts)
			if err := tx.PutStranger(st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update strangers %s, %s: %w", a, b, err)
	}
	return nil
}

// deliverSay hands the message to the recipients and the yourself echo to
// the sender's other sessions.
func (s *Service) deliverSay(from Identity, session string, r *sayRoute, rec *Record) {
	// Both events in one allocation: the estimate covers them unless the
	// strings need escaping. Each payload is capped so that an append by
	// a consumer cannot overwrite the other.
	n := 2*(len(rec.Content.Body)+len(rec.Remark)+len(rec.ID)+len(r.to.ID)+len(r.to.GID)+140) + len(r.from.ID) + len(r.from.GID)
	buf := appendMessageEvent(make([]byte, 0, n), &MessageEvent{
		From: r.from, To: r.to, Content: rec.Content, TS: rec.TS, Remark: rec.Remark, ID: rec.ID, Seq: rec.Seq,
	})
	b := buf[:len(buf):len(buf)]
	for _, to := range r.recipients {
		s.Publisher.Publish(to, EventMessage, b, "")
	}
	if r.self != nil {
		y := appendYourselfEvent(buf[len(buf):], &YourselfEvent{
			To: *r.self, Content: rec.Content, TS: rec.TS, Remark: rec.Remark, ID: rec.ID, Seq: rec.Seq,
		})
		s.Publisher.Publish(from, EventYourself, y[:len(y):len(y)], session)
	}
}

// pushMessage sends the offline push of a friend or group message to each
// recipient that had no session (docs/maxim.md §9).
func (s *Service) pushMessage(ctx context.Context, r *sayRoute, rec *Record, p *PushSettings) {
	if len(r.offline) == 0 {
		return
	}
	b := appendMessageEvent(nil, &MessageEvent{
		From: r.from, To: r.to, Content: rec.Content, TS: rec.TS, Remark: rec.Remark, ID: rec.ID, Seq: rec.Seq,
	})
	for _, u := range r.offline {
		s.Pusher.Push(ctx, newPush(u, EventMessage, rec.Content, p, b))
	}
}

// newPush builds the push of event (payload b) for user u.
func newPush(u *UserRecord, event string, c Content, p *PushSettings, b []byte) PushNotification {
	n := PushNotification{
		User:     u.ID,
		Installs: slices.Clone(u.Installs),
		Alert:    PushAlert(c, p),
		Event:    event,
		Parrot:   string(b),
		Settings: p,
	}
	if p != nil {
		n.Sound = p.Sound
		n.Badge = p.Badge
		n.Content = p.ContentAvailable
	}
	return n
}

// PushAlert returns the alert text of a push: prefix + (overwrite, or the
// body, or a placeholder for media) + suffix (docs/maxim.md §9).
func PushAlert(c Content, p *PushSettings) string {
	text := c.Body
	switch c.Media {
	case MediaImage:
		text = "[image]"
	case MediaAudio:
		text = "[audio]"
	case MediaVideo:
		text = "[video]"
	}
	if p == nil {
		return text
	}
	if p.Overwrite != "" {
		text = p.Overwrite
	}
	return p.Prefix + text + p.Suffix
}
