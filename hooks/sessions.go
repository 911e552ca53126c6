package hooks

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
)

// Sessions keeps persistent MQTT sessions, and the events queued for them,
// across restarts (docs/realtime.md, "Persistent sessions"). It writes only
// off the delivery path of connected clients:
//
//   - a persistent session's state (client, subscriptions) when it
//     connects and when it subscribes or unsubscribes;
//   - its whole queue when it disconnects (so also for every connected
//     session at shutdown);
//   - each event queued for it while it is disconnected, and each event
//     that expires from that queue;
//   - its removal when it expires or a clean session replaces it.
//
// Writes go through one background writer in order, so a sender never
// waits for the store; Stop (at the end of the broker's Close) drains it.
// At start, mochi loads the stored sessions through StoredClients,
// StoredSubscriptions and StoredInflightMessages.
type Sessions struct {
	mqtt.HookBase
	reg   *registry
	srv   *mqtt.Server
	store chat.SessionStore
	ctx   context.Context
	log   zerolog.Logger

	// cluster moves sessions between nodes (Options.Cluster); nil: one
	// node. nodeID names this node in the stored state (Options.NodeID).
	cluster  SessionCluster
	nodeID   func() string
	nodeOnce sync.Once
	node     string

	mu     sync.Mutex
	known  map[string]*storedSession         // by client id: sessions the store holds
	held   map[chat.Identity]int             // the known sessions per identity
	strays map[*mqtt.Client][]packets.Packet // see stray
	onHeld func(chat.Identity, int)          // Options.Held
	loaded []loadedSession                   // from StoredClients until StoredInflightMessages

	w sessionWriter
}

// storedSession is what the hook knows of a stored session.
type storedSession struct {
	cl      *mqtt.Client // the client the stored state is of
	offline bool         // its queue is stored and grows with each event
	next    uint64       // order number of the next queued event
}

type loadedSession struct {
	id     string
	subs   []storage.Subscription
	events []sessionEvent
	says   []said
}

// sessionState is the stored state of a session.
type sessionState struct {
	Client        storage.Client         `json:"client"`
	Subscriptions []storage.Subscription `json:"subs,omitempty"`
	// Disconnected is when it disconnected (Unix seconds); 0 while it was
	// connected.
	Disconnected int64 `json:"disconnected,omitempty"`
	// Node is the cluster node that holds the session ("" on a single
	// server): at start a node restores only its own and the unowned ones.
	Node string `json:"node,omitempty"`
	// Says are the client id's recent QoS 1/2 says, oldest first, so that
	// a retransmission (DUP) after a restart or a move to another node is
	// recognised (registry.duplicate).
	Says []storedSay `json:"says,omitempty"`
}

// storedSay is a said in the stored state.
type storedSay struct {
	PacketID uint16 `json:"p"`
	Sum      uint64 `json:"s"`
}

func toStoredSays(ss []said) []storedSay {
	out := make([]storedSay, 0, len(ss))
	for _, x := range ss {
		out = append(out, storedSay{PacketID: x.packetID, Sum: x.sum})
	}
	return out
}

func fromStoredSays(ss []storedSay) []said {
	out := make([]said, 0, len(ss))
	for _, x := range ss {
		out = append(out, said{packetID: x.PacketID, sum: x.Sum})
	}
	return out
}

// sessionEvent is a stored queued event, keyed by its packet id.
type sessionEvent struct {
	N       uint64          `json:"n"` // queue order
	Message storage.Message `json:"m"`
	Expiry  int64           `json:"expiry,omitempty"`
}

var _ mqtt.Hook = (*Sessions)(nil)

// ID implements mqtt.Hook.
func (h *Sessions) ID() string { return "mqim-sessions" }

// Provides implements mqtt.Hook.
func (h *Sessions) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnSubscribed, mqtt.OnUnsubscribed,
		mqtt.OnQosPublish, mqtt.OnQosDropped, mqtt.OnClientExpired,
		mqtt.StoredClients, mqtt.StoredSubscriptions, mqtt.StoredInflightMessages:
		return true
	}
	return false
}

// Init implements mqtt.Hook.
func (h *Sessions) Init(any) error {
	h.known = map[string]*storedSession{}
	h.held = map[chat.Identity]int{}
	h.w.start(h.ctx, h.store, h.log)
	return nil
}

// Stop implements mqtt.Hook: mochi calls it after every connection has
// ended (and queued its session); it waits until the store has it all.
func (h *Sessions) Stop() error {
	h.w.stop()
	return nil
}

// StoredClients implements mqtt.Hook: the stored sessions that have not
// expired. mochi counts a restored session's expiry from the restart, and
// honours a session's own interval only for MQTT 5; the client is
// therefore given to mochi as MQTT 5 with what is left of its expiry (the
// reconnecting client brings its own version).
func (h *Sessions) StoredClients() ([]storage.Client, error) {
	now := time.Now().Unix()
	maxQueue := int(h.srv.Options.Capabilities.MaximumInflight)
	var clients []storage.Client
	var drop []chat.SessionOp
	foreign := 0
	err := h.store.LoadSessions(h.ctx, func(s chat.StoredSession) error {
		st, c, ok := h.decode(s, now)
		if !ok {
			drop = append(drop, chat.SessionOp{Kind: chat.SessionDrop, ClientID: s.ClientID})
			return nil
		}
		if self := h.self(); self != "" && st.Node != "" && st.Node != self {
			// Another node's: it restores it, or the node its client
			// reconnects to takes it from the store (adopt).
			foreign++
			return nil
		}
		clients = append(clients, c)
		ls := loadedSession{id: s.ClientID, subs: st.Subscriptions, events: storedEvents(s), says: fromStoredSays(st.Says)}
		if len(ls.events) > maxQueue { // mqtt.max_inflight was lowered: mochi keeps the oldest too
			ls.events = ls.events[:maxQueue]
		}
		h.loaded = append(h.loaded, ls)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(drop) > 0 {
		h.w.add(drop...)
	}
	h.log.Info().Int("sessions", len(clients)).Int("expired", len(drop)).Int("other_nodes", foreign).Msg("persistent sessions restored")
	return clients, nil
}

// decode reads a stored session's state; ok is false when it is unreadable
// or expired (it is to be dropped). c is the client to restore: mochi
// counts a restored session's expiry from the restore, and honours a
// session's own interval only for MQTT 5, so c is MQTT 5 with what is
// left of its expiry (the reconnecting client brings its own version).
// Topic aliases are off: a queued event must carry its topic name.
func (h *Sessions) decode(s chat.StoredSession, now int64) (st sessionState, c storage.Client, ok bool) {
	if err := json.Unmarshal(s.State, &st); err != nil {
		h.log.Warn().Err(err).Str("client", s.ClientID).Msg("stored session unreadable; dropped")
		return st, c, false
	}
	since := st.Disconnected
	if since == 0 {
		since = now // the server stopped without saving it (SIGKILL)
	}
	life := int64(h.srv.Options.Capabilities.MaximumSessionExpiryInterval)
	if p := st.Client.Properties; st.Client.ProtocolVersion == 5 && p.SessionExpiryIntervalFlag {
		life = min(life, int64(p.SessionExpiryInterval))
	}
	left := since + life - now
	if left <= 0 {
		return st, c, false
	}
	c = st.Client
	c.ID, c.Clean, c.ProtocolVersion = s.ClientID, false, 5
	c.Properties.SessionExpiryInterval, c.Properties.SessionExpiryIntervalFlag = uint32(min(left, 1<<32-1)), true
	c.Properties.TopicAliasMaximum = 0
	return st, c, true
}

// storedEvents returns the queued events of s in queue order.
func storedEvents(s chat.StoredSession) []sessionEvent {
	var events []sessionEvent
	for _, e := range s.Events {
		var ev sessionEvent
		if json.Unmarshal(e.Data, &ev) == nil {
			ev.Message.PacketID = uint16(e.Key)
			events = append(events, ev)
		}
	}
	slices.SortFunc(events, func(a, b sessionEvent) int { return cmp.Compare(a.N, b.N) })
	return events
}

// self is this node's id ("" on a single server).
func (h *Sessions) self() string {
	h.nodeOnce.Do(func() {
		if h.nodeID != nil {
			h.node = h.nodeID()
		}
	})
	return h.node
}

// StoredSubscriptions implements mqtt.Hook.
func (h *Sessions) StoredSubscriptions() ([]storage.Subscription, error) {
	var subs []storage.Subscription
	for _, ls := range h.loaded {
		for _, s := range ls.subs {
			s.Client = ls.id
			subs = append(subs, s)
		}
	}
	return subs, nil
}

// StoredInflightMessages implements mqtt.Hook. mochi's own loading would
// lose each event's expiry, so the queues are set here and nothing is
// returned. Created times are renumbered (never later) so that mochi
// resends in queue order.
func (h *Sessions) StoredInflightMessages() ([]storage.Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ls := range h.loaded {
		cl, ok := h.srv.Clients.Get(ls.id)
		if !ok {
			continue
		}
		if id, ok := broker.ParseUsername(string(cl.Properties.Username)); ok {
			h.reg.restore(cl, id)
			h.reg.setSays(cl.ID, id, ls.says)
		}
		pks := make([]packets.Packet, len(ls.events))
		for i, ev := range ls.events {
			pks[i] = ev.Message.ToPacket()
			pks[i].Expiry = ev.Expiry
		}
		broker.KeepOrder(pks)
		for _, pk := range pks {
			if cl.State.Inflight.Set(pk) {
				atomic.AddInt64(&h.srv.Info.Inflight, 1)
			}
		}
		next := uint64(1)
		if n := len(ls.events); n > 0 {
			next = ls.events[n-1].N + 1
		}
		h.keep(ls.id, &storedSession{cl: cl, offline: true, next: next})
	}
	h.loaded = nil
	return nil, nil
}

// OnSessionEstablished implements mqtt.Hook: a persistent session's state
// is stored (its queue is now the connection's); a clean one replaces any
// stored session.
func (h *Sessions) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.mu.Lock()
	if cur, ok := h.srv.Clients.Get(cl.ID); !ok || cur != cl {
		h.mu.Unlock()
		return
	}
	var strays []packets.Packet
	if old := h.known[cl.ID]; old != nil && old.cl != cl {
		strays = h.takeStrays(old.cl)
	}
	if len(strays) > 0 && !cl.Properties.Clean {
		strays = h.requeue(cl, strays)
	} else {
		strays = nil
	}
	switch {
	case !sessionExpires(cl):
		h.keep(cl.ID, &storedSession{cl: cl})
		h.w.add(h.putState(cl, 0))
	case h.known[cl.ID] != nil:
		h.keep(cl.ID, nil)
		h.w.add(chat.SessionOp{Kind: chat.SessionDrop, ClientID: cl.ID})
	}
	h.mu.Unlock()
	h.send(cl, strays)
}

// A session handed to a new connection can lose events in mochi: it
// copies the old connection's queue, and only then lists the new
// connection as the client id's, so an event published in between goes to
// the old one, whose queue mochi then clears (inheritClientSession). The
// events it clears are kept here (OnQosDropped) with what was left in the
// old queue, and those the new connection did not get are sent to it once
// its session is established. docs/experiments/mochi-takeover-race.patch
// is the fix in mochi itself.

// stray keeps an event dropped from the queue of cl, a known session that
// a new connection takes over.
func (h *Sessions) stray(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Type != packets.Publish {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.known[cl.ID]; s != nil && s.cl == cl {
		if h.strays == nil {
			h.strays = map[*mqtt.Client][]packets.Packet{}
		}
		h.strays[cl] = append(h.strays[cl], pk)
	}
}

// takeStrays returns (and forgets) what mochi dropped from old, a session
// taken over, and what is left in its queue; h.mu is held.
func (h *Sessions) takeStrays(old *mqtt.Client) []packets.Packet {
	strays := append(h.strays[old], broker.QueueOrder(old.State.Inflight)...)
	delete(h.strays, old)
	return strays
}

// requeue puts in cl's queue the events of strays it does not hold, with
// packet ids free in cl, and returns them; h.mu is held, so that a
// GiveUp sees them in the queue it stores.
func (h *Sessions) requeue(cl *mqtt.Client, strays []packets.Packet) []packets.Packet {
	have := map[string]bool{}
	for _, pk := range cl.State.Inflight.GetAll(false) {
		have[eventKey(pk.TopicName, pk.Payload)] = true
	}
	var out []packets.Packet
	for _, pk := range strays {
		k := eventKey(pk.TopicName, pk.Payload)
		if have[k] || pk.TopicName == "" { // no topic: an alias of the old connection
			continue
		}
		have[k] = true
		id, err := cl.NextPacketID()
		if err != nil {
			break
		}
		pk.PacketID = uint16(id)
		pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = 0, false
		if cl.State.Inflight.Set(pk) {
			atomic.AddInt64(&h.srv.Info.Inflight, 1)
		}
		out = append(out, pk)
	}
	return out
}

// send writes requeued events to cl; one that cannot be written stays in
// its queue (resent on the next connection, or stored with the session).
func (h *Sessions) send(cl *mqtt.Client, pks []packets.Packet) {
	for _, pk := range pks {
		_ = cl.WritePacket(pk)
	}
	if len(pks) > 0 {
		h.log.Debug().Str("client", cl.ID).Int("events", len(pks)).Msg("events mochi dropped at a session takeover sent again")
	}
}

// OnSubscribed implements mqtt.Hook.
func (h *Sessions) OnSubscribed(cl *mqtt.Client, _ packets.Packet, _ []byte) { h.subsChanged(cl) }

// OnUnsubscribed implements mqtt.Hook.
func (h *Sessions) OnUnsubscribed(cl *mqtt.Client, _ packets.Packet) { h.subsChanged(cl) }

func (h *Sessions) subsChanged(cl *mqtt.Client) {
	if cl.Closed() {
		return // a session ending or taken over: settled elsewhere
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.known[cl.ID]; s != nil && s.cl == cl && !s.offline {
		h.w.add(h.putState(cl, 0))
	}
}

// OnDisconnect implements mqtt.Hook: a persistent session going offline
// stores its queue, in queue order.
func (h *Sessions) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if cl.Net.Conn == nil || takenOver(cl) {
		return // restored from the store at start, or living on in a new connection
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.srv.Clients.Get(cl.ID); !ok || cur != cl {
		return
	}
	if expire { // e.g. an MQTT 5 DISCONNECT setting the session expiry to 0
		if s := h.known[cl.ID]; s != nil && s.cl == cl {
			h.keep(cl.ID, nil)
			h.w.add(chat.SessionOp{Kind: chat.SessionDrop, ClientID: cl.ID})
		}
		return
	}
	queue := broker.QueueOrder(cl.State.Inflight)
	ops := make([]chat.SessionOp, 0, 1+len(queue))
	ops = append(ops, h.putState(cl, time.Now().Unix()))
	for i, pk := range queue {
		ops = append(ops, eventOp(cl.ID, uint64(i+1), pk))
	}
	h.keep(cl.ID, &storedSession{cl: cl, offline: true, next: uint64(len(queue) + 1)})
	h.w.add(ops...)
}

// OnQosPublish implements mqtt.Hook. For a connected client (the hot path)
// it does nothing; an event queued for a disconnected session is stored.
func (h *Sessions) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if !cl.Closed() || pk.FixedHeader.Type != packets.Publish {
		return
	}
	if cl.IsTakenOver() {
		h.late(cl, pk)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.known[cl.ID]
	if s == nil || !s.offline || s.cl != cl {
		return // not yet offline: OnDisconnect stores it with the queue
	}
	h.w.add(eventOp(cl.ID, s.next, pk))
	s.next++
}

// late handles an event queued on cl after a new connection took its
// session over (a publisher that found cl under the client id just
// before). While the new connection's session is not established, the
// event stays in cl's queue and OnSessionEstablished finds it there;
// after, it is sent on.
func (h *Sessions) late(cl *mqtt.Client, pk packets.Packet) {
	h.mu.Lock()
	s := h.known[cl.ID]
	cur, ok := h.srv.Clients.Get(cl.ID)
	var pks []packets.Packet
	if s != nil && s.cl != cl && ok && s.cl == cur {
		pks = h.requeue(cur, []packets.Packet{pk})
	}
	h.mu.Unlock()
	h.send(cur, pks)
}

// OnQosDropped implements mqtt.Hook: an event expired from (or was dropped
// with) a disconnected session's queue.
func (h *Sessions) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if cl.IsTakenOver() {
		h.stray(cl, pk)
		return
	}
	if !cl.Closed() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.known[cl.ID]; s != nil && s.offline && s.cl == cl {
		h.w.add(chat.SessionOp{Kind: chat.SessionDropEvent, ClientID: cl.ID, Key: uint64(pk.PacketID)})
	}
}

// OnClientExpired implements mqtt.Hook.
func (h *Sessions) OnClientExpired(cl *mqtt.Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.known[cl.ID]; s != nil && s.cl == cl {
		h.keep(cl.ID, nil)
		h.w.add(chat.SessionOp{Kind: chat.SessionDrop, ClientID: cl.ID})
	}
}

// forget drops the stored session of cl, whose identity is erased
// (registry.eraseSession): the client is no longer in mochi, so nothing
// more is stored for it.
func (h *Sessions) forget(cl *mqtt.Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.known[cl.ID]; s != nil && s.cl == cl {
		h.keep(cl.ID, nil)
	}
	h.w.add(chat.SessionOp{Kind: chat.SessionDrop, ClientID: cl.ID})
}

// keep sets (nil: removes) the known session of a client id and keeps the
// count per identity, reported to Options.Held on each change; h.mu is
// held, so the reports are in order.
func (h *Sessions) keep(clientID string, s *storedSession) {
	old := h.known[clientID]
	if s == nil {
		delete(h.known, clientID)
	} else {
		h.known[clientID] = s
	}
	oldID, hadOld := sessionIdentity(old)
	newID, hasNew := sessionIdentity(s)
	if hadOld && hasNew && oldID == newID {
		return // the same identity's session goes on: no change
	}
	if hadOld {
		h.count(oldID, -1)
	}
	if hasNew {
		h.count(newID, 1)
	}
}

func sessionIdentity(s *storedSession) (chat.Identity, bool) {
	if s == nil {
		return chat.Identity{}, false
	}
	return broker.ParseUsername(string(s.cl.Properties.Username))
}

func (h *Sessions) count(id chat.Identity, d int) {
	before := h.held[id]
	if h.held[id] += d; h.held[id] <= 0 {
		delete(h.held, id)
	}
	if h.onHeld != nil && h.held[id] != before {
		h.onHeld(id, h.held[id])
	}
}

// putState returns the op storing cl's state.
func (h *Sessions) putState(cl *mqtt.Client, disconnected int64) chat.SessionOp {
	p := cl.Properties.Props
	st := sessionState{
		Node: h.self(),
		Says: toStoredSays(h.reg.says(cl.ID)),
		Client: storage.Client{
			ID: cl.ID, Username: cl.Properties.Username, Listener: cl.Net.Listener,
			ProtocolVersion: cl.Properties.ProtocolVersion, Clean: cl.Properties.Clean,
			Properties: storage.ClientProperties{
				SessionExpiryInterval: p.SessionExpiryInterval, SessionExpiryIntervalFlag: p.SessionExpiryIntervalFlag,
				RequestProblemInfo: p.RequestProblemInfo, RequestProblemInfoFlag: p.RequestProblemInfoFlag,
				RequestResponseInfo: p.RequestResponseInfo, ReceiveMaximum: p.ReceiveMaximum,
				TopicAliasMaximum: p.TopicAliasMaximum, MaximumPacketSize: p.MaximumPacketSize,
			},
		},
		Disconnected: disconnected,
	}
	for _, s := range cl.State.Subscriptions.GetAll() {
		st.Subscriptions = append(st.Subscriptions, storage.Subscription{
			Filter: s.Filter, Identifier: s.Identifier, RetainHandling: s.RetainHandling, Qos: s.Qos,
			RetainAsPublished: s.RetainAsPublished, NoLocal: s.NoLocal,
		})
	}
	slices.SortFunc(st.Subscriptions, func(a, b storage.Subscription) int { return cmp.Compare(a.Filter, b.Filter) })
	b, _ := json.Marshal(st) // plain data: cannot fail
	return chat.SessionOp{Kind: chat.SessionPut, ClientID: cl.ID, Data: b}
}

// eventOp returns the op storing queued event pk as number n of the queue.
func eventOp(clientID string, n uint64, pk packets.Packet) chat.SessionOp {
	ev := sessionEvent{N: n, Expiry: pk.Expiry, Message: storage.Message{
		FixedHeader: pk.FixedHeader, TopicName: pk.TopicName, Payload: pk.Payload, Origin: pk.Origin, Created: pk.Created,
		Properties: storage.MessageProperties{
			CorrelationData: pk.Properties.CorrelationData, SubscriptionIdentifier: pk.Properties.SubscriptionIdentifier,
			User: pk.Properties.User, ContentType: pk.Properties.ContentType, ResponseTopic: pk.Properties.ResponseTopic,
			PayloadFormat: pk.Properties.PayloadFormat, PayloadFormatFlag: pk.Properties.PayloadFormatFlag,
		},
	}}
	b, _ := json.Marshal(ev)
	return chat.SessionOp{Kind: chat.SessionPutEvent, ClientID: clientID, Key: uint64(pk.PacketID), Data: b}
}

// restore binds the client id of a session restored from the store to its
// identity, as a login would have: nobody else may take it over.
func (r *registry) restore(cl *mqtt.Client, id chat.Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.owners[cl.ID] != nil {
		return
	}
	r.owners[cl.ID] = &owner{id: id, cl: cl}
	set := r.byIdentity[id]
	if set == nil {
		set = map[string]struct{}{}
		r.byIdentity[id] = set
	}
	set[cl.ID] = struct{}{}
}

// sessionWriter applies session ops in order on one goroutine, in batches,
// so that no client's goroutine waits for the store.
type sessionWriter struct {
	mu      sync.Mutex
	ops     []chat.SessionOp
	flushed []chan struct{} // closed once the ops before them are written
	wake    chan struct{}
	done    chan struct{}
	stopped bool
}

func (w *sessionWriter) start(ctx context.Context, store chat.SessionStore, log zerolog.Logger) {
	w.wake = make(chan struct{}, 1)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		events := 0 // written since start, for the debug log
		for {
			_, open := <-w.wake
			for {
				w.mu.Lock()
				ops, flushed := w.ops, w.flushed
				w.ops, w.flushed = nil, nil
				w.mu.Unlock()
				if len(ops) == 0 {
					closeAll(flushed)
					break
				}
				err := store.SaveSessions(ctx, ops)
				closeAll(flushed)
				if err != nil {
					log.Error().Err(err).Int("ops", len(ops)).Msg("persistent sessions not saved")
					continue
				}
				for _, op := range ops {
					if op.Kind == chat.SessionPutEvent {
						events++
					}
				}
				log.Debug().Int("ops", len(ops)).Int("events_total", events).Msg("persistent sessions saved")
			}
			if !open {
				return
			}
		}
	}()
}

func (w *sessionWriter) add(ops ...chat.SessionOp) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.ops = append(w.ops, ops...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// flush waits until the ops added so far are written (or failed). After
// stop it returns at once.
func (w *sessionWriter) flush() {
	done := make(chan struct{})
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.flushed = append(w.flushed, done)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-done
}

func closeAll(chs []chan struct{}) {
	for _, ch := range chs {
		close(ch)
	}
}

// stop saves what is queued and ends the writer.
func (w *sessionWriter) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	close(w.wake)
	<-w.done
}
