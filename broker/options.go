package broker

import (
	"crypto/tls"
	"math"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/metrics"
)

// Defaults of [Options]. Every one is a deliberate bound: mochi's own
// defaults are open-ended (docs/reliability.md, "Limits").
const (
	DefaultWSPath              = "/mqtt"
	DefaultMaxPacketSize       = 256 << 10
	DefaultMaxConnections      = 10000
	DefaultClientWritesPending = 256
	DefaultMaxInflight         = 1024
	DefaultReceiveMaximum      = 64
	DefaultSessionExpiry       = 24 * time.Hour
	DefaultMessageExpiry       = 24 * time.Hour
	DefaultConnectTimeout      = 10 * time.Second

	// sysTopicInterval is how often mochi refreshes its $SYS topics, in
	// seconds. Clients may not subscribe to $SYS, so the values only serve
	// server.Info; mochi's 1 s default spends a ReadMemStats per second.
	sysTopicInterval = 60
	// readBufferSize is mochi's per-client read buffer, held for the life
	// of the connection. It reads from the framer, which already buffers
	// the socket (framerBufSize) and hands on whole packets, so a small one
	// only costs a few more function calls per packet; 2 KiB would double
	// what an idle connection holds for reading. writeBufferSize is only
	// the size up to which mochi batches queued writes (allocated on use).
	readBufferSize  = 256
	writeBufferSize = 2048
)

// Options configures a [Server]. Zero values take the defaults above; an
// empty address leaves that listener off.
type Options struct {
	// TCPAddr is the plain MQTT listener, e.g. ":1883".
	TCPAddr string
	// WSAddr is the MQTT-over-WebSocket listener, e.g. ":8083", served on
	// WSPath (default "/mqtt") with subprotocol "mqtt".
	WSAddr string
	WSPath string
	// WSOrigins restricts the Origin header of WebSocket upgrades; empty
	// allows every origin (MQTT credentials are explicit, not cookies).
	WSOrigins []string
	// TLSAddr (MQTT over TLS) and WSSAddr (WebSocket over TLS) are served
	// only when TLSConfig is set.
	TLSAddr   string
	WSSAddr   string
	TLSConfig *tls.Config

	// MaxPacketSize bounds every MQTT packet, CONNECT included. It is
	// checked on the fixed header, before the body is allocated.
	MaxPacketSize uint32
	// MaxConnections bounds open connections (CONNACK "server busy" beyond
	// it; sockets beyond it are closed at accept).
	MaxConnections int
	// ClientWritesPending is each client's outbound queue; mochi preallocates
	// it (8 bytes a slot) and drops messages for a client whose queue is full.
	ClientWritesPending int
	// MaxInflight bounds each client's unacknowledged and queued QoS 1
	// messages (the offline queue of a persistent session).
	MaxInflight uint16
	// ReceiveMaximum bounds each client's concurrent inbound QoS 1/2 publishes.
	ReceiveMaximum uint16
	// SessionExpiry is the ceiling of a persistent session's lifetime after
	// disconnect (MQTT 5 session expiry is capped to it; MQTT 3.1.1
	// clean-session-false sessions get it).
	SessionExpiry time.Duration
	// MessageExpiry bounds how long a queued message waits for an offline
	// persistent session.
	MessageExpiry time.Duration
	// ConnectTimeout is how long a new connection may take to send its
	// CONNECT; after CONNECT the keepalive governs the deadline.
	ConnectTimeout time.Duration

	// Metrics, when set, gets the broker's deliveries, drops and live
	// connections (metrics.MQTTSource); nil: none.
	Metrics *metrics.Metrics

	Logger zerolog.Logger
}

func (o *Options) setDefaults() {
	if o.WSPath == "" {
		o.WSPath = DefaultWSPath
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = DefaultMaxPacketSize
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.ClientWritesPending <= 0 {
		o.ClientWritesPending = DefaultClientWritesPending
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.ReceiveMaximum == 0 {
		o.ReceiveMaximum = DefaultReceiveMaximum
	}
	if o.SessionExpiry <= 0 {
		o.SessionExpiry = DefaultSessionExpiry
	}
	if o.MessageExpiry <= 0 {
		o.MessageExpiry = DefaultMessageExpiry
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
}

// capabilities returns mochi's capabilities with every field chosen here.
// It starts from NewDefaultServerCapabilities because a hand-built struct
// leaves MaximumClients at 0, which refuses everyone (mochi v2.7.9
// server.go refuses a connection when ClientsConnected >= MaximumClients).
func (o *Options) capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	c.MaximumClients = int64(o.MaxConnections)
	c.MaximumPacketSize = o.MaxPacketSize
	c.MaximumClientWritesPending = int32(min(o.ClientWritesPending, math.MaxInt32))
	c.MaximumInflight = o.MaxInflight
	c.ReceiveMaximum = o.ReceiveMaximum
	c.MaximumSessionExpiryInterval = uint32(min(o.SessionExpiry/time.Second, math.MaxUint32))
	c.MaximumMessageExpiryInterval = int64(o.MessageExpiry / time.Second)
	// Clients never need topic aliases for the handful of send topics, and
	// each alias costs memory; 0 makes every aliased publish invalid.
	c.TopicAliasMaximum = 0
	// Shared subscriptions have no place in the protocol (the ACL refuses
	// $share/...). Retained flags are ignored rather than refused
	// (docs/protocol.md §3): every client publish is answered by the say hook with
	// CodeSuccessIgnore or a refusal, both of which skip mochi's retain step,
	// and the server never publishes retained. RetainAvailable stays 1
	// because 0 makes mochi refuse a CONNECT with a retained will using a
	// reason code that is invalid for MQTT 3.1.1; wills are refused by the
	// auth hook with a proper code instead.
	c.SharedSubAvailable = 0
	c.RetainAvailable = 1
	// Wildcards are allowed, inside one's own inbox (checked by the ACL).
	c.WildcardSubAvailable = 1
	c.SubIDAvailable = 1
	// QoS 2 stays available so that a 3.1.1 client publishing at QoS 2 gets
	// the PUBREC it expects; the server itself publishes at QoS 1.
	c.MaximumQos = 2
	// MQTT 3.1.1 and 5 only (docs/protocol.md §1); 3.1 ("MQIsdp") is refused.
	c.MinimumProtocolVersion = 4
	// Acknowledgements carry no copy of the client's User Properties (they
	// are the sender's own information, MQTT 5 §3.4.2.2.3); mochi copies
	// them unless told not to. SUBACK and UNSUBACK: ackPropsHook.
	c.Compatibilities.NoInheritedPropertiesOnAck = true
	return c
}
