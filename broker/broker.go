package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
)

// Listener ids, as mochi and the logs know them.
const (
	ListenerTCP = "tcp"
	ListenerTLS = "tls"
	ListenerWS  = "ws"
	ListenerWSS = "wss"
)

// errConnectionPanic is the stop cause of a connection whose goroutine
// panicked.
var errConnectionPanic = errors.New("broker: connection handler panicked")

// Aborter is implemented by hooks that keep per-connection state. When a
// connection's goroutine panics, mochi never calls OnDisconnect for it; the
// broker calls Abort instead, after the connection is closed.
type Aborter interface {
	Abort(cl *mqtt.Client)
}

// Server is the embedded MQTT broker: mochi with mqim's listeners and
// capabilities. It implements chat.Publisher (publish.go). It knows nothing
// of the hooks: cmd/mqim adds them with AddHook before Start.
type Server struct {
	mqtt *mqtt.Server
	opts Options
	log  zerolog.Logger

	guard     *connGuard
	listeners []listenerEntry
	aborters  []Aborter
	origins   sync.Pool // *mqtt.Client used as the origin of Publish with an excepted session
	// hasOther, when set, reports whether an identity has a session (client
	// id, connected or persisted) other than the given one; see SetSessions.
	hasOther  func(id chat.Identity, except string) bool
	closeOnce sync.Once
	stopTrim  chan struct{}
}

type listenerEntry struct {
	id string
	l  listeners.Listener
}

// New returns a broker configured by opts. Nothing is bound before Start.
func New(opts Options) *Server {
	opts.setDefaults()
	s := &Server{opts: opts, log: opts.Logger}
	s.mqtt = mqtt.New(&mqtt.Options{
		Capabilities:             opts.capabilities(),
		ClientNetReadBufferSize:  readBufferSize,
		ClientNetWriteBufferSize: writeBufferSize,
		SysTopicResendInterval:   sysTopicInterval,
		// The inline client is how the server publishes inbox events.
		InlineClient: true,
		// mochi logs through slog; bridge it to zerolog, without packet
		// payloads or passwords (log.go).
		Logger: slog.New(newRedactHandler(zerolog.NewSlogHandler(opts.Logger))),
	})
	s.guard = &connGuard{
		max:     int64(opts.MaxConnections),
		timeout: opts.ConnectTimeout,
		log:     opts.Logger,
		onPanic: s.abort,
		// Not mochi's own CloseFn (Server.closeListenerClients): it can
		// deadlock, see closeListenerClients below.
		closeClients: s.closeListenerClients,
		framer: framerConfig{
			maxPacket:     s.mqtt.Options.Capabilities.MaximumPacketSize,
			topicAliasMax: s.mqtt.Options.Capabilities.TopicAliasMaximum,
		},
	}
	s.origins.New = func() any { return s.mqtt.NewClient(nil, mqtt.LocalListener, "", true) }
	// HookBase.Init cannot fail, and the hook must come first so that every
	// subscription is No Local before other hooks see it.
	_ = s.mqtt.AddHook(&noLocalHook{}, nil)
	_ = s.mqtt.AddHook(&ackPropsHook{}, nil)
	_ = s.mqtt.AddHook(&sessionHook{}, nil)
	if opts.Metrics != nil {
		s.reportMetrics(opts.Metrics)
	}
	return s
}

// SetSessions gives Publish an index of sessions: hasOther reports whether
// identity id has a session other than except, connected or persisted
// (one that can hold subscriptions). With it, an event for every session of
// an identity but one (a "yourself" echo) is dropped at once when there is
// no other session, instead of going through mochi's whole publish path to
// reach no one. The hooks set it; call it before Start.
func (s *Server) SetSessions(hasOther func(id chat.Identity, except string) bool) {
	s.hasOther = hasOther
}

// MQTT returns the mochi server, for the hooks.
func (s *Server) MQTT() *mqtt.Server { return s.mqtt }

// Options returns the effective options (defaults filled in).
func (s *Server) Options() Options { return s.opts }

// AddHook adds a mochi hook. Hooks run in the order they are added; add
// them all before Start.
func (s *Server) AddHook(h mqtt.Hook, config any) error {
	if err := s.mqtt.AddHook(h, config); err != nil {
		return fmt.Errorf("add hook %s: %w", h.ID(), err)
	}
	if a, ok := h.(Aborter); ok {
		s.aborters = append(s.aborters, a)
	}
	return nil
}

// Start binds every configured listener and starts serving. A bind failure
// (port in use, bad TLS config) is returned here, not logged later.
func (s *Server) Start() error {
	o := &s.opts
	var ls []listeners.Listener
	if o.TCPAddr != "" {
		ls = append(ls, &netListener{endpoint: endpoint{id: ListenerTCP, addr: o.TCPAddr}, guard: s.guard})
	}
	if o.WSAddr != "" {
		ls = append(ls, &wsListener{endpoint: endpoint{id: ListenerWS, addr: o.WSAddr}, path: o.WSPath, origins: o.WSOrigins, guard: s.guard})
	}
	if o.TLSConfig != nil && o.TLSAddr != "" {
		ls = append(ls, &netListener{endpoint: endpoint{id: ListenerTLS, addr: o.TLSAddr, tlsConf: o.TLSConfig}, guard: s.guard})
	}
	if o.TLSConfig != nil && o.WSSAddr != "" {
		ls = append(ls, &wsListener{endpoint: endpoint{id: ListenerWSS, addr: o.WSSAddr, tlsConf: o.TLSConfig}, path: o.WSPath, origins: o.WSOrigins, guard: s.guard})
	}
	for _, l := range ls {
		if err := s.mqtt.AddListener(l); err != nil {
			return fmt.Errorf("mqtt listener %s on %s: %w", l.ID(), l.Address(), err)
		}
		s.listeners = append(s.listeners, listenerEntry{id: l.ID(), l: l})
		s.log.Info().Str("listener", l.ID()).Str("protocol", l.Protocol()).Str("addr", l.Address()).Msg("mqtt listening")
	}
	if err := s.mqtt.Serve(); err != nil {
		return err
	}
	s.stopTrim = make(chan struct{})
	go s.trimLoop(s.stopTrim)
	return nil
}

// Close disconnects every client, stops the listeners and the hooks. mochi
// waits for every connection goroutine, OnDisconnect included, to finish.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.stopTrim != nil {
			close(s.stopTrim)
		}
		_ = s.mqtt.Close()
	})
	return nil
}

// closeListenerClients disconnects the clients of listener id at shutdown.
// mochi's own version (v2.7.9) takes the client map's read lock twice
// (Clients.GetByListener calls Len under RLock): when a connection that is
// ending asks for the write lock in between, all three wait for ever and
// Close never returns. GetAll takes the read lock once.
func (s *Server) closeListenerClients(id string) {
	for _, cl := range s.mqtt.Clients.GetAll() {
		if cl.Net.Listener == id && !cl.Closed() {
			s.shutdownClient(cl)
		}
	}
}

// Addr returns the bound address of listener id (ListenerTCP, ...), or nil
// when that listener is off.
func (s *Server) Addr(id string) net.Addr {
	for _, e := range s.listeners {
		if e.id == id {
			a, err := net.ResolveTCPAddr("tcp", e.l.Address())
			if err != nil {
				return nil
			}
			return a
		}
	}
	return nil
}

// TCPAddr returns the bound MQTT/TCP address, or nil.
func (s *Server) TCPAddr() net.Addr { return s.Addr(ListenerTCP) }

// WSAddr returns the bound MQTT/WebSocket address, or nil.
func (s *Server) WSAddr() net.Addr { return s.Addr(ListenerWS) }

// TLSAddr returns the bound MQTT/TLS address, or nil.
func (s *Server) TLSAddr() net.Addr { return s.Addr(ListenerTLS) }

// WSSAddr returns the bound MQTT/WebSocket-over-TLS address, or nil.
func (s *Server) WSSAddr() net.Addr { return s.Addr(ListenerWSS) }

// abort cleans up after a connection whose goroutine panicked: mochi's
// deferred calls closed the socket, but the code after its read loop
// (OnDisconnect, removal of a clean session) never ran.
func (s *Server) abort(c net.Conn) {
	for _, cl := range s.mqtt.Clients.GetAll() {
		if cl.Net.Conn != c {
			continue
		}
		cl.Stop(errConnectionPanic)
		for _, a := range s.aborters {
			a.Abort(cl)
		}
		expire := (cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryInterval == 0) ||
			(cl.Properties.ProtocolVersion < 5 && cl.Properties.Clean)
		if cur, ok := s.mqtt.Clients.Get(cl.ID); expire && ok && cur == cl && !cl.IsTakenOver() {
			cl.ClearInflights()
			s.mqtt.UnsubscribeClient(cl)
			s.mqtt.Clients.Delete(cl.ID)
		}
	}
}
