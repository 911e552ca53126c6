package chat_test

import (
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure conversations are named from the viewer's side and their parties
// are the read-cursor owners.
func TestConv_ViewAndSides(t *testing.T) {
	for _, c := range []struct {
		conv       chat.Conv
		uid        string
		kind, id   string
		a, b       string
		twoParties bool
	}{
		{chat.FriendConv("bob", "alice"), "alice", "friend", "bob", "alice", "bob", true},
		{chat.FriendConv("bob", "alice"), "bob", "friend", "alice", "alice", "bob", true},
		{chat.StrangerConv("alice", "carol"), "carol", "stranger", "alice", "alice", "carol", true},
		{chat.PassengerConv("p1", "alice"), "alice", "passenger", "p1", "passenger:p1", "alice", true},
		{chat.PassengerConv("p1", "alice"), "p1", "", "", "passenger:p1", "alice", true},
		{chat.GroupConv("g1"), "anyone", "group", "g1", "", "", false},
		{chat.FriendConv("bob", "alice"), "dave", "", "", "alice", "bob", true},
	} {
		if kind, id := c.conv.View(c.uid); kind != c.kind || id != c.id {
			t.Errorf("%s.View(%s) = %s/%s, want %s/%s", c.conv, c.uid, kind, id, c.kind, c.id)
		}
		if a, b, ok := c.conv.Sides(); a != c.a || b != c.b || ok != c.twoParties {
			t.Errorf("%s.Sides() = %s, %s, %v", c.conv, a, b, ok)
		}
	}
}

// Ensure a read payload is {"seq":N} with N a non-negative integer.
func TestParseRead(t *testing.T) {
	for p, want := range map[string]uint64{`{"seq":3}`: 3, `{"seq":"4"}`: 4, `"{\"seq\":5}"`: 5, `{"seq":0}`: 0, `{"seq":6.0}`: 6} {
		if got, err := chat.ParseRead([]byte(p)); err != nil || got != want {
			t.Errorf("ParseRead(%s) = %d, %v; want %d", p, got, err, want)
		}
	}
	for _, p := range []string{`{"seq":-1}`, `{}`, `{"seq":null}`, `{"seq":1.5}`, `[]`, `hello`, ``, `{"seq":"x"}`} {
		if _, err := chat.ParseRead([]byte(p)); chat.ErrorCode(err) != chat.CodeInvalid {
			t.Errorf("ParseRead(%s) error = %v, want 5001", p, err)
		}
	}
}
