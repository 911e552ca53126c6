package broker

import (
	"strings"

	"github.com/mqim/mqim/chat"
)

// LevelRead is the first level of read topics: read/{kind}/{id} moves the
// publisher's read cursor in that conversation (docs/realtime.md).
const LevelRead = "read"

// ParseReadTopic parses read/{kind}/{id}. kind is a conversation kind
// (friend, group, stranger, passenger; user for passengers); rooms keep no
// history and have no read cursor.
func ParseReadTopic(topic string) (kind, id string, ok bool) {
	rest, ok := strings.CutPrefix(topic, LevelRead+"/")
	if !ok {
		return "", "", false
	}
	kind, id, ok = strings.Cut(rest, "/")
	if !ok || !chat.ValidID(id) {
		return "", "", false
	}
	switch kind {
	case chat.ConvFriend, chat.ConvGroup, chat.ConvStranger, chat.ConvPassenger, chat.ConvUser:
		return kind, id, true
	}
	return "", "", false
}

// ReadAllowed reports whether username may publish to the read topic:
// only where a say to the same target is allowed (users read friend,
// group, stranger and passenger chats, passengers their chats with users).
func ReadAllowed(username []byte, topic string) bool {
	kind, _, ok := ParseReadTopic(topic)
	if !ok {
		return false
	}
	from, ok := ParseUsername(string(username))
	if !ok {
		return false
	}
	if from.Kind == chat.KindPassenger {
		return kind == chat.ConvUser
	}
	return kind != chat.ConvUser
}
