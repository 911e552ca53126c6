package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

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
