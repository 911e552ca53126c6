package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"
)

// connGuard is what every listener of a Server shares: the connection cap,
// the CONNECT deadline and the panic isolation around mochi's per-connection
// code.
type connGuard struct {
	open     atomic.Int64 // open sockets, all listeners together
	accepted atomic.Int64 // sockets admitted since start (trim.go)
	max      int64
	timeout  time.Duration
	log      zerolog.Logger
	// onPanic is called after a connection's goroutine panicked and was
	// recovered, with the connection (already closed).
	onPanic func(c net.Conn)
	// framer configures the validating framer around every connection
	// (framer.go).
	framer framerConfig
	// closeClients disconnects the clients of a listener when it closes;
	// the listeners use it instead of the function mochi passes them.
	closeClients func(listener string)
}

// admit counts a new socket, or reports false when the cap is reached.
func (g *connGuard) admit() bool {
	if g.open.Add(1) > g.max {
		g.open.Add(-1)
		return false
	}
	g.accepted.Add(1)
	return true
}

func (g *connGuard) release() { g.open.Add(-1) }

// serve runs mochi's establish for one connection. mochi has no recover in
// its connection path, so a decoder panic (mochi-mqtt/server#501) would kill
// the whole process; here it closes that connection only. The deadline set
// before establish bounds how long the peer may take to send CONNECT: mochi
// replaces it with the keepalive deadline once CONNECT is processed. mochi
// reads through the validating framer, which answers and closes on an
// invalid packet before mochi decodes it.
func (g *connGuard) serve(listener string, raw net.Conn, establish listeners.EstablishFn) {
	c := net.Conn(newFramer(raw, &g.framer))
	defer func() {
		if v := recover(); v != nil {
			_ = c.Close()
			g.log.Error().Str("listener", listener).Str("remote", c.RemoteAddr().String()).
				Str("panic", fmt.Sprint(v)).Bytes("stack", debug.Stack()).
				Msg("connection handler panicked; connection closed")
			if g.onPanic != nil {
				g.onPanic(c)
			}
		}
	}()
	_ = c.SetDeadline(time.Now().Add(g.timeout))
	if err := establish(listener, c); err != nil {
		g.log.Debug().Str("listener", listener).Str("remote", c.RemoteAddr().String()).Err(err).Msg("connection ended")
	}
}

// connSet tracks a listener's sockets so that Close can end the ones mochi
// does not know about yet (still before CONNECT): mochi's Close waits for
// every connection goroutine, and those would otherwise hold it until their
// CONNECT deadline.
type connSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// add registers c; false when the set is already closed.
func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// closeAll closes every tracked socket and refuses new ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// netListener is a mochi listener on TCP, or TLS when tlsConf is set. It
// replaces mochi's listeners.TCP to add the connection cap, the CONNECT
// deadline and panic isolation.
type netListener struct {
	endpoint
	guard *connGuard

	conns connSet
	end   atomic.Bool
}

var _ listeners.Listener = (*netListener)(nil)

// Protocol implements listeners.Listener.
func (l *netListener) Protocol() string {
	if l.tlsConf != nil {
		return "tls"
	}
	return "tcp"
}

// Init binds the address, so that a port clash fails at start.
func (l *netListener) Init(*slog.Logger) error { return l.bind() }

// Serve accepts until Close. Each connection runs in its own goroutine
// under the guard.
func (l *netListener) Serve(establish listeners.EstablishFn) {
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.end.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (EMFILE): back off as net/http does
			// instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.guard.log.Warn().Err(err).Str("listener", l.id).Dur("retry_in", backoff).Msg("accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !l.guard.admit() {
			l.guard.log.Warn().Str("listener", l.id).Str("remote", c.RemoteAddr().String()).Msg("connection limit reached; connection refused")
			_ = c.Close()
			continue
		}
		if !l.conns.add(c) {
			l.guard.release()
			_ = c.Close()
			return
		}
		go func() {
			defer l.guard.release()
			defer l.conns.remove(c)
			l.guard.serve(l.id, c, establish)
		}()
	}
}

// Close stops accepting, disconnects the listener's clients (mochi sends
// them DISCONNECT) and closes the sockets that had not sent CONNECT yet.
func (l *netListener) Close(_ listeners.CloseFn) {
	if !l.end.CompareAndSwap(false, true) {
		return
	}
	if l.ln != nil {
		_ = l.ln.Close()
	}
	l.guard.closeClients(l.id)
	l.conns.closeAll()
}

// endpoint is what the TCP and WebSocket listeners share: an id, an address
// bound at Init (so a port clash fails at start), and optional TLS.
type endpoint struct {
	id      string
	addr    string
	tlsConf *tls.Config
	ln      net.Listener
}

// ID implements listeners.Listener.
func (e *endpoint) ID() string { return e.id }

// Address implements listeners.Listener: the bound address after Init.
func (e *endpoint) Address() string {
	if e.ln != nil {
		return e.ln.Addr().String()
	}
	return e.addr
}

// bind listens on the address, with TLS when configured.
func (e *endpoint) bind() error {
	ln, err := net.Listen("tcp", e.addr)
	if err != nil {
		return err
	}
	if e.tlsConf != nil {
		ln = tls.NewListener(ln, e.tlsConf)
	}
	e.ln = ln
	return nil
}
