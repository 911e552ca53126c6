package hooks_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// Ensure refused says: MQTT 5 gets the PUBACK reason code, every version
// gets an error event naming the ack number, and nothing reaches the
// intended recipient or the store.
func TestSay_Refusals(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		e := newEnv(t, nil)
		e.users(t, "alice", "bob", "carol")
		e.friends(t, "alice", "carol")
		e.seed(t, func(tx chat.Tx) error { return tx.PutGroup(&chat.Group{ID: "g1", Owner: "bob"}) })
		bob := connect(e, t, "b1", "bob")
		alice := connect(e, t, "a1", "alice")
		tests := []struct {
			name    string
			topic   string
			payload string
			code    int
			reason  byte
		}{
			{"NotFriend", "say/friend/bob", `{"content":{"body":"hi"},"ack":1}`, chat.CodeUnauthorized, 0x87},
			{"NotMember", "say/group/g1", `{"content":{"body":"hi"},"ack":2}`, chat.CodeUnauthorized, 0x87},
			{"UnknownGroup", "say/group/nope", `{"content":{"body":"hi"},"ack":3}`, chat.CodeNotFound, 0x90},
			{"UnknownUser", "say/stranger/nobody", `{"content":{"body":"hi"},"ack":4}`, chat.CodeNotFound, 0x90},
			{"BadTopic", "say/frend/bob", `{"content":{"body":"hi"},"ack":5}`, chat.CodeInvalid, 0x90},
			{"UserToUserTopic", "say/user/bob", `{"content":{"body":"hi"},"ack":6}`, chat.CodeUnauthorized, 0x87},
			{"NoBody", "say/friend/carol", `{"content":{"media":0},"ack":7}`, chat.CodeInvalid, 0x99},
			{"NotJSON", "say/friend/carol", `hello`, chat.CodeInvalid, 0x99},
			{"ToContradicts", "say/friend/carol", `{"to":{"id":"bob","type":0},"content":{"body":"hi"},"ack":8}`, chat.CodeInvalid, 0x99},
			{"TooLong", "say/friend/carol", fmt.Sprintf(`{"content":{"body":"%0*d"},"ack":9}`, 1025, 0), chat.CodeTooLong, 0x99},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rc := alice.Publish(t, tt.topic, tt.payload)
				if alice.Version() == 5 && rc != tt.reason {
					t.Errorf("PUBACK reason %#x, want %#x", rc, tt.reason)
				}
				want := map[string]any{"errorCode": float64(tt.code), "errorMessage": anyValue}
				if ack, ok := ackOf(tt.payload); ok {
					want["ack"] = ack
				}
				expectJSON(t, alice, "users/alice/error", want)
			})
		}
		m := e.marker(chat.User("bob"))
		expect(t, bob, "users/bob/marker", m)
		for _, conv := range []chat.Conv{chat.FriendConv("alice", "bob"), chat.FriendConv("alice", "carol"), chat.GroupConv("g1")} {
			if recs, _ := e.db.Records(context.Background(), conv, e.svc.Now().UnixMilli()+1000, 0, 10); len(recs) != 0 {
				t.Errorf("%s stored refused messages: %+v", conv, recs)
			}
		}
	})
}

func ackOf(payload string) (float64, bool) {
	var n float64
	if _, err := fmt.Sscanf(payload[max(0, len(payload)-8):], `"ack":%f}`, &n); err == nil {
		return n, true
	}
	for i := range payload {
		if _, err := fmt.Sscanf(payload[i:], `"ack":%f}`, &n); err == nil {
			return n, true
		}
	}
	return 0, false
}

// Ensure a refused QoS 2 say gets a PUBREC with the reason code (mochi
// would answer PUBACK, mochi#510) and an accepted one completes.
func TestSay_QoS2(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	alice := e.userV5(t, "a1", "alice")
	if rc := alice.publishQoS(t, "say/friend/nobody", `{"content":{"body":"x"}}`, 2); rc != 0x87 {
		t.Errorf("refused QoS 2: reason %#x, want 0x87", rc)
	}
	expectJSON(t, alice, "users/alice/error", map[string]any{"errorCode": 5003.0, "errorMessage": anyValue})
	if rc := alice.publishQoS(t, "say/friend/bob", `{"content":{"body":"x"}}`, 2); rc != 0 {
		t.Errorf("accepted QoS 2: reason %#x", rc)
	}
	if rc := alice.publishQoS(t, "say/friend/bob", `{"content":{"body":"y"}}`, 0); rc != 0 {
		t.Errorf("QoS 0: reason %#x", rc)
	}
	waitFor(t, "both messages stored", func() bool {
		recs, _ := e.db.Records(context.Background(), chat.FriendConv("alice", "bob"), e.svc.Now().UnixMilli()+1000, 0, 10)
		return len(recs) == 2
	})
}

// Ensure subscriptions outside one's own inbox are refused (MQTT 5: 0x87,
// 3.1.1: 0x80) and deliver nothing, and inbox filters are granted.
func TestACL_Subscribe(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		e := newEnv(t, nil)
		e.users(t, "bob", "bobby", "mallory")
		mallory := connect(e, t, "m1", "mallory")
		bob := connect(e, t, "b1", "bob")
		bobby := connect(e, t, "b2", "bobby")
		refused := byte(0x80)
		if mallory.Version() == 5 {
			refused = 0x87
		}
		for _, f := range []string{"users/bob/#", "users/bob/message", "users/+/message", "users/#", "#", "+/bob/#", "+/+/+",
			"$SYS/#", "$share/g/users/bob/#", "passengers/mallory/#", "say/friend/bob", "users/bo/#"} {
			if rc := mallory.Subscribe(t, f); rc != refused {
				t.Errorf("subscribe %q: %#x, want %#x", f, rc, refused)
			}
		}
		// bob's own inbox does not cover bobby's.
		if rc := bob.Subscribe(t, "users/bobby/#"); rc != refused {
			t.Errorf("bob subscribing to bobby: %#x", rc)
		}
		for _, f := range []string{"users/mallory/message", "users/mallory/+"} {
			if rc := mallory.Subscribe(t, f); rc != 1 {
				t.Errorf("subscribe own %q: %#x, want 1", f, rc)
			}
		}
		e.svc.Publisher.Publish(chat.User("bob"), "message", []byte(`"for bob"`), "")
		e.svc.Publisher.Publish(chat.User("bobby"), "message", []byte(`"for bobby"`), "")
		expect(t, bob, "users/bob/message", `"for bob"`)
		expect(t, bobby, "users/bobby/message", `"for bobby"`)
		m := e.marker(chat.User("mallory"))
		expect(t, mallory, "users/mallory/marker", m)
		m = e.marker(chat.User("bob"))
		expect(t, bob, "users/bob/marker", m)
	})
}

// Ensure publishing anywhere but say/... is refused: MQTT 5 gets PUBACK
// 0x87, MQTT 3.1.1 is disconnected (mochi's ACL rule); nothing reaches the
// victim's inbox.
func TestACL_Publish(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "bob", "mallory")
	bob := e.userV5(t, "b1", "bob")
	m5 := e.userV5(t, "m5", "mallory")
	for _, topic := range []string{"users/bob/message", "passengers/bob/message", "mallory", "chat/x"} {
		if rc := m5.Publish(t, topic, `{"from":{"id":"admin","type":0}}`); rc != 0x87 {
			t.Errorf("publish %q: %#x, want 0x87", topic, rc)
		}
	}
	m3 := e.userV3(t, "m3", "mallory")
	tok := m3.c.Publish("users/bob/message", 1, false, `"forged"`)
	tok.WaitTimeout(wait)
	waitFor(t, "the 3.1.1 publisher to be disconnected", func() bool { return !m3.c.IsConnected() })
	m := e.marker(chat.User("bob"))
	expect(t, bob, "users/bob/marker", m)
}

// Ensure retained flags on client publishes are ignored: the message is
// handled as a say and nothing is retained.
func TestACL_RetainIgnored(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	bob := e.userV3(t, "b1", "bob")
	alice := e.userV3(t, "a1", "alice")
	expect(t, bob, "users/bob/online", `"alice"`)
	tok := alice.c.Publish("say/friend/bob", 1, true, `{"content":{"body":"kept?"}}`)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if m := bob.Next(t); m.Topic != "users/bob/message" {
		t.Fatalf("got %s", m.Topic)
	}
	if n := len(e.srv.MQTT().Topics.Messages("say/#")) + len(e.srv.MQTT().Topics.Messages("users/#")); n != 0 {
		t.Errorf("%d retained messages", n)
	}
}

// Ensure a member removed from a group gets nothing from the group once the
// removal has returned, and can no longer publish to it.
func TestACL_RemovedGroupMember(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		e := newEnv(t, nil)
		ctx := context.Background()
		gid, err := e.svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "olga", Members: []string{"alice", "bob"}})
		if err != nil {
			t.Fatal(err)
		}
		olga := connect(e, t, "o1", "olga")
		bob := connect(e, t, "b1", "bob")
		if rc := olga.Publish(t, "say/group/"+gid, `{"content":{"body":"before"}}`); rc != 0 {
			t.Fatalf("PUBACK %#x", rc)
		}
		if m := bob.Next(t); m.Topic != "users/bob/message" || !contains(m.Payload, "before") {
			t.Fatalf("before removal: %s %s", m.Topic, m.Payload)
		}
		if err := e.svc.RemoveMembers(ctx, chat.GroupList, gid, []string{"bob"}); err != nil {
			t.Fatal(err)
		}
		if rc := olga.Publish(t, "say/group/"+gid, `{"content":{"body":"after"}}`); rc != 0 {
			t.Fatalf("PUBACK %#x", rc)
		}
		m := e.marker(chat.User("bob"))
		expect(t, bob, "users/bob/marker", m)
		rc := bob.Publish(t, "say/group/"+gid, `{"content":{"body":"still here?"},"ack":1}`)
		if bob.Version() == 5 && rc != 0x87 {
			t.Errorf("removed member publish: %#x, want 0x87", rc)
		}
		expectJSON(t, bob, "users/bob/error", map[string]any{"ack": 1.0, "errorCode": 5003.0, "errorMessage": anyValue})

		// Deleting the group stops delivery too.
		if err := e.svc.DeleteMemberList(ctx, chat.GroupList, gid); err != nil {
			t.Fatal(err)
		}
		if rc := olga.Publish(t, "say/group/"+gid, `{"content":{"body":"gone"},"ack":2}`); olga.Version() == 5 && rc != 0x90 {
			t.Errorf("deleted group: %#x, want 0x90", rc)
		}
		expectJSON(t, olga, "users/olga/error", map[string]any{"ack": 2.0, "errorCode": 5004.0, "errorMessage": anyValue})
	})
}

// Ensure an unfriended user can no longer send friend messages.
func TestACL_Unfriended(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.svc.AddFriend(ctx, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	bob := e.userV5(t, "b1", "bob")
	alice := e.userV5(t, "a1", "alice")
	expect(t, bob, "users/bob/online", `"alice"`)
	if rc := alice.Publish(t, "say/friend/bob", `{"content":{"body":"1"}}`); rc != 0 {
		t.Fatalf("PUBACK %#x", rc)
	}
	bob.Next(t)
	if err := e.svc.Unfriend(ctx, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	if rc := alice.Publish(t, "say/friend/bob", `{"content":{"body":"2"}}`); rc != 0x87 {
		t.Errorf("after unfriend: %#x, want 0x87", rc)
	}
	m := e.marker(chat.User("bob"))
	expect(t, bob, "users/bob/marker", m)
}

// Ensure the truncated MQTT 5 SUBSCRIBE of mochi#501 closes only that
// connection, with the hooks in place: its user goes offline (friends are
// told), the server keeps serving.
func TestACL_PanicClosesOneConnection(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	bob := e.userV3(t, "b1", "bob")
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := paho5.NewClient(paho5.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.Connect(ctx, &paho5.Connect{ClientID: "a1", KeepAlive: 30, CleanStart: true,
		Username: "alice", UsernameFlag: true, Password: []byte(sign()), PasswordFlag: true}); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, "users/bob/online", `"alice"`)
	if _, err := conn.Write([]byte{0x82, 0x06, 0x04, 0xD2, 0x00, 0x00, 0x01, 'p'}); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, "users/bob/offline", `"alice"`)
	if e.svc.Presence.Online(chat.User("alice")) {
		t.Error("alice still online")
	}
	again := e.userV5(t, "a1", "alice")
	expect(t, bob, "users/bob/online", `"alice"`)
	if rc := again.Publish(t, "say/friend/bob", `{"content":{"body":"back"}}`); rc != 0 {
		t.Fatalf("PUBACK %#x", rc)
	}
	if m := bob.Next(t); !contains(m.Payload, "back") {
		t.Fatalf("got %s", m.Payload)
	}
}

// Ensure a QoS 1 say retransmitted with DUP after its PUBACK was lost is
// acknowledged again but stored once; a DUP with the same packet id but
// another payload is a different message.
func TestSay_DuplicateRetransmission(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	conn := e.rawV3(t, "a1", "alice")
	publish := func(id uint16, dup bool, body string) {
		t.Helper()
		rawPublishQoS1(t, conn, id, dup, "say/friend/bob", `{"content":{"body":"`+body+`"}}`)
	}
	publish(7, false, "once")
	publish(7, true, "once")  // retransmission: acked, not stored again
	publish(7, false, "once") // a new message that happens to reuse the id: stored
	publish(8, true, "other") // a DUP never seen before: stored
	recs, err := e.db.Records(context.Background(), chat.FriendConv("alice", "bob"), e.svc.Now().UnixMilli()+1000, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, r := range recs {
		bodies = append(bodies, r.Content.Body)
	}
	if fmt.Sprint(bodies) != "[once once other]" {
		t.Errorf("stored %v, want [once once other]", bodies)
	}
}

// Ensure a say retransmitted on a new connection after the old one ended
// with its PUBACK unsent (a clean session, as MQTT.js resends) is stored
// once; another identity reusing the client id, or the same say from
// another client id, is not taken for a retransmission.
func TestSay_DuplicateAfterReconnect(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob", "carol")
	e.friends(t, "alice", "bob")
	e.friends(t, "carol", "bob")
	say := `{"content":{"body":"once"}}`
	first := e.rawV3(t, "a1", "alice")
	rawPublishQoS1(t, first, 7, false, "say/friend/bob", say)
	_ = first.Close()
	testwait.Until(t, "the first connection released", wait, func() bool { _, ok := e.srv.MQTT().Clients.Get("a1"); return !ok })

	again := e.rawV3(t, "a1", "alice")
	rawPublishQoS1(t, again, 7, true, "say/friend/bob", say) // acked, not stored again
	other := e.rawV3(t, "a2", "alice")
	rawPublishQoS1(t, other, 7, true, "say/friend/bob", say) // another client id: a new message
	_ = again.Close()
	testwait.Until(t, "the second connection released", wait, func() bool { _, ok := e.srv.MQTT().Clients.Get("a1"); return !ok })
	carol := e.rawV3(t, "a1", "carol")
	rawPublishQoS1(t, carol, 7, true, "say/friend/bob", say) // another identity: its own message

	count := func(a, b string) int {
		recs, err := e.db.Records(context.Background(), chat.FriendConv(a, b), e.svc.Now().UnixMilli()+1000, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	if n := count("alice", "bob"); n != 2 {
		t.Errorf("alice stored %d messages, want 2 (a1 once, a2 once)", n)
	}
	if n := count("carol", "bob"); n != 1 {
		t.Errorf("carol stored %d messages, want 1", n)
	}
}
