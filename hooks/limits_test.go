package hooks_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/internal/mqttwire"
)

// nextEvent returns c's next message that is not a presence event.
func nextEvent(t *testing.T, c client) msg {
	t.Helper()
	for {
		m := c.Next(t)
		if ev := m.Topic[strings.LastIndexByte(m.Topic, '/')+1:]; !strings.HasPrefix(ev, "online") && !strings.HasPrefix(ev, "offline") {
			return m
		}
	}
}

// Ensure the per-identity say rate limit: a burst passes, the next say is
// refused with 5013 (MQTT 5 PUBACK 0x97 quota exceeded; MQTT 3.1.1 a
// successful PUBACK and the error event), is neither stored nor delivered,
// the identity's other sessions share the bucket, and other users are not
// affected.
func TestLimits_SayRateLimit(t *testing.T) {
	versions(t, func(t *testing.T, connect connectFn) {
		// 0.001/s: no token comes back during the test, however slow.
		e := newEnv(t, func(o *hooks.Options) { o.RateLimit = 0.001; o.RateBurst = 3 })
		e.users(t, "alice", "bob", "carol")
		e.friends(t, "alice", "bob")
		e.friends(t, "carol", "bob")
		bob := connect(e, t, "b1", "bob")
		alice := connect(e, t, "a1", "alice")
		alice2 := connect(e, t, "a2", "alice")
		carol := connect(e, t, "c1", "carol")
		for i := 1; i <= 3; i++ {
			if rc := alice.Publish(t, "say/friend/bob", fmt.Sprintf(`{"content":{"body":"m%d"}}`, i)); rc != 0 {
				t.Fatalf("say %d within the burst: reason %#x", i, rc)
			}
			if m := nextEvent(t, bob); m.Topic != "users/bob/message" || !strings.Contains(m.Payload, fmt.Sprintf(`"m%d"`, i)) {
				t.Fatalf("bob got %s %s", m.Topic, m.Payload)
			}
		}
		for _, c := range []client{alice, alice2} {
			rc := c.Publish(t, "say/friend/bob", `{"content":{"body":"over"},"ack":4}`)
			if c.Version() == 5 && rc != 0x97 {
				t.Errorf("PUBACK reason %#x, want 0x97 quota exceeded", rc)
			}
			for {
				m := nextEvent(t, c)
				if m.Topic == "users/alice/yourself" {
					continue // alice2 sees what alice sent
				}
				var ev chat.ErrorEvent
				if m.Topic != "users/alice/error" || json.Unmarshal([]byte(m.Payload), &ev) != nil ||
					ev.ErrorCode != chat.CodeRateLimited || ev.Ack == nil || *ev.Ack != 4 {
					t.Fatalf("got %s %s, want the 5013 error event with ack 4", m.Topic, m.Payload)
				}
				break
			}
		}
		// carol's own bucket is full.
		if rc := carol.Publish(t, "say/friend/bob", `{"content":{"body":"from carol"}}`); rc != 0 {
			t.Fatalf("carol refused: %#x", rc)
		}
		if m := nextEvent(t, bob); !strings.Contains(m.Payload, "from carol") {
			t.Fatalf("bob got %s %s, not carol's message (was a refused say delivered?)", m.Topic, m.Payload)
		}
		recs, err := e.db.Records(context.Background(), chat.FriendConv("alice", "bob"), math.MaxInt64, 0, 100)
		if err != nil || len(recs) != 3 {
			t.Fatalf("stored %d records (%v), want the 3 within the burst", len(recs), err)
		}
	})
}

// Ensure the per-identity connection cap: connections beyond it are
// refused (MQTT 5 CONNACK 0x97 quota exceeded, MQTT 3.1.1 return code 5 not
// authorized), a takeover of one's own client id is not one more, a freed
// slot can be used again, and other identities are not affected.
func TestLimits_ConnectionsPerUser(t *testing.T) {
	e := newEnv(t, func(o *hooks.Options) { o.MaxConnectionsPerUser = 2 })
	e.users(t, "alice", "bob")
	a1, _ := e.connectV5(t, "a1", "alice", sign(), 0, nil)
	e.connectV3(t, "a2", "alice", sign(), true, 0, nil)
	_, ack := e.connectV5(t, "a3", "alice", sign(), 0x97, nil)
	if ack.Properties == nil || ack.Properties.ReasonString == "" {
		t.Error("no reason string in the refusal")
	}
	e.connectV3(t, "a3", "alice", sign(), true, 5, nil)
	// Reconnecting with one's own client id takes the session over.
	e.connectV5(t, "a1", "alice", sign(), 0, nil)
	waitFor(t, "the taken-over connection to close", func() bool { return a1.c.Done() != nil && isDone(a1.c.Done()) })
	e.connectV3(t, "a3", "alice", sign(), true, 5, nil)
	// Passengers and other users have their own count.
	e.connectV5(t, "b1", "bob", sign(), 0, nil)
	e.connectV5(t, "b2", "bob", sign(), 0, nil)
	e.connectV5(t, "p1", "passenger:alice", sign(), 0, nil)
	// A freed slot is free.
	cl, ok := e.srv.MQTT().Clients.Get("a2")
	if !ok {
		t.Fatal("a2 not connected")
	}
	cl.Stop(nil)
	waitFor(t, "a2 to be gone", func() bool { return cl.Closed() })
	e.connectV5(t, "a3", "alice", sign(), 0, nil)
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Ensure a subscriber that stops reading its socket does not slow the
// others: a group member keeps receiving every message while another
// member's connection is stalled, the stalled member's queue overflows
// (the broker drops for it, bounded by max_inflight), and every message
// it missed is in the history.
func TestLimits_StalledSubscriber(t *testing.T) {
	const n = 400
	e := newEnvBroker(t, func(o *broker.Options) {
		o.MaxInflight = 32
	}, func(o *hooks.Options) { o.RateLimit = -1 })
	e.users(t, "alice", "stalled", "normal")
	e.seed(t, func(tx chat.Tx) error {
		return tx.PutGroup(&chat.Group{ID: "g1", Owner: "alice", Members: []string{"stalled", "normal"}})
	})

	// The stalled member: logs in, subscribes, then never reads again,
	// with a small receive buffer so that the kernel does not absorb the
	// backlog either.
	d := net.Dialer{Timeout: wait, Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	stalledLogin(t, raw, "stalled", sign())

	// The normal member counts what arrives, in its own goroutine.
	var got atomic.Int64
	done := make(chan struct{})
	normal := e.connectV3(t, "n1", "normal", sign(), true, 0, func(o *paho3.ClientOptions) {
		o.SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) {
			if strings.HasSuffix(m.Topic(), "/message") && got.Add(1) == n {
				close(done)
			}
		})
	})
	// At QoS 0: the normal member's deliveries then never count against
	// the tight max_inflight of 32 set for the stalled one, which a healthy
	// client reaches too when the test process, its own paho included, is
	// starved of CPU (the say loop runs ahead of its acks). For the same
	// reason its write queue keeps the default 256 slots: with 16, the say
	// loop overran it whenever its write goroutine waited for a core.
	if tok := normal.c.Subscribe("users/normal/#", 0, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	alice := e.connectV3(t, "a1", "alice", sign(), true, 0, nil)
	body := strings.Repeat("x", 900)
	start := time.Now()
	toks := make([]paho3.Token, 0, n)
	for i := 0; i < n; i++ {
		toks = append(toks, alice.c.Publish("say/group/g1", 1, false, fmt.Sprintf(`{"content":{"body":"%d %s"}}`, i, body)))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatalf("say %d: no PUBACK (%v)", i, tok.Error())
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		info := e.srv.MQTT().Info
		t.Fatalf("the normal member got %d of %d messages (dropped %d, over max_inflight %d)", got.Load(), n,
			atomic.LoadInt64(&info.MessagesDropped), atomic.LoadInt64(&info.InflightDropped))
	}
	t.Logf("%d messages to the normal member in %v with one member stalled", n, time.Since(start).Round(time.Millisecond))
	info := e.srv.MQTT().Info
	if dropped := atomic.LoadInt64(&info.MessagesDropped) + atomic.LoadInt64(&info.InflightDropped); dropped == 0 {
		t.Fatal("the broker dropped nothing: the subscriber was not stalled")
	}
	cl, ok := e.srv.MQTT().Clients.Get("s1")
	if !ok || cl.Closed() {
		t.Fatal("the stalled member was disconnected")
	}
	if l := cl.State.Inflight.Len(); l > 32 {
		t.Errorf("%d messages in flight for the stalled member, above max_inflight 32", l)
	}
	recs, err := e.svc.GroupHistory(context.Background(), "g1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.db.Records(context.Background(), chat.GroupConv("g1"), math.MaxInt64, 0, 10*n)
	if err != nil || len(all) != n || len(recs) != 100 {
		t.Fatalf("history holds %d records (%v), want %d", len(all), err, n)
	}
}

// stalledLogin sends an MQTT 3.1.1 CONNECT as user id (client id s1) and a
// SUBSCRIBE to its inbox, and reads the CONNACK and SUBACK.
func stalledLogin(t *testing.T, c net.Conn, id, password string) {
	t.Helper()
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	var body []byte
	body = append(body, str("MQTT")...)
	body = append(body, 4, 0xC2, 0, 60) // level 4; username, password, clean; keepalive 60
	body = append(body, str("s1")...)
	body = append(body, str(id)...)
	body = append(body, str(password)...)
	sub := append([]byte{0, 1}, str("users/"+id+"/#")...)
	sub = append(sub, 1)
	pkt := append(mqttwire.Packet(0x10, body), mqttwire.Packet(0x82, sub)...)
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	r := bufio.NewReader(c)
	connack := make([]byte, 4)
	suback := make([]byte, 5)
	if _, err := io.ReadFull(r, connack); err != nil || connack[0] != 0x20 || connack[3] != 0 {
		t.Fatalf("CONNACK %x: %v", connack, err)
	}
	if _, err := io.ReadFull(r, suback); err != nil || suback[0] != 0x90 || suback[4] != 1 {
		t.Fatalf("SUBACK %x: %v", suback, err)
	}
	if r.Buffered() > 0 {
		t.Fatalf("unexpected data after the SUBACK")
	}
}
