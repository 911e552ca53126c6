package broker

import "testing"

// Ensure read/ topics parse only as read/{kind}/{id} with a known kind and
// a valid id, and are allowed only for the kinds the sender may say to.
func TestReadTopic(t *testing.T) {
	for _, c := range []struct {
		topic           string
		user, passenger bool
	}{
		{"read/friend/bob", true, false},
		{"read/group/g1", true, false},
		{"read/stranger/bob", true, false},
		{"read/passenger/p1", true, false},
		{"read/user/alice", false, true},
		{"read/room/r1", false, false},
		{"read/friend/bob/x", false, false},
		{"read/friend/", false, false},
		{"read/friend/a+b", false, false},
		{"read/friend", false, false},
		{"say/friend/bob", false, false},
		{"reads/friend/bob", false, false},
	} {
		if got := ReadAllowed([]byte("alice"), c.topic); got != c.user {
			t.Errorf("user ReadAllowed(%q) = %v, want %v", c.topic, got, c.user)
		}
		if got := ReadAllowed([]byte("passenger:p1"), c.topic); got != c.passenger {
			t.Errorf("passenger ReadAllowed(%q) = %v, want %v", c.topic, got, c.passenger)
		}
	}
	if ReadAllowed([]byte("not valid!"), "read/friend/bob") {
		t.Error("an invalid username may read")
	}
}
