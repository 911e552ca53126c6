// Package hooks holds the mochi hooks that carry the MaxIM rules of mqim
// over MQTT (docs/protocol.md):
//
//   - [Auth]: the CONNECT login (docs/protocol.md §2), client ids bound to one
//     identity, wills refused, the keepalive policy;
//   - [ACL]: publish only to say/, read/, recall/, edit/ and typing/,
//     subscribe only inside one's own inbox;
//   - [Say]: a publish to a send topic is chat.Service.Say, one to a read
//     topic chat.Service.MarkRead, answered before the PUBACK;
//   - [Verbs]: recall, edit and typing publishes, handled like say;
//   - [Presence]: sessions in chat.Presence and the online/offline events;
//   - [Sessions]: persistent MQTT sessions and their queues across restarts.
//
// [Register] adds them to a broker.Server in the order they need.
package hooks

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Defaults of [Options].
const (
	DefaultMinKeepalive = 10 * time.Second
	DefaultMaxKeepalive = 20 * time.Minute
	DefaultTimeout      = 10 * time.Second
	// DefaultMaxConnectionsPerUser bounds the live connections of one
	// identity: phones, tablets, desktops and a browser tab each count.
	DefaultMaxConnectionsPerUser = 16
)

// Options configures the hooks.
type Options struct {
	Service *chat.Service
	Auth    *chat.Authenticator
	// AllowRawKey accepts an app key itself as the MQTT password (or as the
	// sign of an auth object). Off by default: a raw key never expires, a
	// signature does (docs/protocol.md §2 names only signatures).
	AllowRawKey bool
	// NoClientKey refuses logins signed with the client key (tokens and
	// the master key only; app.client_key_login false).
	NoClientKey bool
	// Throttle counts failed logins per address; nil: no throttling.
	Throttle *chat.LoginThrottle
	// MinKeepalive and MaxKeepalive bound the keepalive of a connection. An
	// MQTT 5 client outside them (0 included) is told the server's value
	// (Server Keep Alive); an MQTT 3.1.1 client below the minimum is held to
	// the minimum, and one with 0 or above the maximum is refused, as
	// mosquitto's max_keepalive does, since 3.1.1 cannot be told.
	MinKeepalive time.Duration
	MaxKeepalive time.Duration
	// Timeout bounds the store work of one hook call (a login, a say).
	Timeout time.Duration
	// RateLimit is the sustained number of says per second one identity
	// (all its sessions together) may publish, and RateBurst how many at
	// once. A say over the limit is refused with 5013 (MQTT 5 PUBACK 0x97
	// quota exceeded). Zero takes the defaults (chat.DefaultRateLimit,
	// chat.DefaultRateBurst); a negative RateLimit turns the limit off.
	RateLimit float64
	RateBurst int
	// MaxConnectionsPerUser bounds the live connections of one identity
	// (a user, or a passenger); one more is refused with CONNACK 0x97
	// quota exceeded (MQTT 5) or 5 not authorized (3.1.1). A reconnect
	// that takes over its own client id does not count twice. Zero is
	// DefaultMaxConnectionsPerUser, negative is unlimited.
	MaxConnectionsPerUser int
	// OtherConnections, when set, counts the live sessions of an identity
	// on other real-time layers (socket.io): they count against
	// MaxConnectionsPerUser too.
	OtherConnections func(chat.Identity) int
	// Limiter, when set, is the rate limiter of says, recalls and edits,
	// shared with other real-time layers (socket.io) so that an identity
	// has one budget over all its sessions; nil builds one from RateLimit
	// and RateBurst. Its keys are chat.Identity.String().
	Limiter *chat.RateLimiter
	// Sessions, when set, keeps persistent MQTT sessions and their queued
	// events across restarts ([Sessions]).
	Sessions chat.SessionStore
	// Held, when set, is told the number of persistent sessions of an
	// identity the broker holds (connected or not) each time it changes,
	// in order (the cluster keeps its interest in the identity: see
	// docs/scaleout.md). It must not call back into the hooks.
	Held func(id chat.Identity, sessions int)
	// Cluster, when set (a cluster node), moves persistent sessions
	// between nodes: a client connecting with a session another node
	// holds gets it here ([SessionCluster]). NodeID names this node in the
	// stored sessions; it is called once, when first needed.
	Cluster SessionCluster
	NodeID  func() string
	// OnSessions, when set, is given the Sessions hook once registered
	// (the cluster calls its GiveUp).
	OnSessions func(*Sessions)
	// Metrics, when set, counts logins, says and rate-limit refusals;
	// nil counts nothing.
	Metrics *metrics.Metrics
	// BaseContext is the lifetime of the hooks; hook calls derive their
	// context from it. Nil means context.Background().
	BaseContext context.Context
	Log         zerolog.Logger
}

func (o *Options) setDefaults() {
	if o.MinKeepalive <= 0 {
		o.MinKeepalive = DefaultMinKeepalive
	}
	if o.MaxKeepalive <= 0 {
		o.MaxKeepalive = DefaultMaxKeepalive
	}
	if o.MaxKeepalive < o.MinKeepalive {
		o.MaxKeepalive = o.MinKeepalive
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RateLimit == 0 {
		o.RateLimit = chat.DefaultRateLimit
	}
	if o.RateBurst <= 0 {
		o.RateBurst = chat.DefaultRateBurst
	}
	if o.MaxConnectionsPerUser == 0 {
		o.MaxConnectionsPerUser = DefaultMaxConnectionsPerUser
	}
	if o.BaseContext == nil {
		o.BaseContext = context.Background()
	}
}

// Register adds the mqim hooks to b. Order matters to mochi:
//
//   - Presence comes before Auth so that on disconnect the presence of a
//     session is settled before Auth releases its client id binding;
//   - Auth is the only hook that authenticates (mochi ORs
//     OnConnectAuthenticate over hooks: never add an allow-all hook);
//   - ACL, Verbs (recall/, edit/, typing/) and Say follow.
func Register(b *broker.Server, opts Options) error {
	if opts.Service == nil || opts.Auth == nil {
		return errors.New("hooks: Service and Auth are required")
	}
	opts.setDefaults()
	reg := newRegistry(b.MQTT())
	reg.maxPerIdentity = opts.MaxConnectionsPerUser
	reg.others = opts.OtherConnections
	b.SetSessions(reg.hasOther)
	opts.Service.Connections = reg
	limiter := opts.Limiter
	if limiter == nil {
		limiter = chat.NewRateLimiter(opts.RateLimit, opts.RateBurst)
	}
	for _, h := range []mqtt.Hook{
		&Presence{reg: reg, opts: opts},
		&Auth{reg: reg, opts: opts, srv: b.MQTT()},
		&ACL{},
		&Verbs{reg: reg, opts: opts, limiter: limiter, deadline: sharedDeadline{base: opts.BaseContext, timeout: opts.Timeout, refresh: min(time.Second, opts.Timeout/10)}},
		&Say{reg: reg, opts: opts, limiter: limiter,
			deadline: sharedDeadline{base: opts.BaseContext, timeout: opts.Timeout, refresh: min(time.Second, opts.Timeout/10)}},
	} {
		if err := b.AddHook(h, nil); err != nil {
			return err
		}
	}
	if opts.Sessions != nil {
		h := &Sessions{reg: reg, srv: b.MQTT(), store: opts.Sessions, ctx: opts.BaseContext, log: opts.Log, onHeld: opts.Held,
			cluster: opts.Cluster, nodeID: opts.NodeID}
		if err := b.AddHook(h, nil); err != nil {
			return err
		}
		reg.sessions = h
		if opts.OnSessions != nil {
			opts.OnSessions(h)
		}
	}
	return nil
}

// registry is the state the hooks share: which identity each client id is
// bound to, and which connection of it is registered in chat.Presence.
type registry struct {
	srv *mqtt.Server

	mu     sync.Mutex
	owners map[string]*owner // by client id
	// byIdentity indexes owners by identity, for the per-identity
	// connection cap (maxPerIdentity; ≤ 0: none).
	byIdentity     map[chat.Identity]map[string]struct{}
	maxPerIdentity int
	// others counts the sessions of an identity on other real-time layers
	// (socket.io) for the cap; nil: none.
	others func(chat.Identity) int

	seed  maphash.Seed
	locks [64]sync.Mutex // per identity: presence changes of one identity in order

	// sessions is the Sessions hook when persistent sessions are stored
	// (set once, at Register); nil: they are not.
	sessions *Sessions

	// released keeps the recent says of client ids whose binding was
	// released (a clean session that ended), for saysAfterRelease: a
	// client that lost a PUBACK with its connection retransmits on the
	// next one (MQTT.js does, clean session or not).
	released map[string]releasedSays
}

// releasedSays are the recent says of a released client id.
type releasedSays struct {
	id     chat.Identity
	recent [recentSays]said
	next   int
	at     time.Time
}

// saysAfterRelease is how long the recent says of a released client id
// are kept; releasedMax bounds how many client ids are kept.
const (
	saysAfterRelease = 2 * time.Minute
	releasedMax      = 1 << 16
)

// owner is the binding of one client id.
type owner struct {
	id        chat.Identity
	cl        *mqtt.Client // the connection that last logged in with the client id
	notifyAll bool
	online    *mqtt.Client // the connection registered in Presence; nil: none
	// tokenIAT is when the token cl logged in with was issued (ms); 0: a
	// key login.
	tokenIAT int64
	// erased is cl when its identity was erased: its session is removed
	// rather than kept when it disconnects.
	erased *mqtt.Client
	// recent are the last QoS 1/2 says accepted from this client id, to
	// recognise a retransmission (DUP) after a lost PUBACK.
	recent [recentSays]said
	next   int
}

// recentSays is how many accepted says per client id are remembered for
// duplicate detection: a client retransmits only its unacknowledged
// publishes, at most its inflight window, and typically one.
const recentSays = 16

// said identifies an accepted say: its packet id and a hash of its topic
// and payload (packet ids are reused once acknowledged).
type said struct {
	packetID uint16
	sum      uint64
}

func newRegistry(srv *mqtt.Server) *registry {
	return &registry{srv: srv, owners: map[string]*owner{}, byIdentity: map[chat.Identity]map[string]struct{}{}, seed: maphash.MakeSeed()}
}

// errClientIDTaken refuses a client id whose session belongs to another
// identity.
var errClientIDTaken = errors.New("client id in use by another identity")

// errTooManyConnections refuses a connection beyond the per-identity cap.
var errTooManyConnections = errors.New("too many connections for this identity")

// check reports errClientIDTaken when clientID is bound to another identity
// than id: its session lives (connected, or persisted in mochi) or another
// login with it is in progress. A client id mochi knows without a binding
// (the inline client's) is refused too, so nobody can take over a session
// that was not theirs.
func (r *registry) check(clientID string, id chat.Identity) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkLocked(clientID, id)
}

func (r *registry) checkLocked(clientID string, id chat.Identity) error {
	cl, live := r.srv.Clients.Get(clientID)
	o := r.owners[clientID]
	if live && o == nil && cl.Closed() {
		// An expiring session that Auth.OnDisconnect has released: mochi
		// deletes it right after the disconnect hooks. Until then it is
		// still listed, and a client reconnecting at once (a phone after
		// a dropped link) must not be refused for it.
		live = false
	}
	switch {
	case o == nil && live:
		return errClientIDTaken
	case o != nil && o.id != id && (live || !o.cl.Closed()):
		return errClientIDTaken
	}
	if r.maxPerIdentity > 0 && r.liveConnections(id, clientID)+r.otherConnections(id) >= r.maxPerIdentity {
		return errTooManyConnections
	}
	return nil
}

// liveConnections counts the open connections of id under other client
// ids than except (a takeover of one's own client id replaces a
// connection).
func (r *registry) liveConnections(id chat.Identity, except string) int {
	n := 0
	for cid := range r.byIdentity[id] {
		if o := r.owners[cid]; cid != except && o != nil && o.cl != nil && !o.cl.Closed() {
			n++
		}
	}
	return n
}

// otherConnections counts the sessions of id on other real-time layers
// (Options.OtherConnections).
func (r *registry) otherConnections(id chat.Identity) int {
	if r.others == nil {
		return 0
	}
	return r.others(id)
}

// Live implements chat.Connections: the open MQTT connections of id.
func (r *registry) Live(id chat.Identity) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.liveConnections(id, "")
}

// hasOther reports whether id has a session under another client id than
// except: bound and not yet released, so connected or persisted (the
// sessions that can hold subscriptions to id's inbox).
func (r *registry) hasOther(id chat.Identity, except string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.byIdentity[id]
	if _, ok := set[except]; ok {
		return len(set) > 1
	}
	return len(set) > 0
}

// claim binds clientID to id for connection cl, after check and the login
// succeeded. It checks again, since another login may have raced.
func (r *registry) claim(cl *mqtt.Client, id chat.Identity, notifyAll bool, tokenIAT int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(cl.ID, id); err != nil {
		return err
	}
	o := r.owners[cl.ID]
	if o == nil || o.id != id {
		if o != nil {
			r.unindex(o.id, cl.ID)
		}
		o = &owner{id: id}
		if rs, ok := r.released[cl.ID]; ok {
			delete(r.released, cl.ID)
			if rs.id == id && time.Since(rs.at) < saysAfterRelease {
				o.recent, o.next = rs.recent, rs.next
			}
		}
		r.owners[cl.ID] = o
		set := r.byIdentity[id]
		if set == nil {
			set = map[string]struct{}{}
			r.byIdentity[id] = set
		}
		set[cl.ID] = struct{}{}
	}
	o.cl = cl
	o.notifyAll = notifyAll
	o.tokenIAT = tokenIAT
	return nil
}

// Disconnect implements chat.Connections: MQTT 5 clients get DISCONNECT
// 0x98 administrative action, 3.1.1 clients a closed connection. An
// erasure (chat.KickErased) also removes every session bound to id,
// connected or persisted, from mochi and from the store.
func (r *registry) Disconnect(id chat.Identity, cause chat.KickCause, notBefore int64) int {
	r.mu.Lock()
	var cls, erase []*mqtt.Client
	for cid := range r.byIdentity[id] {
		o := r.owners[cid]
		if o == nil || o.cl == nil {
			continue
		}
		if cause == chat.KickErased {
			o.erased = o.cl // its OnDisconnect, if still to come, removes it too
			erase = append(erase, o.cl)
		}
		if o.cl.Closed() {
			continue
		}
		if cause == chat.KickRevoked && (o.tokenIAT == 0 || o.tokenIAT > notBefore) {
			continue
		}
		cls = append(cls, o.cl)
	}
	r.mu.Unlock()
	for _, cl := range cls {
		if cl.Properties.ProtocolVersion < 5 {
			// MQTT 3.1.1 has no server DISCONNECT: close the connection.
			cl.Stop(packets.ErrAdministrativeAction)
			continue
		}
		_ = r.srv.DisconnectClient(cl, packets.ErrAdministrativeAction) // the connection is closed either way
	}
	for _, cl := range erase {
		r.eraseSession(cl)
	}
	if len(erase) > 0 && r.sessions != nil {
		r.sessions.w.flush() // the store no longer has them when the erasure returns
	}
	return len(cls)
}

// eraseSession removes the session of cl, a closed connection of an
// erased identity, as if it had expired: from mochi (client, subscriptions,
// queued events), from the store, and its client id binding. mochi only
// expires a disconnected session after mqtt.session_expiry, and offers no
// call to do it sooner. It does nothing to a client id that a newer
// connection holds. It may run twice for one connection (erasure, then
// its OnDisconnect).
func (r *registry) eraseSession(cl *mqtt.Client) {
	if cur, ok := r.srv.Clients.Get(cl.ID); ok && cur == cl {
		r.srv.Clients.Delete(cl.ID) // no more deliveries are queued for it
		r.srv.UnsubscribeClient(cl)
		if r.sessions != nil {
			r.sessions.forget(cl)
		}
		cl.ClearInflights()
	}
	r.release(cl) // once Presence has let go of it (its OnDisconnect)
}

// erasing reports whether cl is a connection of an erased identity.
func (r *registry) erasing(cl *mqtt.Client) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owners[cl.ID]
	return o != nil && o.erased == cl
}

// authenticated reports whether cl is the connection that claimed its
// client id.
func (r *registry) authenticated(cl *mqtt.Client) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owners[cl.ID]
	return o != nil && o.cl == cl
}

// release forgets the binding of cl's client id once its session has ended
// (clean disconnect, expiry), unless another connection has claimed it
// since or the session is still registered in Presence.
func (r *registry) release(cl *mqtt.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.owners[cl.ID]; o != nil && o.cl == cl && o.online == nil {
		delete(r.owners, cl.ID)
		r.unindex(o.id, cl.ID)
		r.keepSays(cl.ID, o)
	}
}

// keepSays keeps o's recent says after its binding is released; r.mu is
// held.
func (r *registry) keepSays(clientID string, o *owner) {
	if o.recent[(o.next+recentSays-1)%recentSays].sum == 0 {
		return // none accepted
	}
	now := time.Now()
	if len(r.released) >= releasedMax {
		for k, v := range r.released {
			if now.Sub(v.at) >= saysAfterRelease || len(r.released) >= releasedMax {
				delete(r.released, k)
			}
		}
	}
	if r.released == nil {
		r.released = map[string]releasedSays{}
	}
	r.released[clientID] = releasedSays{id: o.id, recent: o.recent, next: o.next, at: now}
}

// unindex removes clientID from the identity index of id.
func (r *registry) unindex(id chat.Identity, clientID string) {
	if set := r.byIdentity[id]; set != nil {
		delete(set, clientID)
		if len(set) == 0 {
			delete(r.byIdentity, id)
		}
	}
}

// setOnline records cl as the connection of its client id registered in
// Presence. ok is false when cl is not the connection that claimed the
// client id (a newer login of the same client id has replaced it).
func (r *registry) setOnline(cl *mqtt.Client) (id chat.Identity, notifyAll, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owners[cl.ID]
	if o == nil || o.cl != cl {
		return chat.Identity{}, false, false
	}
	o.online = cl
	return o.id, o.notifyAll, true
}

// clearOnline undoes setOnline for cl. It reports false, changing nothing,
// when another connection holds the registration, or when a newer login
// with the same client id is still alive: that connection takes the session
// over (the same Presence entry), so the user never blinks offline, even
// when the old connection's disconnect arrives after the new one's
// establishment.
//
// The newer login is the test, not mochi's taken-over flag: the old
// connection's peer may close it on receiving the takeover DISCONNECT
// before mochi marks it, so its OnDisconnect can see neither the flag nor
// the stop cause.
func (r *registry) clearOnline(cl *mqtt.Client) (chat.Identity, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owners[cl.ID]
	if o == nil || o.online != cl || (o.cl != cl && !o.cl.Closed()) {
		return chat.Identity{}, false
	}
	o.online = nil
	return o.id, true
}

// clearStale clears a registration held by a connection that is closed:
// the case of a takeover whose new connection failed before its session
// was established. mochi then only tells us when the session expires.
func (r *registry) clearStale(clientID string) (chat.Identity, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owners[clientID]
	if o == nil || o.online == nil || !o.online.Closed() {
		return chat.Identity{}, false
	}
	o.online = nil
	return o.id, true
}

// sayHash returns the hash said.sum of a publish: the same in every
// process, since a persistent session's recent says go with it to the
// store and to another node (sessionState.Says). 0 marks an empty slot.
func (r *registry) sayHash(topic string, payload []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(topic)
	_, _ = d.Write([]byte{0})
	_, _ = d.Write(payload)
	return max(d.Sum64(), 1)
}

// says returns the recent says of clientID's binding, oldest first.
func (r *registry) says(clientID string) []said {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owners[clientID]
	if o == nil {
		return nil
	}
	var out []said
	for i := range recentSays {
		if x := o.recent[(o.next+i)%recentSays]; x.sum != 0 {
			out = append(out, x)
		}
	}
	return out
}

// setSays sets the recent says of clientID's binding to id, if it is
// bound to id (a session restored from the store).
func (r *registry) setSays(clientID string, id chat.Identity, ss []said) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owners[clientID]
	if o == nil || o.id != id {
		return
	}
	o.recent, o.next = [recentSays]said{}, 0
	for _, x := range ss[max(0, len(ss)-recentSays):] {
		o.recent[o.next] = x
		o.next = (o.next + 1) % recentSays
	}
}

// accepted remembers an accepted say of clientID.
func (r *registry) accepted(clientID string, s said) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.owners[clientID]; o != nil {
		o.recent[o.next] = s
		o.next = (o.next + 1) % recentSays
	}
}

// duplicate reports whether s was accepted from clientID recently.
func (r *registry) duplicate(clientID string, s said) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owners[clientID]
	if o == nil {
		return false
	}
	for _, x := range o.recent {
		if x == s && x.sum != 0 {
			return true
		}
	}
	return false
}

// identityLock returns the lock serialising presence changes of id.
func (r *registry) identityLock(id chat.Identity) *sync.Mutex {
	return &r.locks[maphash.String(r.seed, id.String())%uint64(len(r.locks))]
}

// takenOver reports whether cl ended because a new connection took over its
// client id, as far as mochi has recorded it (see clearOnline for why this
// is not enough on its own).
func takenOver(cl *mqtt.Client) bool {
	return cl.IsTakenOver() || errors.Is(cl.StopCause(), packets.ErrSessionTakenOver)
}

// sessionExpires reports whether cl's session ends with its connection
// (MQTT 3.1.1 clean session, MQTT 5 session expiry 0), as mochi decides.
func sessionExpires(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval == 0
	}
	return cl.Properties.Clean
}
