package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// Ensure an offline persistent session on one node of three queues the
// events sent through every node: dave's mosquitto_sub session (clean
// session false) is on node 0 and goes away; alice speaks to him through
// node 1, node 2 and node 0; when he comes back to node 0 he gets all six
// events exactly once, in seq order, and the next one live.
func TestCluster_PersistentSessionQueuesFromEveryNode(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "stdbuf"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install mosquitto-clients coreutils", err != nil)
	}
	c := startNodes(t, 3, t.TempDir())
	a := c.Nodes[0]
	expect(t, "friends", a.do("POST", "/ctx/alice/friends/dave", nil), 201)

	sub := startMosquittoSub(t, a, "dave", "dave-tab")
	sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
	// Every node has heard of dave's session (and that node 0 holds a
	// persistent one: the same presence message)...
	for i, p := range c.Nodes {
		testwait.Until(t, fmt.Sprintf("dave online on node %d", i), 20*time.Second, func() bool { return sessionsOf(p, "dave") == 1 })
	}
	sub.stop()
	// ... and of its end: only the held session is left.
	for i, p := range c.Nodes {
		testwait.Until(t, fmt.Sprintf("dave offline on node %d", i), 20*time.Second, func() bool { return sessionsOf(p, "dave") == 0 })
	}

	sayToDave(t, c.Nodes[1], 1, 2)
	sayToDave(t, c.Nodes[2], 3, 2)
	sayToDave(t, a, 5, 2)
	const queued = 6

	sub = startMosquittoSub(t, a, "dave", "dave-tab")
	for i := 1; i <= queued; i++ {
		seq, body := sub.message(t)
		if seq != uint64(i) || body != fmt.Sprintf("m%d", i) {
			t.Fatalf("event %d: seq %d body %q; transcript:\n%s", i, seq, body, strings.Join(sub.transcript, "\n"))
		}
	}
	sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
	sayToDave(t, c.Nodes[2], queued+1, 1)
	if seq, body := sub.message(t); seq != queued+1 || body != fmt.Sprintf("m%d", queued+1) {
		t.Fatalf("after the queue: seq %d body %q; transcript:\n%s", seq, body, strings.Join(sub.transcript, "\n"))
	}
}

// Ensure a persistent session follows its client to another node: dave's
// mosquitto_sub session is on node 0 and goes away; alice speaks to him
// through nodes 1 and 2; he comes back on node 1 and gets the four events
// exactly once, in seq order, then the next ones live whichever node they
// are sent through; he moves again, to node 2, and gets only what was
// sent since. The node that gave the session up holds nothing more of it.
func TestCluster_PersistentSessionMovesNode(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "stdbuf"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install mosquitto-clients coreutils", err != nil)
	}
	c := startNodes(t, 3, t.TempDir())
	expect(t, "friends", c.Nodes[0].do("POST", "/ctx/alice/friends/dave", nil), 201)
	away := func(sub *mosquittoSub) {
		t.Helper()
		sub.stop()
		for i, p := range c.Nodes {
			testwait.Until(t, fmt.Sprintf("dave offline on node %d", i), 20*time.Second, func() bool { return sessionsOf(p, "dave") == 0 })
		}
	}
	expectMessages := func(sub *mosquittoSub, first, last int) {
		t.Helper()
		for i := first; i <= last; i++ {
			if seq, body := sub.message(t); seq != uint64(i) || body != fmt.Sprintf("m%d", i) {
				t.Fatalf("want m%d (seq %d): seq %d body %q; transcript:\n%s", i, i, seq, body, strings.Join(sub.transcript, "\n"))
			}
		}
	}

	sub := startMosquittoSub(t, c.Nodes[0], "dave", "dave-tab")
	sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
	away(sub)
	sayToDave(t, c.Nodes[1], 1, 2)
	sayToDave(t, c.Nodes[2], 3, 2)

	sub = startMosquittoSub(t, c.Nodes[1], "dave", "dave-tab")
	expectMessages(sub, 1, 4)
	sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
	sayToDave(t, c.Nodes[0], 5, 1)
	sayToDave(t, c.Nodes[2], 6, 1)
	sayToDave(t, c.Nodes[1], 7, 1)
	expectMessages(sub, 5, 7)
	if c.Nodes[0].logged("cluster: persistent session given up to another node") == nil {
		t.Error("node 0 did not log giving the session up")
	}
	away(sub)

	sayToDave(t, c.Nodes[0], 8, 2)
	sub = startMosquittoSub(t, c.Nodes[2], "dave", "dave-tab")
	expectMessages(sub, 8, 9)
	sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
	sayToDave(t, c.Nodes[1], 10, 1)
	expectMessages(sub, 10, 10)
	// Nothing of the session is left on node 1: the events sent while it
	// was there arrived once (above), and a message now reaches node 2's
	// session only.
	sayToDave(t, c.Nodes[0], 11, 1)
	expectMessages(sub, 11, 11)
	sub.stop()
}

// Ensure a client that connects to another node while its persistent
// session is live on one takes the session over there: the old connection
// ends, CONNACK says session present and the subscription carries on; a
// clean connection on a third node drops the session everywhere; another
// identity cannot take a session it does not own.
func TestCluster_PersistentSessionTakeoverAcrossNodes(t *testing.T) {
	c := startNodes(t, 3, t.TempDir())
	expect(t, "friends", c.Nodes[0].do("POST", "/ctx/alice/friends/dave", nil), 201)
	got := make(chan string, 16)
	var seen struct {
		sync.Mutex
		bodies map[string]bool
	}
	seen.bodies = map[string]bool{}
	connect := func(p *proc, uid string, clean bool, lost chan<- error) (paho.Client, bool, error) {
		opts := paho.NewClientOptions().AddBroker("tcp://" + p.MQTT).SetClientID("dave-desk").
			SetUsername(uid).SetPassword(chat.Sign(p.Key, time.Now().UnixMilli())).
			SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).
			SetConnectTimeout(5 * time.Second).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
				// A redelivery (DUP) of what the old connection got but
				// had not acknowledged when the session moved is MQTT's
				// at-least-once; body() skips it.
				if strings.HasSuffix(m.Topic(), "/message") {
					seen.Lock()
					again := m.Duplicate() && seen.bodies[string(m.Payload())]
					seen.bodies[string(m.Payload())] = true
					seen.Unlock()
					if !again {
						got <- string(m.Payload())
					}
				}
			}).
			SetConnectionLostHandler(func(_ paho.Client, err error) {
				if lost != nil {
					lost <- err
				}
			})
		cl := paho.NewClient(opts)
		tok := cl.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return nil, false, fmt.Errorf("connect timed out")
		}
		if tok.Error() != nil {
			return nil, false, tok.Error()
		}
		t.Cleanup(func() { cl.Disconnect(0) })
		return cl, tok.(*paho.ConnectToken).SessionPresent(), nil
	}
	body := func() string {
		t.Helper()
		select {
		case p := <-got:
			var e struct {
				Content struct{ Body string }
			}
			_ = json.Unmarshal([]byte(p), &e)
			return e.Content.Body
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
			return ""
		}
	}

	lost := make(chan error, 1)
	first, present, err := connect(c.Nodes[0], "dave", false, lost)
	if err != nil || present {
		t.Fatalf("first connect: present %v, %v", present, err)
	}
	if tok := first.Subscribe("users/dave/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sayToDave(t, c.Nodes[2], 1, 1)
	if b := body(); b != "m1" {
		t.Fatalf("on node 0 got %q", b)
	}

	_, present, err = connect(c.Nodes[1], "dave", false, nil)
	if err != nil || !present {
		t.Fatalf("connect on node 1: session present %v, %v; want the session of node 0", present, err)
	}
	select {
	case err := <-lost:
		t.Logf("node 0 connection ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the connection on node 0 was not ended")
	}
	sayToDave(t, c.Nodes[0], 2, 1) // the subscription came along
	if b := body(); b != "m2" {
		t.Fatalf("on node 1 got %q", b)
	}

	if _, _, err := connect(c.Nodes[2], "erin", false, nil); err == nil {
		t.Fatal("erin took dave's client id")
	}

	_, present, err = connect(c.Nodes[2], "dave", true, nil)
	if err != nil || present {
		t.Fatalf("clean connect on node 2: present %v, %v", present, err)
	}
	_, present, err = connect(c.Nodes[0], "dave", false, nil)
	if err != nil || present {
		t.Fatalf("after a clean connection the session is gone, on every node: present %v, %v", present, err)
	}
	select {
	case p := <-got:
		t.Fatalf("unexpected event %s", p)
	default:
	}
}

// Ensure a persistent session whose node is killed is taken from the store
// by the node its client reconnects to: dave's offline session on node 0
// holds three queued events (stored) when node 0 is SIGKILLed; a fourth
// is sent while no node holds the session. Back on node 1 (which waits
// for the dead node's answer up to the request timeout), dave gets the
// three from the stored queue, in order, once; the fourth is in the
// history (after=3), and the gap fill delivers it before the next live
// message.
func TestCluster_PersistentSessionNodeCrash(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "stdbuf"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install mosquitto-clients coreutils", err != nil)
	}
	c := startNodes(t, 3, t.TempDir(), "MQIM_LOG_LEVEL=debug")
	expect(t, "friends", c.Nodes[1].do("POST", "/ctx/alice/friends/dave", nil), 201)
	sub := startMosquittoSub(t, c.Nodes[0], "dave", "dave-tab")
	sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
	sub.stop()
	for i, p := range c.Nodes {
		testwait.Until(t, fmt.Sprintf("dave offline on node %d", i), 20*time.Second, func() bool { return sessionsOf(p, "dave") == 0 })
	}
	sayToDave(t, c.Nodes[1], 1, 3)
	testwait.Until(t, "node 0 stored the queue", 10*time.Second, func() bool { return eventsSaved(c.Nodes[0]) >= 3 })
	c.Nodes[0].kill()
	sayToDave(t, c.Nodes[2], 4, 1)

	sub = startMosquittoSub(t, c.Nodes[1], "dave", "dave-tab")
	for i := 1; i <= 3; i++ {
		if seq, body := sub.message(t); seq != uint64(i) || body != fmt.Sprintf("m%d", i) {
			t.Fatalf("queued event %d: seq %d body %q; transcript:\n%s", i, seq, body, strings.Join(sub.transcript, "\n"))
		}
	}
	sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
	recs, err := readAfter(c.Nodes[2], "/ctx/dave/friends/alice/chats", 3)
	if err != nil || len(recs) != 1 || recs[0].Seq != 4 || recs[0].Content.Body != "m4" {
		t.Fatalf("catch-up after=3: %+v, %v", recs, err)
	}
	sayToDave(t, c.Nodes[2], 5, 1)
	for i := 4; i <= 5; i++ {
		if seq, body := sub.message(t); seq != uint64(i) || body != fmt.Sprintf("m%d", i) {
			t.Fatalf("after the queue, want m%d: seq %d body %q; transcript:\n%s", i, seq, body, strings.Join(sub.transcript, "\n"))
		}
	}
	sub.stop()
}
