package chat

import (
	"context"
	"encoding/json"
	"fmt"
)

// SystemMessage is a parsed system message (docs/maxim.md §3.6).
type SystemMessage struct {
	Content Content
	Remark  string
	Push    *PushSettings
}

// SystemTarget is the kind of target of POST /system/{target}: the valueless
// query flag ?group or ?room, a user (or passenger) without one.
type SystemTarget int

// System message targets.
const (
	SystemToUser SystemTarget = iota
	SystemToGroup
	SystemToRoom
)

// ParseSystemMessage parses the body of POST /system[/{target}]:
// {"content":{"media":..,"body":..},"remark":..,"push":{..}}. content.body
// is required (CodeInvalid) and at most maxBodyLen bytes (CodeTooLong); a
// "ts" in the body is ignored, the server stamps its own.
func ParseSystemMessage(body []byte, maxBodyLen int) (SystemMessage, error) {
	var m SystemMessage
	var raw struct {
		Content json.RawMessage `json:"content"`
		Remark  json.RawMessage `json:"remark"`
		Push    json.RawMessage `json:"push"`
	}
	obj, err := jsonObject(body)
	if err == nil {
		err = json.Unmarshal(obj, &raw)
	}
	if err != nil {
		return m, Errorf(CodeInvalid, "body must be a JSON object")
	}
	m.Content, m.Remark, m.Push, err = parseBody(raw.Content, raw.Remark, raw.Push, maxBodyLen)
	return m, err
}

// sysEvent returns the payload of the sys event of msg at ts.
func (m *SystemMessage) sysEvent(ts int64) []byte {
	b, _ := json.Marshal(SysEvent{Content: m.Content, TS: ts, Remark: m.Remark})
	return b
}

// SystemBroadcast sends msg as a sys event to every identity online now,
// users and passengers (S1, docs/maxim.md §3.6). It is not stored and not
// pushed.
func (s *Service) SystemBroadcast(ctx context.Context, msg SystemMessage) error {
	b := msg.sysEvent(s.nowMillis())
	for _, id := range s.Presence.OnlineIdentities() {
		s.Publisher.Publish(id, EventSys, b, "")
	}
	return nil
}

// SystemSend sends msg as a sys event to one target (S2, docs/maxim.md
// §3.6). It is not stored.
//
//   - SystemToUser: every session of the user; if the user has none, a push
//     to its installs. When target is not a user but a passenger, the
//     passenger's sessions get it (§11 A10).
//   - SystemToGroup: every member, owner included; offline members get a
//     push. The group's read lock is held until the events are handed to
//     delivery, as for a say.
//   - SystemToRoom: online members only, no push.
//
// An unknown target is CodeNotFound; an invalid id CodeInvalid.
func (s *Service) SystemSend(ctx context.Context, kind SystemTarget, target string, msg SystemMessage) error {
	if err := CheckID("target", target); err != nil {
		return err
	}
	b := msg.sysEvent(s.nowMillis())
	var pushTo []*UserRecord
	switch kind {
	case SystemToUser:
		var u *UserRecord
		var isPassenger bool
		err := s.store.View(ctx, func(tx Tx) (err error) {
			u, err = tx.User(target)
			if !IsNotFound(err) {
				return err
			}
			_, err = tx.Passenger(target)
			isPassenger = err == nil
			return err
		})
		if err != nil {
			return notFound(err, "user or passenger", target)
		}
		if isPassenger {
			s.Publisher.Publish(Passenger(target), EventSys, b, "")
			return nil
		}
		s.Publisher.Publish(User(target), EventSys, b, "")
		if !s.Presence.Online(User(target)) && len(u.Installs) > 0 {
			pushTo = append(pushTo, u)
		}
	case SystemToGroup, SystemToRoom:
		list := GroupList
		if kind == SystemToRoom {
			list = RoomList
		}
		onlineOnly := list.onlineOnly()
		mu := s.lockKey(list.lockKey(target))
		mu.RLock()
		l, err := s.listMembers(ctx, list, target)
		if err == nil {
			members := l.Everyone()
			for _, m := range members {
				if !onlineOnly || s.Presence.Online(User(m)) {
					s.Publisher.Publish(User(m), EventSys, b, "")
				}
			}
			if !onlineOnly {
				err = s.offlineUsers(ctx, members, &pushTo)
			}
		}
		mu.RUnlock()
		if err != nil {
			return notFound(err, list.String(), target)
		}
	default:
		return fmt.Errorf("system message: unknown target kind %d", kind)
	}
	if msg.Push.Enabled() {
		for _, u := range pushTo {
			s.Pusher.Push(ctx, newPush(u, EventSys, msg.Content, msg.Push, b))
		}
	}
	return nil
}
