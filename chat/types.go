package chat

import "encoding/json"

// Receiver and source types of MaxIM (docs/maxim.md §1.7).
const (
	TypeFriend    = 0 // ACTOR: a user, friend chat
	TypeGroup     = 1
	TypeRoom      = 2
	TypePassenger = 3
	TypeStranger  = 4
)

// Media types of content.media. Other values are reserved and passed through.
const (
	MediaText  = 0
	MediaImage = 1
	MediaAudio = 2
	MediaVideo = 3
)

// Kind tells users and passengers apart: they are separate namespaces.
type Kind uint8

const (
	KindUser Kind = iota + 1
	KindPassenger
)

// String returns "user" or "passenger".
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindPassenger:
		return "passenger"
	}
	return "unknown"
}

// Identity is who is logged in on a session: a user or a passenger.
type Identity struct {
	Kind Kind
	ID   string
}

// User returns the identity of user id.
func User(id string) Identity { return Identity{Kind: KindUser, ID: id} }

// Passenger returns the identity of passenger id.
func Passenger(id string) Identity { return Identity{Kind: KindPassenger, ID: id} }

// String returns "user:<id>" or "passenger:<id>".
func (i Identity) String() string { return i.Kind.String() + ":" + i.ID }

// Attributes is a free-form JSON object. Values are kept as raw JSON so that
// numbers and nested objects come back exactly as they were sent.
type Attributes map[string]json.RawMessage

// Clone returns a shallow copy (raw values are never mutated in place).
func (a Attributes) Clone() Attributes {
	out := make(Attributes, len(a))
	for k, v := range a {
		out[k] = v
	}
	return out
}

// UserRecord is a MaxIM user context as stored. Live state (sessions, online,
// notifyAll) is not stored; see [Presence].
type UserRecord struct {
	ID         string     `json:"id"`
	Attributes Attributes `json:"attributes"`
	Installs   []string   `json:"installs"`
	Created    int64      `json:"created"`
	TS         int64      `json:"ts"` // last update, ms
}

// Friendship is a symmetric friendship, stored once per unordered pair.
type Friendship struct {
	ID   string `json:"id"` // 16 lowercase hex
	From string `json:"from"`
	To   string `json:"to"`
	NS   string `json:"ns"` // app id
	TS   int64  `json:"ts"`
}

// Other returns the side of f that is not uid.
func (f *Friendship) Other(uid string) string {
	if f.From == uid {
		return f.To
	}
	return f.From
}

// ListKind tells the two kinds of member list apart, as Tinode's topic
// categories do; its values are the MaxIM receiver types. What sets the
// kinds apart (owner, limit, history, delivery) is data: see listRules.
type ListKind int

// Kinds of member list.
const (
	GroupList ListKind = TypeGroup
	RoomList  ListKind = TypeRoom
)

// MemberList is a MaxIM group or chat room. Members are stored exactly as
// given. A group's owner is an implicit member (docs/maxim.md §1.4, §11
// A1); a room is a large group with no owner and no history.
type MemberList struct {
	Kind       ListKind   `json:"-"`               // from the store key
	ID         string     `json:"id"`              // 32 lowercase hex
	Owner      string     `json:"owner,omitempty"` // groups only
	Members    []string   `json:"members"`
	Attributes Attributes `json:"attributes"`
	TS         int64      `json:"ts"` // creation
}

// Group and Room are MemberList under the names code that builds one uses
// (Tx.PutGroup, Tx.PutRoom).
type (
	Group = MemberList
	Room  = MemberList
)

// HasMember reports whether uid is the owner or a listed member.
func (l *MemberList) HasMember(uid string) bool {
	return (l.Owner != "" && l.Owner == uid) || contains(l.Members, uid)
}

// Everyone returns the owner and the members, without duplicates. Without
// an owner it is Members itself (no copy for a room of 1,000 on every
// message), so callers only read it.
func (l *MemberList) Everyone() []string {
	if l.Owner == "" {
		return l.Members
	}
	out := make([]string, 0, len(l.Members)+1)
	out = append(out, l.Owner)
	for _, m := range l.Members {
		if m != l.Owner {
			out = append(out, m)
		}
	}
	return out
}

// PassengerRecord is a visitor with free-form attributes.
type PassengerRecord struct {
	ID         string     `json:"id"`
	Attributes Attributes `json:"attributes"`
	TS         int64      `json:"ts"`
}

// Stranger is one direction of a stranger association: User has talked with
// Other, who is not (necessarily) a friend.
type Stranger struct {
	User  string `json:"user"`
	Other string `json:"other"`
	TS    int64  `json:"ts"`   // first contact
	Last  int64  `json:"last"` // latest message
}

// Content is a message body.
type Content struct {
	Media int    `json:"media"`
	Body  string `json:"body"`
}

// Conv identifies a stored conversation. Friend and stranger conversations
// are keyed by the unordered pair, so both sides see the same records.
type Conv string

// FriendConv returns the conversation of two friends.
func FriendConv(a, b string) Conv { return Conv("f:" + pair(a, b)) }

// StrangerConv returns the conversation of two strangers.
func StrangerConv(a, b string) Conv { return Conv("s:" + pair(a, b)) }

// GroupConv returns the conversation of a group.
func GroupConv(gid string) Conv { return Conv("g:" + gid) }

// PassengerConv returns the conversation of a passenger with a user.
func PassengerConv(pid, uid string) Conv { return Conv("p:" + pid + "|" + uid) }

// Kind returns the conversation kind: 'f', 's', 'g' or 'p'.
func (c Conv) Kind() byte {
	if len(c) == 0 {
		return 0
	}
	return c[0]
}

func pair(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}

// Record is one stored chat message (a MaxIM ChatRecord plus mqim's id and
// per-conversation sequence number, which MaxIM clients ignore).
type Record struct {
	Conv    Conv    `json:"-"`
	ID      string  `json:"id,omitempty"`
	Seq     uint64  `json:"seq,omitempty"`
	Speaker string  `json:"speaker"`
	Content Content `json:"content"`
	Remark  string  `json:"remark,omitempty"`
	TS      int64   `json:"ts"`
	// Recalled records keep their id, seq, speaker and ts but no content.
	Recalled bool `json:"recalled,omitempty"`
	// Edited is when the content was last replaced (ms); 0: never.
	Edited int64 `json:"edited,omitempty"`
	// SpeakerKind tells a passenger speaker from a user of the same id
	// when the append moves the speaker's read cursor; not stored (0 is a
	// user).
	SpeakerKind Kind `json:"-"`
}

// Peer is the from/to object of a message event.
type Peer struct {
	ID   string `json:"id"`
	Type int    `json:"type"`
	GID  string `json:"gid,omitempty"`
}

// PushSettings is the optional push object of a say or system message.
type PushSettings struct {
	Enable           *bool  `json:"enable,omitempty"`
	Sound            string `json:"sound,omitempty"`
	Prefix           string `json:"prefix,omitempty"`
	Suffix           string `json:"suffix,omitempty"`
	Overwrite        string `json:"overwrite,omitempty"`
	Badge            *int   `json:"badge,omitempty"`
	ContentAvailable bool   `json:"contentAvailable,omitempty"`
}

// Enabled reports whether push is allowed (absent or not false).
func (p *PushSettings) Enabled() bool { return p == nil || p.Enable == nil || *p.Enable }

// Event names: the last level of an inbox topic (docs/protocol.md §3.2).
const (
	EventMessage  = "message"
	EventYourself = "yourself"
	EventSys      = "sys"
	EventOnline   = "online"
	EventOffline  = "offline"
	EventOnlineX  = "online_x"
	EventOfflineX = "offline_x"
	EventAck      = "ack"
	EventError    = "error"
)

// MessageEvent is the payload of the message event.
type MessageEvent struct {
	From    Peer    `json:"from"`
	To      Peer    `json:"to"`
	Content Content `json:"content"`
	TS      int64   `json:"ts"`
	Remark  string  `json:"remark,omitempty"`
	ID      string  `json:"id,omitempty"`
	Seq     uint64  `json:"seq,omitempty"`
}

// YourselfEvent is the payload of the yourself event: no from.
type YourselfEvent struct {
	To      Peer    `json:"to"`
	Content Content `json:"content"`
	TS      int64   `json:"ts"`
	Remark  string  `json:"remark,omitempty"`
	ID      string  `json:"id,omitempty"`
	Seq     uint64  `json:"seq,omitempty"`
}

// SysEvent is the payload of the sys event.
type SysEvent struct {
	Content Content `json:"content"`
	TS      int64   `json:"ts"`
	Remark  string  `json:"remark,omitempty"`
}

// AckEvent is the payload of the ack event.
type AckEvent struct {
	Ack int64 `json:"ack"`
	TS  int64 `json:"ts"`
}

// ErrorEvent is the payload of the error event (mqim, docs/protocol.md §3.2).
type ErrorEvent struct {
	Ack          *int64 `json:"ack,omitempty"`
	ErrorCode    int    `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
