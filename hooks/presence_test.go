package hooks_test

import (
	"context"
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure presence on multi-device login and logout: friends get online on
// the first session only and offline on the last only; with notifyAll,
// non-friends (users and passengers) get online_x and offline_x; the user
// who logs in gets no snapshot; passengers cause nothing.
func TestPresence_MultiDevice(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		e := newEnv(t, nil)
		e.users(t, "alice", "bob", "carol")
		e.friends(t, "alice", "bob")
		bob := connect(e, t, "b1", "bob")
		carol := connect(e, t, "c1", "carol")
		visitor := e.passenger(t, connect, "v1", "visitor")

		a1 := connect(e, t, "a1", "alice")
		expect(t, bob, "users/bob/online", `"alice"`)
		a2 := connect(e, t, "a2", "alice")
		a1.Close()
		quiet := func() {
			t.Helper()
			m := e.marker(chat.User("bob"))
			expect(t, bob, "users/bob/marker", m)
			m = e.marker(chat.User("carol"))
			expect(t, carol, "users/carol/marker", m)
			m = e.marker(chat.Passenger("visitor"))
			expect(t, visitor, "passengers/visitor/marker", m)
		}
		waitFor(t, "a1 to close", func() bool { return e.svc.Presence.Count(chat.User("alice")) == 1 })
		quiet() // second login and first logout: nothing
		a2.Close()
		expect(t, bob, "users/bob/offline", `"alice"`)
		quiet()

		// notifyAll: non-friends are told too.
		pw := authJSON(map[string]any{"app": testApp, "sign": sign(), "client": "alice", "notifyAll": true})
		var a3 client
		if bob.Version() == 5 {
			a3, _ = e.connectV5(t, "a3", "alice", pw, 0, nil)
		} else {
			a3 = e.connectV3(t, "a3", "alice", pw, true, 0, nil)
		}
		expect(t, bob, "users/bob/online", `"alice"`)
		expect(t, carol, "users/carol/online_x", `"alice"`)
		expect(t, visitor, "passengers/visitor/online_x", `"alice"`)
		a3.Close()
		expect(t, bob, "users/bob/offline", `"alice"`)
		expect(t, carol, "users/carol/offline_x", `"alice"`)
		expect(t, visitor, "passengers/visitor/offline_x", `"alice"`)

		// Passengers cause no presence events, and nobody got a snapshot.
		visitor.Close()
		quietNoVisitor := func() {
			m := e.marker(chat.User("bob"))
			expect(t, bob, "users/bob/marker", m)
			m = e.marker(chat.User("carol"))
			expect(t, carol, "users/carol/marker", m)
		}
		quietNoVisitor()
		if e.svc.Presence.Online(chat.User("alice")) || !e.svc.Presence.Online(chat.User("bob")) {
			t.Error("presence registry out of step")
		}
	})
}

// Ensure system messages over MQTT: to everyone online (users and
// passengers), to a user, to a passenger by id, to every group member, to
// online room members; the sys payload is exact.
func TestSystemMessages(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		e := newEnv(t, nil)
		ctx := context.Background()
		e.users(t, "alice", "bob", "carol")
		e.seed(t, func(tx chat.Tx) error {
			if err := tx.PutGroup(&chat.Group{ID: "g1", Owner: "alice", Members: []string{"bob"}}); err != nil {
				return err
			}
			return tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"bob", "carol"}})
		})
		alice := connect(e, t, "a1", "alice")
		bob := connect(e, t, "b1", "bob")
		visitor := e.passenger(t, connect, "v1", "visitor")
		msg, err := chat.ParseSystemMessage([]byte(`{"content":{"body":"maintenance"},"remark":"r","ts":1}`), 1024)
		if err != nil {
			t.Fatal(err)
		}
		sys := map[string]any{"content": map[string]any{"media": 0.0, "body": "maintenance"}, "ts": anyValue, "remark": "r"}

		if err := e.svc.SystemBroadcast(ctx, msg); err != nil {
			t.Fatal(err)
		}
		expectJSON(t, alice, "users/alice/sys", sys)
		expectJSON(t, bob, "users/bob/sys", sys)
		expectJSON(t, visitor, "passengers/visitor/sys", sys)

		if err := e.svc.SystemSend(ctx, chat.SystemToUser, "bob", msg); err != nil {
			t.Fatal(err)
		}
		expectJSON(t, bob, "users/bob/sys", sys)
		if err := e.svc.SystemSend(ctx, chat.SystemToUser, "visitor", msg); err != nil {
			t.Fatal(err)
		}
		expectJSON(t, visitor, "passengers/visitor/sys", sys)
		if err := e.svc.SystemSend(ctx, chat.SystemToGroup, "g1", msg); err != nil {
			t.Fatal(err)
		}
		expectJSON(t, alice, "users/alice/sys", sys)
		expectJSON(t, bob, "users/bob/sys", sys)
		if err := e.svc.SystemSend(ctx, chat.SystemToRoom, "r1", msg); err != nil {
			t.Fatal(err)
		}
		expectJSON(t, bob, "users/bob/sys", sys)
		m := e.marker(chat.User("alice"))
		expect(t, alice, "users/alice/marker", m)
		// carol was offline for the room message: nothing waits for her.
		carol := connect(e, t, "c1", "carol")
		m = e.marker(chat.User("carol"))
		expect(t, carol, "users/carol/marker", m)
	})
}

// Ensure rapid reconnects that take over one client id never make the user
// blink offline and leave no session behind: the friend sees one online and,
// after the last disconnect, one offline.
func TestPresence_RapidTakeovers(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	bob := e.userV3(t, "b1", "bob")
	var last client
	for i := range 20 {
		if i%2 == 0 {
			last = e.connectV3(t, "alice-phone", "alice", sign(), i%4 == 0, 0, nil)
		} else {
			last, _ = e.connectV5(t, "alice-phone", "alice", sign(), 0, nil)
		}
	}
	expect(t, bob, "users/bob/online", `"alice"`)
	waitFor(t, "one session", func() bool { return e.svc.Presence.Count(chat.User("alice")) == 1 })
	m := e.marker(chat.User("bob"))
	expect(t, bob, "users/bob/marker", m)
	last.Close()
	expect(t, bob, "users/bob/offline", `"alice"`)
	if e.svc.Presence.Online(chat.User("alice")) {
		t.Error("alice still online")
	}
}
