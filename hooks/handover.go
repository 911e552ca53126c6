package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
)

// SessionCluster is a cluster as the persistent sessions see it: a
// session lives on one node, and moves to the node its client connects to
// (docs/scaleout.md, "Persistent sessions across nodes").
type SessionCluster interface {
	// TakeSession asks every other live node to give up its session of
	// clientID ([Sessions.GiveUp] there) and returns once they have
	// answered: the store then holds the session as its holder left it.
	// refused is true when a node holds it for another identity than id.
	TakeSession(ctx context.Context, clientID string, id chat.Identity, clean bool) (refused bool, err error)
	// RemoteHeld is the number of persistent sessions of id that the
	// other nodes hold, connected or not.
	RemoteHeld(id chat.Identity) int
	// StoreSession asks every other live node to store the current state
	// of its session of clientID, if it holds one for id, and returns once
	// they have answered: a session that connected moments ago may not be
	// stored yet, and its subscriptions are needed before TakeSession.
	StoreSession(ctx context.Context, clientID string, id chat.Identity) error
	// Queued tells the cluster's gap check the queue of a session of id
	// taken from another node: its events count as delivered here, and a
	// gap between them and what reached this node meanwhile is filled.
	Queued(id chat.Identity, events []chat.QueuedEvent)
}

// GiveUp ends this node's hold on the persistent session of clientID for
// another node that its client connects to: a live connection is ended
// (MQTT 5: DISCONNECT 0x8E session taken over), the session's state and
// queue are in the store when it returns, and mochi forgets it. For a
// clean connection the stored session is dropped instead. held is false
// when this node has no session of clientID; refused is true (nothing
// changes) when it holds it for another identity than id.
func (h *Sessions) GiveUp(clientID string, id chat.Identity, clean bool) (held, refused bool) {
	h.mu.Lock()
	cl, ok := h.srv.Clients.Get(clientID)
	if !ok {
		h.mu.Unlock()
		return false, false
	}
	if owner, ok := broker.ParseUsername(string(cl.Properties.Username)); !ok || owner != id {
		h.mu.Unlock()
		return true, true
	}
	live := !cl.Closed()
	var ops []chat.SessionOp
	s := h.known[clientID]
	switch {
	case clean:
		ops = append(ops, chat.SessionOp{Kind: chat.SessionDrop, ClientID: clientID})
	case s != nil && s.cl == cl && s.offline:
		// Offline: the store has its state and queue.
	case s != nil && s.cl == cl || !sessionExpires(cl):
		// Connected, or connecting (its session not established yet, the
		// one it takes over still known): store its queue as OnDisconnect
		// would, with what mochi dropped from the one it took over.
		if s != nil && s.cl != cl {
			h.requeue(cl, h.takeStrays(s.cl))
		}
		queue := broker.QueueOrder(cl.State.Inflight)
		ops = append(ops, h.putState(cl, time.Now().Unix()))
		for i, pk := range queue {
			ops = append(ops, eventOp(clientID, uint64(i+1), pk))
		}
	}
	// Forgotten first, so that none of the hooks below stores anything
	// more of it: OnDisconnect finds another client (or none) under the
	// id, OnQosDropped no known session.
	h.keep(clientID, nil)
	h.srv.Clients.Delete(clientID)
	h.w.add(ops...)
	h.mu.Unlock()

	h.srv.UnsubscribeClient(cl)
	cl.ClearInflights()
	if live {
		if cl.Properties.ProtocolVersion >= 5 {
			_ = h.srv.DisconnectClient(cl, packets.ErrSessionTakenOver) // the connection is closed either way
		} else {
			cl.Stop(packets.ErrSessionTakenOver)
		}
	} else {
		h.reg.release(cl)
	}
	h.w.flush()
	h.log.Debug().Str("client", clientID).Bool("live", live).Bool("clean", clean).Msg("persistent session given up to another node")
	return true, false
}

// StoreState stores now the state of this node's session of clientID, if
// it holds one for id that is connected or connecting (an offline one is
// stored already), and returns once the store has it.
func (h *Sessions) StoreState(clientID string, id chat.Identity) (held bool) {
	h.mu.Lock()
	cl, ok := h.srv.Clients.Get(clientID)
	if !ok || sessionExpires(cl) {
		h.mu.Unlock()
		return false
	}
	if owner, ok := broker.ParseUsername(string(cl.Properties.Username)); !ok || owner != id {
		h.mu.Unlock()
		return false
	}
	if s := h.known[clientID]; s == nil || s.cl != cl || !s.offline {
		h.w.add(h.putState(cl, 0))
	}
	h.mu.Unlock()
	h.w.flush()
	return true
}

// adopt brings to this node, before mochi looks for a session to hand to
// cl, the persistent session of cl's client id that another node holds,
// or that only the store holds (its node is gone, or restarted under
// another id). mochi then hands it to cl as a local one: its
// subscriptions and its queued events, in order, once. A clean connection
// makes the other nodes drop theirs. It runs only in a cluster.
//
// The session is installed here before the other node lets it go, from
// the state stored then (its subscriptions), so that events sent meanwhile
// queue here; after the other node stored its queue and forgot it, the
// stored queue goes in front of them, without the events both nodes got.
func (h *Sessions) adopt(ctx context.Context, cl *mqtt.Client, id chat.Identity, clean bool) error {
	if h.cluster == nil {
		return nil
	}
	if _, ok := h.srv.Clients.Get(cl.ID); ok {
		return nil // held here: mochi hands it over
	}
	if clean {
		if h.cluster.RemoteHeld(id) == 0 {
			return nil
		}
		refused, err := h.cluster.TakeSession(ctx, cl.ID, id, true)
		if refused {
			return errClientIDTaken
		}
		if err != nil {
			h.log.Warn().Err(err).Str("client", cl.ID).Msg("cluster: persistent session not given up by every node")
		}
		return nil
	}

	first, ok, err := h.store.LoadSession(ctx, cl.ID)
	if err != nil {
		return err
	}
	if !ok {
		// Nothing stored: a first session, or one that connected to
		// another node moments ago (its state is written in the
		// background). Its holder stores it now, so that it is installed
		// here, subscriptions and all, before the holder lets it go.
		if err := h.cluster.StoreSession(ctx, cl.ID, id); err != nil {
			h.log.Warn().Err(err).Str("client", cl.ID).Msg("cluster: persistent session not stored by every node")
		}
		if first, ok, err = h.store.LoadSession(ctx, cl.ID); err != nil {
			return err
		}
	}
	var pre *mqtt.Client
	if ok {
		st, c, live := h.decode(first, time.Now().Unix())
		if owner, _ := broker.ParseUsername(string(st.Client.Username)); live && owner != id {
			return errClientIDTaken
		}
		if live {
			pre = h.install(c, st.Subscriptions, id)
		}
	}
	refused, err := h.cluster.TakeSession(ctx, cl.ID, id, false)
	if err != nil {
		h.log.Warn().Err(err).Str("client", cl.ID).Msg("cluster: persistent session not given up by every node")
	}
	last, ok, lerr := h.store.LoadSession(ctx, cl.ID)
	var st sessionState
	var c storage.Client
	live := false
	if ok && lerr == nil {
		st, c, live = h.decode(last, time.Now().Unix())
		if owner, _ := broker.ParseUsername(string(st.Client.Username)); live && owner != id {
			refused = true
		}
	}
	if refused || lerr != nil || !live {
		if pre != nil {
			h.uninstall(pre)
		}
		switch {
		case refused:
			return errClientIDTaken
		case lerr != nil:
			return lerr
		case ok: // expired while nobody held it
			h.w.add(chat.SessionOp{Kind: chat.SessionDrop, ClientID: cl.ID})
		}
		return nil
	}
	if pre == nil {
		pre = h.install(c, st.Subscriptions, id)
	} else {
		h.resubscribe(pre, st.Subscriptions)
	}
	h.merge(pre, storedEvents(last))
	h.reg.setSays(cl.ID, id, fromStoredSays(st.Says))

	h.mu.Lock()
	queue := broker.QueueOrder(pre.State.Inflight)
	st.Node = h.self()
	b, _ := json.Marshal(st)
	ops := make([]chat.SessionOp, 0, 1+len(queue))
	ops = append(ops, chat.SessionOp{Kind: chat.SessionPut, ClientID: cl.ID, Data: b})
	for i, pk := range queue {
		ops = append(ops, eventOp(cl.ID, uint64(i+1), pk))
	}
	h.keep(cl.ID, &storedSession{cl: pre, offline: true, next: uint64(len(queue) + 1)})
	h.w.add(ops...)
	h.mu.Unlock()

	// Told without h.mu: the cluster's deliveries hold their own locks
	// while the broker's hooks (which take h.mu) run.
	events := make([]chat.QueuedEvent, 0, len(queue))
	for _, pk := range queue {
		if _, event, ok := broker.ParseInboxTopic(pk.TopicName); ok {
			events = append(events, chat.QueuedEvent{Name: event, Payload: pk.Payload})
		}
	}
	h.cluster.Queued(id, events)
	h.log.Debug().Str("client", cl.ID).Int("queued", len(queue)).Msg("persistent session taken from another node")
	return nil
}

// install puts an offline session of c (from decode) in mochi, with subs,
// as mochi's own restore at start does; it is known to the hook as held
// but stores nothing until adopt settles it. The cluster keeps id's
// events coming here from now on (Options.Held).
func (h *Sessions) install(c storage.Client, subs []storage.Subscription, id chat.Identity) *mqtt.Client {
	cl := h.srv.NewClient(nil, c.Listener, c.ID, false)
	cl.Properties.Username = c.Username
	cl.Properties.Clean = false
	cl.Properties.ProtocolVersion = c.ProtocolVersion
	cl.Properties.Props = packets.Properties{
		SessionExpiryInterval:     c.Properties.SessionExpiryInterval,
		SessionExpiryIntervalFlag: c.Properties.SessionExpiryIntervalFlag,
		RequestProblemInfoFlag:    c.Properties.RequestProblemInfoFlag,
		RequestProblemInfo:        c.Properties.RequestProblemInfo,
		RequestResponseInfo:       c.Properties.RequestResponseInfo,
		ReceiveMaximum:            c.Properties.ReceiveMaximum,
		MaximumPacketSize:         c.Properties.MaximumPacketSize,
	}
	cl.Stop(packets.ErrServerShuttingDown) // offline, from now
	h.reg.restore(cl, id)
	h.mu.Lock()
	h.srv.Clients.Add(cl)
	h.keep(c.ID, &storedSession{cl: cl})
	h.mu.Unlock()
	h.resubscribe(cl, subs)
	return cl
}

// uninstall undoes install.
func (h *Sessions) uninstall(cl *mqtt.Client) {
	h.mu.Lock()
	if s := h.known[cl.ID]; s != nil && s.cl == cl {
		h.keep(cl.ID, nil)
	}
	if cur, ok := h.srv.Clients.Get(cl.ID); ok && cur == cl {
		h.srv.Clients.Delete(cl.ID)
	}
	h.mu.Unlock()
	h.srv.UnsubscribeClient(cl)
	cl.ClearInflights()
	h.reg.release(cl)
}

// resubscribe makes cl's subscriptions subs.
func (h *Sessions) resubscribe(cl *mqtt.Client, subs []storage.Subscription) {
	want := map[string]bool{}
	for _, s := range subs {
		want[s.Filter] = true
		sb := packets.Subscription{Filter: s.Filter, RetainHandling: s.RetainHandling, Qos: s.Qos,
			RetainAsPublished: s.RetainAsPublished, NoLocal: s.NoLocal, Identifier: s.Identifier}
		if h.srv.Topics.Subscribe(cl.ID, sb) {
			atomic.AddInt64(&h.srv.Info.Subscriptions, 1)
		}
		cl.State.Subscriptions.Add(s.Filter, sb)
	}
	for filter := range cl.State.Subscriptions.GetAll() {
		if !want[filter] {
			cl.State.Subscriptions.Delete(filter)
			if h.srv.Topics.Unsubscribe(filter, cl.ID) {
				atomic.AddInt64(&h.srv.Info.Subscriptions, -1)
			}
		}
	}
}

// merge puts the stored queue of the node that gave the session up in
// front of what cl queued here meanwhile, leaving out the events cl has
// already (both nodes got them), with packet ids free in cl.
func (h *Sessions) merge(cl *mqtt.Client, stored []sessionEvent) {
	have := map[string]bool{}
	here := broker.QueueOrder(cl.State.Inflight)

	for _, pk := range here {
		have[eventKey(pk.TopicName, pk.Payload)] = true
	}
	maxQueue := int(h.srv.Options.Capabilities.MaximumInflight)
	pks := make([]packets.Packet, 0, len(stored)+len(here))
	for _, ev := range stored {
		pk := ev.Message.ToPacket()
		pk.Expiry = ev.Expiry
		if have[eventKey(pk.TopicName, pk.Payload)] || len(pks)+len(here) >= maxQueue {
			continue
		}
		pks = append(pks, pk)
	}
	if len(pks) == 0 {
		return
	}
	pks = append(pks, here...)
	broker.KeepOrder(pks)
	for i := range pks[:len(pks)-len(here)] {
		n, err := cl.NextPacketID()
		if err != nil {
			break
		}
		pks[i].PacketID = uint16(n)
		if cl.State.Inflight.Set(pks[i]) {
			atomic.AddInt64(&h.srv.Info.Inflight, 1)
		}
	}
	for _, pk := range pks[len(pks)-len(here):] {
		cl.State.Inflight.Set(pk) // the same id, an earlier Created if KeepOrder moved it
	}
}

// eventKey identifies an event for merge: its topic and, for a message
// or yourself event, its conversation and seq (a gap fill builds its
// payload anew); other events by their bytes.
func eventKey(topic string, payload []byte) string {
	var e struct {
		From chat.Peer `json:"from"`
		To   chat.Peer `json:"to"`
		Seq  uint64    `json:"seq"`
	}
	if json.Unmarshal(payload, &e) != nil || e.Seq == 0 {
		return topic + "\x00" + string(bytes.TrimSpace(payload))
	}
	return topic + "\x00" + e.From.ID + "\x00" + strconv.Itoa(e.From.Type) + "\x00" + e.To.ID + "\x00" +
		strconv.Itoa(e.To.Type) + "\x00" + strconv.FormatUint(e.Seq, 10)
}
