package main

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/push"
)

// MQTTConfig is the MQTT broker (docs/protocol.md §1). Every capability of the
// embedded broker is set on purpose: mochi's own defaults are open-ended.
type MQTTConfig struct {
	// TCPAddr is MQTT over TCP; empty turns it off.
	TCPAddr string `yaml:"tcp_addr"`
	// WSAddr is MQTT over WebSocket, served on WSPath; empty turns it off.
	WSAddr string `yaml:"ws_addr"`
	WSPath string `yaml:"ws_path"`
	// WSOrigins, when not empty, lists the Origin headers a WebSocket
	// upgrade may carry (browsers); empty allows any.
	WSOrigins []string `yaml:"ws_origins"`
	// TLSCert and TLSKey (PEM files) turn TLS on: MQTT over TLS on TLSAddr
	// and, when WSSAddr is set, MQTT over secure WebSocket there.
	TLSAddr string `yaml:"tls_addr"`
	WSSAddr string `yaml:"wss_addr"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`

	// MaxPacketSize bounds every MQTT packet in bytes, checked before the
	// packet is read. A say carries content.body, so keep it above
	// chat.max_body_len.
	MaxPacketSize int `yaml:"max_packet_size"`
	// MaxConnections bounds open connections.
	MaxConnections int `yaml:"max_connections"`
	// ClientWritesPending is each client's outbound queue, preallocated (8
	// bytes a slot); events for a client whose queue is full are dropped
	// (history keeps them).
	ClientWritesPending int `yaml:"client_writes_pending"`
	// MaxInflight bounds each client's unacknowledged QoS 1 events, which
	// is also the offline queue of a persistent session.
	MaxInflight int `yaml:"max_inflight"`
	// ReceiveMaximum bounds each client's concurrent QoS 1/2 publishes.
	ReceiveMaximum int `yaml:"receive_maximum"`
	// SessionExpiry is the longest a persistent session (3.1.1 clean
	// session false, MQTT 5 session expiry) outlives its connection.
	SessionExpiry time.Duration `yaml:"session_expiry"`
	// MessageExpiry is the longest an event waits in an offline queue.
	MessageExpiry time.Duration `yaml:"message_expiry"`
	// ConnectTimeout is how long a new connection may take to send CONNECT.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MinKeepalive and MaxKeepalive bound client keepalives: MQTT 5 clients
	// outside them are told the server's value; 3.1.1 clients below the
	// minimum are held to it, and with 0 or above the maximum are refused.
	MinKeepalive time.Duration `yaml:"min_keepalive"`
	MaxKeepalive time.Duration `yaml:"max_keepalive"`
	// AllowRawKey accepts an app key itself as the MQTT password. Off: a
	// signature md5(ts+key),ts is required, which expires.
	AllowRawKey bool `yaml:"allow_raw_key"`
	// HookTimeout bounds the store work of one login or one message.
	HookTimeout time.Duration `yaml:"hook_timeout"`
	// RateLimit is how many says per second one identity (all its
	// sessions together, MQTT and socket.io) may publish, sustained, and
	// RateBurst how many at once; beyond them a say is refused with 5013
	// (MQTT 5 PUBACK 0x97; socket.io drops it silently and logs it).
	// 0 turns the limit off.
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// MaxConnectionsPerUser bounds the open connections of one identity,
	// MQTT and socket.io together; one more is refused (CONNACK 0x97 quota
	// exceeded, or 5 not authorized on MQTT 3.1.1; socket.io login error
	// 5013). 0 turns the cap off.
	MaxConnectionsPerUser int `yaml:"max_connections_per_user"`
}

// DefaultMQTTConfig returns the broker defaults.
func DefaultMQTTConfig() MQTTConfig {
	return MQTTConfig{
		TCPAddr:               ":1883",
		WSAddr:                ":8083",
		WSPath:                broker.DefaultWSPath,
		TLSAddr:               ":8883",
		MaxPacketSize:         broker.DefaultMaxPacketSize,
		MaxConnections:        broker.DefaultMaxConnections,
		ClientWritesPending:   broker.DefaultClientWritesPending,
		MaxInflight:           broker.DefaultMaxInflight,
		ReceiveMaximum:        broker.DefaultReceiveMaximum,
		SessionExpiry:         broker.DefaultSessionExpiry,
		MessageExpiry:         broker.DefaultMessageExpiry,
		ConnectTimeout:        broker.DefaultConnectTimeout,
		MinKeepalive:          hooks.DefaultMinKeepalive,
		MaxKeepalive:          hooks.DefaultMaxKeepalive,
		HookTimeout:           hooks.DefaultTimeout,
		RateLimit:             chat.DefaultRateLimit,
		RateBurst:             chat.DefaultRateBurst,
		MaxConnectionsPerUser: hooks.DefaultMaxConnectionsPerUser,
	}
}

// mqttMaxPacket is the largest packet MQTT can express (remaining length
// 268,435,455 plus a 5-byte fixed header).
const mqttMaxPacket = 268_435_460

func (c *MQTTConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("mqtt."+format, args...)) }
	tls := c.TLSCert != "" || c.TLSKey != ""
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert and mqtt.tls_key go together")
	}
	if c.TCPAddr == "" && c.WSAddr == "" && !(tls && (c.TLSAddr != "" || c.WSSAddr != "")) {
		bad("tcp_addr, ws_addr: at least one listener must be on")
	}
	if !strings.HasPrefix(c.WSPath, "/") {
		bad("ws_path %q must start with /", c.WSPath)
	}
	if c.MaxPacketSize < 1024 || c.MaxPacketSize > mqttMaxPacket {
		bad("max_packet_size %d: want 1024 to %d", c.MaxPacketSize, mqttMaxPacket)
	}
	if c.MaxConnections <= 0 {
		bad("max_connections must be positive")
	}
	if c.ClientWritesPending <= 0 || c.ClientWritesPending > 1<<20 {
		bad("client_writes_pending %d: want 1 to %d", c.ClientWritesPending, 1<<20)
	}
	if c.MaxInflight <= 0 || c.MaxInflight > math.MaxUint16 {
		bad("max_inflight %d: want 1 to 65535", c.MaxInflight)
	}
	if c.ReceiveMaximum <= 0 || c.ReceiveMaximum > math.MaxUint16 {
		bad("receive_maximum %d: want 1 to 65535", c.ReceiveMaximum)
	}
	if c.SessionExpiry < time.Second || c.SessionExpiry > math.MaxUint32*time.Second {
		bad("session_expiry %v: want 1s to %v", c.SessionExpiry, math.MaxUint32*time.Second)
	}
	if c.MessageExpiry < time.Second {
		bad("message_expiry must be at least 1s")
	}
	if c.ConnectTimeout <= 0 {
		bad("connect_timeout must be positive")
	}
	if c.MinKeepalive < time.Second || c.MaxKeepalive > math.MaxUint16*time.Second || c.MinKeepalive > c.MaxKeepalive {
		bad("min_keepalive %v, max_keepalive %v: want 1s <= min <= max <= %v", c.MinKeepalive, c.MaxKeepalive, math.MaxUint16*time.Second)
	}
	if c.HookTimeout <= 0 {
		bad("hook_timeout must be positive")
	}
	if c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) {
		bad("rate_limit %v: want 0 (off) or a positive number of messages per second", c.RateLimit)
	}
	if c.RateLimit > 0 && c.RateBurst < 1 {
		bad("rate_burst %d: want at least 1", c.RateBurst)
	}
	if c.MaxConnectionsPerUser < 0 {
		bad("max_connections_per_user must not be negative (0 is no cap)")
	}
	return errs
}

// PushConfig is the offline push webhook (docs/maxim.md §9). Without a URL
// push is off.
type PushConfig struct {
	// WebhookURL receives each notification as an HTTP POST of JSON.
	WebhookURL string `yaml:"webhook_url"`
	// AuthHeader, when set, is sent as the Authorization header.
	AuthHeader string `yaml:"auth_header"`
	// Timeout bounds one request.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how often a failed request (network error, 408, 429, 5xx)
	// is tried again, after Backoff, doubling.
	Retries int           `yaml:"retries"`
	Backoff time.Duration `yaml:"backoff"`
	// QueueSize bounds the notifications waiting; beyond it they are
	// dropped (logged), so push never slows chat delivery.
	QueueSize int `yaml:"queue_size"`
	// Workers is the number of concurrent requests.
	Workers int `yaml:"workers"`
}

// DefaultPushConfig returns push off, with the webhook defaults.
func DefaultPushConfig() PushConfig {
	return PushConfig{
		Timeout:   push.DefaultTimeout,
		Retries:   push.DefaultRetries,
		Backoff:   push.DefaultBackoff,
		QueueSize: push.DefaultQueueSize,
		Workers:   push.DefaultWorkers,
	}
}

func (c *PushConfig) validate() []error {
	var errs []error
	if c.WebhookURL != "" {
		u, err := url.Parse(c.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("push.webhook_url %q must be an http or https URL", c.WebhookURL))
		}
	}
	if c.Timeout <= 0 || c.Backoff <= 0 {
		errs = append(errs, errors.New("push.timeout and push.backoff must be positive"))
	}
	if c.Retries < 0 {
		errs = append(errs, errors.New("push.retries must not be negative"))
	}
	if c.QueueSize <= 0 || c.Workers <= 0 {
		errs = append(errs, errors.New("push.queue_size and push.workers must be positive"))
	}
	return errs
}
