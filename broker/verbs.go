package broker

import (
	"strings"

	"github.com/mqim/mqim/chat"
)

// Verb topics: besides say/, clients publish {verb}/{kind}/{id} to act on a
// conversation, named from their side (chat.ConvRef): recall/friend/bob,
// edit/group/<gid>, typing/user/alice (a passenger).
const (
	LevelRecall = "recall"
	LevelEdit   = "edit"
	LevelTyping = "typing"
)

// VerbTopic is a parsed verb topic.
type VerbTopic struct {
	Verb string // LevelRecall, LevelEdit or LevelTyping
	Ref  chat.ConvRef
}

// verbOf returns the verb whose prefix topic has, or "".
func verbOf(topic string) string {
	for _, v := range [...]string{LevelRecall, LevelEdit, LevelTyping} {
		if len(topic) > len(v) && topic[len(v)] == '/' && topic[:len(v)] == v {
			return v
		}
	}
	return ""
}

// IsVerbTopic reports whether topic is under recall/, edit/ or typing/. As
// with IsSayTopic, the rest is checked when the message is handled, so a
// malformed topic is answered with an error event.
func IsVerbTopic(topic string) bool { return verbOf(topic) != "" }

// ParseVerbTopic parses {verb}/{kind}/{id}. isVerb reports whether topic is
// under a verb prefix at all; ok whether it also has exactly three levels,
// a known kind and a valid id. Whether the sender may use the kind is the
// Service's business.
func ParseVerbTopic(topic string) (t VerbTopic, isVerb, ok bool) {
	v := verbOf(topic)
	if v == "" {
		return VerbTopic{}, false, false
	}
	kind, id, found := strings.Cut(topic[len(v)+1:], "/")
	if !found || !chat.ValidID(id) {
		return VerbTopic{}, true, false
	}
	switch kind {
	case chat.ConvFriend, chat.ConvGroup, chat.ConvStranger, chat.ConvPassenger, chat.ConvUser:
	default:
		return VerbTopic{}, true, false // rooms keep no history: no verbs
	}
	return VerbTopic{Verb: v, Ref: chat.ConvRef{Kind: kind, ID: id}}, true, true
}
