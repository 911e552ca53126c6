package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/cluster"
)

// body returns content.body of a message event.
func body(t *testing.T, m msg) string {
	t.Helper()
	var e chat.MessageEvent
	if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
		t.Fatalf("%s %s: %v", m.Topic, m.Payload, err)
	}
	return e.Content.Body
}

// Ensure a friend message said on node a reaches the friend's client on
// node b, and that only b subscribes to the friend's inbox subject.
func TestCluster_FriendMessageAcrossNodes(t *testing.T) {
	db, n, ns := startClusterURL(t, 3, 0, nil)
	users(t, db, "alice", "bob")
	friends(t, db, "alice", "bob")
	alice := connect(t, n[0], "alice-1", "alice")
	bob := connect(t, n[1], "bob-1", "bob")
	waitUntil(t, "a sees bob's session on b", func() bool { return n[0].n.RemoteSessions(chat.User("bob")) == 1 })

	if !n[1].n.Subscribed(chat.User("bob")) || n[0].n.Subscribed(chat.User("bob")) || n[2].n.Subscribed(chat.User("bob")) {
		t.Fatal("only node b may subscribe to bob's inbox")
	}
	// A monitor sees every inbox event on the bus.
	mon, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	var onBus atomic.Int32
	if _, err := mon.Subscribe("mqim.*.inbox.>", func(*nats.Msg) { onBus.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := mon.Flush(); err != nil {
		t.Fatal(err)
	}
	alice.say(t, "say/friend/bob", "hello across")
	m := bob.nextOn(t, "/message")
	if m.Topic != "users/bob/message" || body(t, m) != "hello across" {
		t.Fatalf("bob got %s %s", m.Topic, m.Payload)
	}
	// alice's own echo (yourself, to her other sessions: none elsewhere)
	// and her ack stay on a: one event crossed, bob's. A marker from a
	// to bob comes after everything a published before.
	bob.until(t, marker(n[0], chat.User("bob")))
	waitUntil(t, "the monitor saw the marker", func() bool { return onBus.Load() >= 2 })
	if got := onBus.Load(); got != 2 {
		t.Fatalf("%d inbox events on the bus, want bob's message and the marker", got)
	}
	// bob answers: the reply crosses back.
	bob.say(t, "say/friend/alice", "hello back")
	if m := alice.nextOn(t, "/message"); body(t, m) != "hello back" {
		t.Fatalf("alice got %s %s", m.Topic, m.Payload)
	}

	// Once bob's last session closes, b drops the subscription (after
	// the linger).
	bob.close()
	waitUntil(t, "b unsubscribes from bob's inbox", func() bool { return !n[1].n.Subscribed(chat.User("bob")) })
}

// Ensure a user is online while any node has a session of it: friends on
// other nodes get online once on the cluster-wide 0→1, offline once on
// 1→0, and offline when the node holding the last session crashes (after
// the liveness TTL).
func TestCluster_Presence(t *testing.T) {
	db, n := startCluster(t, 3, nil)
	users(t, db, "alice", "bob")
	friends(t, db, "alice", "bob")
	bob := connect(t, n[1], "bob-1", "bob")
	waitUntil(t, "a sees bob online", func() bool { return n[0].svc.Presence.Online(chat.User("bob")) })

	a1 := connect(t, n[0], "alice-a", "alice")
	if m := bob.next(t); m.Topic != "users/bob/online" || m.Payload != `"alice"` {
		t.Fatalf("bob got %s %s, want online alice", m.Topic, m.Payload)
	}
	waitUntil(t, "c sees alice online", func() bool { return n[2].svc.Presence.Online(chat.User("alice")) })
	a2 := connect(t, n[2], "alice-c", "alice") // a second session on another node: no event
	// Every node knows of both sessions before one closes: a logout racing
	// a login elsewhere may announce a wrong offline (docs/scaleout.md).
	waitUntil(t, "a and b count two sessions of alice", func() bool {
		return n[0].svc.Presence.Count(chat.User("alice")) == 2 && n[1].svc.Presence.Count(chat.User("alice")) == 2
	})
	a1.close() // one session left, on c: no event
	waitUntil(t, "b counts one session of alice", func() bool { return n[1].svc.Presence.Count(chat.User("alice")) == 1 })
	if got := bob.until(t, marker(n[1], chat.User("bob"))); len(got) != 0 {
		t.Fatalf("bob got %v while alice stayed online", got)
	}
	a2.close()
	if m := bob.next(t); m.Topic != "users/bob/offline" || m.Payload != `"alice"` {
		t.Fatalf("bob got %s %s, want offline alice", m.Topic, m.Payload)
	}

	// alice on c again, then c crashes: no word from c, the others count
	// it dead after the TTL and a (the smallest live id) announces.
	connect(t, n[2], "alice-c2", "alice")
	if m := bob.next(t); m.Topic != "users/bob/online" {
		t.Fatalf("bob got %s %s, want online alice", m.Topic, m.Payload)
	}
	n[2].n.Crash()       // its NATS connection goes without a word…
	_ = n[2].srv.Close() // …and its listeners and clients with it
	if m := bob.next(t); m.Topic != "users/bob/offline" || m.Payload != `"alice"` {
		t.Fatalf("bob got %s %s, want offline alice after c crashed", m.Topic, m.Payload)
	}
	waitUntil(t, "a and b count alice offline", func() bool {
		return !n[0].svc.Presence.Online(chat.User("alice")) && !n[1].svc.Presence.Online(chat.User("alice"))
	})
	if got := bob.until(t, marker(n[0], chat.User("bob"))); len(got) != 0 {
		t.Fatalf("bob got more: %v", got)
	}
}

// Ensure a client id connecting on node b takes over the session of that
// client id on node a: a sends its connection DISCONNECT 0x8E.
func TestCluster_TakeOver(t *testing.T) {
	db, n := startCluster(t, 2, nil)
	users(t, db, "alice")
	old := connect(t, n[0], "phone", "alice")
	connect(t, n[1], "phone", "alice")
	waitUntil(t, "the older connection is told its session was taken over", func() bool { return old.gone.Load() == 0x8E })
	waitUntil(t, "a holds no session of alice", func() bool { return len(n[0].svc.Presence.Sessions(chat.User("alice"))) == 0 })
	if !n[1].svc.Presence.HasSession(chat.User("alice"), "phone") {
		t.Fatal("b lost the new session")
	}
}

// Ensure kick and ban on node a end the sessions on node b, and a system
// message from a reaches a session on b.
func TestCluster_KickBanSystem(t *testing.T) {
	db, n := startCluster(t, 2, nil)
	users(t, db, "bob", "carol")
	bob := connect(t, n[1], "bob-1", "bob")
	ctx := context.Background()
	waitUntil(t, "a sees bob's session on b", func() bool { return n[0].n.RemoteSessions(chat.User("bob")) == 1 })

	if err := n[0].svc.SystemSend(ctx, chat.SystemToUser, "bob", chat.SystemMessage{Content: chat.Content{Body: "from a"}}); err != nil {
		t.Fatal(err)
	}
	if m := bob.nextOn(t, "/sys"); !strings.Contains(m.Payload, "from a") {
		t.Fatalf("bob got %s %s", m.Topic, m.Payload)
	}

	k, err := n[0].svc.Kick(ctx, chat.User("bob"))
	if err != nil || k != 1 {
		t.Fatalf("kick = %d, %v; want 1 session ended on b", k, err)
	}
	waitUntil(t, "bob's client is told 0x98", func() bool { return bob.gone.Load() == 0x98 })

	carol := connect(t, n[1], "carol-1", "carol")
	if _, err := n[0].svc.BanIdentity(ctx, chat.User("carol"), 0, "spam"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "carol's client is told 0x98", func() bool { return carol.gone.Load() == 0x98 })
}

// Ensure that once RemoveMembers returns on node a, the removed member
// (on node c) receives nothing more from the group, while its members
// speak on node b all along.
func TestCluster_RemoveMemberRace(t *testing.T) {
	db, n := startCluster(t, 3, nil)
	users(t, db, "o", "m1", "m2", "x")
	ctx := context.Background()
	x := connect(t, n[2], "x-1", "x")
	speakers := map[string]*client{}
	for _, u := range []string{"o", "m1", "m2"} {
		speakers[u] = connect(t, n[1], u+"-1", u)
	}
	waitUntil(t, "b sees x on c", func() bool { return n[1].n.RemoteSessions(chat.User("x")) == 1 })
	for i := range 15 {
		gid, err := n[0].svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o", Members: []string{"m1", "m2", "x"}})
		if err != nil {
			t.Fatal(err)
		}
		speakers["o"].say(t, "say/group/"+gid, "warm") // b caches the membership
		var stop atomic.Bool
		var wg sync.WaitGroup
		for _, u := range []string{"m1", "m2"} {
			c := speakers[u]
			wg.Go(func() {
				for !stop.Load() {
					if rc, err := c.publish("say/group/"+gid, `{"content":{"body":"during"}}`); err != nil || rc != 0 && rc != 0x87 {
						t.Errorf("say during: %#x %v", rc, err)
						return
					}
				}
			})
		}
		if err := n[0].svc.RemoveMembers(ctx, chat.GroupList, gid, []string{"x"}); err != nil {
			t.Fatal(err)
		}
		// x's node marks the return in x's stream: whatever any node
		// handed x before the return is queued ahead of it.
		returned := marker(n[2], chat.User("x"))
		after := fmt.Sprintf("after-%d", i)
		speakers["o"].say(t, "say/group/"+gid, after)
		stop.Store(true)
		wg.Wait()
		x.until(t, returned)
		for _, m := range x.until(t, marker(n[1], chat.User("x"))) {
			if strings.HasSuffix(m.Topic, "/message") && strings.Contains(m.Payload, gid) {
				t.Fatalf("iteration %d: x got %s after its removal returned", i, m.Payload)
			}
		}
	}
}

// Ensure an inbox event lost on the bus is filled from the store on the
// receiving node: bob gets every message, in seq order.
func TestCluster_GapFill(t *testing.T) {
	n, alice, bob, dropped := lossyPair(t)
	for _, b := range []string{"one", "lost", "three"} {
		alice.say(t, "say/friend/bob", b)
	}
	var got []string
	var seqs []uint64
	for range 3 {
		m := bob.nextOn(t, "/message")
		var e chat.MessageEvent
		if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
			t.Fatal(err)
		}
		if e.From.ID != "alice" || e.To.ID != "bob" || e.To.Type != chat.TypeFriend {
			t.Fatalf("filled event %s", m.Payload)
		}
		got, seqs = append(got, e.Content.Body), append(seqs, e.Seq)
	}
	if dropped.Load() != 1 || strings.Join(got, ",") != "one,lost,three" || seqs[1] != seqs[0]+1 || seqs[2] != seqs[1]+1 {
		t.Fatalf("bob got %v seqs %v (dropped %d)", got, seqs, dropped.Load())
	}
	if more := bob.until(t, marker(n[0], chat.User("bob"))); len(more) != 0 {
		t.Fatalf("bob got duplicates: %v", more)
	}
}

// Ensure the per-identity connection cap holds across nodes: with a cap of
// one, a second login on another node is refused (CONNACK 0x97).
func TestCluster_ConnectionCap(t *testing.T) {
	db, n, _ := startClusterURL(t, 2, 1, nil)
	users(t, db, "alice")
	connect(t, n[0], "alice-1", "alice")
	waitUntil(t, "b sees alice's session", func() bool { return n[1].n.RemoteSessions(chat.User("alice")) == 1 })
	if got := n[1].svc.Connections.Live(chat.User("alice")); got != 1 {
		t.Fatalf("Live on b = %d, want 1", got)
	}
	if _, rc := dial(t, n[1], "alice-2", "alice"); rc != 0x97 {
		t.Fatalf("second login on b: CONNACK %#x, want 0x97", rc)
	}
}

// Ensure that with NATS down each node keeps serving its own clients, and
// a membership change is stored but fails with 5002: the other nodes
// cannot be told.
func TestCluster_NATSDown(t *testing.T) {
	db, n, ns := startClusterURL(t, 2, 0, nil)
	users(t, db, "alice", "bob", "o", "x")
	friends(t, db, "alice", "bob")
	ctx := context.Background()
	gid, err := n[0].svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o", Members: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	alice := connect(t, n[0], "alice-1", "alice")
	bob := connect(t, n[0], "bob-1", "bob")

	ns.Shutdown()
	err = n[0].svc.RemoveMembers(ctx, chat.GroupList, gid, []string{"x"})
	if chat.ErrorCode(err) != chat.CodeDatabase {
		t.Fatalf("RemoveMembers with NATS down = %v, want 5002", err)
	}
	l, err := n[0].svc.MemberList(ctx, chat.GroupList, gid)
	if err != nil || slices.Contains(l.Members, "x") {
		t.Fatalf("the removal must be stored: %v, %v", l, err)
	}
	alice.say(t, "say/friend/bob", "still here")
	if m := bob.nextOn(t, "/message"); body(t, m) != "still here" {
		t.Fatalf("bob got %s %s", m.Topic, m.Payload)
	}
}

// Ensure a node that stops says goodbye: the others stop counting it at
// once (not after the liveness TTL, a minute here), so a membership change
// does not wait for it.
func TestCluster_NodeLeaves(t *testing.T) {
	db, n := startCluster(t, 3, func(_ string, o *cluster.Options) { o.LivenessTTL = time.Minute })
	users(t, db, "o", "x")
	n[2].n.Close()
	waitUntil(t, "a and b forget c", func() bool { return len(n[0].n.Peers()) == 1 && len(n[1].n.Peers()) == 1 })
	ctx := context.Background()
	gid, err := n[0].svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o", Members: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n[0].svc.RemoveMembers(ctx, chat.GroupList, gid, []string{"x"}); err != nil {
		t.Fatalf("RemoveMembers after c left = %v", err)
	}
}
