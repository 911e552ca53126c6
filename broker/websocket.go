package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// wsListener serves MQTT over WebSocket on one path (mochi's own listener
// answers only "/"). Browsers (MQTT.js, Paho JS) connect to
// ws://host:8083/mqtt with subprotocol "mqtt" and binary frames.
type wsListener struct {
	endpoint
	path    string
	origins []string
	guard   *connGuard

	srv       *http.Server
	upgrader  websocket.Upgrader
	establish listeners.EstablishFn
	conns     connSet
	end       atomic.Bool
}

var _ listeners.Listener = (*wsListener)(nil)

// Protocol implements listeners.Listener.
func (l *wsListener) Protocol() string {
	if l.tlsConf != nil {
		return "wss"
	}
	return "ws"
}

// Init binds the address and prepares the HTTP server.
func (l *wsListener) Init(*slog.Logger) error {
	if err := l.bind(); err != nil {
		return err
	}
	l.upgrader = websocket.Upgrader{
		Subprotocols:     []string{"mqtt"},
		HandshakeTimeout: l.guard.timeout,
		CheckOrigin:      l.checkOrigin,
	}
	mux := http.NewServeMux()
	mux.HandleFunc(l.path, l.handle)
	l.srv = &http.Server{
		Handler: mux,
		// The upgrade request must arrive within the CONNECT deadline too.
		ReadHeaderTimeout: l.guard.timeout,
	}
	return nil
}

// checkOrigin allows every origin unless a list is configured. Browsers
// send no credentials with the upgrade that MQTT would trust: the login is
// the CONNECT packet.
func (l *wsListener) checkOrigin(r *http.Request) bool {
	if len(l.origins) == 0 {
		return true
	}
	return slices.Contains(l.origins, r.Header.Get("Origin"))
}

// Serve serves HTTP until Close.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !l.end.Load() {
		l.guard.log.Error().Err(err).Str("listener", l.id).Msg("websocket listener stopped")
	}
}

// handle upgrades one request and runs the MQTT connection on it.
func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	if !l.guard.admit() {
		l.guard.log.Warn().Str("listener", l.id).Str("remote", r.RemoteAddr).Msg("connection limit reached; connection refused")
		http.Error(w, "server busy", http.StatusServiceUnavailable)
		return
	}
	defer l.guard.release()
	ws, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the request
	}
	c := &wsConn{Conn: ws.UnderlyingConn(), ws: ws}
	if !l.conns.add(c) {
		_ = c.Close()
		return
	}
	defer l.conns.remove(c)
	defer func() { _ = c.Close() }() // the connection is over either way
	l.guard.serve(l.id, c, l.establish)
}

// Close stops the HTTP server, disconnects the listener's clients and
// closes the upgraded connections that had not sent CONNECT yet.
func (l *wsListener) Close(_ listeners.CloseFn) {
	if !l.end.CompareAndSwap(false, true) {
		return
	}
	if l.srv != nil {
		// Upgraded connections are hijacked, so Shutdown does not wait for
		// them; it only lets plain HTTP requests finish.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = l.srv.Shutdown(ctx)
		cancel()
	}
	l.guard.closeClients(l.id)
	l.conns.closeAll()
}

// wsConn is a WebSocket connection as a net.Conn carrying the MQTT byte
// stream in binary messages. Deadlines and Close go to the underlying
// connection. Writes are serialised by mochi (one writer per client).
type wsConn struct {
	net.Conn
	ws *websocket.Conn
	r  io.Reader // the current message, nil between messages
}

// errTextFrame is returned for a text message: MQTT over WebSocket is binary.
var errTextFrame = errors.New("websocket: text message on an MQTT connection")

// Read reads the byte stream across message boundaries: an MQTT packet may
// span messages and a message may hold several packets.
func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue // empty message or end of message: read the next one
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one binary message.
func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the underlying connection.
func (c *wsConn) Close() error { return c.ws.Close() }
