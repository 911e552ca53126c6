// Package cluster lets several mqim nodes that share one store behave as
// one server (docs/scaleout.md). The store keeps everything that must be
// kept and assigns order; NATS moves what crosses nodes: inbox events for
// identities connected elsewhere, presence, client-id takeover, account
// control (kick, ban, revocation, erasure) and membership invalidation.
// The bus is at-most-once and only a fast hint: a receiver that sees a
// conversation's seq jump fills the gap from the store.
//
// It is the only package that imports nats.go.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
)

// Defaults of Options.
const (
	DefaultHeartbeat      = time.Second
	DefaultLivenessTTL    = 5 * time.Second
	DefaultRequestTimeout = 2 * time.Second
	DefaultLinger         = 10 * time.Second
	// MaxGapFill bounds the records one gap fill reads from the store;
	// a longer gap is left to the client's after=<seq> catch-up.
	MaxGapFill = 100
	// inboundQueue is the dispatcher's queue: past it NATS counts the node
	// a slow consumer and drops (the bus is at most once).
	inboundQueue = 1 << 16
)

// Options configures a Node.
type Options struct {
	// URL is the NATS server (cluster.nats_url); NodeID names this node,
	// unique in the cluster (cluster.node_id).
	URL    string
	NodeID string
	// App scopes the subjects (the app id): mqim.<app>.….
	App string
	// Service is the node's domain service; Join hooks its presence and
	// membership changes.
	Service *chat.Service
	// TakeOver ends the local connection of an MQTT client id that a newer
	// connection on another node took (hooks.TakeOver); nil: none.
	TakeOver func(clientID string) bool
	// GiveUp ends this node's hold on a persistent MQTT session that a
	// connection on another node takes (hooks.Sessions.GiveUp): when it
	// returns, the store has the session; nil: none held here.
	GiveUp func(clientID string, id chat.Identity, clean bool) (held, refused bool)
	// StoreState stores the current state of this node's persistent
	// session of a client id (hooks.Sessions.StoreState) for a node about
	// to take it; nil: none held here.
	StoreState func(clientID string, id chat.Identity) (held bool)
	Log        zerolog.Logger

	// Heartbeat is how often the node says it is alive; LivenessTTL how
	// long without a word before the others count it dead (its sessions
	// gone). RequestTimeout bounds a kick's gather; a membership change
	// waits up to LivenessTTL+RequestTimeout for every live node. Linger
	// is how long an inbox subscription outlives its identity's last
	// local session. Zero takes the defaults.
	Heartbeat      time.Duration
	LivenessTTL    time.Duration
	RequestTimeout time.Duration
	Linger         time.Duration

	// Drop, when set (tests), is asked about each inbox event received
	// from the bus; true loses it, as the at-most-once bus may.
	Drop func(to chat.Identity, event string, payload []byte) bool
}

// Node is one node's membership of the cluster.
type Node struct {
	opts   Options
	nc     *nats.Conn
	prefix string
	svc    *chat.Service
	local  chat.Publisher
	conns  chat.Connections
	log    zerolog.Logger
	in     chan *nats.Msg
	subs   []*nats.Subscription
	done   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	peers  map[string]time.Time                        // live nodes → last word
	remote map[string]map[chat.Identity]remoteSessions // node → its sessions
	totals map[chat.Identity]int                       // sum over remote
	// held is the persistent MQTT sessions (connected or not) of each
	// identity on this node (SetHeld); heldTotals sums them over remote.
	held       map[chat.Identity]int
	heldTotals map[chat.Identity]int
	interest   map[chat.Identity]*interest
	byToken    map[string]*interest
	// opened is when each local session opened (unix ns), for takeover.
	opened map[string]int64
	// changed: the membership keys invalidated since the last barrier.
	changed []string

	// handedOver: per identity, the gap state a session taken from
	// another node brought (TakeSession), until Queued applies it.
	handedOver map[chat.Identity]map[string]uint64

	// publishing is held (read) by each local publish from its local
	// delivery to its bus publish, per identity shard: TakeSession waits
	// for the publishes under way (see publishBarrier).
	publishing [64]sync.RWMutex
	seed       maphash.Seed
}

type remoteSessions struct {
	N         int  `json:"c"`
	NotifyAll bool `json:"a,omitempty"`
	H         int  `json:"h,omitempty"` // persistent sessions held
}

// interest is this node's subscription to one identity's inbox subject,
// and the last seq it delivered per conversation (gap detection).
type interest struct {
	id     chat.Identity
	token  string
	sub    *nats.Subscription
	linger *time.Timer

	// created is when the interest began (the identity's first local
	// session after none): the first events of its conversations then
	// fill what was stored since (see deliver).
	created time.Time

	mu    sync.Mutex
	convs map[string]*convSeq
}

// convSeq is the gap check's state of one conversation of one identity.
type convSeq struct {
	// last is the highest seq delivered.
	last uint64
	// holes are seqs below last that a gap fill did not find in the store
	// (not committed yet when it read): they are delivered if they come.
	holes map[uint64]struct{}
	// reset: a membership change of the conversation; the next event
	// starts afresh, filling nothing (forgetMembership).
	reset bool
	// first is the seq of the event that started this state without a
	// fill (0: none); Queued fills from it down to a queue brought here.
	first uint64
}

// Join connects to NATS and starts the node. The node is not wired yet:
// call Wire once the local Publisher and Connections exist.
func Join(ctx context.Context, o Options) (*Node, error) {
	if o.URL == "" || o.NodeID == "" || o.Service == nil {
		return nil, errors.New("cluster: URL, NodeID and Service are required")
	}
	if strings.ContainsAny(o.NodeID, " \t\r\n") {
		return nil, fmt.Errorf("cluster: node id %q has white space", o.NodeID)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.LivenessTTL <= 0 {
		o.LivenessTTL = DefaultLivenessTTL
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Linger <= 0 {
		o.Linger = DefaultLinger
	}
	n := &Node{
		opts:       o,
		prefix:     "mqim." + subjectToken(o.App) + ".",
		svc:        o.Service,
		log:        o.Log,
		in:         make(chan *nats.Msg, inboundQueue),
		done:       make(chan struct{}),
		peers:      map[string]time.Time{},
		remote:     map[string]map[chat.Identity]remoteSessions{},
		totals:     map[chat.Identity]int{},
		held:       map[chat.Identity]int{},
		heldTotals: map[chat.Identity]int{},
		interest:   map[chat.Identity]*interest{},
		byToken:    map[string]*interest{},
		opened:     map[string]int64{},
		seed:       maphash.MakeSeed(),
	}
	nc, err := nats.Connect(o.URL,
		nats.Name("mqim "+o.NodeID),
		nats.NoEcho(), // a node never hears its own publishes
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.Heartbeat),
		// A node cut off from NATS notices within 3/4 of the TTL, so it
		// turns its membership cache off before the others count it
		// dead and stop waiting for it.
		nats.PingInterval(o.LivenessTTL/4),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if n.closing() {
				return
			}
			// Invalidations cannot reach this node now: stop trusting
			// the membership cache until it hears the others again.
			n.svc.SetMembershipCache(false)
			n.log.Warn().Err(err).Msg("cluster: disconnected from NATS; membership cache off")
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			n.svc.SetMembershipCache(true)
			n.log.Info().Msg("cluster: reconnected to NATS")
			n.heartbeat(true)
			// Changes made here meanwhile failed with 5002 but are
			// stored: every node drops its cached memberships.
			n.publishJSON("ctl.flush", ack{Node: n.opts.NodeID})
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect %s: %w", o.URL, err)
	}
	n.nc = nc
	for _, s := range []string{"hb", "presence", "takeover", "session.take", "session.store", "ctl.>", "node." + subjectToken(o.NodeID) + ".snap"} {
		sub, err := nc.ChanSubscribe(n.prefix+s, n.in)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("cluster: subscribe: %w", err)
		}
		n.subs = append(n.subs, sub)
	}
	fctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return n, nil
}

// Wire makes the node the Service's Publisher (over local), its
// Connections (over conns) and the cluster side of its Presence and
// membership changes, then starts the node's loops. Call it once, before
// serving.
func (n *Node) Wire(local chat.Publisher, conns chat.Connections) {
	n.local, n.conns = local, conns
	n.svc.Publisher = (*publisher)(n)
	n.svc.Connections = (*connections)(n)
	n.svc.Presence.SetCluster((*presence)(n))
	n.svc.MembershipChanged = n.membershipChanged
	n.wg.Add(2)
	go n.dispatch()
	go n.liveness()
	n.heartbeat(true)
}

// Close leaves the cluster: it says goodbye, so that the others stop
// counting this node at once (its sessions' ends crossed before, as the
// broker closed them).
func (n *Node) Close() { n.leave(true) }

// Crash drops the NATS connection without a word, as a killed process
// would (tests): the others count the node dead after the liveness TTL.
func (n *Node) Crash() { n.leave(false) }

func (n *Node) leave(bye bool) {
	if n.closing() {
		return
	}
	if bye {
		n.publishJSON("hb", heartbeatMsg{Node: n.opts.NodeID, Bye: true})
		_ = n.nc.FlushTimeout(n.opts.RequestTimeout)
	}
	close(n.done)
	n.nc.Close()
	n.wg.Wait()
}

func (n *Node) closing() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// ID returns the node id.
func (n *Node) ID() string { return n.opts.NodeID }

// Peers returns the other live nodes, sorted.
func (n *Node) Peers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.peers))
	for p := range n.peers {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Subscribed reports whether this node subscribes to id's inbox subject.
func (n *Node) Subscribed(id chat.Identity) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.interest[id] != nil
}

// RemoteSessions is the number of sessions of id on the other live nodes
// (for the connection cap across the cluster).
func (n *Node) RemoteSessions(id chat.Identity) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.totals[id]
}

// subjectToken makes s one subject token.
func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// inboxToken is the subject token of id's inbox: a hash, so that any id
// makes one valid token.
func inboxToken(id chat.Identity) string {
	h := sha256.Sum256([]byte(id.String()))
	return hex.EncodeToString(h[:16])
}

func (n *Node) inboxSubject(token string) string { return n.prefix + "inbox." + token }

// dispatch handles every inbound message in arrival order, one at a
// time: the barrier of a membership change relies on it.
func (n *Node) dispatch() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case m := <-n.in:
			n.handle(m)
		}
	}
}

func (n *Node) handle(m *nats.Msg) {
	subj := strings.TrimPrefix(m.Subject, n.prefix)
	switch {
	case strings.HasPrefix(subj, "inbox."):
		n.inbound(strings.TrimPrefix(subj, "inbox."), m)
	case subj == "hb":
		var hb heartbeatMsg
		if json.Unmarshal(m.Data, &hb) == nil && hb.Node != n.opts.NodeID {
			if hb.Bye {
				n.forget(hb.Node)
			} else if n.seen(hb.Node) || hb.Hello {
				n.sendSnapshot(hb.Node, true)
			}
		}
	case subj == "presence":
		var d presenceMsg
		if json.Unmarshal(m.Data, &d) == nil && d.Node != n.opts.NodeID {
			n.seen(d.Node)
			n.setRemote(d.Node, d.identity(), remoteSessions{N: d.N, NotifyAll: d.NotifyAll, H: d.H})
		}
	case strings.HasSuffix(subj, ".snap"):
		var s snapshotMsg
		if json.Unmarshal(m.Data, &s) == nil && s.Node != n.opts.NodeID {
			n.seen(s.Node)
			n.applySnapshot(s)
			if s.Want {
				n.sendSnapshot(s.Node, false)
			}
		}
	case subj == "takeover":
		var t takeoverMsg
		if json.Unmarshal(m.Data, &t) == nil && t.Node != n.opts.NodeID && n.opts.TakeOver != nil && n.olderThan(t) {
			if n.opts.TakeOver(t.Client) {
				n.log.Info().Str("client", t.Client).Str("peer", t.Node).Msg("cluster: client id taken over on another node")
			}
		}
	case subj == "session.take":
		var t takeMsg
		if json.Unmarshal(m.Data, &t) != nil || t.Node == n.opts.NodeID {
			return
		}
		// Off the dispatcher: giving up waits for the store.
		go func() {
			r := takeReply{Node: n.opts.NodeID}
			// Read before the session goes: what is delivered here after
			// that reaches nobody, and must not count as delivered.
			last := n.lastDelivered(t.identity())
			if n.opts.GiveUp != nil {
				r.Held, r.Refused = n.opts.GiveUp(t.Client, t.identity(), t.Clean)
			}
			if r.Held && !r.Refused {
				r.Last = last
				n.log.Info().Str("client", t.Client).Str("peer", t.Node).Msg("cluster: persistent session given up to another node")
			}
			n.reply(m, r)
		}()
	case subj == "session.store":
		var t takeMsg
		if json.Unmarshal(m.Data, &t) != nil || t.Node == n.opts.NodeID {
			return
		}
		go func() { // off the dispatcher: storing waits for the store
			r := takeReply{Node: n.opts.NodeID}
			if n.opts.StoreState != nil {
				r.Held = n.opts.StoreState(t.Client, t.identity())
			}
			n.reply(m, r)
		}()
	case subj == "ctl.kick":
		var k kickMsg
		if json.Unmarshal(m.Data, &k) == nil {
			c := 0
			if n.conns != nil {
				c = n.conns.Disconnect(k.identity(), chat.KickCause(k.Cause), k.NotBefore)
			}
			n.reply(m, kickReply{Node: n.opts.NodeID, N: c})
		}
	case subj == "ctl.inval":
		n.svc.InvalidateMembership(string(m.Data))
		n.forgetMembership(string(m.Data))
		n.mu.Lock()
		n.changed = append(n.changed, string(m.Data))
		n.mu.Unlock()
		n.reply(m, ack{Node: n.opts.NodeID})
	case subj == "ctl.flush":
		n.svc.SetMembershipCache(false)
		n.svc.SetMembershipCache(true)
	case subj == "ctl.barrier":
		// Everything received before this has been handed to the local
		// Publisher: what arrives from now on was sent after the
		// membership changes, so their gap state starts afresh.
		n.mu.Lock()
		changed := n.changed
		n.changed = nil
		n.mu.Unlock()
		for _, key := range changed {
			n.forgetMembership(key)
		}
		n.reply(m, ack{Node: n.opts.NodeID})
	}
}

// olderThan reports whether the local connection with t's client id, if
// any, opened before t's: the newer connection wins. Two connections of
// one client id on two nodes within the nodes' clock skew may be settled
// the wrong way (ties go to the greater node id).
func (n *Node) olderThan(t takeoverMsg) bool {
	n.mu.Lock()
	at, ok := n.opened[t.Client]
	n.mu.Unlock()
	return !ok || at < t.At || at == t.At && n.opts.NodeID < t.Node
}

func (n *Node) reply(m *nats.Msg, v any) {
	if m.Reply == "" {
		return
	}
	b, _ := json.Marshal(v)
	if err := n.nc.Publish(m.Reply, b); err != nil {
		n.log.Warn().Err(err).Str("subject", m.Subject).Msg("cluster: reply failed")
	}
}

// gather publishes a request to every node and collects the replies until
// every live node answered or the deadline passed; a node that stops
// being live while it waits is no longer waited for. It returns the
// replies by node and the live nodes that did not answer.
func (n *Node) gather(subject string, data []byte, timeout time.Duration) (map[string][]byte, []string, error) {
	got := map[string][]byte{}
	if len(n.Peers()) == 0 {
		return got, nil, nil
	}
	inbox := n.nc.NewRespInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := n.nc.PublishRequest(n.prefix+subject, inbox, data); err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		missing := slices.DeleteFunc(n.Peers(), func(p string) bool { _, ok := got[p]; return ok })
		if len(missing) == 0 {
			return got, nil, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return got, missing, nil
		}
		m, err := sub.NextMsg(min(left, n.opts.Heartbeat))
		if errors.Is(err, nats.ErrTimeout) {
			continue
		}
		if err != nil {
			return got, missing, err
		}
		var a ack
		if json.Unmarshal(m.Data, &a) == nil && a.Node != "" {
			got[a.Node] = m.Data
		}
	}
}

// forgetMembership drops every local identity's gap state (the last seq
// delivered) of the group conversation of a membership key. A member
// removed and added again would otherwise have the records said while it
// was out filled in at the first message after its return (docs/scaleout.md,
// Seq gaps); its next message sets the state afresh. Friend conversations
// need nothing: nobody speaks in one while it is not a friendship.
func (n *Node) forgetMembership(key string) {
	gid, ok := strings.CutPrefix(key, "g:")
	if !ok {
		return
	}
	conv := strconv.Itoa(chat.TypeGroup) + ":" + gid
	n.mu.Lock()
	ins := make([]*interest, 0, len(n.interest))
	for _, in := range n.interest {
		ins = append(ins, in)
	}
	n.mu.Unlock()
	for _, in := range ins {
		in.mu.Lock()
		if _, ok := in.convs[conv]; ok || time.Since(in.created) < n.opts.LivenessTTL {
			in.convs[conv] = &convSeq{reset: true}
		}
		in.mu.Unlock()
	}
}

// membershipChanged is chat.Service.MembershipChanged: every live node
// drops its cached membership of key after waiting for its senders, then
// passes a barrier, so that what its senders handed to the bus before has
// been handed to the local sessions of every node. A node that does not
// answer within LivenessTTL+RequestTimeout while still counted live fails
// the call (5002): the change is stored, but the guarantee that a removed
// member receives nothing more cannot be given.
func (n *Node) membershipChanged(_ context.Context, key string) error {
	timeout := n.opts.LivenessTTL + n.opts.RequestTimeout
	if !n.nc.IsConnected() {
		// Cut off from the others (who may still cache the old
		// membership): nothing can be confirmed.
		n.log.Error().Str("key", key).Msg("cluster: membership change while disconnected from NATS")
		return chat.Errorf(chat.CodeDatabase, "the membership change is stored but the other nodes cannot be told (no NATS connection)")
	}
	for _, step := range []struct{ subject, data string }{{"ctl.inval", key}, {"ctl.barrier", ""}} {
		_, missing, err := n.gather(step.subject, []byte(step.data), timeout)
		if err == nil && !n.nc.IsConnected() {
			err = errors.New("disconnected from NATS")
		}
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("nodes %s did not confirm", strings.Join(missing, ", "))
		}
		if err != nil {
			n.log.Error().Err(err).Str("key", key).Msg("cluster: membership change not confirmed by every node")
			return chat.Errorf(chat.CodeDatabase, "the membership change is stored but not every node confirmed it: %v", err)
		}
	}
	n.forgetMembership(key)
	return nil
}

// Messages on the bus.
type (
	heartbeatMsg struct {
		Node  string `json:"n"`
		Hello bool   `json:"h,omitempty"`
		Bye   bool   `json:"b,omitempty"`
	}
	presenceMsg struct {
		Node      string    `json:"n"`
		Kind      chat.Kind `json:"k"`
		ID        string    `json:"i"`
		N         int       `json:"c"`
		NotifyAll bool      `json:"a,omitempty"`
		// H is the persistent sessions of the identity the node holds,
		// connected or not: it queues their events while they are offline.
		H int `json:"h,omitempty"`
	}
	snapshotMsg struct {
		Node     string        `json:"n"`
		Want     bool          `json:"w,omitempty"`
		Sessions []presenceMsg `json:"s"`
	}
	takeoverMsg struct {
		Node   string `json:"n"`
		Client string `json:"c"`
		At     int64  `json:"t"` // when it opened, unix ns
	}
	takeMsg struct {
		Node   string    `json:"n"`
		Client string    `json:"c"`
		Kind   chat.Kind `json:"k"`
		ID     string    `json:"i"`
		Clean  bool      `json:"x,omitempty"`
	}
	takeReply struct {
		Node    string `json:"n"`
		Held    bool   `json:"h,omitempty"`
		Refused bool   `json:"r,omitempty"`
		// Last is the giving node's gap state of the identity: the last
		// seq it delivered per conversation (see Queued).
		Last map[string]uint64 `json:"l,omitempty"`
	}
	kickMsg struct {
		Kind      chat.Kind `json:"k"`
		ID        string    `json:"i"`
		Cause     uint8     `json:"c"`
		NotBefore int64     `json:"b,omitempty"`
	}
	kickReply struct {
		Node string `json:"n"`
		N    int    `json:"c"`
	}
	ack struct {
		Node string `json:"n"`
	}
)

func (p presenceMsg) identity() chat.Identity { return chat.Identity{Kind: p.Kind, ID: p.ID} }
func (k kickMsg) identity() chat.Identity     { return chat.Identity{Kind: k.Kind, ID: k.ID} }
func (t takeMsg) identity() chat.Identity     { return chat.Identity{Kind: t.Kind, ID: t.ID} }

func (n *Node) publishJSON(subject string, v any) {
	b, _ := json.Marshal(v)
	if err := n.nc.Publish(n.prefix+subject, b); err != nil && !n.closing() {
		n.log.Warn().Err(err).Str("subject", subject).Msg("cluster: publish failed")
	}
}

// heartbeat says this node is alive; hello asks every node for its
// sessions (at start and after a reconnect).
func (n *Node) heartbeat(hello bool) {
	n.publishJSON("hb", heartbeatMsg{Node: n.opts.NodeID, Hello: hello})
}

// seen marks node live; it reports whether it was not before.
func (n *Node) seen(node string) (isNew bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.peers[node]
	n.peers[node] = time.Now()
	return !ok
}

// sendSnapshot sends this node's sessions to node; want asks for its own.
func (n *Node) sendSnapshot(node string, want bool) {
	s := snapshotMsg{Node: n.opts.NodeID, Want: want, Sessions: []presenceMsg{}}
	for _, id := range n.localIdentities() {
		pm := presenceMsg{Kind: id.Kind, ID: id.ID, N: len(n.svc.Presence.Sessions(id)), H: n.heldCount(id)}
		if id.Kind == chat.KindUser {
			pm.NotifyAll = n.svc.Presence.NotifyAll(id.ID)
		}
		s.Sessions = append(s.Sessions, pm)
	}
	n.publishJSON("node."+subjectToken(node)+".snap", s)
}

// localIdentities returns the identities with a local session.
func (n *Node) localIdentities() []chat.Identity {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]chat.Identity, 0, len(n.interest))
	for id := range n.interest {
		out = append(out, id)
	}
	return out
}

func (n *Node) applySnapshot(s snapshotMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, r := range n.remote[s.Node] {
		n.addRemote(id, -r.N, -r.H)
	}
	m := make(map[chat.Identity]remoteSessions, len(s.Sessions))
	for _, p := range s.Sessions {
		if p.N > 0 || p.H > 0 {
			m[p.identity()] = remoteSessions{N: p.N, NotifyAll: p.NotifyAll, H: p.H}
			n.addRemote(p.identity(), p.N, p.H)
		}
	}
	n.remote[s.Node] = m
}

func (n *Node) setRemote(node string, id chat.Identity, r remoteSessions) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.remote[node]
	if m == nil {
		m = map[chat.Identity]remoteSessions{}
		n.remote[node] = m
	}
	n.addRemote(id, -m[id].N, -m[id].H)
	if r.N > 0 || r.H > 0 {
		m[id] = r
		n.addRemote(id, r.N, r.H)
	} else {
		delete(m, id)
	}
}

// addRemote adds to the sums over the other nodes; n.mu is held.
func (n *Node) addRemote(id chat.Identity, sessions, held int) {
	if n.totals[id] += sessions; n.totals[id] <= 0 {
		delete(n.totals, id)
	}
	if n.heldTotals[id] += held; n.heldTotals[id] <= 0 {
		delete(n.heldTotals, id)
	}
}

// liveness sends the heartbeats and counts silent nodes dead: their
// sessions end, and the users left with no session anywhere are announced
// offline by the live node with the smallest id.
func (n *Node) liveness() {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		n.heartbeat(false)
		n.expire()
	}
}

func (n *Node) expire() { n.forget("") }

// forget drops the peers silent past the liveness TTL, or only leaving
// when it is set (it said goodbye), with their sessions.
func (n *Node) forget(leaving string) {
	type gone struct {
		uid       string
		notifyAll bool
	}
	var lost []gone
	n.mu.Lock()
	now := time.Now()
	for p, at := range n.peers {
		if leaving != "" && p != leaving || leaving == "" && now.Sub(at) < n.opts.LivenessTTL {
			continue
		}
		delete(n.peers, p)
		for id, r := range n.remote[p] {
			n.heldTotals[id] -= r.H
			if n.heldTotals[id] <= 0 {
				delete(n.heldTotals, id)
			}
			if r.N == 0 {
				continue
			}
			n.totals[id] -= r.N
			if n.totals[id] <= 0 {
				delete(n.totals, id)
				if id.Kind == chat.KindUser {
					lost = append(lost, gone{id.ID, r.NotifyAll})
				}
			}
		}
		delete(n.remote, p)
		if leaving == "" {
			n.log.Warn().Str("peer", p).Msg("cluster: node silent past the liveness TTL; its sessions are gone")
		}
	}
	announcer := true
	for p := range n.peers {
		if p < n.opts.NodeID {
			announcer = false
		}
	}
	n.mu.Unlock()
	if !announcer {
		return
	}
	for _, g := range lost {
		if len(n.svc.Presence.Sessions(chat.User(g.uid))) > 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.opts.RequestTimeout)
		n.svc.AnnounceGone(ctx, g.uid, g.notifyAll)
		cancel()
	}
}

// presence is the node as chat.PresenceCluster.
type presence Node

func (p *presence) Remote(id chat.Identity) int { return (*Node)(p).RemoteSessions(id) }

func (p *presence) RemoteIdentities() []chat.Identity {
	n := (*Node)(p)
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]chat.Identity, 0, len(n.totals))
	for id := range n.totals {
		out = append(out, id)
	}
	return out
}

// Changed subscribes to id's inbox subject on its first local session and
// unsubscribes Linger after its last (a reconnect in between keeps the
// subscription), tells the other nodes the identity's local count, and on
// an open announces the client id so that another node holding an older
// connection with it ends that one.
//
// A burst of logins makes one SUB per identity, not per connection; nats.go
// writes them in its buffered stream (no round trip each), and the linger
// absorbs reconnect churn.
func (p *presence) Changed(id chat.Identity, session string, open bool, _ int, notifyAll bool) {
	n := (*Node)(p)
	n.mu.Lock()
	// The count is read again and sent under the node's lock: two changes
	// of one identity from two real-time layers reach the other nodes in
	// the order of their counts, the latest last.
	local := len(n.svc.Presence.Sessions(id))
	if id.Kind == chat.KindUser && local > 0 {
		notifyAll = n.svc.Presence.NotifyAll(id.ID) // the latest session's
	}
	// A login after none onto a subscription only the linger kept (or a
	// new one): the client catches up on what came before it, so the gap
	// check starts afresh from the login (see deliver). A subscription a
	// held persistent session kept saw every event meanwhile (they are in
	// that session's queue): its gap state stays.
	n.want(id, local > 0 || n.held[id] > 0, time.Now())
	n.publishJSON("presence", presenceMsg{Node: n.opts.NodeID, Kind: id.Kind, ID: id.ID, N: local, NotifyAll: notifyAll, H: n.held[id]})
	at := time.Now().UnixNano()
	if open {
		n.opened[session] = at
	} else {
		delete(n.opened, session)
	}
	n.mu.Unlock()
	if open {
		n.publishJSON("takeover", takeoverMsg{Node: n.opts.NodeID, Client: session, At: at})
	}
}

// want subscribes to id's inbox subject, or unsubscribes Linger later;
// n.mu is held. An interest that starts, or that only the linger kept, gets
// a new gap state (what it saw while lingering was for nobody) whose
// first events fill what was stored since fresh (see deliver; zero: they
// fill nothing). The state is a new object, not a reset of the old one:
// a delivery holds the old one's lock while the broker's hooks run, and
// those may be waiting for the node.
func (n *Node) want(id chat.Identity, wanted bool, fresh time.Time) {
	in := n.interest[id]
	switch {
	case wanted && in == nil:
		in = &interest{id: id, token: inboxToken(id), convs: map[string]*convSeq{}, created: fresh}
		sub, err := n.nc.ChanSubscribe(n.inboxSubject(in.token), n.in)
		if err != nil {
			n.log.Warn().Err(err).Str("user", id.String()).Msg("cluster: inbox subscription failed")
		}
		in.sub = sub
		n.interest[id] = in
		n.byToken[in.token] = in
	case wanted && in.linger != nil:
		in.linger.Stop() // if it fired, unsubscribe finds another interest: a no-op
		revived := &interest{id: id, token: in.token, sub: in.sub, convs: map[string]*convSeq{}, created: fresh}
		n.interest[id] = revived
		n.byToken[in.token] = revived
	case !wanted && in != nil && in.linger == nil:
		in.linger = time.AfterFunc(n.opts.Linger, func() { n.unsubscribe(in) })
	}
}

// SetHeld sets the number of persistent MQTT sessions of id this node
// holds, connected or not (hooks.Options.Held). While it is above 0 the
// node keeps its interest in id (the inbox subscription, and its count in
// the other nodes' decision to publish to the bus), so that events sent
// through any node reach the queues of id's offline sessions here.
func (n *Node) SetHeld(id chat.Identity, held int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if held == n.held[id] {
		return
	}
	if held > 0 {
		n.held[id] = held
	} else {
		delete(n.held, id)
	}
	local := len(n.svc.Presence.Sessions(id))
	// Held sessions alone fill nothing at first: a session restored at
	// start has nothing queued since its node stopped, and one taken from
	// another node has the events sent before in the queue it brings.
	n.want(id, local > 0 || held > 0, time.Time{})
	n.log.Debug().Str("user", id.String()).Int("held", held).Int("local", local).Msg("cluster: persistent sessions held")
	pm := presenceMsg{Node: n.opts.NodeID, Kind: id.Kind, ID: id.ID, N: local, H: held}
	if id.Kind == chat.KindUser && local > 0 {
		pm.NotifyAll = n.svc.Presence.NotifyAll(id.ID)
	}
	n.publishJSON("presence", pm)
}

func (n *Node) heldCount(id chat.Identity) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.held[id]
}

// RemoteHeld is the number of persistent sessions of id that the other
// live nodes hold, connected or not.
func (n *Node) RemoteHeld(id chat.Identity) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.heldTotals[id]
}

func (n *Node) unsubscribe(in *interest) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.interest[in.id] != in || in.linger == nil {
		return // reopened meanwhile
	}
	delete(n.interest, in.id)
	delete(n.byToken, in.token)
	if in.sub != nil {
		_ = in.sub.Unsubscribe()
	}
}

// connections is the node as chat.Connections.
type connections Node

// Disconnect ends the sessions of id on this node and on every other live
// node (a request gathered for RequestTimeout; a node that does not answer
// keeps its sessions, logged) and returns how many.
func (c *connections) Disconnect(id chat.Identity, cause chat.KickCause, notBefore int64) int {
	n := (*Node)(c)
	total := 0
	if n.conns != nil {
		total = n.conns.Disconnect(id, cause, notBefore)
	}
	b, _ := json.Marshal(kickMsg{Kind: id.Kind, ID: id.ID, Cause: uint8(cause), NotBefore: notBefore})
	got, missing, err := n.gather("ctl.kick", b, n.opts.RequestTimeout)
	for _, r := range got {
		var k kickReply
		if json.Unmarshal(r, &k) == nil {
			total += k.N
		}
	}
	if err != nil || len(missing) > 0 {
		n.log.Error().Err(err).Strs("nodes", missing).Str("user", id.String()).Msg("cluster: disconnect not confirmed by every node")
	}
	return total
}

// Live is the open connections of id on this node plus its sessions on the
// other live nodes.
func (c *connections) Live(id chat.Identity) int {
	n := (*Node)(c)
	l := 0
	if n.conns != nil {
		l = n.conns.Live(id)
	}
	return l + n.RemoteSessions(id)
}
