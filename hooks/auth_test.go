package hooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
)

func authJSON(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

// Ensure the CONNECT login of docs/protocol.md §2: signatures and auth objects
// are accepted, everything else refused with "bad user name or password"
// (3.1.1 code 4, MQTT 5 0x86) or "not authorized" (5 / 0x87).
func TestAuth_Login(t *testing.T) {
	e := newEnv(t, nil)
	old := chat.Sign(testKey, time.Now().Add(-time.Hour).UnixMilli())
	tests := []struct {
		name     string
		username string
		password string
		v3, v5   byte
	}{
		{"Signature", "neo", sign(), 0, 0},
		{"MasterKeySignature", "neo", chat.Sign(testMaster, time.Now().UnixMilli()), 0, 0},
		{"PassengerSignature", "passenger:visitor", sign(), 0, 0},
		{"AuthObject", "neo", authJSON(map[string]any{"app": testApp, "sign": sign(), "client": "neo"}), 0, 0},
		{"AuthObjectNoClient", "neo", authJSON(map[string]any{"app": testApp, "sign": sign()}), 0, 0},
		{"PassengerObject", "passenger:visitor", authJSON(map[string]any{"app": testApp, "sign": sign(), "passenger": map[string]any{"id": "visitor"}}), 0, 0},
		{"BadSignature", "neo", "0123456789abcdef0123456789abcdef,1", 4, 0x86},
		{"ExpiredSignature", "neo", old, 4, 0x86},
		{"OtherKey", "neo", chat.Sign("not-our-key", time.Now().UnixMilli()), 4, 0x86},
		{"RawKey", "neo", testKey, 4, 0x86},
		{"NoPassword", "neo", "", 4, 0x86},
		{"BadUsername", "neo/x", sign(), 4, 0x86},
		{"EmptyUsername", "", sign(), 4, 0x86},
		{"MalformedObject", "neo", `{"app":`, 4, 0x86},
		{"WrongApp", "neo", authJSON(map[string]any{"app": "other", "sign": sign(), "client": "neo"}), 4, 0x86},
		{"ObjectBadSign", "neo", authJSON(map[string]any{"app": testApp, "sign": old, "client": "neo"}), 4, 0x86},
		{"ClientMismatch", "neo", authJSON(map[string]any{"app": testApp, "sign": sign(), "client": "trinity"}), 5, 0x87},
		{"PassengerIDMismatch", "passenger:visitor", authJSON(map[string]any{"app": testApp, "sign": sign(), "passenger": map[string]any{"id": "other"}}), 5, 0x87},
		{"PassengerObjectAsUser", "neo", authJSON(map[string]any{"app": testApp, "sign": sign(), "passenger": map[string]any{}}), 5, 0x87},
		{"UserObjectAsPassenger", "passenger:visitor", authJSON(map[string]any{"app": testApp, "sign": sign(), "client": "visitor"}), 5, 0x87},
		{"UsernamePasswordMode", "neo", authJSON(map[string]any{"app": testApp, "sign": sign(), "username": "neo", "password": "x"}), 5, 0x87},
		{"PhoneMode", "neo", authJSON(map[string]any{"app": testApp, "sign": sign(), "phone": "123", "password": "0000"}), 5, 0x87},
		{"OAuthMode", "neo", authJSON(map[string]any{"app": testApp, "sign": sign(), "oauth": map[string]any{"weibo": map[string]any{}}}), 5, 0x87},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := e.connectV3(t, "v3-"+tt.name, tt.username, tt.password, true, tt.v3, nil); c != nil {
				c.Close()
			}
			noPassword := func(c *paho5.Connect) { c.PasswordFlag = len(c.Password) > 0 }
			if c, _ := e.connectV5(t, "v5-"+tt.name, tt.username, tt.password, tt.v5, noPassword); c != nil {
				c.Close()
			}
		})
	}
}

// lockedLog collects log lines written from the broker's goroutines.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Ensure a login whose signature carries a seconds timestamp is refused
// with the hint to use milliseconds: in the MQTT 5 CONNACK reason string
// and in the "connect refused" log line, for a bare signature and for the
// auth object. A millisecond signature out of tolerance gets no hint.
func TestAuth_SecondsHint(t *testing.T) {
	var log lockedLog
	e := newEnv(t, func(o *hooks.Options) { o.Log = zerolog.New(&log) })
	secs := chat.Sign(testKey, time.Now().Unix())
	for _, tc := range []struct{ name, password string }{
		{"Signature", secs},
		{"AuthObject", authJSON(map[string]any{"app": testApp, "sign": secs, "client": "neo"})},
	} {
		_, ack := e.connectV5(t, "v5-secs-"+tc.name, "neo", tc.password, 0x86, nil)
		if ack.Properties == nil || !strings.Contains(ack.Properties.ReasonString, chat.SecondsHint) {
			t.Errorf("%s: CONNACK reason string %+v lacks %q", tc.name, ack.Properties, chat.SecondsHint)
		}
		e.connectV3(t, "v3-secs-"+tc.name, "neo", tc.password, true, 4, nil)
	}
	waitFor(t, "four refusals with the hint in the log", func() bool {
		n := 0
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, `"connect refused"`) && strings.Contains(line, chat.SecondsHint) {
				n++
			}
		}
		return n == 4
	})
	_, ack := e.connectV5(t, "v5-ms", "neo", chat.Sign(testKey, time.Now().Add(-time.Hour).UnixMilli()), 0x86, nil)
	if ack.Properties == nil || ack.Properties.ReasonString == "" || strings.Contains(ack.Properties.ReasonString, chat.SecondsHint) {
		t.Errorf("old millisecond signature: reason string %+v, want one without the hint", ack.Properties)
	}
}

// Ensure a raw key is accepted when configured.
func TestAuth_RawKeyAllowed(t *testing.T) {
	e := newEnv(t, func(o *hooks.Options) { o.AllowRawKey = true })
	e.connectV3(t, "c1", "neo", testKey, true, 0, nil)
	e.connectV3(t, "c2", "neo", "wrong-key", true, 4, nil)
}

// Ensure a login creates the user, binds its install once and records
// notifyAll; a passenger login creates the passenger with its attributes.
func TestAuth_LoginEffects(t *testing.T) {
	e := newEnv(t, nil)
	pw := authJSON(map[string]any{"app": testApp, "sign": sign(), "client": "neo", "install": "inst-1", "notifyAll": true})
	e.connectV3(t, "n1", "neo", pw, true, 0, nil)
	e.connectV3(t, "n2", "neo", pw, true, 0, nil)
	e.connectV3(t, "p1", "passenger:visitor", authJSON(map[string]any{
		"app": testApp, "sign": sign(), "passenger": map[string]any{"id": "visitor", "name": "Wang", "age": 28},
	}), true, 0, nil)
	err := e.db.View(context.Background(), func(tx chat.Tx) error {
		u, err := tx.User("neo")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(u.Installs, []string{"inst-1"}) {
			t.Errorf("installs = %v", u.Installs)
		}
		p, err := tx.Passenger("visitor")
		if err != nil {
			return err
		}
		if string(p.Attributes["name"]) != `"Wang"` || string(p.Attributes["age"]) != "28" || p.Attributes["id"] != nil {
			t.Errorf("passenger attributes = %s", p.Attributes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Sessions register in OnSessionEstablished, just after the CONNACK the
	// client has already seen.
	waitFor(t, "neo's two sessions", func() bool { return e.svc.Presence.Count(chat.User("neo")) == 2 })
}

// Ensure CONNECT with a will is refused (not authorized), and no will is
// ever delivered: the refused client's will topic stays silent.
func TestAuth_WillRefused(t *testing.T) {
	e := newEnv(t, nil)
	bob := e.userV3(t, "b1", "bob")
	e.connectV3(t, "w3", "mallory", sign(), true, 5, func(o *paho3.ClientOptions) {
		o.SetWill("users/bob/message", `{"from":{"id":"admin","type":0}}`, 1, false)
	})
	e.connectV5(t, "w5", "mallory", sign(), 0x87, func(c *paho5.Connect) {
		c.WillMessage = &paho5.WillMessage{Topic: "users/bob/message", QoS: 1, Payload: []byte(`"forged"`)}
	})
	e.connectV5(t, "w5r", "mallory", sign(), 0x87, func(c *paho5.Connect) {
		c.WillMessage = &paho5.WillMessage{Topic: "say/friend/bob", Retain: true, Payload: []byte(`{"content":{"body":"x"}}`)}
	})
	m := e.marker(chat.User("bob"))
	expect(t, bob, "users/bob/marker", m)
}

// Ensure a client id in use by another identity (live, or a persisted
// session) is refused and the owner's session is untouched; the same
// identity may take its own session over without blinking offline.
func TestAuth_ClientIDTakeover(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	bob := e.userV3(t, "bob-1", "bob")
	alice := e.userV3(t, "alice-phone", "alice")
	expect(t, bob, "users/bob/online", `"alice"`)

	// Live session: refused for both versions, alice keeps receiving.
	e.connectV3(t, "alice-phone", "mallory", sign(), true, 5, nil)
	e.connectV3(t, "alice-phone", "mallory", sign(), false, 5, nil)
	e.connectV5(t, "alice-phone", "mallory", sign(), 0x87, nil)
	m := e.marker(chat.User("alice"))
	expect(t, alice, "users/alice/marker", m)
	if !e.svc.Presence.HasSession(chat.User("alice"), "alice-phone") {
		t.Fatal("alice lost her session")
	}

	// Persisted session: alice disconnects with clean=false; mallory still
	// cannot inherit it (nor its subscriptions or queued messages).
	alice.Close()
	expect(t, bob, "users/bob/offline", `"alice"`)
	persisted := e.connectV3(t, "alice-tab", "alice", sign(), false, 0, nil)
	persisted.Subscribe(t, "users/alice/#")
	persisted.Close()
	expect(t, bob, "users/bob/online", `"alice"`)
	expect(t, bob, "users/bob/offline", `"alice"`)
	e.svc.Publisher.Publish(chat.User("alice"), "sys", []byte(`"queued for alice"`), "")
	e.connectV3(t, "alice-tab", "mallory", sign(), false, 5, nil)
	e.connectV5(t, "alice-tab", "mallory", sign(), 0x87, func(c *paho5.Connect) { c.CleanStart = false })
	// The inline client's id is not a session anyone may take.
	e.connectV3(t, "inline", "mallory", sign(), true, 5, nil)

	// Alice gets her queued message back.
	again := e.connectV3(t, "alice-tab", "alice", sign(), false, 0, nil)
	expect(t, again, "users/alice/sys", `"queued for alice"`)
	expect(t, bob, "users/bob/online", `"alice"`)

	// Same identity, same client id: a takeover, not a new session.
	e.connectV3(t, "alice-tab", "alice", sign(), false, 0, nil)
	waitFor(t, "the old connection to end", func() bool { return !again.c.IsConnected() })
	m = e.marker(chat.User("bob"))
	expect(t, bob, "users/bob/marker", m) // no offline/online blink
	if n := e.svc.Presence.Count(chat.User("alice")); n != 1 {
		t.Errorf("alice sessions after takeover = %d, want 1", n)
	}
}

// Ensure the keepalive policy: MQTT 5 clients outside the bounds are told
// the server's value; MQTT 3.1.1 keepalive 0 or above the maximum is
// refused (identifier rejected), below the minimum held to the minimum.
func TestAuth_Keepalive(t *testing.T) {
	e := newEnv(t, func(o *hooks.Options) { o.MinKeepalive = 10 * time.Second; o.MaxKeepalive = 100 * time.Second })
	for _, tt := range []struct {
		ka   uint16
		want uint16 // 0: none sent
	}{{0, 100}, {1000, 100}, {5, 10}, {30, 0}} {
		c, ca := e.connectV5(t, "k5", "neo", sign(), 0, func(c *paho5.Connect) { c.KeepAlive = tt.ka })
		var got uint16
		if ca.Properties != nil && ca.Properties.ServerKeepAlive != nil {
			got = *ca.Properties.ServerKeepAlive
		}
		if got != tt.want {
			t.Errorf("keepalive %d: server keepalive %d, want %d", tt.ka, got, tt.want)
		}
		c.Close()
	}
	e.connectV3(t, "k3a", "neo", sign(), true, 2, func(o *paho3.ClientOptions) { o.SetKeepAlive(0) })
	e.connectV3(t, "k3b", "neo", sign(), true, 2, func(o *paho3.ClientOptions) { o.SetKeepAlive(101 * time.Second) })
	e.connectV3(t, "k3c", "neo", sign(), true, 0, func(o *paho3.ClientOptions) { o.SetKeepAlive(5 * time.Second) })
}
