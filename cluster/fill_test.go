package cluster_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure a session that logged in moments ago loses nothing stored after
// its login that the bus did not bring: a message committed between the
// client's catch-up read and the other nodes hearing of the login is sent
// nowhere. Here the bus loses the first message to bob's fresh session
// on b (as if a had not heard of the login yet); the next one, the first
// of the conversation on that session, brings it from the store.
func TestCluster_FreshLoginFill(t *testing.T) {
	n, alice, bob, dropped := lossyPair(t)
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
