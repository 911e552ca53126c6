package hooks_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/storage"
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
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	db, err := storage.Open(storage.Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	opts.AppID, opts.MaxBodyLen = testApp, 1024
	svc := chat.NewService(db, opts)
	clk := &testClock{}
	clk.ms.Store(time.Now().UnixMilli())
	svc.Now = clk.now
	srv := broker.New(broker.Options{TCPAddr: "127.0.0.1:0", Logger: log})
	svc.Publisher = srv
	err = hooks.Register(srv, hooks.Options{
		Service: svc,
		Auth: &chat.Authenticator{AppID: testApp, Tolerance: 15 * time.Minute,
			Keys: []chat.Key{{Value: testKey, Role: chat.RoleClient}, {Value: testMaster, Role: chat.RoleMaster}}},
		Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &env{svc: svc, srv: srv, addr: srv.TCPAddr().String()}, clk
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
	for _, topic := range []string{"typing/friend/bob"} {
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
