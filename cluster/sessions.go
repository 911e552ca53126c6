package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/mqim/mqim/chat"
)

// TakeSession asks every other live node to give up its persistent MQTT
// session of clientID (Options.GiveUp there), for a connection of id on
// this node, and waits until each has answered (RequestTimeout at most):
// the holder stores the session's state and queue, then forgets it.
// refused is true when a node holds the session for another identity.
// A node that does not answer is reported in err; the caller goes on with
// what the store holds.
func (n *Node) TakeSession(_ context.Context, clientID string, id chat.Identity, clean bool) (refused bool, err error) {
	b, _ := json.Marshal(takeMsg{Node: n.opts.NodeID, Client: clientID, Kind: id.Kind, ID: id.ID, Clean: clean})
	got, missing, err := n.gather("session.take", b, n.opts.RequestTimeout)
	if err != nil {
		return false, err
	}
	for _, data := range got {
		var r takeReply
		if json.Unmarshal(data, &r) == nil && r.Refused {
			refused = true
		}
	}
	if len(missing) > 0 {
		return refused, errors.New("cluster: no answer from " + strings.Join(missing, ", "))
	}
	return refused, nil
}

// Queued tells the gap check that a message or yourself event is in the
// queue of a session of id that this node took from another: the
// conversation's last seq here is at least the event's, so a later gap
// fill does not send it again.
func (n *Node) Queued(id chat.Identity, event string, payload []byte) {
	if event != chat.EventMessage && event != chat.EventYourself {
		return
	}
	n.mu.Lock()
	in := n.interest[id]
	n.mu.Unlock()
	if in == nil {
		return
	}
	c, ok := parseConvEvent(id, event, payload)
	if !ok {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	cs := in.convs[c.key]
	if cs == nil {
		cs = &convSeq{}
		in.convs[c.key] = cs
	}
	if c.seq > cs.last {
		cs.last = c.seq
	}
	delete(cs.holes, c.seq)
}
