package rest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
)

// messagesFixture: alice and bob are friends; olga owns group g1 with
// alice and bob; carol is a stranger to alice; p1 is a passenger.
func messagesFixture(t *testing.T, ts *testServer) {
	t.Helper()
	err := ts.db.Update(context.Background(), func(tx chat.Tx) error {
		for _, u := range []string{"alice", "bob", "carol", "olga"} {
			if err := tx.PutUser(&chat.UserRecord{ID: u, Attributes: chat.Attributes{}, Installs: []string{}}); err != nil {
				return err
			}
		}
		if err := tx.PutFriendship(&chat.Friendship{ID: chat.NewFriendshipID(), From: "alice", To: "bob", NS: testApp}); err != nil {
			return err
		}
		if err := tx.PutGroup(&chat.Group{ID: "g1", Owner: "olga", Members: []string{"alice", "bob"}}); err != nil {
			return err
		}
		return tx.PutPassenger(&chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Ensure DELETE .../messages/{seq} recalls for the speaker within the
// window, the group owner and the master key; refuses everyone else with
// 403/5003 and an unknown seq with 404/5004; and that history then shows
// the record as recalled, without content.
func TestRecall_REST(t *testing.T) {
	ts := newTestServer(t)
	messagesFixture(t, ts)
	now := ts.now()
	f := chat.FriendConv("alice", "bob")
	g := chat.GroupConv("g1")
	m1 := ts.seed(f, "alice", "one", now)
	m2 := ts.seed(f, "alice", "two", now)
	g1 := ts.seed(g, "alice", "in the group", now)
	g2 := ts.seed(g, "bob", "also", now)
	recall := func(uid, conv string, seq uint64) *response {
		return ts.call("DELETE", fmt.Sprintf("/ctx/%s/conversations/%s/messages/%d", uid, conv, seq), nil)
	}

	recall("bob", "friend/alice", m1.Seq).expectError(403, chat.CodeUnauthorized)   // not the speaker
	recall("carol", "friend/alice", m1.Seq).expectError(403, chat.CodeUnauthorized) // not a friend
	recall("alice", "friend/bob", 99).expectError(404, chat.CodeNotFound)
	recall("alice", "friend/bob", 0).expectError(400, chat.CodeInvalid)
	ts.call("DELETE", "/ctx/alice/conversations/friend/bob/messages/x", nil).expectError(400, chat.CodeInvalid)
	recall("alice", "room/r1", 1).expectError(400, chat.CodeInvalid)
	recall("alice", "user/bob", 1).expectError(403, chat.CodeUnauthorized) // users have no user/ conversations
	recall("alice", "group/nope", 1).expectError(404, chat.CodeNotFound)

	recall("alice", "friend/bob", m1.Seq).ok(204)
	recall("alice", "friend/bob", m1.Seq).ok(204) // again: nothing changes
	ts.call("GET", "/ctx/bob/friends/alice/chats", nil).expect(200,
		js(`[{"speaker":"alice","ts":%d,"recalled":true,"seq":%d},{"speaker":"alice","content":{"media":0,"body":"two"},"ts":%d,"seq":%d}]`, m1.TS, m1.Seq, m2.TS, m2.Seq))

	// Past the window the speaker may not; the group owner and the master
	// key may, whoever spoke.
	ts.clock.Add((chat.DefaultRecallWindow + time.Second).Milliseconds())
	recall("alice", "friend/bob", m2.Seq).expectError(403, chat.CodeUnauthorized)
	recall("alice", "group/g1", g1.Seq).expectError(403, chat.CodeUnauthorized)
	recall("olga", "group/g1", g1.Seq).ok(204)
	ts.callWith("DELETE", fmt.Sprintf("/ctx/bob/conversations/friend/alice/messages/%d", m2.Seq), nil, masterSigned()).ok(204)
	ts.callWith("DELETE", fmt.Sprintf("/ctx/carol/conversations/group/g1/messages/%d", g2.Seq), nil, masterSigned()).ok(204)
	ts.call("GET", "/groups/g1/chats", nil).expect(200,
		js(`[{"speaker":"alice","ts":%d,"recalled":true,"seq":%d},{"speaker":"bob","ts":%d,"recalled":true,"seq":%d}]`, g1.TS, g1.Seq, g2.TS, g2.Seq))
	ts.call("GET", "/ctx/alice/friends/bob/chats", nil).expect(200,
		js(`[{"speaker":"alice","ts":%d,"recalled":true,"seq":%d},{"speaker":"alice","ts":%d,"recalled":true,"seq":%d}]`, m1.TS, m1.Seq, m2.TS, m2.Seq))
}

// Ensure .../chats/{seq}/edits lists the earlier versions oldest first on
// each history family, history shows the current content with "edited",
// and an unknown seq is 404/5004.
func TestEdits_REST(t *testing.T) {
	ts := newTestServer(t)
	messagesFixture(t, ts)
	ctx := context.Background()
	now := ts.now()
	convs := []struct {
		conv    chat.Conv
		speaker chat.Identity
		ref     chat.ConvRef
		history string
	}{
		{chat.FriendConv("alice", "bob"), chat.User("alice"), chat.ConvRef{Kind: "friend", ID: "bob"}, "/ctx/bob/friends/alice/chats"},
		{chat.StrangerConv("alice", "carol"), chat.User("carol"), chat.ConvRef{Kind: "stranger", ID: "alice"}, "/ctx/alice/strangers/carol/chats"},
		{chat.GroupConv("g1"), chat.User("bob"), chat.ConvRef{Kind: "group", ID: "g1"}, "/groups/g1/chats"},
		{chat.PassengerConv("p1", "alice"), chat.Passenger("p1"), chat.ConvRef{Kind: "user", ID: "alice"}, "/passengers/p1/chats/alice"},
	}
	for _, c := range convs {
		rec := ts.seed(c.conv, c.speaker.ID, "v1", now)
		ts.call("GET", fmt.Sprintf("%s/%d/edits", c.history, rec.Seq), nil).expect(200, `[]`)
		e1, err := ts.svc.Edit(ctx, c.speaker, c.ref, rec.Seq, chat.Content{Body: "v2"})
		if err != nil {
			t.Fatalf("%s: %v", c.conv, err)
		}
		ts.clock.Add(5)
		e2, err := ts.svc.Edit(ctx, c.speaker, c.ref, rec.Seq, chat.Content{Body: "v3"})
		if err != nil {
			t.Fatalf("%s: %v", c.conv, err)
		}
		ts.call("GET", fmt.Sprintf("%s/%d/edits", c.history, rec.Seq), nil).expect(200,
			js(`[{"content":{"media":0,"body":"v1"},"ts":%d},{"content":{"media":0,"body":"v2"},"ts":%d}]`, e1, e2))
		ts.call("GET", c.history, nil).expect(200,
			js(`[{"speaker":"%s","content":{"media":0,"body":"v3"},"ts":%d,"edited":%d,"seq":%d}]`, c.speaker.ID, rec.TS, e2, rec.Seq))
		ts.call("GET", c.history+"/99/edits", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", c.history+"/0/edits", nil).expectError(400, chat.CodeInvalid)
	}
	ts.call("GET", "/groups/nope/chats/1/edits", nil).expectError(404, chat.CodeNotFound)
	ts.call("GET", "/passengers/nope/chats/alice/1/edits", nil).expectError(404, chat.CodeNotFound)
}
