package cluster_test

import (
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure a node holding a persistent session of an identity with no
// connection keeps its inbox subscription, that the other nodes (also
// one that joins later, from the snapshot) count the held session without
// counting the identity online, and that the count goes when the session
// ends or the node leaves.
func TestCluster_HeldSessions(t *testing.T) {
	db, n, ns := startClusterURL(t, 3, 0, nil)
	dave := chat.User("dave")
	n[0].n.SetHeld(dave, 1)
	if !n[0].n.Subscribed(dave) {
		t.Fatal("the node holding dave's session does not subscribe to his inbox")
	}
	for _, nd := range n[1:] {
		waitUntil(t, "the others count the held session", func() bool { return nd.n.RemoteHeld(dave) == 1 })
		if nd.n.RemoteSessions(dave) != 0 {
			t.Fatal("a held session counts as a connected one")
		}
	}
	d := startNode(t, db, ns.ClientURL(), "d", 0, nil)
	waitUntil(t, "a node joining later learns the held session", func() bool { return d.n.RemoteHeld(dave) == 1 })

	n[0].n.SetHeld(dave, 0)
	for _, nd := range append(n[1:], d) {
		waitUntil(t, "the held session is gone everywhere", func() bool { return nd.n.RemoteHeld(dave) == 0 })
	}
	waitUntil(t, "the inbox subscription ends after the linger", func() bool { return !n[0].n.Subscribed(dave) })

	n[1].n.SetHeld(dave, 2)
	waitUntil(t, "d counts b's held sessions", func() bool { return d.n.RemoteHeld(dave) == 2 })
	n[1].n.Close()
	waitUntil(t, "a node that leaves takes its held sessions along", func() bool { return d.n.RemoteHeld(dave) == 0 })
}
