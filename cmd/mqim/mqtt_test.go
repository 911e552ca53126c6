package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// Ensure the real-time layer as cmd/mqim wires it, in process: the bound
// addresses are readable, a friend message sent over WebSocket is in REST
// history once PUBACKed, reaches the friend over TCP, and an offline friend
// with a bound install gets the push webhook.
func TestStartMQTT_Wiring(t *testing.T) {
	pushed := make(chan chat.PushNotification, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n chat.PushNotification
		_ = json.NewDecoder(r.Body).Decode(&n)
		pushed <- n
	}))
	defer hook.Close()

	m := NewMain()
	m.Out = io.Discard
	m.Log = zerolog.New(zerolog.NewTestWriter(t))
	c := &m.Config
	c.Log.Level = "warn"
	c.DataDir = t.TempDir()
	c.HTTP.Addr = "127.0.0.1:0"
	c.MQTT.TCPAddr, c.MQTT.WSAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.Push.WebhookURL = hook.URL
	c.Push.Backoff = time.Millisecond
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tcp, ws := m.mqttAddr(broker.ListenerTCP), m.mqttAddr(broker.ListenerWS)
	if tcp == nil || ws == nil || m.mqttAddr(broker.ListenerTLS) != nil {
		t.Fatalf("addresses: tcp %v ws %v tls %v", tcp, ws, m.mqttAddr(broker.ListenerTLS))
	}
	app, key := c.App.ID, c.App.Key
	rest := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+m.HTTP.Addr().String()+path, nil)
		req.Header.Set("X-ML-AppId", app)
		req.Header.Set("X-ML-Request-Sign", chat.Sign(key, time.Now().UnixMilli()))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, b := rest("POST", "/ctx/alice/friends/bob"); st != 201 {
		t.Fatalf("make friends: %d %s", st, b)
	}
	connect := func(url, id, password string) (paho.Client, chan paho.Message) {
		t.Helper()
		msgs := make(chan paho.Message, 10)
		cl := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id + "-1").SetUsername(id).SetPassword(password).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
			SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) { msgs <- msg }))
		if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		if tok := cl.Subscribe("users/"+id+"/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		return cl, msgs
	}
	// bob binds an install and goes away: he is offline with push.
	auth, _ := json.Marshal(map[string]any{"app": app, "sign": chat.Sign(key, time.Now().UnixMilli()), "client": "bob", "install": "bob-iphone"})
	bob, _ := connect("tcp://"+tcp.String(), "bob", string(auth))
	bob.Disconnect(100)
	// The server handles the DISCONNECT on its own goroutine: wait until bob
	// is offline, or the next message would find him online and not push.
	testwait.Until(t, "bob to be offline after his DISCONNECT", 5*time.Second, func() bool {
		return !m.Service.Presence.Online(chat.User("bob"))
	})

	alice, _ := connect("ws://"+ws.String()+"/mqtt", "alice", chat.Sign(key, time.Now().UnixMilli()))
	defer alice.Disconnect(0)
	tok := alice.Publish("say/friend/bob", 1, false, `{"content":{"media":0,"body":"hi bob"},"push":{"prefix":"alice: "}}`)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	st, hist := rest("GET", "/ctx/bob/friends/alice/chats")
	if st != 200 || !strings.Contains(hist, `"speaker":"alice"`) || !strings.Contains(hist, "hi bob") {
		t.Fatalf("history right after PUBACK: %d %s", st, hist)
	}
	select {
	case n := <-pushed:
		if n.User != "bob" || n.Alert != "alice: hi bob" || len(n.Installs) != 1 || n.Installs[0] != "bob-iphone" || !strings.Contains(n.Parrot, `"hi bob"`) {
			t.Errorf("push = %+v", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no push")
	}

	// bob comes back over TCP and gets the next message live.
	bob, msgs := connect("tcp://"+tcp.String(), "bob", chat.Sign(key, time.Now().UnixMilli()))
	defer bob.Disconnect(0)
	tok = alice.Publish("say/friend/bob", 1, false, `{"content":{"body":"welcome back"}}`)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case msg := <-msgs:
		if msg.Topic() != "users/bob/message" || !strings.Contains(string(msg.Payload()), "welcome back") {
			t.Errorf("bob got %s %s", msg.Topic(), msg.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bob got nothing")
	}
}

// Ensure the MQTT and push settings are validated.
func TestMQTTConfig_Validate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
	}{
		{"NoListener", func(c *Config) { c.MQTT.TCPAddr, c.MQTT.WSAddr = "", "" }},
		{"CertWithoutKey", func(c *Config) { c.MQTT.TLSCert = "cert.pem" }},
		{"WSPath", func(c *Config) { c.MQTT.WSPath = "mqtt" }},
		{"TinyPacket", func(c *Config) { c.MQTT.MaxPacketSize = 10 }},
		{"HugePacket", func(c *Config) { c.MQTT.MaxPacketSize = 1 << 30 }},
		{"NoConnections", func(c *Config) { c.MQTT.MaxConnections = 0 }},
		{"Pending", func(c *Config) { c.MQTT.ClientWritesPending = 0 }},
		{"Inflight", func(c *Config) { c.MQTT.MaxInflight = 70000 }},
		{"ReceiveMaximum", func(c *Config) { c.MQTT.ReceiveMaximum = 0 }},
		{"SessionExpiry", func(c *Config) { c.MQTT.SessionExpiry = 0 }},
		{"MessageExpiry", func(c *Config) { c.MQTT.MessageExpiry = time.Millisecond }},
		{"ConnectTimeout", func(c *Config) { c.MQTT.ConnectTimeout = 0 }},
		{"KeepaliveOrder", func(c *Config) { c.MQTT.MinKeepalive, c.MQTT.MaxKeepalive = time.Minute, time.Second }},
		{"KeepaliveMax", func(c *Config) { c.MQTT.MaxKeepalive = 24 * time.Hour }},
		{"HookTimeout", func(c *Config) { c.MQTT.HookTimeout = 0 }},
		{"PushURL", func(c *Config) { c.Push.WebhookURL = "ftp://x" }},
		{"PushRetries", func(c *Config) { c.Push.Retries = -1 }},
		{"PushQueue", func(c *Config) { c.Push.QueueSize = 0 }},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", tt.name)
		}
	}
	c := DefaultConfig()
	c.MQTT.TCPAddr, c.MQTT.WSAddr = "", ""
	c.MQTT.TLSCert, c.MQTT.TLSKey = "c.pem", "k.pem"
	if err := c.Validate(); err != nil {
		t.Errorf("TLS only: %v", err)
	}
	if d := DefaultConfig(); d.Validate() != nil {
		t.Errorf("defaults: %v", d.Validate())
	}
}
