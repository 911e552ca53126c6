package chat

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"
)

// Limits and defaults of MaxIM (docs/maxim.md §10).
const (
	DefaultGroupLimit   = 50
	DefaultRoomLimit    = 1000
	DefaultMaxBodyLen   = 64 << 10
	DefaultListLimit    = 20
	MaxListLimit        = 100
	DefaultRetention7d  = 7 * 24 * time.Hour
	DefaultRetention1y  = 365 * 24 * time.Hour
	secondsCutoffMillis = 100_000_000_000 // ts below this is taken as seconds
)

// Retention is how long each kind of conversation is kept (docs/maxim.md §7).
// A zero value means the default; a negative value keeps records for ever.
type Retention struct {
	Friend    time.Duration
	Group     time.Duration
	Stranger  time.Duration
	Passenger time.Duration
}

// Options configures a Service. Zero values take the MaxIM defaults.
type Options struct {
	AppID      string
	GroupLimit int // owner ∪ members, default 50
	RoomLimit  int // default 1000
	MaxBodyLen int // bytes of content.body, default 64 KiB
	Retention  Retention
	// RecallWindow is how long a speaker may recall a message, default
	// 2 minutes; EditWindow how long a speaker may edit one, default 24 h.
	// Negative: no limit.
	RecallWindow time.Duration
	EditWindow   time.Duration
}

// Service holds every rule of the domain. The REST handlers and the MQTT
// hooks call it; it calls the Store, the Publisher and the Pusher.
type Service struct {
	// store is reached only through the Service: membership writes go
	// through updateLocked, which keeps the locks and the membership cache
	// in step with it. Whoever opened the store keeps their own handle.
	store     Store
	Publisher Publisher
	Pusher    Pusher
	Presence  *Presence
	// Tokens mints and checks login tokens (nil: tokens are off); TokenTTL
	// is the lifetime of a minted token (0: DefaultTokenTTL).
	Tokens   TokenCodec
	TokenTTL time.Duration
	// Connections ends live sessions (kick, ban, revocation); the MQTT
	// hooks set it when they are registered. Nil: nothing to end.
	Connections Connections
	// MembershipChanged, when set (cluster mode, docs/scaleout.md), runs
	// after every committed membership change, once the object's lock is
	// released here, with the lock and cache key of the object; the
	// change's caller sees its error. The cluster makes every other node
	// InvalidateMembership(key) before it returns. Nil: one node.
	MembershipChanged func(ctx context.Context, key string) error
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Log receives the few things the domain logs itself (push failures are
	// the pusher's). Never nil after NewService.
	Log *slog.Logger

	opts  Options
	seed  maphash.Seed
	locks [256]sync.RWMutex
	// members caches the membership Say checks; see memberCache.
	members memberCache
	// typing throttles typing events per sender and conversation.
	typing *RateLimiter
}

// NewService returns a Service over store with the defaults filled in. The
// Publisher and Pusher start as no-ops; set them before serving.
func NewService(store Store, opts Options) *Service {
	if opts.GroupLimit <= 0 {
		opts.GroupLimit = DefaultGroupLimit
	}
	if opts.RoomLimit <= 0 {
		opts.RoomLimit = DefaultRoomLimit
	}
	if opts.MaxBodyLen <= 0 {
		opts.MaxBodyLen = DefaultMaxBodyLen
	}
	if opts.RecallWindow == 0 {
		opts.RecallWindow = DefaultRecallWindow
	}
	if opts.EditWindow == 0 {
		opts.EditWindow = DefaultEditWindow
	}
	r := &opts.Retention
	for _, d := range []*time.Duration{&r.Friend, &r.Group} {
		if *d == 0 {
			*d = DefaultRetention7d
		}
	}
	for _, d := range []*time.Duration{&r.Stranger, &r.Passenger} {
		if *d == 0 {
			*d = DefaultRetention1y
		}
	}
	return &Service{
		store:     store,
		Publisher: NopPublisher{},
		Pusher:    NopPusher{},
		Presence:  NewPresence(),
		Now:       time.Now,
		Log:       slog.New(slog.DiscardHandler),
		opts:      opts,
		seed:      maphash.MakeSeed(),
		members:   memberCache{seed: maphash.MakeSeed()},
		typing:    NewRateLimiter(typingRate, 1),
	}
}

// Options returns the effective options.
func (s *Service) Options() Options { return s.opts }

// nowMillis returns the server time in ms.
func (s *Service) nowMillis() int64 { return s.Now().UnixMilli() }

// RetentionOf returns the retention of a conversation kind ('f', 'g', 's',
// 'p'); a negative duration means for ever.
func (s *Service) RetentionOf(kind byte) time.Duration {
	switch kind {
	case 'f':
		return s.opts.Retention.Friend
	case 'g':
		return s.opts.Retention.Group
	case 's':
		return s.opts.Retention.Stranger
	case 'p':
		return s.opts.Retention.Passenger
	}
	return -1
}

// notBefore returns the oldest TS of conv still within retention at now.
func (s *Service) notBefore(conv Conv, now int64) int64 {
	d := s.RetentionOf(conv.Kind())
	if d < 0 {
		return 0
	}
	return now - d.Milliseconds()
}

// ttl returns the store TTL of a new record of conv (0: keep for ever).
func (s *Service) ttl(conv Conv) time.Duration {
	if d := s.RetentionOf(conv.Kind()); d > 0 {
		return d
	}
	return 0
}

// lockKey returns the lock guarding a membership object: a group or room
// (key ListKind.lockKey) or a friend conversation. Senders hold it for
// reading while they check membership and hand the message to delivery;
// REST changes to the membership hold it for writing, so once a change
// returns no send that began before it can still deliver to a removed
// member.
func (s *Service) lockKey(key string) *sync.RWMutex {
	return &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
}

// updateLocked runs fn in a store transaction while holding the write lock
// of the membership object key (see lockKey), then, still under the lock,
// drops the cached membership of key (see memberCache), whatever the
// outcome: every membership change goes through here. In a cluster it then
// has the other nodes do the same (MembershipChanged).
func (s *Service) updateLocked(ctx context.Context, key string, fn func(Tx) error) error {
	if err := s.updateLockedLocal(ctx, key, fn); err != nil || s.MembershipChanged == nil {
		return err
	}
	return s.MembershipChanged(ctx, key)
}

func (s *Service) updateLockedLocal(ctx context.Context, key string, fn func(Tx) error) error {
	mu := s.lockKey(key)
	mu.Lock()
	defer mu.Unlock()
	defer s.members.drop(key)
	return s.store.Update(ctx, fn)
}

// InvalidateMembership does, for a change another node committed, what
// updateLocked does after its own: it waits for the senders holding the
// membership lock of key for reading (their deliveries are then handed to
// the Publisher) and drops the cached membership of key.
func (s *Service) InvalidateMembership(key string) {
	mu := s.lockKey(key)
	mu.Lock()
	s.members.drop(key)
	mu.Unlock()
}

// SetMembershipCache turns the membership cache on or off; off drops every
// entry and fills none until it is turned on again. A cluster node turns
// it off while it cannot hear the other nodes' invalidations.
func (s *Service) SetMembershipCache(on bool) {
	s.members.off.Store(!on)
	if !on {
		s.members.clear()
	}
}

// NormalizeLimit clamps a list limit: ≤0 → 20, >100 → 100.
func NormalizeLimit(limit int) int {
	if limit <= 0 {
		return DefaultListLimit
	}
	if limit > MaxListLimit {
		return MaxListLimit
	}
	return limit
}

// NormalizeCutoff turns a history cutoff into ms: 0 → no cutoff (the
// latest records; a busy conversation stamps TS up to a few ms ahead of
// the clock, since TS is strictly increasing); values below 1e11 are
// seconds (the iOS API takes seconds).
func NormalizeCutoff(ts, now int64) int64 {
	if ts <= 0 {
		return maxTS
	}
	if ts < secondsCutoffMillis {
		return ts * 1000
	}
	return ts
}
