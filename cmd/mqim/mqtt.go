package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/push"
)

// mqttParts holds the running real-time layer: the broker and the pusher.
type mqttParts struct {
	broker *broker.Server
	pusher *push.Webhook
	// cancel ends the hooks' lifetime context, after the broker has
	// stopped (its last OnDisconnect calls still use the store).
	cancel context.CancelFunc
	// limiter is the say rate limit of each identity, one budget over MQTT
	// and socket.io (mqtt.rate_limit; nil: off).
	limiter *chat.RateLimiter
	// conns is the MQTT registry's chat.Connections, which the socket.io
	// endpoint asks for the per-identity connection cap.
	conns chat.Connections
}

// mqttLive is the number of open MQTT connections of id (for socket.io's
// share of mqtt.max_connections_per_user).
func (m *Main) mqttLive(id chat.Identity) int {
	n := m.remoteSessions(id) // the other nodes' sessions, both protocols
	if m.mqtt.conns == nil {
		return n
	}
	return n + m.mqtt.conns.Live(id)
}

// startMQTT builds the broker from m.Config.MQTT, adds the mqim hooks,
// makes it m.Service's Publisher, sets the Pusher from m.Config.Push and
// starts the listeners. It needs m.Service and m.Auth.
func (m *Main) startMQTT(_ context.Context) error {
	c := &m.Config.MQTT
	log := m.Log.With().Str("component", "mqtt").Logger()
	var tlsConf *tls.Config
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("mqtt tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if body := m.Config.Chat.MaxBodyLen; c.MaxPacketSize < body+1024 {
		log.Warn().Int("max_packet_size", c.MaxPacketSize).Int("max_body_len", body).
			Msg("mqtt.max_packet_size leaves no room for the longest content.body: such messages cannot be sent over MQTT")
	}

	if p := m.Config.Push; p.WebhookURL != "" {
		w, err := push.New(push.Options{
			URL: p.WebhookURL, AuthHeader: p.AuthHeader, Timeout: p.Timeout, Retries: p.Retries,
			Backoff: p.Backoff, QueueSize: p.QueueSize, Workers: p.Workers,
			Metrics: m.metrics.m,
			Log:     m.Log.With().Str("component", "push").Logger(),
		})
		if err != nil {
			return err
		}
		m.mqtt.pusher = w
		m.Service.Pusher = w
	} else {
		m.Service.Pusher = chat.NopPusher{}
	}

	b := broker.New(broker.Options{
		TCPAddr:             c.TCPAddr,
		WSAddr:              c.WSAddr,
		WSPath:              c.WSPath,
		WSOrigins:           c.WSOrigins,
		TLSAddr:             c.TLSAddr,
		WSSAddr:             c.WSSAddr,
		TLSConfig:           tlsConf,
		MaxPacketSize:       uint32(c.MaxPacketSize),
		MaxConnections:      c.MaxConnections,
		ClientWritesPending: c.ClientWritesPending,
		MaxInflight:         uint16(c.MaxInflight),
		ReceiveMaximum:      uint16(c.ReceiveMaximum),
		SessionExpiry:       c.SessionExpiry,
		MessageExpiry:       c.MessageExpiry,
		ConnectTimeout:      c.ConnectTimeout,
		Metrics:             m.metrics.m,
		Logger:              log,
	})
	// In the configuration 0 turns a limit off; in hooks.Options 0 takes
	// the default and a negative value turns it off.
	rate, perUser := c.RateLimit, c.MaxConnectionsPerUser
	if rate == 0 {
		rate = -1
	}
	if perUser == 0 {
		perUser = -1
	}
	sioLive := m.remoteSessions // with the other nodes' sessions
	if m.SocketIO != nil {
		sioLive = func(id chat.Identity) int { return m.SocketIO.Live(id) + m.remoteSessions(id) }
	}
	hctx, cancel := context.WithCancel(context.Background())
	m.mqtt.broker, m.mqtt.cancel = b, cancel
	var sessions hooks.SessionCluster
	nodeID := func() string { return "" }
	if m.Config.Cluster.NATSURL != "" {
		sessions, nodeID = sessionCluster{&m.cluster}, m.nodeID
	}
	err := hooks.Register(b, hooks.Options{
		Service:               m.Service,
		Auth:                  m.Auth,
		AllowRawKey:           c.AllowRawKey,
		NoClientKey:           !m.Config.App.ClientKeyLogin,
		Throttle:              m.Throttle,
		MinKeepalive:          c.MinKeepalive,
		MaxKeepalive:          c.MaxKeepalive,
		Timeout:               c.HookTimeout,
		RateLimit:             rate,
		RateBurst:             c.RateBurst,
		Limiter:               m.mqtt.limiter,
		OtherConnections:      sioLive,
		BaseContext:           hctx,
		Log:                   log,
		MaxConnectionsPerUser: perUser,
		Sessions:              m.sessionStore(),
		Held:                  m.cluster.held.set,
		Cluster:               sessions,
		NodeID:                nodeID,
		OnSessions:            m.cluster.sessions.Store,
		Metrics:               m.metrics.m,
	})
	if err != nil {
		return err
	}
	m.mqtt.conns = m.Service.Connections
	if m.SocketIO != nil {
		// Kick, ban, revocation and erasure end the identity's socket.io
		// sessions too.
		m.Service.Connections = chat.MultiConnections{m.Service.Connections, m.SocketIO}
	}
	m.Service.Publisher = b
	if err := b.Start(); err != nil {
		return err
	}
	log.Info().Int("max_packet_size", c.MaxPacketSize).Int("max_connections", c.MaxConnections).
		Bool("tls", tlsConf != nil).Bool("push", m.mqtt.pusher != nil).Msg("real-time layer started")
	return nil
}

// closeMQTT disconnects every client and stops the broker, then the pusher.
// It is a no-op when the broker was not started.
func (m *Main) closeMQTT() error {
	var errs []error
	if m.mqtt.broker != nil {
		errs = append(errs, m.mqtt.broker.Close())
		m.mqtt.broker = nil
		if m.Service != nil {
			m.Service.Publisher = chat.NopPublisher{}
		}
	}
	if m.mqtt.cancel != nil {
		m.mqtt.cancel()
		m.mqtt.cancel = nil
	}
	if m.mqtt.pusher != nil {
		errs = append(errs, m.mqtt.pusher.Close())
		m.mqtt.pusher = nil
	}
	return errors.Join(errs...)
}

// mqttAddr returns the bound address of an MQTT listener (broker.ListenerTCP,
// ListenerWS, ListenerTLS, ListenerWSS), or nil when it is off or the broker
// is not running. Tests configured with 127.0.0.1:0 read the real ports here.
func (m *Main) mqttAddr(listener string) net.Addr {
	if m.mqtt.broker == nil {
		return nil
	}
	return m.mqtt.broker.Addr(listener)
}
