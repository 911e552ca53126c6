// Package socketio serves MaxIM's own real-time protocol, socket.io
// (Engine.IO v3, namespace /chat, docs/realtime.md "socket.io"), so that
// unmodified MaxIM SDK clients connect beside MQTT.
//
// It is an adapter like hooks/: logins, says and sessions go through the
// same chat.Service (identities, membership, storage, presence) as MQTT.
// Delivery goes through one chat.Publisher: the Server wraps the broker's
// publisher and hands every event to both, its own sessions and MQTT's, so
// fan-out, yourself (the sending session excluded) and presence counting
// hold across the two protocols.
package socketio

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Namespace is the socket.io namespace of MaxIM.
const Namespace = "/chat"

// SessionPrefix starts the session id of every socket.io session in
// chat.Presence and chat.Publisher ("sio:" + the socket id).
const SessionPrefix = "sio:"

// Defaults of Options.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultPingInterval = 25 * time.Second
	DefaultPingTimeout  = 60 * time.Second
)

// Options configures the socket.io endpoint.
type Options struct {
	Service *chat.Service
	// Auth checks the app id and signatures; its Tolerance is the socket.io
	// one (socketio.sign_tolerance): the SDKs sign once and reuse the
	// signature on every reconnect.
	Auth *chat.Authenticator
	// NoClientKey refuses the client key (app.client_key_login false).
	NoClientKey bool
	// Throttle counts failed logins per address; nil: none.
	Throttle *chat.LoginThrottle
	// Limiter is the per-identity rate limit of says (mqtt.rate_limit),
	// shared with MQTT's hooks so that an identity has one budget over all
	// its sessions; keys are chat.Identity.String(). Nil: no limit.
	// RateLimit is its rate, for the log line of a refusal.
	Limiter   *chat.RateLimiter
	RateLimit float64
	// MaxConnectionsPerUser bounds the live sessions of one identity,
	// socket.io and other layers together (mqtt.max_connections_per_user);
	// ≤ 0: no cap. OtherConnections counts the sessions of the other
	// layers (MQTT); nil counts none.
	MaxConnectionsPerUser int
	OtherConnections      func(chat.Identity) int
	// Timeout bounds the store work of a login or a say.
	Timeout      time.Duration
	PingInterval time.Duration
	PingTimeout  time.Duration
	// Metrics, when set, counts logins, says, rate-limit refusals and the
	// events written to sessions, and reads the live sessions; nil: none.
	Metrics *metrics.Metrics
	Log     zerolog.Logger
}

// Server is the socket.io endpoint and the chat.Publisher that fans events
// out to its sessions and to the next publisher (the broker's).
type Server struct {
	opts    Options
	io      *socket.Server
	handler http.Handler

	mu       sync.RWMutex
	next     chat.Publisher
	sessions map[string]*session
	byID     map[chat.Identity]map[string]*session

	locksMu sync.Mutex
	locks   map[chat.Identity]*identityLock
}

type identityLock struct {
	sync.Mutex
	refs int
}

// session is one logged-in socket.io connection.
type session struct {
	id   string
	who  chat.Identity
	sock *socket.Socket
	// tokenIAT is the issue time (ms) of the token the session logged in
	// with; 0 for a signed login (never revoked).
	tokenIAT int64
}

// New builds the endpoint. Service and Auth are required.
func New(opts Options) *Server {
	if opts.Service == nil || opts.Auth == nil {
		panic("socketio: Options.Service and Options.Auth are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = DefaultPingTimeout
	}
	s := &Server{
		opts:     opts,
		next:     chat.NopPublisher{},
		sessions: map[string]*session{},
		byID:     map[chat.Identity]map[string]*session{},
		locks:    map[chat.Identity]*identityLock{},
	}
	so := socket.DefaultServerOptions()
	so.SetAllowEIO3(true)
	so.SetServeClient(false)
	so.SetPingInterval(opts.PingInterval)
	so.SetPingTimeout(opts.PingTimeout)
	so.SetPath("/socket.io")
	s.io = socket.NewServer(nil, so)
	s.handler = s.io.ServeHandler(so)
	opts.Metrics.SetSocketIO(s.Sessions)
	s.io.Of(Namespace, func(args ...any) {
		if sock, ok := args[0].(*socket.Socket); ok {
			s.connected(sock)
		}
	})
	return s
}

// Handler is the HTTP handler of /socket.io/ (both transports).
func (s *Server) Handler() http.Handler { return s.handler }

// Publisher returns the chat.Publisher that delivers to the socket.io
// sessions and to next.
func (s *Server) Publisher(next chat.Publisher) chat.Publisher {
	s.mu.Lock()
	s.next = next
	s.mu.Unlock()
	return publisher{s}
}

// Close disconnects every socket.io client.
func (s *Server) Close() {
	done := make(chan struct{})
	s.io.Close(func(error) { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// Sessions is the number of logged-in socket.io sessions.
func (s *Server) Sessions() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sessions)
}

func (s *Server) lock(id chat.Identity) func() {
	s.locksMu.Lock()
	l := s.locks[id]
	if l == nil {
		l = &identityLock{}
		s.locks[id] = l
	}
	l.refs++
	s.locksMu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.locksMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, id)
		}
		s.locksMu.Unlock()
	}
}

// connected runs the MaxIM login of a new /chat socket (docs/realtime.md
// "socket.io"): success registers the session and answers login; failure
// answers login with the error code and disconnects the namespace, which
// stops the SDK's reconnect loop.
func (s *Server) connected(sock *socket.Socket) {
	remote := sock.Handshake().Address
	log := s.opts.Log.With().Str("remote", remote).Str("socket", string(sock.Id())).Logger()
	ip := remoteIP(remote)
	if s.opts.Throttle != nil && !s.opts.Throttle.Allow(ip) {
		s.refuse(sock, chat.CodeRateLimited, "too many failed logins from this address", log)
		s.opts.Metrics.Login(metrics.SocketIO, metrics.Throttled)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	lg, err := s.credentials(ctx, authQuery(sock))
	if err != nil {
		code := chat.ErrorCode(err)
		if code == chat.CodeUnauthorized && s.opts.Throttle != nil {
			s.opts.Throttle.Fail(ip)
		}
		if code == chat.CodeInternal {
			log.Error().Err(err).Msg("socket.io login failed")
		}
		s.refuse(sock, code, chat.ErrorMessage(err), log)
		s.opts.Metrics.Login(metrics.SocketIO, loginOutcome(err))
		return
	}
	id := lg.req.Identity
	log = log.With().Str("identity", id.String()).Logger()
	if !lg.token {
		if err := s.opts.Service.CheckLogin(ctx, id); err != nil {
			s.refuse(sock, chat.ErrorCode(err), chat.ErrorMessage(err), log)
			s.opts.Metrics.Login(metrics.SocketIO, loginOutcome(err))
			return
		}
	}
	if err := s.opts.Service.Login(ctx, lg.req); err != nil {
		s.refuse(sock, chat.ErrorCode(err), chat.ErrorMessage(err), log)
		s.opts.Metrics.Login(metrics.SocketIO, loginOutcome(err))
		return
	}
	ss := &session{id: SessionPrefix + string(sock.Id()), who: id, sock: sock, tokenIAT: lg.tokenIAT}
	unlock := s.lock(id)
	defer unlock()
	if !sock.Connected() {
		return // gone while logging in
	}
	if limit := s.opts.MaxConnectionsPerUser; limit > 0 && s.Live(id)+s.otherConnections(id) >= limit {
		s.refuse(sock, chat.CodeRateLimited, "too many connections for this identity", log)
		s.opts.Metrics.Login(metrics.SocketIO, metrics.Refused)
		return
	}
	s.mu.Lock()
	s.sessions[ss.id] = ss
	set := s.byID[id]
	if set == nil {
		set = map[string]*session{}
		s.byID[id] = set
	}
	set[ss.id] = ss
	s.mu.Unlock()
	_ = sock.On("say", func(args ...any) { s.say(ss, args, log) })
	_ = sock.On("disconnect", func(...any) { s.closed(ss) })
	b, _ := json.Marshal(map[string]any{"success": true, "id": id.ID})
	emit(sock, "login", b)
	s.opts.Service.SessionOpened(ctx, id, ss.id, lg.notifyAll)
	s.opts.Metrics.Login(metrics.SocketIO, metrics.OK)
	log.Debug().Msg("socket.io login accepted")
}

// Disconnect implements chat.Connections for the socket.io sessions
// (kick, ban, token revocation, erasure): each session of id is
// disconnected from the namespace (the client sees "io server disconnect"
// and does not reconnect by itself). With chat.KickRevoked, only the
// sessions that logged in with a token issued at or before notBefore (ms).
// socket.io keeps no session beyond its connection, so an erasure has
// nothing more to remove. It returns how many sessions it ended.
func (s *Server) Disconnect(id chat.Identity, cause chat.KickCause, notBefore int64) int {
	s.mu.RLock()
	var socks []*socket.Socket
	for _, ss := range s.byID[id] {
		if cause == chat.KickRevoked && (ss.tokenIAT == 0 || ss.tokenIAT > notBefore) {
			continue
		}
		socks = append(socks, ss.sock)
	}
	s.mu.RUnlock()
	for _, sock := range socks {
		sock.Disconnect(false)
	}
	if len(socks) > 0 {
		s.opts.Log.Info().Str("identity", id.String()).Int("sessions", len(socks)).Uint8("cause", uint8(cause)).Msg("socket.io sessions disconnected")
	}
	return len(socks)
}

// Live implements chat.Connections: the logged-in socket.io sessions of
// id.
func (s *Server) Live(id chat.Identity) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID[id])
}

func (s *Server) otherConnections(id chat.Identity) int {
	if s.opts.OtherConnections == nil {
		return 0
	}
	return s.opts.OtherConnections(id)
}

// refuse answers a failed login and disconnects the namespace (41/chat).
func (s *Server) refuse(sock *socket.Socket, code int, reason string, log zerolog.Logger) {
	if code == 0 {
		code = chat.CodeInternal
	}
	b, _ := json.Marshal(map[string]any{"success": false, "error": code})
	emit(sock, "login", b)
	sock.Disconnect(false)
	log.Info().Str("reason", reason).Int("code", code).Msg("socket.io login refused")
}

func (s *Server) closed(ss *session) {
	unlock := s.lock(ss.who)
	defer unlock()
	s.mu.Lock()
	_, ok := s.sessions[ss.id]
	delete(s.sessions, ss.id)
	if set := s.byID[ss.who]; set != nil {
		delete(set, ss.id)
		if len(set) == 0 {
			delete(s.byID, ss.who)
		}
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	s.opts.Service.SessionClosed(ctx, ss.who, ss.id)
}

// say handles the say event: one argument, an object or (SDK-JS0) a JSON
// string holding one. Refusals are logged, never told to the client
// (MaxIM has no error event; the SDKs listen for none).
func (s *Server) say(ss *session, args []any, log zerolog.Logger) {
	if len(args) == 0 {
		return
	}
	var payload []byte
	switch v := args[0].(type) {
	case string:
		payload = []byte(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		payload = b
	}
	target, ok := sayTarget(ss.who, payload)
	var err error
	switch {
	case !s.opts.Limiter.Allow(ss.who.String(), s.opts.Service.Now()):
		err = chat.Errorf(chat.CodeRateLimited, "message rate limit exceeded (%g per second)", s.opts.RateLimit)
		s.opts.Metrics.RateLimited(metrics.SocketIO)
	case !ok:
		err = chat.Errorf(chat.CodeInvalid, "say needs to.id")
	default:
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		_, err = s.opts.Service.Say(ctx, ss.who, ss.id, target, payload)
		cancel()
	}
	kind := metrics.KindUnknown
	if ok {
		kind = metrics.SayKind(ss.who.Kind, target.Type)
	}
	s.opts.Metrics.Say(kind, metrics.SayOutcome(err))
	if err != nil {
		log.Info().Err(err).Int("code", chat.ErrorCode(err)).Msg("socket.io say refused")
	}
}

// sayTarget reads to.id and to.type of a say payload. A passenger's
// target is always a user (its to has no type).
func sayTarget(from chat.Identity, payload []byte) (chat.SayTarget, bool) {
	var m struct {
		To struct {
			ID   string `json:"id"`
			Type *int   `json:"type"`
		} `json:"to"`
	}
	var inner string
	if json.Unmarshal(payload, &inner) == nil {
		payload = []byte(inner)
	}
	if json.Unmarshal(payload, &m) != nil || m.To.ID == "" {
		return chat.SayTarget{}, false
	}
	if from.Kind == chat.KindPassenger {
		return chat.SayTarget{Type: chat.TypeFriend, ID: m.To.ID}, true
	}
	typ := chat.TypeFriend
	if m.To.Type != nil {
		typ = *m.To.Type
	}
	return chat.SayTarget{Type: typ, ID: m.To.ID}, true
}

// emit sends one event with its JSON payload as the only argument.
func emit(sock *socket.Socket, event string, payload []byte) {
	_ = sock.Emit(event, json.RawMessage(payload))
}

// publisher is the chat.Publisher of Server.Publisher.
type publisher struct{ s *Server }

// Publish implements chat.Publisher.
func (p publisher) Publish(to chat.Identity, event string, payload []byte, exceptSession string) {
	s := p.s
	s.mu.RLock()
	next := s.next
	var socks []*socket.Socket
	if event != chat.EventError {
		for id, ss := range s.byID[to] {
			if id != exceptSession {
				socks = append(socks, ss.sock)
			}
		}
	}
	s.mu.RUnlock()
	for _, sock := range socks {
		emit(sock, event, payload)
	}
	s.opts.Metrics.Delivered(len(socks))
	next.Publish(to, event, payload, exceptSession)
}

// PublishSession implements chat.Publisher. The error event is never sent
// to a socket.io client: it would fire the client's error handlers.
func (p publisher) PublishSession(session string, to chat.Identity, event string, payload []byte) {
	s := p.s
	s.mu.RLock()
	next := s.next
	ss, ok := s.sessions[session]
	s.mu.RUnlock()
	if !ok {
		next.PublishSession(session, to, event, payload)
		return
	}
	if ss.who != to || event == chat.EventError {
		return
	}
	emit(ss.sock, event, payload)
	s.opts.Metrics.Delivered(1)
}

// loginOutcome is the metrics outcome of a refused socket.io login.
func loginOutcome(err error) string {
	switch {
	case chat.IsBanned(err):
		return metrics.Banned
	case chat.ErrorCode(err) == chat.CodeUnauthorized:
		return metrics.Unauthorized
	case chat.ErrorCode(err) == chat.CodeRateLimited:
		return metrics.Throttled
	case chat.ErrorCode(err) == chat.CodeInternal || chat.ErrorCode(err) == 0:
		return metrics.Error
	}
	return metrics.Refused
}

// remoteIP is the address part of a remote "host:port".
func remoteIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}
