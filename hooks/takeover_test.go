package hooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/internal/testwait"
)

// Ensure a persistent session that reconnects again and again while its
// friend speaks without pause loses nothing. mochi copies a session's
// queue to the new connection before it lists that connection under the
// client id, so an event published in between went to the old connection
// and was dropped with it; the hooks send those on (Sessions.stray, late).
// Every other reconnect takes over a live connection, the others follow a
// normal disconnect.
func TestSessions_ReconnectUnderLoad(t *testing.T) {
	db := openTestDB(t)
	e := startEnv(t, envConfig{
		db: db,
		hooks: func(o *hooks.Options) {
			o.Sessions = db
			o.RateLimit = -1 // alice speaks without pause
		},
		broker: func(o *broker.Options) { o.SessionExpiry = time.Hour },
	})
	e.users(t, "alice", "dave")
	e.friends(t, "alice", "dave")
	alice, _ := e.connectV5(t, "alice-1", "alice", sign(), 0, nil)
	seen := &seqSet{n: map[uint64]int{}, last: map[uint64]int{}, markers: make(chan string, 1)}
	dave := dialPersistent(t, e.addr, "dave-1", "dave", seen)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if sa, err := dave.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "users/dave/#", QoS: 1}}}); sa == nil || sa.Reasons[0] > 2 {
		t.Fatalf("subscribe: %v %v", sa, err)
	}

	const total, reconnects = 400, 12
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= total; i++ {
			if rc := alice.Publish(t, "say/friend/dave", fmt.Sprintf(`{"content":{"body":"m%d"}}`, i)); rc != 0 {
				t.Errorf("say %d: %#x", i, rc)
				return
			}
		}
	}()
	for i := range reconnects {
		time.Sleep(time.Duration(10+i*3) * time.Millisecond)
		if i%2 == 1 {
			_ = dave.Disconnect(&paho5.Disconnect{})
		}
		dave = dialPersistent(t, e.addr, "dave-1", "dave", seen)
	}
	<-done
	testwait.Until(t, "the last message", wait, func() bool { return seen.count(total) > 0 })
	// What was handed to the connection before the marker has arrived
	// when the marker does.
	m := e.marker(chat.User("dave"))
	select {
	case got := <-seen.markers:
		if got != m {
			t.Fatalf("marker %s, want %s", got, m)
		}
	case <-time.After(wait):
		t.Fatal("no marker")
	}
	lost, again := 0, 0
	for s := uint64(1); s <= total; s++ {
		switch c := seen.count(s); {
		case c == 0:
			t.Errorf("seq %d lost", s)
			lost++
		case c > 1:
			again += c - 1
		}
	}
	seen.mu.Lock()
	stale := len(seen.stale)
	seen.mu.Unlock()
	// Repeats are QoS 1's at least once (see the cluster load test).
	t.Logf("%d messages, %d reconnects: %d lost, %d received again (%d two or more connections later)", total, reconnects, lost, again, stale)

}

// Ensure a persistent session's recent says survive a restart: a say
// retransmitted (DUP) on the first connection after the restart, its
// PUBACK lost with the old server, is acknowledged and not stored again.
func TestSessions_DuplicateAfterRestart(t *testing.T) {
	db := openTestDB(t)
	e := startSessionEnv(t, db, db, time.Hour)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	say := `{"content":{"body":"once"}}`
	conn := e.rawV3Session(t, "a1", "alice", false)
	rawPublishQoS1(t, conn, 7, false, "say/friend/bob", say)
	_ = conn.Close()
	testwait.Until(t, "alice's session offline", wait, func() bool {
		cl, ok := e.srv.MQTT().Clients.Get("a1")
		return ok && cl.Closed()
	})
	_ = e.srv.Close()

	e = startSessionEnv(t, db, db, time.Hour)
	conn = e.rawV3Session(t, "a1", "alice", false)
	rawPublishQoS1(t, conn, 7, true, "say/friend/bob", say)
	recs, err := db.Records(context.Background(), chat.FriendConv("alice", "bob"), e.svc.Now().UnixMilli()+1000, 0, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("stored %d records (%v), want 1", len(recs), err)
	}
}

// seqSet counts the message events received per seq over the
// connections of one session, numbered in order; stale lists the repeats
// of an event last received two or more connections earlier.
type seqSet struct {
	mu      sync.Mutex
	n       map[uint64]int
	last    map[uint64]int
	conns   int
	stale   []string
	markers chan string
}

func (s *seqSet) connection() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns++
	return s.conns
}

func (s *seqSet) add(conn int, payload []byte) {
	var ev struct{ Seq uint64 }
	if json.Unmarshal(payload, &ev) == nil && ev.Seq > 0 {
		s.mu.Lock()
		if prev, ok := s.last[ev.Seq]; ok && conn-prev > 1 {
			s.stale = append(s.stale, fmt.Sprintf("seq %d on connection %d, then %d", ev.Seq, prev, conn))
		}
		s.n[ev.Seq]++
		s.last[ev.Seq] = conn
		s.mu.Unlock()
	}
}

func (s *seqSet) count(seq uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[seq]
}

// dialPersistent connects a persistent MQTT 5 session (clean start false,
// one hour expiry) of user on addr; its message events go to seen.
func dialPersistent(t *testing.T, addr, cid, user string, seen *seqSet) *paho5.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	number := seen.connection()
	c := paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			switch {
			case strings.HasSuffix(pr.Packet.Topic, "/message"):
				seen.add(number, pr.Packet.Payload)
			case strings.HasSuffix(pr.Packet.Topic, "/marker"):
				seen.markers <- string(pr.Packet.Payload)
			}
			return true, nil
		}},
	})
	expiry := uint32(3600)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ca, err := c.Connect(ctx, &paho5.Connect{ClientID: cid, KeepAlive: 30, Username: user, UsernameFlag: true,
		Password: []byte(sign()), PasswordFlag: true, Properties: &paho5.ConnectProperties{SessionExpiryInterval: &expiry}})
	if ca == nil || ca.ReasonCode != 0 {
		t.Fatalf("connect %s: %v %v", cid, ca, err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho5.Disconnect{}) })
	return c
}
