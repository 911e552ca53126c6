package broker

import (
	"strings"

	"github.com/mqim/mqim/chat"
)

// Topic levels of the mqim topic scheme (docs/protocol.md §3). Clients publish to
// send topics say/{kind}/{id} and subscribe inside their own inbox
// users/{me}/# or passengers/{me}/#, whose last level is the event name.
const (
	LevelSay        = "say"
	LevelUsers      = "users"
	LevelPassengers = "passengers"

	// Kinds of send topics: the level after say/.
	SayFriend    = "friend"
	SayGroup     = "group"
	SayRoom      = "room"
	SayPassenger = "passenger"
	SayStranger  = "stranger"
	SayUser      = "user" // passengers only: to a user

	// PassengerUsernamePrefix marks a passenger login in the CONNECT
	// Username: "passenger:<id>". User ids cannot contain ':', so the two
	// namespaces never collide.
	PassengerUsernamePrefix = "passenger:"
)

// SendTopic is a parsed send topic say/{Kind}/{ID}.
type SendTopic struct {
	Kind string
	ID   string
}

// ParseSendTopic parses a send topic. It reports false unless the topic has
// exactly three levels, the first is "say", the kind is known and the id is a
// valid MaxIM id.
func ParseSendTopic(topic string) (SendTopic, bool) {
	rest, ok := strings.CutPrefix(topic, LevelSay+"/")
	if !ok {
		return SendTopic{}, false
	}
	kind, id, ok := strings.Cut(rest, "/")
	if !ok || !chat.ValidID(id) {
		return SendTopic{}, false
	}
	switch kind {
	case SayFriend, SayGroup, SayRoom, SayPassenger, SayStranger, SayUser:
		return SendTopic{Kind: kind, ID: id}, true
	}
	return SendTopic{}, false
}

// IsSayTopic reports whether topic is under say/, the only place clients may
// publish. The details are checked by ParseSendTopic when the message is
// handled, so that a malformed send topic is answered with an error event
// instead of the broker's silent ACL refusal.
func IsSayTopic(topic string) bool { return strings.HasPrefix(topic, LevelSay+"/") }

// String returns the topic name.
func (t SendTopic) String() string { return LevelSay + "/" + t.Kind + "/" + t.ID }

// Target returns the MaxIM target of t for a sender of kind from. ok is
// false when that kind of sender may not use that kind of topic: users send
// to friends, groups, rooms, passengers and strangers; passengers only to
// users. A passenger's target is a user (MaxIM ACTOR, type 0).
func (t SendTopic) Target(from chat.Kind) (target chat.SayTarget, ok bool) {
	if from == chat.KindPassenger {
		if t.Kind != SayUser {
			return chat.SayTarget{}, false
		}
		return chat.SayTarget{Type: chat.TypeFriend, ID: t.ID}, true
	}
	if from != chat.KindUser {
		return chat.SayTarget{}, false
	}
	var typ int
	switch t.Kind {
	case SayFriend:
		typ = chat.TypeFriend
	case SayGroup:
		typ = chat.TypeGroup
	case SayRoom:
		typ = chat.TypeRoom
	case SayPassenger:
		typ = chat.TypePassenger
	case SayStranger:
		typ = chat.TypeStranger
	default:
		return chat.SayTarget{}, false
	}
	return chat.SayTarget{Type: typ, ID: t.ID}, true
}

// InboxPrefix returns the inbox of id without a trailing slash: users/{id} or
// passengers/{id}.
func InboxPrefix(id chat.Identity) string {
	if id.Kind == chat.KindPassenger {
		return LevelPassengers + "/" + id.ID
	}
	return LevelUsers + "/" + id.ID
}

// InboxTopic returns the topic of event in the inbox of id.
func InboxTopic(id chat.Identity, event string) string { return InboxPrefix(id) + "/" + event }

// ParseInboxTopic splits an inbox topic into its identity and event. It
// reports false for anything else, including wildcards.
func ParseInboxTopic(topic string) (id chat.Identity, event string, ok bool) {
	first, rest, ok := strings.Cut(topic, "/")
	if !ok {
		return chat.Identity{}, "", false
	}
	switch first {
	case LevelUsers:
		id.Kind = chat.KindUser
	case LevelPassengers:
		id.Kind = chat.KindPassenger
	default:
		return chat.Identity{}, "", false
	}
	id.ID, event, ok = strings.Cut(rest, "/")
	if !ok || !chat.ValidID(id.ID) || event == "" || strings.ContainsAny(event, "/+#") {
		return chat.Identity{}, "", false
	}
	return id, event, true
}

// ParseUsername returns the identity named by a CONNECT Username: a user id,
// or "passenger:<id>". It reports false for anything that is not a valid id.
func ParseUsername(username string) (chat.Identity, bool) {
	if pid, ok := strings.CutPrefix(username, PassengerUsernamePrefix); ok {
		if !chat.ValidID(pid) {
			return chat.Identity{}, false
		}
		return chat.Passenger(pid), true
	}
	if !chat.ValidID(username) {
		return chat.Identity{}, false
	}
	return chat.User(username), true
}

// Username returns the CONNECT Username of id.
func Username(id chat.Identity) string {
	if id.Kind == chat.KindPassenger {
		return PassengerUsernamePrefix + id.ID
	}
	return id.ID
}

// InboxAllowed reports whether the client logged in with username may
// subscribe to filter, or receive a message published on topic: only inside
// its own inbox. Levels are compared whole (bob's inbox does not cover
// users/bobby), and wildcards are allowed only after the identity level, so
// #, +/..., users/+/..., $SYS/... and $share/... are all refused.
//
// It runs for every recipient of every message (mochi checks the read ACL on
// delivery), so it is a few string comparisons and allocates nothing.
func InboxAllowed(username []byte, filter string) bool {
	var rest string
	var ok bool
	name := username
	if len(username) > len(PassengerUsernamePrefix) && string(username[:len(PassengerUsernamePrefix)]) == PassengerUsernamePrefix {
		name = username[len(PassengerUsernamePrefix):]
		rest, ok = strings.CutPrefix(filter, LevelPassengers+"/")
	} else {
		rest, ok = strings.CutPrefix(filter, LevelUsers+"/")
	}
	if !ok || len(name) == 0 || len(rest) < len(name) || rest[:len(name)] != string(name) {
		return false
	}
	rest = rest[len(name):]
	return rest == "" || rest[0] == '/'
}
