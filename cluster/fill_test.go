package cluster_test

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/cluster"
)

// Ensure a session that logged in moments ago loses nothing stored after
// its login that the bus did not bring: a message committed between the
// client's catch-up read and the other nodes hearing of the login is sent
// nowhere. Here the bus loses the first message to bob's fresh session
// on b (as if a had not heard of the login yet); the next one, the first
// of the conversation on that session, brings it from the store.
func TestCluster_FreshLoginFill(t *testing.T) {
	var dropped atomic.Int32
	db, n := startCluster(t, 2, func(id string, o *cluster.Options) {
		if id == "b" {
			o.Drop = func(_ chat.Identity, event string, payload []byte) bool {
				return event == chat.EventMessage && strings.Contains(string(payload), "lost") && dropped.Add(1) == 1
			}
		}
	})
	users(t, db, "alice", "bob")
	friends(t, db, "alice", "bob")
	alice := connect(t, n[0], "alice-1", "alice")
	bob := connect(t, n[1], "bob-1", "bob")
	waitUntil(t, "a sees bob", func() bool { return n[0].n.RemoteSessions(chat.User("bob")) == 1 })
	alice.say(t, "say/friend/bob", "lost")
	alice.say(t, "say/friend/bob", "next")
	var got []string
	for range 2 {
		var e chat.MessageEvent
		if err := json.Unmarshal([]byte(bob.nextOn(t, "/message").Payload), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Content.Body)
	}
	if dropped.Load() != 1 || strings.Join(got, ",") != "lost,next" {
		t.Fatalf("bob got %v (dropped %d), want lost,next", got, dropped.Load())
	}
	if more := bob.until(t, marker(n[0], chat.User("bob"))); len(more) != 0 {
		t.Fatalf("bob got duplicates: %v", more)
	}
}
