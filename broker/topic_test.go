package broker

import (
	"testing"

	"github.com/mqim/mqim/chat"
)

func TestParseSendTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		topic string
		want  SendTopic
		ok    bool
	}{
		{"say/friend/bob", SendTopic{SayFriend, "bob"}, true},
		{"say/group/7c9fb6ca88ed41d58f69bb40b779d5bc", SendTopic{SayGroup, "7c9fb6ca88ed41d58f69bb40b779d5bc"}, true},
		{"say/room/r1", SendTopic{SayRoom, "r1"}, true},
		{"say/passenger/p_1", SendTopic{SayPassenger, "p_1"}, true},
		{"say/stranger/x-y", SendTopic{SayStranger, "x-y"}, true},
		{"say/user/alice", SendTopic{SayUser, "alice"}, true},
		{"say/friend", SendTopic{}, false},
		{"say/friend/", SendTopic{}, false},
		{"say/friend/bob/extra", SendTopic{}, false},
		{"say/friends/bob", SendTopic{}, false},
		{"say//bob", SendTopic{}, false},
		{"say/friend/b+b", SendTopic{}, false},
		{"say/friend/#", SendTopic{}, false},
		{"say/friend/b o b", SendTopic{}, false},
		{"Say/friend/bob", SendTopic{}, false},
		{"/say/friend/bob", SendTopic{}, false},
		{"users/bob/message", SendTopic{}, false},
		{"", SendTopic{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseSendTopic(tt.topic)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseSendTopic(%q) = %+v, %v; want %+v, %v", tt.topic, got, ok, tt.want, tt.ok)
		}
		if ok && got.String() != tt.topic {
			t.Errorf("SendTopic.String() = %q, want %q", got.String(), tt.topic)
		}
	}
}

func TestSendTopic_Target(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind string
		from chat.Kind
		want chat.SayTarget
		ok   bool
	}{
		{SayFriend, chat.KindUser, chat.SayTarget{Type: chat.TypeFriend, ID: "x"}, true},
		{SayGroup, chat.KindUser, chat.SayTarget{Type: chat.TypeGroup, ID: "x"}, true},
		{SayRoom, chat.KindUser, chat.SayTarget{Type: chat.TypeRoom, ID: "x"}, true},
		{SayPassenger, chat.KindUser, chat.SayTarget{Type: chat.TypePassenger, ID: "x"}, true},
		{SayStranger, chat.KindUser, chat.SayTarget{Type: chat.TypeStranger, ID: "x"}, true},
		{SayUser, chat.KindUser, chat.SayTarget{}, false},
		{SayUser, chat.KindPassenger, chat.SayTarget{Type: chat.TypeFriend, ID: "x"}, true},
		{SayFriend, chat.KindPassenger, chat.SayTarget{}, false},
		{SayGroup, chat.KindPassenger, chat.SayTarget{}, false},
		{SayStranger, chat.KindPassenger, chat.SayTarget{}, false},
	}
	for _, tt := range tests {
		got, ok := SendTopic{Kind: tt.kind, ID: "x"}.Target(tt.from)
		if ok != tt.ok || got != tt.want {
			t.Errorf("SendTopic{%s}.Target(%v) = %+v, %v; want %+v, %v", tt.kind, tt.from, got, ok, tt.want, tt.ok)
		}
	}
}

func TestInboxTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id    chat.Identity
		event string
		topic string
	}{
		{chat.User("bob"), chat.EventMessage, "users/bob/message"},
		{chat.User("bob"), chat.EventOnlineX, "users/bob/online_x"},
		{chat.Passenger("p1"), chat.EventSys, "passengers/p1/sys"},
	}
	for _, tt := range tests {
		if got := InboxTopic(tt.id, tt.event); got != tt.topic {
			t.Errorf("InboxTopic(%v, %q) = %q, want %q", tt.id, tt.event, got, tt.topic)
		}
		id, ev, ok := ParseInboxTopic(tt.topic)
		if !ok || id != tt.id || ev != tt.event {
			t.Errorf("ParseInboxTopic(%q) = %v, %q, %v; want %v, %q, true", tt.topic, id, ev, ok, tt.id, tt.event)
		}
	}
	for _, bad := range []string{"users/bob", "users/bob/", "users/+/message", "users/bob/#", "users/bob/a/b", "say/friend/bob", "people/bob/message", "users//message"} {
		if id, ev, ok := ParseInboxTopic(bad); ok {
			t.Errorf("ParseInboxTopic(%q) = %v, %q, true; want false", bad, id, ev)
		}
	}
}

func TestParseUsername(t *testing.T) {
	t.Parallel()
	tests := []struct {
		username string
		want     chat.Identity
		ok       bool
	}{
		{"bob", chat.User("bob"), true},
		{"passenger:p1", chat.Passenger("p1"), true},
		{"passenger:", chat.Identity{}, false},
		{"passenger:a:b", chat.Identity{}, false},
		{"", chat.Identity{}, false},
		{"bob/alice", chat.Identity{}, false},
		{"b#", chat.Identity{}, false},
		{"user:bob", chat.Identity{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseUsername(tt.username)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseUsername(%q) = %v, %v; want %v, %v", tt.username, got, ok, tt.want, tt.ok)
		}
		if ok && Username(got) != tt.username {
			t.Errorf("Username(%v) = %q, want %q", got, Username(got), tt.username)
		}
	}
}

func TestInboxAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		username string
		filter   string
		want     bool
	}{
		{"bob", "users/bob/#", true},
		{"bob", "users/bob/message", true},
		{"bob", "users/bob/+", true},
		{"bob", "users/bob", true},
		{"bob", "users/bob/+/x", true},
		{"bob", "users/bobby/#", false},
		{"bobby", "users/bob/#", false},
		{"bob", "users/bo/#", false},
		{"bob", "users/alice/#", false},
		{"bob", "users/+/message", false},
		{"bob", "users/#", false},
		{"bob", "#", false},
		{"bob", "+/bob/#", false},
		{"bob", "+/+/+", false},
		{"bob", "$SYS/#", false},
		{"bob", "$share/g/users/bob/#", false},
		{"bob", "passengers/bob/#", false},
		{"bob", "say/friend/bob", false},
		{"bob", "Users/bob/#", false},
		{"bob", "", false},
		{"passenger:p1", "passengers/p1/#", true},
		{"passenger:p1", "passengers/p1/message", true},
		{"passenger:p1", "users/p1/#", false},
		{"passenger:p1", "passengers/p10/#", false},
		{"passenger:p1", "passengers/+/#", false},
		{"", "users//#", false},
		{"passenger:", "passengers//#", false},
	}
	for _, tt := range tests {
		if got := InboxAllowed([]byte(tt.username), tt.filter); got != tt.want {
			t.Errorf("InboxAllowed(%q, %q) = %v, want %v", tt.username, tt.filter, got, tt.want)
		}
	}
}

// Ensure the read ACL, which runs for every recipient of every message,
// does not allocate.
func TestInboxAllowed_NoAllocs(t *testing.T) {
	u := []byte("bob")
	if n := testing.AllocsPerRun(100, func() { InboxAllowed(u, "users/bob/message") }); n != 0 {
		t.Fatalf("InboxAllowed allocates %v times per call, want 0", n)
	}
}
