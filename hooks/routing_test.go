package hooks_test

import (
	"context"
	"testing"

	"github.com/mqim/mqim/chat"
)

// world is the cast of the routing tests: alice and bob are friends; olga
// owns group g1 with alice and bob; room r1 has alice, bob and carol
// (offline); p1 is a passenger; dave is a stranger to alice.
type world struct {
	e      *env
	a1, a2 client // alice: a1 sends, a2 is her other device
	b1     client // bob
	o1     client // olga
	d1     client // dave
	p      client // passenger p1
}

func newWorld(t *testing.T, connect connectFn) *world {
	t.Helper()
	e := newEnv(t, nil)
	e.users(t, "alice", "bob", "carol", "dave", "olga")
	e.friends(t, "alice", "bob")
	e.seed(t, func(tx chat.Tx) error {
		if err := tx.PutGroup(&chat.Group{ID: "g1", Owner: "olga", Members: []string{"alice", "bob"}}); err != nil {
			return err
		}
		if err := tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"alice", "bob", "carol"}}); err != nil {
			return err
		}
		return tx.PutPassenger(&chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{}})
	})
	w := &world{e: e}
	// Connect bob first and check the presence events alice's devices
	// cause, so that every later message is a chat message.
	w.b1 = connect(e, t, "b1", "bob")
	w.a1 = connect(e, t, "a1", "alice")
	expect(t, w.b1, "users/bob/online", `"alice"`)
	w.a2 = connect(e, t, "a2", "alice")
	w.o1 = connect(e, t, "o1", "olga")
	w.d1 = connect(e, t, "d1", "dave")
	w.p = e.passenger(t, connect, "p1-tab", "p1")
	return w
}

// passenger connects passenger pid as a client of the version connect
// speaks.
func (e *env) passenger(t *testing.T, connect connectFn, clientID, pid string) client {
	t.Helper()
	probe := connect(e, t, clientID+"-probe", "probe")
	var c client
	if probe.Version() == 5 {
		c, _ = e.connectV5(t, clientID, "passenger:"+pid, e.password("passenger:"+pid), 0, nil)
	} else {
		c = e.connectV3(t, clientID, "passenger:"+pid, e.password("passenger:"+pid), true, 0, nil)
	}
	probe.Close()
	c.Subscribe(t, "passengers/"+pid+"/#")
	return c
}

// quiet checks that the sessions cs of id received nothing before a
// marker published now.
func (w *world) quiet(t *testing.T, id chat.Identity, cs ...client) {
	t.Helper()
	m := w.e.marker(id)
	for _, c := range cs {
		expect(t, c, "users/"+id.ID+"/marker", m)
	}
}

// quietP is quiet for the passenger.
func (w *world) quietP(t *testing.T) {
	t.Helper()
	m := w.e.marker(chat.Passenger("p1"))
	expect(t, w.p, "passengers/p1/marker", m)
}

// history returns the stored records of conv.
func (w *world) history(t *testing.T, conv chat.Conv) []chat.Record {
	t.Helper()
	recs, err := w.e.db.Records(context.Background(), conv, w.e.svc.Now().UnixMilli()+1000, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// Ensure every row of the routing table of docs/maxim.md §4.2 delivers the
// exact message payload to the recipients, yourself to the sender's other
// session only, ack to the sending session, and that a PUBACKed message is
// already in history.
func TestRouting(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		w := newWorld(t, connect)
		content := map[string]any{"media": 0.0, "body": "hi"}

		t.Run("Friend", func(t *testing.T) {
			if rc := w.a1.Publish(t, "say/friend/bob", `{"content":{"media":0,"body":"hi"},"ack":1}`); rc != 0 {
				t.Fatalf("PUBACK %#x", rc)
			}
			// PUBACK means stored: no waiting.
			recs := w.history(t, chat.FriendConv("bob", "alice"))
			if len(recs) != 1 || recs[0].Speaker != "alice" || recs[0].Content.Body != "hi" || recs[0].Seq != 1 {
				t.Fatalf("history after PUBACK = %+v", recs)
			}
			got := expectJSON(t, w.b1, "users/bob/message", map[string]any{
				"from": map[string]any{"id": "alice", "type": 0.0}, "to": map[string]any{"id": "bob", "type": 0.0},
				"content": content, "ts": float64(recs[0].TS), "id": recs[0].ID, "seq": 1.0,
			})
			expectJSON(t, w.a2, "users/alice/yourself", map[string]any{
				"to": map[string]any{"id": "bob", "type": 0.0}, "content": content, "ts": got["ts"], "id": got["id"], "seq": 1.0,
			})
			expectJSON(t, w.a1, "users/alice/ack", map[string]any{"ack": 1.0, "ts": got["ts"]})
			// The origin session gets no yourself; nobody else gets anything.
			w.quiet(t, chat.User("alice"), w.a1, w.a2)
			w.quiet(t, chat.User("olga"), w.o1)
		})

		t.Run("Group", func(t *testing.T) {
			if rc := w.a1.Publish(t, "say/group/g1", `{"content":{"body":"hi"},"remark":"r"}`); rc != 0 {
				t.Fatalf("PUBACK %#x", rc)
			}
			recs := w.history(t, chat.GroupConv("g1"))
			if len(recs) != 1 || recs[0].Remark != "r" {
				t.Fatalf("history after PUBACK = %+v", recs)
			}
			want := map[string]any{
				"from": map[string]any{"id": "alice", "type": 1.0, "gid": "g1"}, "to": map[string]any{"id": "g1", "type": 1.0},
				"content": content, "ts": float64(recs[0].TS), "remark": "r", "id": recs[0].ID, "seq": 1.0,
			}
			expectJSON(t, w.b1, "users/bob/message", want)
			expectJSON(t, w.o1, "users/olga/message", want)
			expectJSON(t, w.a2, "users/alice/yourself", map[string]any{
				"to": map[string]any{"id": "g1", "type": 1.0}, "content": content, "ts": want["ts"], "remark": "r", "id": want["id"], "seq": 1.0,
			})
			w.quiet(t, chat.User("alice"), w.a1, w.a2) // no ack number: no ack
		})

		t.Run("Room", func(t *testing.T) {
			if rc := w.a1.Publish(t, "say/room/r1", `{"content":{"body":"hi"},"ack":3}`); rc != 0 {
				t.Fatalf("PUBACK %#x", rc)
			}
			got := expectJSON(t, w.b1, "users/bob/message", map[string]any{
				"from": map[string]any{"id": "alice", "type": 2.0, "gid": "r1"}, "to": map[string]any{"id": "r1", "type": 2.0},
				"content": content, "ts": anyValue, "id": anyValue,
			})
			expectJSON(t, w.a2, "users/alice/yourself", map[string]any{
				"to": map[string]any{"id": "r1", "type": 2.0}, "content": content, "ts": got["ts"], "id": got["id"],
			})
			expectJSON(t, w.a1, "users/alice/ack", map[string]any{"ack": 3.0, "ts": got["ts"]})
			// carol is offline: a room keeps nothing for her.
			carol := connect(w.e, t, "c1", "carol")
			w.quiet(t, chat.User("carol"), carol)
		})

		t.Run("Passenger", func(t *testing.T) {
			if rc := w.a1.Publish(t, "say/passenger/p1", `{"content":{"body":"hi"}}`); rc != 0 {
				t.Fatalf("PUBACK %#x", rc)
			}
			recs := w.history(t, chat.PassengerConv("p1", "alice"))
			if len(recs) != 1 {
				t.Fatalf("history after PUBACK = %+v", recs)
			}
			expectJSON(t, w.p, "passengers/p1/message", map[string]any{
				"from": map[string]any{"id": "alice", "type": 0.0}, "to": map[string]any{"id": "p1", "type": 0.0},
				"content": content, "ts": float64(recs[0].TS), "id": recs[0].ID, "seq": 1.0,
			})
			expectJSON(t, w.a2, "users/alice/yourself", map[string]any{
				"to": map[string]any{"id": "p1", "type": 3.0}, "content": content, "ts": float64(recs[0].TS), "id": recs[0].ID, "seq": 1.0,
			})
		})

		t.Run("Stranger", func(t *testing.T) {
			if rc := w.a1.Publish(t, "say/stranger/dave", `{"content":{"body":"hi"}}`); rc != 0 {
				t.Fatalf("PUBACK %#x", rc)
			}
			recs := w.history(t, chat.StrangerConv("dave", "alice"))
			if len(recs) != 1 {
				t.Fatalf("history after PUBACK = %+v", recs)
			}
			expectJSON(t, w.d1, "users/dave/message", map[string]any{
				"from": map[string]any{"id": "alice", "type": 4.0}, "to": map[string]any{"id": "dave", "type": 4.0},
				"content": content, "ts": float64(recs[0].TS), "id": recs[0].ID, "seq": 1.0,
			})
			expectJSON(t, w.a2, "users/alice/yourself", map[string]any{
				"to": map[string]any{"id": "dave", "type": 4.0}, "content": content, "ts": float64(recs[0].TS), "id": recs[0].ID, "seq": 1.0,
			})
			err := w.e.db.View(context.Background(), func(tx chat.Tx) error {
				if _, err := tx.Stranger("alice", "dave"); err != nil {
					return err
				}
				_, err := tx.Stranger("dave", "alice")
				return err
			})
			if err != nil {
				t.Errorf("stranger associations: %v", err)
			}
		})

		t.Run("PassengerToUser", func(t *testing.T) {
			if rc := w.p.Publish(t, "say/user/alice", `{"to":{"id":"alice"},"content":{"body":"hi"},"ack":7}`); rc != 0 {
				t.Fatalf("PUBACK %#x", rc)
			}
			recs := w.history(t, chat.PassengerConv("p1", "alice"))
			if len(recs) != 2 || recs[1].Speaker != "p1" {
				t.Fatalf("history after PUBACK = %+v", recs)
			}
			want := map[string]any{
				"from": map[string]any{"id": "p1", "type": 3.0}, "to": map[string]any{"id": "alice", "type": 3.0},
				"content": content, "ts": float64(recs[1].TS), "id": recs[1].ID, "seq": 2.0,
			}
			expectJSON(t, w.a1, "users/alice/message", want)
			expectJSON(t, w.a2, "users/alice/message", want)
			expectJSON(t, w.p, "passengers/p1/ack", map[string]any{"ack": 7.0, "ts": float64(recs[1].TS)})
			w.quietP(t) // no yourself for passengers
		})
	})
}

// Ensure a QoS 1 message to a user whose persistent session is offline is
// queued and delivered when it reconnects, and stays in history.
func TestRouting_PersistentSession(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	b := e.connectV3(t, "bob-phone", "bob", sign(), false, 0, nil)
	b.Subscribe(t, "users/bob/#")
	b.Close()
	waitFor(t, "bob offline", func() bool { return !e.svc.Presence.Online(chat.User("bob")) })
	a := e.userV5(t, "a1", "alice")
	if rc := a.Publish(t, "say/friend/bob", `{"content":{"body":"while you were away"}}`); rc != 0 {
		t.Fatalf("PUBACK %#x", rc)
	}
	b = e.connectV3(t, "bob-phone", "bob", sign(), false, 0, nil)
	m := b.Next(t)
	if m.Topic != "users/bob/message" || !contains(m.Payload, "while you were away") {
		t.Fatalf("queued: %s %s", m.Topic, m.Payload)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
