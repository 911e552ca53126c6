package hooks_test

import (
	"encoding/json"
	"fmt"
	"path"
	"testing"

	"github.com/mqim/mqim/chat"
)

// conv is an entry of GET /ctx/{uid}/conversations.
type conv struct {
	Kind   string      `json:"kind"`
	ID     string      `json:"id"`
	Seq    uint64      `json:"seq"`
	Read   uint64      `json:"read"`
	Unread uint64      `json:"unread"`
	TS     int64       `json:"ts"`
	Last   *histRecord `json:"last"`
}

// only returns the one conversation of uid, which must be kind/id.
func (e *syncEnv) only(t *testing.T, uid, kind, id string) conv {
	t.Helper()
	var cs []conv
	e.get(t, "/ctx/"+uid+"/conversations", &cs)
	if len(cs) != 1 || cs[0].Kind != kind || cs[0].ID != id || cs[0].Last == nil || cs[0].Last.Seq != cs[0].Seq || cs[0].TS != cs[0].Last.TS {
		t.Fatalf("conversations of %s = %+v, want only %s/%s", uid, cs, kind, id)
	}
	return cs[0]
}

func num(n uint64) float64 { return float64(n) }

// quiet is a client whose Next skips presence events (friends coming and
// going between the steps of a test).
type quiet struct{ client }

func (c quiet) Next(t *testing.T) msg {
	t.Helper()
	for {
		m := c.client.Next(t)
		switch path.Base(m.Topic) {
		case chat.EventOnline, chat.EventOffline, chat.EventOnlineX, chat.EventOfflineX:
			continue
		}
		return m
	}
}

// Ensure three devices of alice and her friend bob agree on read state: a
// read on one device reaches every device of alice (read) and bob
// (receipt), moves only forward and never past the latest message, one's
// own message moves one's own cursor, and the conversation list's read
// and unread agree with the events, over MQTT 3.1.1 and 5 and REST.
func TestRead_ThreeDevicesAndPeer(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		e := newSyncEnv(t)
		e.users(t, "alice", "bob")
		e.friends(t, "alice", "bob")
		var alice [3]client
		for i := range alice {
			alice[i] = quiet{connect(e.env, t, fmt.Sprintf("alice-%d", i), "alice")}
		}
		bob := quiet{connect(e.env, t, "bob-phone", "bob")}
		for i := range 3 {
			if rc := bob.Publish(t, "say/friend/alice", fmt.Sprintf(`{"content":{"body":"b%d"}}`, i)); rc != 0 {
				t.Fatalf("say: PUBACK %#x", rc)
			}
		}
		for _, a := range alice {
			for range 3 {
				if m := a.Next(t); m.Topic != "users/alice/message" {
					t.Fatalf("got %s %s, want a message", m.Topic, m.Payload)
				}
			}
		}
		if c := e.only(t, "alice", "friend", "bob"); c.Seq != 3 || c.Read != 0 || c.Unread != 3 || c.Last.Content.Body != "b2" || c.Last.Speaker != "bob" {
			t.Fatalf("alice before reading: %+v", c)
		}
		if c := e.only(t, "bob", "friend", "alice"); c.Read != 3 || c.Unread != 0 {
			t.Fatalf("bob's own messages unread: %+v", c)
		}

		// Device 0 reads up to 2: every device hears it, bob gets a receipt.
		if rc := alice[0].Publish(t, "read/friend/bob", `{"seq":2}`); rc != 0 {
			t.Fatalf("read: PUBACK %#x", rc)
		}
		for _, a := range alice {
			expectJSON(t, a, "users/alice/read", map[string]any{"kind": "friend", "id": "bob", "seq": num(2)})
		}
		expectJSON(t, bob, "users/bob/receipt", map[string]any{"kind": "friend", "id": "alice", "seq": num(2), "ts": anyValue})
		if c := e.only(t, "alice", "friend", "bob"); c.Read != 2 || c.Unread != 1 {
			t.Fatalf("alice after reading 2: %+v", c)
		}

		// Backwards: nothing moves, nobody hears of it.
		if rc := alice[1].Publish(t, "read/friend/bob", `{"seq":1}`); rc != 0 {
			t.Fatalf("read back: PUBACK %#x", rc)
		}
		m := e.marker(chat.User("alice"))
		for _, a := range alice {
			expect(t, a, "users/alice/marker", m)
		}
		expect(t, bob, "users/bob/marker", e.marker(chat.User("bob")))

		// Past the latest: clamped to 3.
		if rc := alice[2].Publish(t, "read/friend/bob", `{"seq":99}`); rc != 0 {
			t.Fatalf("read past: PUBACK %#x", rc)
		}
		for _, a := range alice {
			expectJSON(t, a, "users/alice/read", map[string]any{"kind": "friend", "id": "bob", "seq": num(3)})
		}
		expectJSON(t, bob, "users/bob/receipt", map[string]any{"kind": "friend", "id": "alice", "seq": num(3), "ts": anyValue})
		if c := e.only(t, "alice", "friend", "bob"); c.Read != 3 || c.Unread != 0 {
			t.Fatalf("alice after reading all: %+v", c)
		}

		// alice answers from device 1: her cursor follows her own message.
		if rc := alice[1].Publish(t, "say/friend/bob", `{"content":{"body":"a0"}}`); rc != 0 {
			t.Fatalf("say: PUBACK %#x", rc)
		}
		for _, i := range []int{0, 2} {
			if m := alice[i].Next(t); m.Topic != "users/alice/yourself" {
				t.Fatalf("device %d got %s %s, want yourself", i, m.Topic, m.Payload)
			}
		}
		if m := bob.Next(t); m.Topic != "users/bob/message" {
			t.Fatalf("bob got %s %s, want the message", m.Topic, m.Payload)
		}
		if c := e.only(t, "alice", "friend", "bob"); c.Seq != 4 || c.Read != 4 || c.Unread != 0 {
			t.Fatalf("alice after answering: %+v", c)
		}
		if c := e.only(t, "bob", "friend", "alice"); c.Read != 3 || c.Unread != 1 || c.Last.Content.Body != "a0" {
			t.Fatalf("bob after alice answered: %+v", c)
		}

		// bob reads over REST: his device hears it, alice's three get the receipt.
		if status, b := e.call(t, "POST", "/ctx/bob/conversations/friend/alice/read", map[string]any{"seq": 4}); status != 204 {
			t.Fatalf("REST read = %d %s", status, b)
		}
		expectJSON(t, bob, "users/bob/read", map[string]any{"kind": "friend", "id": "alice", "seq": num(4)})
		for _, a := range alice {
			expectJSON(t, a, "users/alice/receipt", map[string]any{"kind": "friend", "id": "bob", "seq": num(4), "ts": anyValue})
		}
		if c := e.only(t, "bob", "friend", "alice"); c.Read != 4 || c.Unread != 0 {
			t.Fatalf("bob after reading: %+v", c)
		}
	})
}

// Ensure group reads: a member's read reaches its own sessions only (no
// receipt in groups), the read list of a message splits the current
// members by their cursors (the speaker has read its own message), and
// the conversation list agrees.
func TestRead_Group(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		e := newSyncEnv(t)
		e.users(t, "alice", "bob", "carol", "dave")
		e.seed(t, func(tx chat.Tx) error {
			return tx.PutGroup(&chat.Group{ID: "g1", Owner: "alice", Members: []string{"bob", "carol"}, Attributes: chat.Attributes{}})
		})
		var cs []conv
		e.get(t, "/ctx/carol/conversations", &cs)
		if len(cs) != 0 {
			t.Fatalf("a group without messages is listed: %+v", cs)
		}
		bob := connect(e.env, t, "bob-phone", "bob")
		carol := connect(e.env, t, "carol-phone", "carol")
		carol2 := connect(e.env, t, "carol-tab", "carol")
		for i := range 2 {
			if rc := bob.Publish(t, "say/group/g1", fmt.Sprintf(`{"content":{"body":"g%d"}}`, i)); rc != 0 {
				t.Fatalf("say: PUBACK %#x", rc)
			}
		}
		for _, c := range []client{carol, carol2} {
			for range 2 {
				if m := c.Next(t); m.Topic != "users/carol/message" {
					t.Fatalf("got %s %s, want a message", m.Topic, m.Payload)
				}
			}
		}
		if rc := carol.Publish(t, "read/group/g1", `{"seq":1}`); rc != 0 {
			t.Fatalf("read: PUBACK %#x", rc)
		}
		for _, c := range []client{carol, carol2} {
			expectJSON(t, c, "users/carol/read", map[string]any{"kind": "group", "id": "g1", "seq": num(1)})
		}
		expect(t, bob, "users/bob/marker", e.marker(chat.User("bob")))
		if c := e.only(t, "carol", "group", "g1"); c.Seq != 2 || c.Read != 1 || c.Unread != 1 {
			t.Fatalf("carol's group: %+v", c)
		}
		reads := func(seq int) (got struct{ Read, Unread []string }) {
			e.get(t, fmt.Sprintf("/groups/g1/chats/%d/reads", seq), &got)
			return got
		}
		if got := reads(1); fmt.Sprint(got.Read, got.Unread) != "[bob carol] [alice]" {
			t.Errorf("reads of 1 = %+v", got)
		}
		if got := reads(2); fmt.Sprint(got.Read, got.Unread) != "[bob] [alice carol]" {
			t.Errorf("reads of 2 = %+v", got)
		}
		for _, c := range []struct {
			path   string
			status int
		}{{"/groups/g1/chats/3/reads", 404}, {"/groups/g1/chats/0/reads", 404}, {"/groups/g1/chats/x/reads", 400},
			{"/groups/0123456789abcdef0123456789abcdef/chats/1/reads", 404}} {
			if status, b := e.call(t, "GET", c.path, nil); status != c.status {
				t.Errorf("GET %s = %d %s, want %d", c.path, status, b, c.status)
			}
		}
		// dave is no member: refused with 5003, his cursor is not kept.
		dave := connect(e.env, t, "dave-phone", "dave")
		rc := dave.Publish(t, "read/group/g1", `{"seq":2}`)
		if dave.Version() == 5 && rc != 0x87 {
			t.Errorf("non-member read: PUBACK %#x, want 0x87", rc)
		}
		expectJSON(t, dave, "users/dave/error", map[string]any{"errorCode": num(chat.CodeUnauthorized), "errorMessage": anyValue})
		if status, _ := e.call(t, "POST", "/ctx/dave/conversations/group/g1/read", map[string]any{"seq": 1}); status != 401 {
			t.Errorf("REST non-member read = %d, want 401", status)
		}
	})
}

// Ensure receipts in stranger and passenger chats name the reader as the
// other party sees it: a passenger reads read/user/{uid} and the user gets
// receipt {"kind":"passenger","id":pid}; the user's read reaches the
// passenger as {"kind":"user","id":uid}.
func TestRead_StrangerAndPassenger(t *testing.T) {
	e := newSyncEnv(t)
	e.users(t, "alice", "carol")
	e.seed(t, func(tx chat.Tx) error {
		return tx.PutPassenger(&chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{}})
	})
	alice := e.userV5(t, "alice-phone", "alice")
	carol := e.userV3(t, "carol-phone", "carol")
	p1, _ := e.connectV5(t, "p1-web", "passenger:p1", sign(), 0, nil)
	p1.Subscribe(t, "passengers/p1/#")

	if rc := alice.Publish(t, "say/stranger/carol", `{"content":{"body":"hi"}}`); rc != 0 {
		t.Fatalf("say: PUBACK %#x", rc)
	}
	carol.Next(t) // the message
	carol.Publish(t, "read/stranger/alice", `{"seq":1}`)
	expectJSON(t, carol, "users/carol/read", map[string]any{"kind": "stranger", "id": "alice", "seq": num(1)})
	expectJSON(t, alice, "users/alice/receipt", map[string]any{"kind": "stranger", "id": "carol", "seq": num(1), "ts": anyValue})

	if rc := p1.Publish(t, "say/user/alice", `{"content":{"body":"help"}}`); rc != 0 {
		t.Fatalf("passenger say: PUBACK %#x", rc)
	}
	alice.Next(t) // the message
	if rc := alice.Publish(t, "read/passenger/p1", `{"seq":1}`); rc != 0 {
		t.Fatalf("read: PUBACK %#x", rc)
	}
	expectJSON(t, alice, "users/alice/read", map[string]any{"kind": "passenger", "id": "p1", "seq": num(1)})
	expectJSON(t, p1, "passengers/p1/receipt", map[string]any{"kind": "user", "id": "alice", "seq": num(1), "ts": anyValue})
	if rc := alice.Publish(t, "say/passenger/p1", `{"content":{"body":"sure"}}`); rc != 0 {
		t.Fatalf("say: PUBACK %#x", rc)
	}
	p1.Next(t) // the message
	if rc := p1.Publish(t, "read/user/alice", `{"seq":2}`); rc != 0 {
		t.Fatalf("passenger read: PUBACK %#x", rc)
	}
	expectJSON(t, p1, "passengers/p1/read", map[string]any{"kind": "user", "id": "alice", "seq": num(2)})
	expectJSON(t, alice, "users/alice/receipt", map[string]any{"kind": "passenger", "id": "p1", "seq": num(2), "ts": anyValue})

	var cs []conv
	e.get(t, "/ctx/alice/conversations", &cs)
	b, _ := json.Marshal(cs)
	if len(cs) != 2 || cs[0].Kind != "passenger" || cs[0].ID != "p1" || cs[0].Unread != 0 ||
		cs[1].Kind != "stranger" || cs[1].ID != "carol" || cs[1].Read != 1 {
		t.Errorf("alice's conversations = %s", b)
	}
}

// Ensure the ACL admits read/ publishes only where a say to the same
// target is allowed, and that the Service refuses the rest with MaxIM
// codes: MQTT 5 gets the PUBACK reason, every client the error event.
func TestRead_ACL(t *testing.T) {
	e := newSyncEnv(t)
	e.users(t, "alice", "bob", "carol")
	e.friends(t, "alice", "bob")
	e.seed(t, func(tx chat.Tx) error {
		if err := tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"alice"}, Attributes: chat.Attributes{}}); err != nil {
			return err
		}
		return tx.PutPassenger(&chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{}})
	})
	alice := e.userV5(t, "alice-phone", "alice")
	for _, c := range []struct {
		topic, payload string
		rc             byte
		code           int // error event; 0: none
	}{
		{"read/room/r1", `{"seq":1}`, 0x87, 0},         // rooms have no cursor: ACL
		{"read/user/bob", `{"seq":1}`, 0x87, 0},        // passengers only: ACL
		{"read/friend/bob/x", `{"seq":1}`, 0x87, 0},    // malformed: ACL
		{"read/bogus/bob", `{"seq":1}`, 0x87, 0},       // unknown kind: ACL
		{"read/friend/carol", `{"seq":1}`, 0x87, 5003}, // not friends
		{"read/group/nope", `{"seq":1}`, 0x90, 5004},
		{"read/stranger/nobody", `{"seq":1}`, 0x90, 5004},
		{"read/stranger/alice", `{"seq":1}`, 0x90, 5005},
		{"read/friend/bob", `{"seq":-1}`, 0x99, 5001},
		{"read/friend/bob", `hello`, 0x99, 5001},
		{"read/friend/bob", `{"seq":0}`, 0, 0},
		{"read/passenger/p1", `{"seq":0}`, 0, 0},
	} {
		if rc := alice.Publish(t, c.topic, c.payload); rc != c.rc {
			t.Errorf("%s %s: PUBACK %#x, want %#x", c.topic, c.payload, rc, c.rc)
		}
		if c.code != 0 {
			expectJSON(t, alice, "users/alice/error", map[string]any{"errorCode": num(uint64(c.code)), "errorMessage": anyValue})
		}
	}
	expect(t, alice, "users/alice/marker", e.marker(chat.User("alice")))

	p1, _ := e.connectV5(t, "p1-web", "passenger:p1", sign(), 0, nil)
	if rc := p1.Publish(t, "read/friend/alice", `{"seq":0}`); rc != 0x87 {
		t.Errorf("passenger read/friend: PUBACK %#x, want 0x87", rc)
	}
	if rc := p1.Publish(t, "read/user/alice", `{"seq":0}`); rc != 0 {
		t.Errorf("passenger read/user: PUBACK %#x, want 0", rc)
	}

	// MQTT 3.1.1 cannot fail a PUBACK: a publish the ACL refuses ends the
	// connection.
	bob := e.userV3(t, "bob-phone", "bob")
	bob.c.Publish("read/room/r1", 1, false, `{"seq":1}`)
	waitFor(t, "the 3.1.1 client to be disconnected", func() bool { return !bob.c.IsConnected() })
}
