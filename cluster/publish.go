package cluster

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mqim/mqim/chat"
)

// Headers of an inbox event on the bus; the data is the event payload.
const (
	hdrEvent   = "Mqim-Event"
	hdrExcept  = "Mqim-Except"
	hdrSession = "Mqim-Session"
)

// publisher is the node as chat.Publisher: local sessions first (through
// the gap check), then the bus, on the identity's inbox subject, when
// another node holds a session of it. Only the nodes with a session of
// that identity subscribe to the subject.
type publisher Node

// Publish implements chat.Publisher.
func (p *publisher) Publish(to chat.Identity, event string, payload []byte, exceptSession string) {
	n := (*Node)(p)
	l := n.publishLock(to)
	l.RLock()
	defer l.RUnlock()
	n.deliver(to, event, payload, exceptSession)
	n.toBus(to, event, payload, exceptSession, "")
}

func (n *Node) publishLock(id chat.Identity) *sync.RWMutex {
	return &n.publishing[maphash.String(n.seed, id.String())%uint64(len(n.publishing))]
}

// publishBarrier waits for the local publishes to id under way. A
// persistent session taken from another node is installed here first,
// then the other node gives it up: a publish that delivered locally
// before the install and reaches the bus after the other node gave up
// would be lost to the session; once the barrier is passed, every
// publish delivers to the installed session.
func (n *Node) publishBarrier(id chat.Identity) {
	l := n.publishLock(id)
	l.Lock()
	l.Unlock() //nolint:staticcheck // an empty critical section: a barrier
}

// PublishSession implements chat.Publisher: the session may be on any node.
func (p *publisher) PublishSession(session string, to chat.Identity, event string, payload []byte) {
	n := (*Node)(p)
	if n.svc.Presence.HasSession(to, session) {
		n.local.PublishSession(session, to, event, payload)
		return
	}
	n.toBus(to, event, payload, "", session)
}

// toBus publishes the event on to's inbox subject when another live node
// holds a session of to, connected or a persistent one offline (its
// presence table; see docs/scaleout.md for the window right after a login
// on another node).
func (n *Node) toBus(to chat.Identity, event string, payload []byte, except, session string) {
	n.mu.Lock()
	none := n.totals[to] == 0 && n.heldTotals[to] == 0
	n.mu.Unlock()
	if none {
		return
	}
	m := nats.NewMsg(n.inboxSubject(inboxToken(to)))
	m.Header.Set(hdrEvent, event)
	if except != "" {
		m.Header.Set(hdrExcept, except)
	}
	if session != "" {
		m.Header.Set(hdrSession, session)
	}
	m.Data = payload
	if err := n.nc.PublishMsg(m); err != nil && !n.closing() {
		n.log.Warn().Err(err).Str("event", event).Msg("cluster: publish failed; the receivers fill the gap from the store")
	}
}

// inbound delivers an inbox event from another node to the local sessions.
func (n *Node) inbound(token string, m *nats.Msg) {
	n.mu.Lock()
	in := n.byToken[token]
	n.mu.Unlock()
	if in == nil {
		return
	}
	event := m.Header.Get(hdrEvent)
	if n.opts.Drop != nil && n.opts.Drop(in.id, event, m.Data) {
		return
	}
	if s := m.Header.Get(hdrSession); s != "" {
		n.local.PublishSession(s, in.id, event, m.Data)
		return
	}
	n.deliver(in.id, event, m.Data, m.Header.Get(hdrExcept))
}

// deliver hands an event to the local sessions of to. A message or
// yourself event with a conversation seq goes through the gap check: one
// at or below the last seq delivered for that conversation is a duplicate
// (dropped); one past the next expected first delivers the records in
// between, read from the store (at most MaxGapFill).
func (n *Node) deliver(to chat.Identity, event string, payload []byte, except string) {
	if event != chat.EventMessage && event != chat.EventYourself {
		n.local.Publish(to, event, payload, except)
		return
	}
	n.mu.Lock()
	in := n.interest[to]
	n.mu.Unlock()
	if in == nil {
		n.local.Publish(to, event, payload, except)
		return
	}
	c, ok := parseConvEvent(to, event, payload)
	if !ok {
		n.local.Publish(to, event, payload, except)
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	cs := in.convs[c.key]
	switch {
	case cs == nil || cs.reset:
		fresh := cs == nil && time.Since(in.created) < n.opts.LivenessTTL
		cs = &convSeq{}
		in.convs[c.key] = cs
		if fresh && c.seq > 1 {
			// The first event of a conversation (local or not) on a
			// session that logged in moments ago: a record committed on
			// another node between the client's catch-up read and that
			// node hearing of the login was sent nowhere. Fill the records
			// stamped since FreshFillMargin before the login (a record is
			// stamped before its commit; the storing node's clock: keep
			// the nodes on NTP); the client drops by seq what its catch-up
			// already gave it.
			cs.last = c.seq - 1 - min(c.seq-1, MaxGapFill)
			n.fillSince(to, c, cs, in.created.Add(-FreshFillMargin).UnixMilli())
		} else {
			cs.first = c.seq
		}
		cs.last = c.seq
	case c.seq <= cs.last:
		if _, ok := cs.holes[c.seq]; !ok {
			return // delivered already
		}
		delete(cs.holes, c.seq)
	default:
		if c.seq > cs.last+1 {
			n.fill(to, c, cs)
		}
		cs.last = c.seq
	}
	n.local.Publish(to, event, payload, except)
}

// FreshFillMargin is how long before a login a record may be stamped and
// still be filled by the first event of its conversation on the new
// session (see deliver): it covers the time between stamping a message and
// its commit, and the nodes' clock skew.
const FreshFillMargin = time.Second

// maxHoles bounds the holes remembered per conversation.
const maxHoles = 64

// convEvent is what the gap check needs of a message or yourself event.
type convEvent struct {
	key   string // the conversation, from the recipient's side
	seq   uint64
	typ   int    // chat.TypeFriend, ...
	other string // the other party, or the group id
	to    chat.Peer
}

func parseConvEvent(to chat.Identity, event string, payload []byte) (convEvent, bool) {
	var e struct {
		From chat.Peer `json:"from"`
		To   chat.Peer `json:"to"`
		Seq  uint64    `json:"seq"`
	}
	if json.Unmarshal(payload, &e) != nil || e.Seq == 0 || e.To.Type == chat.TypeRoom {
		return convEvent{}, false
	}
	c := convEvent{seq: e.Seq, typ: e.To.Type}
	switch {
	case e.To.Type == chat.TypeGroup:
		c.other = e.To.ID
		c.to = chat.Peer{ID: e.To.ID, Type: chat.TypeGroup}
	case event == chat.EventYourself:
		c.other = e.To.ID
		c.to = chat.Peer{ID: to.ID, Type: e.To.Type}
	default:
		c.other = e.From.ID
		c.to = e.To
	}
	c.key = strconv.Itoa(c.typ) + ":" + c.other
	return c, true
}

// fill delivers the records of c's conversation between cs.last and c.seq
// that others spoke (the recipient's own are its own sessions' business).
// The seqs it does not find are remembered as holes: a store whose commits
// can become visible out of seq order shows them later, and their bus
// event is then still delivered.
func (n *Node) fill(to chat.Identity, c convEvent, cs *convSeq) { n.fillSince(to, c, cs, 0) }

// fillSince is fill for the records stamped at or after minTS (0: all);
// with minTS it remembers no holes.
func (n *Node) fillSince(to chat.Identity, c convEvent, cs *convSeq, minTS int64) {
	last := cs.last
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.RequestTimeout)
	defer cancel()
	limit := int(min(c.seq-last-1, MaxGapFill))
	var recs []chat.Record
	var err error
	switch c.typ {
	case chat.TypeGroup:
		recs, err = n.svc.GroupHistoryAfter(ctx, c.other, last, limit)
	case chat.TypeFriend:
		recs, err = n.svc.FriendHistoryAfter(ctx, to.ID, c.other, last, limit)
	case chat.TypeStranger:
		recs, err = n.svc.StrangerHistoryAfter(ctx, to.ID, c.other, last, limit)
	case chat.TypePassenger:
		if to.Kind == chat.KindPassenger {
			recs, err = n.svc.PassengerHistoryAfter(ctx, to.ID, c.other, last, limit)
		} else {
			recs, err = n.svc.PassengerHistoryAfter(ctx, c.other, to.ID, last, limit)
		}
	default:
		return
	}
	if err != nil {
		n.log.Warn().Err(err).Str("user", to.String()).Msg("cluster: gap fill failed; the client catches up with after=<seq>")
		return
	}
	found := map[uint64]bool{}
	upper := c.seq // the seqs the read covered: (last, upper)
	if len(recs) == limit && limit > 0 {
		upper = recs[len(recs)-1].Seq + 1
	}
	filled := 0
	for _, r := range recs {
		found[r.Seq] = true
		if r.Seq <= last || r.Seq >= c.seq || r.Recalled || r.Speaker == to.ID || r.TS < minTS {
			continue
		}
		from := chat.Peer{ID: r.Speaker, Type: c.typ}
		if c.typ == chat.TypeGroup {
			from.GID = c.other
		}
		b, _ := json.Marshal(chat.MessageEvent{From: from, To: c.to, Content: r.Content, TS: r.TS, Remark: r.Remark, ID: r.ID, Seq: r.Seq})
		n.local.Publish(to, chat.EventMessage, b, "")
		filled++
	}
	for q := last + 1; minTS == 0 && q < upper && len(cs.holes) < maxHoles; q++ {
		if !found[q] {
			if cs.holes == nil {
				cs.holes = map[uint64]struct{}{}
			}
			cs.holes[q] = struct{}{}
		}
	}
	n.log.Debug().Str("user", to.String()).Uint64("after", last).Uint64("seq", c.seq).Int("filled", filled).Msg("cluster: seq gap filled from the store")
}
