package hooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
)

// testClock is a service clock the tests move by hand; atomic because the
// hooks read it on connection goroutines.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// newVerbEnv is newEnv with chat options and a test clock installed
// before the server starts.
func newVerbEnv(t *testing.T, opts chat.Options) (*env, *testClock) {
	t.Helper()
	clk := &testClock{}
	clk.ms.Store(time.Now().UnixMilli())
	opts.AppID, opts.MaxBodyLen = testApp, 1024
	e := startEnv(t, envConfig{
		chat: func(o *chat.Options) { *o = opts },
		svc:  func(s *chat.Service) { s.Now = clk.now },
	})
	return e, clk
}

// verbWorld is the cast of the recall, edit and typing tests: alice (three
// devices) and bob are friends; olga owns group g1 with alice, bob and
// carol; dave is nobody's friend; p1 is a passenger.
type verbWorld struct {
	e                  *env
	clk                *testClock
	a1, a2, a3         client
	b1, c1, o1, d1, p1 client
}

func newVerbWorld(t *testing.T, connect connectFn, opts chat.Options) *verbWorld {
	t.Helper()
	e, clk := newVerbEnv(t, opts)
	e.users(t, "alice", "bob", "carol", "dave", "olga")
	e.friends(t, "alice", "bob")
	e.seed(t, func(tx chat.Tx) error {
		if err := tx.PutGroup(&chat.Group{ID: "g1", Owner: "olga", Members: []string{"alice", "bob", "carol"}}); err != nil {
			return err
		}
		return tx.PutPassenger(&chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{}})
	})
	w := &verbWorld{e: e, clk: clk}
	w.b1 = connect(e, t, "b1", "bob")
	w.a1 = connect(e, t, "a1", "alice")
	expect(t, w.b1, "users/bob/online", `"alice"`)
	w.a2 = connect(e, t, "a2", "alice")
	w.a3 = connect(e, t, "a3", "alice")
	w.c1 = connect(e, t, "c1", "carol")
	w.o1 = connect(e, t, "o1", "olga")
	w.d1 = connect(e, t, "d1", "dave")
	w.p1 = e.passenger(t, connect, "p1-tab", "p1")
	return w
}

// quiet fails unless each of cs (the sessions of id) has received nothing
// more.
func (w *verbWorld) quiet(t *testing.T, id chat.Identity, cs ...client) {
	t.Helper()
	m := w.e.marker(id)
	for _, c := range cs {
		expect(t, c, broker.InboxTopic(id, "marker"), m)
	}
}

// alices returns alice's three devices.
func (w *verbWorld) alices() []client { return []client{w.a1, w.a2, w.a3} }

// publish0 publishes at QoS 0.
func publish0(t *testing.T, c client, topic, payload string) {
	t.Helper()
	switch c := c.(type) {
	case *v3:
		if tok := c.c.Publish(topic, 0, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	case *v5:
		c.publishQoS(t, topic, payload, 0)
	}
}

// refused checks a refused QoS 1 publish: the MQTT 5 PUBACK reason and
// the error event, every version.
func refused(t *testing.T, c client, me, topic, payload string, code int, reason byte) {
	t.Helper()
	rc := c.Publish(t, topic, payload)
	if c.Version() == 5 && rc != reason {
		t.Errorf("%s: PUBACK reason %#x, want %#x", topic, rc, reason)
	}
	want := map[string]any{"errorCode": float64(code), "errorMessage": anyValue}
	if ack, ok := ackOf(payload); ok {
		want["ack"] = ack
	}
	expectJSON(t, c, "users/"+me+"/error", want)
}

// Ensure typing reaches the other party of each kind of conversation (and
// every other online group member), at most once a second per sender and
// conversation by the service clock, and is refused where say would be.
func TestTyping(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		w := newVerbWorld(t, connect, chat.Options{})
		alice, bob := chat.User("alice"), chat.User("bob")

		// A burst of ten within one second (the clock stands still): the
		// QoS 1 publish last is answered after the nine QoS 0 ones were
		// handled, so bob has received all there is before the marker.
		for range 9 {
			publish0(t, w.a1, "typing/friend/bob", "")
		}
		if rc := w.a1.Publish(t, "typing/friend/bob", "x"); rc != 0 {
			t.Fatalf("typing PUBACK %#x", rc)
		}
		expectJSON(t, w.b1, "users/bob/typing", map[string]any{"kind": "friend", "id": "alice", "from": "alice"})
		w.quiet(t, bob, w.b1)
		w.clk.add(999 * time.Millisecond)
		w.a1.Publish(t, "typing/friend/bob", "")
		w.quiet(t, bob, w.b1)
		w.clk.add(time.Millisecond)
		w.a2.Publish(t, "typing/friend/bob", "") // another device, same sender
		expectJSON(t, w.b1, "users/bob/typing", map[string]any{"kind": "friend", "id": "alice", "from": "alice"})
		w.quiet(t, bob, w.b1)
		w.quiet(t, alice, w.alices()...) // the sender's devices get nothing

		// Group: every other member, alice on each device; not bob.
		w.b1.Publish(t, "typing/group/g1", "")
		want := map[string]any{"kind": "group", "id": "g1", "from": "bob"}
		for _, c := range w.alices() {
			expectJSON(t, c, "users/alice/typing", want)
		}
		expectJSON(t, w.c1, "users/carol/typing", want)
		expectJSON(t, w.o1, "users/olga/typing", want)
		w.quiet(t, bob, w.b1)

		// Passenger and stranger chats, named from the receiver's side.
		w.p1.Publish(t, "typing/user/alice", "")
		for _, c := range w.alices() {
			expectJSON(t, c, "users/alice/typing", map[string]any{"kind": "passenger", "id": "p1", "from": "p1"})
		}
		w.a1.Publish(t, "typing/passenger/p1", "")
		expectJSON(t, w.p1, "passengers/p1/typing", map[string]any{"kind": "user", "id": "alice", "from": "alice"})
		w.a1.Publish(t, "typing/stranger/dave", "")
		expectJSON(t, w.d1, "users/dave/typing", map[string]any{"kind": "stranger", "id": "alice", "from": "alice"})

		// Refused where say would be.
		refused(t, w.d1, "dave", "typing/friend/alice", "", chat.CodeUnauthorized, 0x87)
		refused(t, w.d1, "dave", "typing/group/g1", "", chat.CodeUnauthorized, 0x87)
		refused(t, w.d1, "dave", "typing/group/nope", "", chat.CodeNotFound, 0x90)
		refused(t, w.d1, "dave", "typing/user/alice", "", chat.CodeUnauthorized, 0x87)
		refused(t, w.d1, "dave", "typing/room/r1", "", chat.CodeInvalid, 0x90)
		refused(t, w.d1, "dave", "typing/friend/al/ice", "", chat.CodeInvalid, 0x90)
		w.quiet(t, bob, w.b1)
		w.quiet(t, alice, w.alices()...)
	})
}

// Ensure the ACL lets clients publish to the verb prefixes only (the
// Verbs hook then answers malformed topics with an error event), and
// never subscribe to them.
func TestACL_Verbs(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "bob", "mallory")
	m5 := e.userV5(t, "m5", "mallory")
	for _, topic := range []string{"recall", "recallx/friend/bob", "typing", "edits/friend/bob", "Typing/friend/bob"} {
		if rc := m5.Publish(t, topic, `{"seq":1}`); rc != 0x87 {
			t.Errorf("publish %q: %#x, want 0x87 (ACL)", topic, rc)
		}
	}
	for _, topic := range []string{"recall/friend/bob", "edit/friend/bob", "typing/friend/bob"} {
		if rc := m5.Publish(t, topic, `{"seq":1,"content":{"body":"x"}}`); rc != 0x87 {
			t.Errorf("publish %q: %#x, want 0x87 (not friends)", topic, rc)
		}
		expectJSON(t, m5, "users/mallory/error", map[string]any{"errorCode": 5003.0, "errorMessage": anyValue})
	}
	for _, f := range []string{"recall/#", "edit/friend/bob", "typing/+/+", "users/bob/typing"} {
		if rc := m5.Subscribe(t, f); rc != 0x87 {
			t.Errorf("subscribe %q: %#x, want 0x87", f, rc)
		}
	}
	// 3.1.1 has no failing PUBACK: a verb topic stays connected and gets
	// the error event; anything else disconnects.
	m3 := e.userV3(t, "m3", "mallory")
	m3.Publish(t, "typing/friend/bob", "")
	expectJSON(t, m3, "users/mallory/error", map[string]any{"errorCode": 5003.0, "errorMessage": anyValue})
	tok := m3.c.Publish("typingx/friend/bob", 1, false, "")
	tok.WaitTimeout(wait)
	waitFor(t, "the 3.1.1 publisher to be disconnected", func() bool { return !m3.c.IsConnected() })
}

// nextOn fails unless the next message of c is on topic, and returns its
// payload decoded.
func nextOn(t *testing.T, c client, topic string) map[string]any {
	t.Helper()
	m := c.Next(t)
	var got map[string]any
	if m.Topic != topic || json.Unmarshal([]byte(m.Payload), &got) != nil {
		t.Fatalf("got %s %s, want %s", m.Topic, m.Payload, topic)
	}
	return got
}

// nextTwo returns the next two messages of c by topic: the ack of a verb
// is written on the session's own goroutine, its event through the
// broker's queue, so either may come first.
func nextTwo(t *testing.T, c client) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for range 2 {
		m := c.Next(t)
		var got map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &got); err != nil {
			t.Fatalf("%s %s: %v", m.Topic, m.Payload, err)
		}
		out[m.Topic] = got
	}
	return out
}

// say sends a message from c (user or passenger me) and returns its seq,
// read from the message event the receiver rc (inbox topic rt) gets.
func say(t *testing.T, c client, topic, body string, rc client, rt string) uint64 {
	t.Helper()
	if code := c.Publish(t, topic, `{"content":{"body":"`+body+`"}}`); code != 0 {
		t.Fatalf("say %s: %#x", topic, code)
	}
	return uint64(nextOn(t, rc, rt)["seq"].(float64))
}

// bobSaysToGroup has bob say body to group g1, which carol, every session
// of alice and the owner olga receive; it returns the message's seq.
func (w *verbWorld) bobSaysToGroup(t *testing.T, body string) uint64 {
	t.Helper()
	g := say(t, w.b1, "say/group/g1", body, w.c1, "users/carol/message")
	for _, c := range w.alices() {
		nextOn(t, c, "users/alice/message")
	}
	nextOn(t, w.o1, "users/olga/message")
	return g
}

// Ensure a recall reaches every session of every party (the recalling
// device and the speaker's other devices included), named from each
// side, shows in history, and is refused with the right codes: someone
// else's message or past the configured window 5003 (MQTT 5 0x87),
// an unknown seq 5004 (0x90), a bad payload 5001 (0x99). The group owner
// recalls any group message at any time.
func TestRecall(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		w := newVerbWorld(t, connect, chat.Options{RecallWindow: 10 * time.Second})
		ctx := context.Background()
		alice, bob := chat.User("alice"), chat.User("bob")
		s1 := say(t, w.a1, "say/friend/bob", "one", w.b1, "users/bob/message")
		s2 := say(t, w.a1, "say/friend/bob", "two", w.b1, "users/bob/message")
		for range 2 {
			nextOn(t, w.a2, "users/alice/yourself")
			nextOn(t, w.a3, "users/alice/yourself")
		}

		if rc := w.a1.Publish(t, "recall/friend/bob", js(`{"seq":%d,"ack":5}`, s1)); rc != 0 {
			t.Fatalf("recall PUBACK %#x", rc)
		}
		two := nextTwo(t, w.a1)
		ev := two["users/alice/recall"]
		wantEv := map[string]any{"kind": "friend", "id": "bob", "seq": float64(s1), "by": "alice", "ts": ev["ts"]}
		if fmt.Sprint(ev) != fmt.Sprint(wantEv) || fmt.Sprint(two["users/alice/ack"]) != fmt.Sprint(map[string]any{"ack": 5.0, "ts": ev["ts"]}) {
			t.Fatalf("recalling session got %v", two)
		}
		for _, c := range []client{w.a2, w.a3} {
			expectJSON(t, c, "users/alice/recall", ev)
		}
		expectJSON(t, w.b1, "users/bob/recall", map[string]any{"kind": "friend", "id": "alice", "seq": float64(s1), "by": "alice", "ts": ev["ts"]})
		recs, err := w.e.svc.FriendHistory(ctx, "bob", "alice", 0, 10)
		if err != nil || len(recs) != 2 || !recs[0].Recalled || recs[0].Content != (chat.Content{}) || recs[0].Seq != s1 || recs[1].Content.Body != "two" {
			t.Fatalf("history = %+v, %v", recs, err)
		}

		refused(t, w.b1, "bob", "recall/friend/alice", js(`{"seq":%d,"ack":1}`, s2), chat.CodeUnauthorized, 0x87)
		refused(t, w.d1, "dave", "recall/friend/alice", js(`{"seq":%d}`, s2), chat.CodeUnauthorized, 0x87)
		refused(t, w.a1, "alice", "recall/friend/bob", `{"seq":99,"ack":2}`, chat.CodeNotFound, 0x90)
		refused(t, w.a1, "alice", "recall/friend/bob", `{"ack":3}`, chat.CodeInvalid, 0x99)
		refused(t, w.a1, "alice", "recall/friend/bob", `no`, chat.CodeInvalid, 0x99)
		refused(t, w.a1, "alice", "recall/room/r1", `{"seq":1}`, chat.CodeInvalid, 0x90)
		// The window counts from s2's own ts, which strictly increasing ts
		// may put a millisecond or more after the clock.
		w.clk.ms.Store(recs[1].TS + (10*time.Second + time.Millisecond).Milliseconds())
		refused(t, w.a1, "alice", "recall/friend/bob", js(`{"seq":%d,"ack":4}`, s2), chat.CodeUnauthorized, 0x87)
		w.quiet(t, alice, w.alices()...)
		w.quiet(t, bob, w.b1)

		// Group: the owner recalls a member's old message; every member
		// and the owner hear of it on every session.
		g := w.bobSaysToGroup(t, "oops")
		w.clk.add(time.Hour)
		refused(t, w.b1, "bob", "recall/group/g1", js(`{"seq":%d}`, g), chat.CodeUnauthorized, 0x87)
		w.o1.Publish(t, "recall/group/g1", js(`{"seq":%d}`, g))
		want := map[string]any{"kind": "group", "id": "g1", "seq": float64(g), "by": "olga", "ts": anyValue}
		for _, p := range []struct {
			c     client
			topic string
		}{{w.a1, "users/alice/recall"}, {w.a2, "users/alice/recall"}, {w.a3, "users/alice/recall"},
			{w.b1, "users/bob/recall"}, {w.c1, "users/carol/recall"}, {w.o1, "users/olga/recall"}} {
			expectJSON(t, p.c, p.topic, want)
		}
		if recs, _ := w.e.svc.GroupHistory(ctx, "g1", 0, 10); len(recs) != 1 || !recs[0].Recalled {
			t.Errorf("group history = %+v", recs)
		}

		// Passenger chat: the passenger recalls its own message.
		w.clk.add(-time.Hour - 11*time.Second)
		p := say(t, w.p1, "say/user/alice", "psst", w.a1, "users/alice/message")
		nextOn(t, w.a2, "users/alice/message")
		nextOn(t, w.a3, "users/alice/message")
		w.p1.Publish(t, "recall/user/alice", js(`{"seq":%d}`, p))
		expectJSON(t, w.p1, "passengers/p1/recall", map[string]any{"kind": "user", "id": "alice", "seq": float64(p), "by": "p1", "ts": anyValue})
		for _, c := range w.alices() {
			expectJSON(t, c, "users/alice/recall", map[string]any{"kind": "passenger", "id": "p1", "seq": float64(p), "by": "p1", "ts": anyValue})
		}
		// ... and a user recalls in its chat with a passenger, and in a
		// stranger chat.
		p = say(t, w.a1, "say/passenger/p1", "hello p1", w.p1, "passengers/p1/message")
		s := say(t, w.a1, "say/stranger/dave", "hello dave", w.d1, "users/dave/message")
		for range 2 {
			nextOn(t, w.a2, "users/alice/yourself")
			nextOn(t, w.a3, "users/alice/yourself")
		}
		w.a1.Publish(t, "recall/passenger/p1", js(`{"seq":%d}`, p))
		expectJSON(t, w.p1, "passengers/p1/recall", map[string]any{"kind": "user", "id": "alice", "seq": float64(p), "by": "alice", "ts": anyValue})
		w.a1.Publish(t, "recall/stranger/dave", js(`{"seq":%d}`, s))
		expectJSON(t, w.d1, "users/dave/recall", map[string]any{"kind": "stranger", "id": "alice", "seq": float64(s), "by": "alice", "ts": anyValue})
		for _, c := range w.alices() {
			expectJSON(t, c, "users/alice/recall", map[string]any{"kind": "passenger", "id": "p1", "seq": float64(p), "by": "alice", "ts": anyValue})
			expectJSON(t, c, "users/alice/recall", map[string]any{"kind": "stranger", "id": "dave", "seq": float64(s), "by": "alice", "ts": anyValue})
		}
		w.quiet(t, alice, w.alices()...)
	})
}

// Ensure an edit reaches every party's sessions, history shows the new
// content with "edited", the earlier versions are listed oldest first, and
// refusals carry the right codes: not the speaker, not text, or past the
// configured window 5003; unknown or recalled seq 5004; a non-text
// replacement 5001.
func TestEdit(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		w := newVerbWorld(t, connect, chat.Options{EditWindow: time.Minute})
		ctx := context.Background()
		alice, bob := chat.User("alice"), chat.User("bob")
		s1 := say(t, w.a1, "say/friend/bob", "hi bbo", w.b1, "users/bob/message")
		if rc := w.a1.Publish(t, "say/friend/bob", `{"content":{"media":1,"body":"http://x/y.png"}}`); rc != 0 {
			t.Fatal(rc)
		}
		img := uint64(nextOn(t, w.b1, "users/bob/message")["seq"].(float64))
		for range 2 {
			nextOn(t, w.a2, "users/alice/yourself")
			nextOn(t, w.a3, "users/alice/yourself")
		}

		w.a2.Publish(t, "edit/friend/bob", js(`{"seq":%d,"content":{"media":0,"body":"hi bob"},"ack":9}`, s1))
		two := nextTwo(t, w.a2)
		ev := two["users/alice/edit"]
		wantEv := map[string]any{"kind": "friend", "id": "bob", "seq": float64(s1),
			"content": map[string]any{"media": 0.0, "body": "hi bob"}, "edited": ev["edited"]}
		if fmt.Sprint(ev) != fmt.Sprint(wantEv) || fmt.Sprint(two["users/alice/ack"]) != fmt.Sprint(map[string]any{"ack": 9.0, "ts": ev["edited"]}) {
			t.Fatalf("editing session got %v", two)
		}
		expectJSON(t, w.a1, "users/alice/edit", ev)
		expectJSON(t, w.a3, "users/alice/edit", ev)
		expectJSON(t, w.b1, "users/bob/edit", map[string]any{"kind": "friend", "id": "alice", "seq": float64(s1),
			"content": map[string]any{"media": 0.0, "body": "hi bob"}, "edited": ev["edited"]})
		w.clk.add(time.Millisecond)
		w.a1.Publish(t, "edit/friend/bob", js(`{"seq":%d,"content":{"body":"hi bob!"}}`, s1))
		ev2 := nextOn(t, w.b1, "users/bob/edit")
		for _, c := range w.alices() {
			nextOn(t, c, "users/alice/edit")
		}
		recs, err := w.e.svc.FriendHistory(ctx, "bob", "alice", 0, 10)
		if err != nil || len(recs) != 2 || recs[0].Content.Body != "hi bob!" || recs[0].Edited != int64(ev2["edited"].(float64)) {
			t.Fatalf("history = %+v, %v", recs, err)
		}
		edits, err := w.e.svc.FriendEdits(ctx, "bob", "alice", s1)
		want := []chat.Edit{{Content: chat.Content{Body: "hi bbo"}, TS: int64(ev["edited"].(float64))},
			{Content: chat.Content{Body: "hi bob"}, TS: int64(ev2["edited"].(float64))}}
		if err != nil || fmt.Sprint(edits) != fmt.Sprint(want) {
			t.Fatalf("edits = %+v, %v; want %+v", edits, err, want)
		}

		refused(t, w.b1, "bob", "edit/friend/alice", js(`{"seq":%d,"content":{"body":"mine now"},"ack":1}`, s1), chat.CodeUnauthorized, 0x87)
		refused(t, w.a1, "alice", "edit/friend/bob", js(`{"seq":%d,"content":{"body":"text now"}}`, img), chat.CodeUnauthorized, 0x87)
		refused(t, w.a1, "alice", "edit/friend/bob", js(`{"seq":%d,"content":{"media":1,"body":"x"}}`, s1), chat.CodeInvalid, 0x99)
		refused(t, w.a1, "alice", "edit/friend/bob", js(`{"seq":%d}`, s1), chat.CodeInvalid, 0x99)
		refused(t, w.a1, "alice", "edit/friend/bob", `{"seq":99,"content":{"body":"x"}}`, chat.CodeNotFound, 0x90)
		refused(t, w.a1, "alice", "edit/friend/bob", js(`{"seq":%d,"content":{"body":"%0*d"}}`, s1, 1025, 0), chat.CodeTooLong, 0x99)
		w.a1.Publish(t, "recall/friend/bob", js(`{"seq":%d}`, img))
		nextOn(t, w.b1, "users/bob/recall")
		for _, c := range w.alices() {
			nextOn(t, c, "users/alice/recall")
		}
		refused(t, w.a1, "alice", "edit/friend/bob", js(`{"seq":%d,"content":{"body":"x"}}`, img), chat.CodeNotFound, 0x90)
		w.clk.add(time.Minute)
		refused(t, w.a1, "alice", "edit/friend/bob", js(`{"seq":%d,"content":{"body":"late"}}`, s1), chat.CodeUnauthorized, 0x87)
		w.quiet(t, alice, w.alices()...)
		w.quiet(t, bob, w.b1)

		// Group: every member and the owner get the edit.
		g := w.bobSaysToGroup(t, "helo")
		w.b1.Publish(t, "edit/group/g1", js(`{"seq":%d,"content":{"body":"hello"}}`, g))
		gw := map[string]any{"kind": "group", "id": "g1", "seq": float64(g), "content": map[string]any{"media": 0.0, "body": "hello"}, "edited": anyValue}
		for _, p := range []struct {
			c     client
			topic string
		}{{w.a1, "users/alice/edit"}, {w.a2, "users/alice/edit"}, {w.a3, "users/alice/edit"},
			{w.b1, "users/bob/edit"}, {w.c1, "users/carol/edit"}, {w.o1, "users/olga/edit"}} {
			expectJSON(t, p.c, p.topic, gw)
		}
		if edits, _ := w.e.svc.GroupEdits(ctx, "g1", g); len(edits) != 1 || edits[0].Content.Body != "helo" {
			t.Errorf("group edits = %+v", edits)
		}
	})
}

func js(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// Ensure typing/, recall/ and edit/ are allowed exactly where say/ to the
// same conversation is: every say case of the authorization matrix (rooms
// aside, which have no verbs) gives the same PUBACK reason and error code
// for each verb. Where say is accepted, typing reaches the recipient and
// recall and edit get as far as the store (5004 for a seq never sent).
func TestAuthzMatrix_Verbs(t *testing.T) {
	cells := 0
	versions(t, func(t *testing.T, connect connectFn) {
		w := newMatrixWorld(t, false)
		for _, sender := range matrixPublishers {
			id := identity(sender.key)
			c := w.connectAs(t, connect, id, id.ID+"-verbs")
			for _, pc := range sender.cases {
				rest, isSay := strings.CutPrefix(pc.topic, "say/")
				if !isSay || pc.code < 0 || strings.HasPrefix(rest, "room/") {
					continue
				}
				for _, verb := range []string{"typing", "recall", "edit"} {
					t.Run(sender.key+"/"+verb+"/"+pc.relation, func(t *testing.T) {
						cells++
						reason, code := pc.reason, pc.code
						if code == 0 && verb != "typing" {
							reason, code = 0x90, chat.CodeNotFound
						}
						rc := c.Publish(t, verb+"/"+rest, `{"seq":999999,"content":{"body":"x"},"ack":7}`)
						if c.Version() == 5 && rc != reason {
							t.Errorf("PUBACK %#x, want %#x", rc, reason)
						}
						if code != 0 {
							expectJSON(t, c, broker.InboxTopic(id, "error"), map[string]any{"ack": 7.0, "errorCode": float64(code), "errorMessage": anyValue})
						}
						m := w.e.marker(id)
						expect(t, c, broker.InboxTopic(id, "marker"), m)
						if pc.to == "" {
							return
						}
						if code == 0 {
							got := nextEvent(t, w.inbox[pc.to]) // presence aside
							var ev chat.TypingEvent
							if got.Topic != broker.InboxTopic(identity(pc.to), "typing") || json.Unmarshal([]byte(got.Payload), &ev) != nil || ev.From != id.ID {
								t.Fatalf("%s got %s %s, want typing from %s", pc.to, got.Topic, got.Payload, id.ID)
							}
						}
						w.quiet(t, pc.to, w.inbox[pc.to])
					})
				}
			}
		}
	})
	t.Logf("%d verb cells", cells)
}

// Ensure an edit retransmitted with DUP after a lost PUBACK is
// acknowledged again without being applied twice (one earlier version),
// while the same packet id reused for a new edit is applied.
func TestEdit_DuplicateRetransmission(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	ctx := context.Background()
	res, err := e.svc.Say(ctx, chat.User("alice"), "", chat.SayTarget{Type: chat.TypeFriend, ID: "bob"}, []byte(`{"content":{"body":"v0"}}`))
	if err != nil {
		t.Fatal(err)
	}
	conn := e.rawV3(t, "a1", "alice")
	edit := func(id uint16, dup bool, body string) {
		t.Helper()
		rawPublishQoS1(t, conn, id, dup, "edit/friend/bob", js(`{"seq":%d,"content":{"body":"%s"}}`, res.Seq, body))
	}
	edit(7, false, "v1")
	edit(7, true, "v1")  // retransmission: acked, not applied again
	edit(7, false, "v2") // a new edit reusing the id
	edits, err := e.svc.FriendEdits(ctx, "alice", "bob", res.Seq)
	if err != nil || len(edits) != 2 || edits[0].Content.Body != "v0" || edits[1].Content.Body != "v1" {
		t.Errorf("edits = %+v, %v; want v0, v1", edits, err)
	}
}
