package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
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
	n.publishBarrier(id)
	b, _ := json.Marshal(takeMsg{Node: n.opts.NodeID, Client: clientID, Kind: id.Kind, ID: id.ID, Clean: clean})
	got, missing, err := n.gather("session.take", b, n.opts.RequestTimeout)
	if err != nil {
		return false, err
	}
	for _, data := range got {
		var r takeReply
		if json.Unmarshal(data, &r) != nil {
			continue
		}
		refused = refused || r.Refused
		if len(r.Last) > 0 {
			n.mu.Lock()
			if n.handedOver == nil {
				n.handedOver = map[chat.Identity]map[string]uint64{}
			}
			m := n.handedOver[id]
			if m == nil {
				m = map[string]uint64{}
				n.handedOver[id] = m
			}
			for k, v := range r.Last {
				m[k] = max(m[k], v)
			}
			n.mu.Unlock()
		}
	}
	if len(missing) > 0 {
		return refused, errors.New("cluster: no answer from " + strings.Join(missing, ", "))
	}
	return refused, nil
}

// StoreSession asks every other live node to store the current state of
// its persistent session of clientID (Options.StoreState there), and waits
// until each has answered (RequestTimeout at most).
func (n *Node) StoreSession(_ context.Context, clientID string, id chat.Identity) error {
	b, _ := json.Marshal(takeMsg{Node: n.opts.NodeID, Client: clientID, Kind: id.Kind, ID: id.ID})
	_, missing, err := n.gather("session.store", b, n.opts.RequestTimeout)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return errors.New("cluster: no answer from " + strings.Join(missing, ", "))
	}
	return nil
}

// Queued tells the gap check of the queue of a session of id that this
// node took from another: the message and yourself events in it count as
// delivered (a later gap fill does not send them again). Events that
// reached this node before the queue did, and started a conversation's
// gap state here, may sit above a gap: one sent while the session moved
// (delivered on the node it left after that node stored its queue). The
// records between the queue's last and that first event are filled from
// the store.
func (n *Node) Queued(id chat.Identity, events []chat.QueuedEvent) {
	n.mu.Lock()
	in := n.interest[id]
	last := n.handedOver[id]
	delete(n.handedOver, id)
	n.mu.Unlock()
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	top := map[string]convEvent{} // per conversation, the highest floor below first
	floor := func(c convEvent) {
		cs := in.convs[c.key]
		if cs == nil {
			cs = &convSeq{}
			in.convs[c.key] = cs
		}
		if cs.first > 0 && c.seq < cs.first && c.seq > top[c.key].seq {
			top[c.key] = c
		}
		cs.last = max(cs.last, c.seq)
		delete(cs.holes, c.seq)
	}
	// The giving node's last seq per conversation is a floor: an event it
	// delivered after storing the queue went to nobody there, and reached
	// this node before the session was installed here or not at all (NATS
	// orders messages per publisher only). So is each queued event.
	for key, seq := range last {
		if c, ok := convFromKey(id, key); ok {
			c.seq = seq
			floor(c)
		}
	}
	for _, ev := range events {
		if ev.Name != chat.EventMessage && ev.Name != chat.EventYourself {
			continue
		}
		if c, ok := parseConvEvent(id, ev.Name, ev.Payload); ok {
			floor(c)
		}
	}
	for key, c := range top {
		cs := in.convs[key]
		if c.seq+1 < cs.first {
			upper := c
			upper.seq = cs.first
			n.fill(id, upper, &convSeq{last: c.seq})
		}
		cs.first = 0
	}
}

// lastDelivered returns the last seq delivered per conversation of id
// here (its gap state), for the node taking id's session.
func (n *Node) lastDelivered(id chat.Identity) map[string]uint64 {
	n.mu.Lock()
	in := n.interest[id]
	n.mu.Unlock()
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]uint64, len(in.convs))
	for k, cs := range in.convs {
		if cs.last > 0 && !cs.reset {
			out[k] = cs.last
		}
	}
	return out
}

// convFromKey rebuilds what a gap fill needs of a conversation of id from
// its key (parseConvEvent's: type and the other party).
func convFromKey(id chat.Identity, key string) (convEvent, bool) {
	t, other, ok := strings.Cut(key, ":")
	typ, err := strconv.Atoi(t)
	if !ok || err != nil || other == "" {
		return convEvent{}, false
	}
	c := convEvent{key: key, typ: typ, other: other, to: chat.Peer{ID: id.ID, Type: typ}}
	if typ == chat.TypeGroup {
		c.to = chat.Peer{ID: other, Type: chat.TypeGroup}
	}
	return c, true
}
