package hooks_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/internal/mqttwire"
)

// The MQTT authorization matrix: every topic form a client can publish or
// subscribe to, from every relation of the sender to the target (friend,
// non-friend, group member, non-member, owner, room member, passenger,
// other user, itself, unknown), for MQTT 3.1.1 and 5, with the exact
// outcome: PUBACK or SUBACK code, the error event (or none), and what the
// intended recipient got (the message, or nothing at all).

// matrixWorld is the cast, all subscribed to their inboxes over MQTT 5.
//
//	me:      the user under test; friend of friend; member of g1 (owner
//	         own); owner of g2 (member friend); member of room r1 (with
//	         roomie); not in g3 or r2 (nonfriend is)
//	pas:     passenger p1, a recipient
//	other:   a user with no relation to me
type matrixWorld struct {
	e     *env
	inbox map[string]client // by identity key: user id, or "passenger:<id>"
}

func newMatrixWorld(t *testing.T, withTokens bool) *matrixWorld {
	e := newEnv(t, func(o *hooks.Options) { o.RateLimit = -1; o.NoClientKey = withTokens })
	if withTokens {
		e.tokens(t)
	}
	e.users(t, "me", "friend", "nonfriend", "own", "roomie", "other")
	e.friends(t, "me", "friend")
	e.seed(t, func(tx chat.Tx) error {
		for _, g := range []*chat.Group{
			{ID: "g1", Owner: "own", Members: []string{"me"}},
			{ID: "g2", Owner: "me", Members: []string{"friend"}},
			{ID: "g3", Owner: "own", Members: []string{"nonfriend"}},
		} {
			if err := tx.PutGroup(g); err != nil {
				return err
			}
		}
		for _, r := range []*chat.Room{{ID: "r1", Members: []string{"me", "roomie"}}, {ID: "r2", Members: []string{"nonfriend"}}} {
			if err := tx.PutRoom(r); err != nil {
				return err
			}
		}
		return tx.PutPassenger(&chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{}})
	})
	w := &matrixWorld{e: e, inbox: map[string]client{}}
	for _, u := range []string{"friend", "nonfriend", "own", "roomie", "other"} {
		w.inbox[u] = e.userV5(t, u+"-1", u)
	}
	p, _ := e.connectV5(t, "p1-1", "passenger:p1", e.password("passenger:p1"), 0, nil)
	p.Subscribe(t, "passengers/p1/#")
	w.inbox["passenger:p1"] = p
	return w
}

// identity returns the identity of a key of inbox.
func identity(key string) chat.Identity {
	if pid, ok := strings.CutPrefix(key, "passenger:"); ok {
		return chat.Passenger(pid)
	}
	return chat.User(key)
}

// quiet fails unless c, the client of key, received nothing before a
// marker published now (presence events aside).
func (w *matrixWorld) quiet(t *testing.T, key string, c client) {
	t.Helper()
	id := identity(key)
	m := w.e.marker(id)
	prefix := "users/"
	if id.Kind == chat.KindPassenger {
		prefix = "passengers/"
	}
	if got := nextEvent(t, c); got.Topic != prefix+id.ID+"/marker" || got.Payload != m {
		t.Fatalf("%s received %s %s", key, got.Topic, got.Payload)
	}
}

// pubCase is one publish of the matrix.
type pubCase struct {
	relation string
	topic    string
	// reason is the MQTT 5 PUBACK code; code the error event's errorCode,
	// 0 for an accepted say, or one of the broker's refusals, which send
	// no error event: codeACL, codeDollar, codeMalformed.
	reason byte
	code   int
	// to is the identity key of the intended recipient; "" when none
	// exists.
	to string
}

// Broker refusals (no error event, nothing delivered).
const (
	// codeACL: outside say/, refused by the ACL: MQTT 5 PUBACK 0x87,
	// MQTT 3.1.1 disconnected (it has no failing PUBACK).
	codeACL = -1
	// codeDollar: a $ topic, dropped by the broker's framer: MQTT 5
	// PUBACK 0x87; MQTT 3.1.1, which cannot refuse, is acknowledged
	// [MQTT-3.3.5-2], as Mosquitto does, and stays connected.
	codeDollar = -2
	// codeMalformed: a wildcard in a topic name [MQTT-3.3.2-2], a protocol
	// error: no PUBACK, the connection is closed.
	codeMalformed = -3
)

var userPublishes = []pubCase{
	{"friend", "say/friend/friend", 0, 0, "friend"},
	{"non-friend", "say/friend/nonfriend", 0x87, chat.CodeUnauthorized, "nonfriend"},
	{"unknown user", "say/friend/ghost", 0x87, chat.CodeUnauthorized, ""},
	{"itself as friend", "say/friend/me", 0x87, chat.CodeUnauthorized, ""},
	{"group member", "say/group/g1", 0, 0, "own"},
	{"group owner", "say/group/g2", 0, 0, "friend"},
	{"group non-member", "say/group/g3", 0x87, chat.CodeUnauthorized, "nonfriend"},
	{"unknown group", "say/group/nope", 0x90, chat.CodeNotFound, ""},
	{"room member", "say/room/r1", 0, 0, "roomie"},
	{"room non-member", "say/room/r2", 0x87, chat.CodeUnauthorized, "nonfriend"},
	{"unknown room", "say/room/nope", 0x90, chat.CodeNotFound, ""},
	{"passenger", "say/passenger/p1", 0, 0, "passenger:p1"},
	{"unknown passenger", "say/passenger/ghost", 0x90, chat.CodeNotFound, ""},
	{"other user (stranger)", "say/stranger/other", 0, 0, "other"},
	{"itself as stranger", "say/stranger/me", 0x90, chat.CodeConflict, ""},
	{"unknown stranger", "say/stranger/ghost", 0x90, chat.CodeNotFound, ""},
	{"user via passenger topic", "say/user/friend", 0x87, chat.CodeUnauthorized, "friend"},
	{"malformed kind", "say/friends/friend", 0x90, chat.CodeInvalid, "friend"},
	{"extra level", "say/friend/friend/x", 0x90, chat.CodeInvalid, "friend"},
	{"wildcard id", "say/friend/+", 0, codeMalformed, "friend"},
	{"multi-level wildcard", "say/#", 0, codeMalformed, ""},
	{"friend's inbox", "users/friend/message", 0x87, codeACL, "friend"},
	{"owner's inbox", "users/own/sys", 0x87, codeACL, "own"},
	{"own inbox", "users/me/message", 0x87, codeACL, ""},
	{"passenger's inbox", "passengers/p1/message", 0x87, codeACL, "passenger:p1"},
	{"$SYS", "$SYS/broker/clients", 0x87, codeDollar, ""},
	{"shared subscription topic", "$share/g/users/friend/message", 0x87, codeDollar, "friend"},
	{"other topic", "chat/room", 0x87, codeACL, ""},
	{"say without level", "say", 0x87, codeACL, ""},
}

var passengerPublishes = []pubCase{
	{"user", "say/user/other", 0, 0, "other"},
	{"unknown user", "say/user/ghost", 0x90, chat.CodeNotFound, ""},
	{"friend topic", "say/friend/friend", 0x87, chat.CodeUnauthorized, "friend"},
	{"group topic", "say/group/g1", 0x87, chat.CodeUnauthorized, "own"},
	{"room topic", "say/room/r1", 0x87, chat.CodeUnauthorized, "roomie"},
	{"passenger topic", "say/passenger/p1", 0x87, chat.CodeUnauthorized, "passenger:p1"},
	{"stranger topic", "say/stranger/other", 0x87, chat.CodeUnauthorized, "other"},
	{"user's inbox", "users/other/message", 0x87, codeACL, "other"},
	{"other passenger's inbox", "passengers/p1/message", 0x87, codeACL, "passenger:p1"},
}

// subCase is one subscription of the matrix and its outcome.
type subCase struct {
	filter string
	result int
}

const (
	subRefused   = iota // SUBACK 0x87 (MQTT 5) or 0x80 (3.1.1)
	subGranted          // SUBACK QoS 1
	subMalformed        // not a valid filter: the connection is closed
)

var userSubscribes = []subCase{
	{"users/me/#", subGranted}, {"users/me/message", subGranted}, {"users/me/+", subGranted}, {"users/me", subGranted},
	{"users/friend/#", subRefused}, {"users/own/#", subRefused}, {"users/roomie/message", subRefused}, {"users/other/+", subRefused},
	{"users/+/message", subRefused}, {"users/#", subRefused}, {"#", subRefused}, {"+/me/#", subRefused}, {"+/+/+", subRefused},
	{"users/mex/#", subRefused}, {"users/m/#", subRefused}, {"users/me#", subMalformed}, {"users/#/me", subMalformed},
	{"passengers/p1/#", subRefused}, {"passengers/me/#", subRefused}, {"passengers/#", subRefused},
	{"$SYS/#", subRefused}, {"$share/g/users/me/#", subRefused}, {"$share/g/users/friend/#", subRefused},
	{"say/#", subRefused}, {"say/friend/friend", subRefused}, {"say/group/g1", subRefused},
}

var passengerSubscribes = []subCase{
	{"passengers/p2/#", subGranted}, {"passengers/p2/message", subGranted},
	{"passengers/p1/#", subRefused}, {"passengers/+/message", subRefused}, {"passengers/#", subRefused},
	{"users/p2/#", subRefused}, {"users/other/#", subRefused}, {"#", subRefused}, {"$SYS/#", subRefused}, {"say/#", subRefused},
}

// matrixPublishers are the senders of the publish cases: the user me and
// the passenger p2.
var matrixPublishers = []struct {
	key   string
	cases []pubCase
}{{"me", userPublishes}, {"passenger:p2", passengerPublishes}}

// connectAs connects id, a user or passenger of the matrix, as clientID.
func (w *matrixWorld) connectAs(t *testing.T, connect connectFn, id chat.Identity, clientID string) client {
	t.Helper()
	if id.Kind == chat.KindUser {
		return connect(w.e, t, clientID, id.ID)
	}
	return w.e.passenger(t, connect, clientID, id.ID)
}

// Ensure the publish half of the matrix.
func TestAuthzMatrix_Publish(t *testing.T) {
	cells := 0
	loginModes(t, func(t *testing.T, withTokens bool) {
		versions(t, func(t *testing.T, connect connectFn) {
			w := newMatrixWorld(t, withTokens)
			for _, sender := range matrixPublishers {
				n := 0
				login := func() client {
					n++
					id := identity(sender.key)
					return w.connectAs(t, connect, id, fmt.Sprintf("%s-%d", id.ID, n))
				}
				c := login()
				for _, pc := range sender.cases {
					t.Run(sender.key+"/"+pc.relation, func(t *testing.T) {
						cells++
						w.publish(t, c, sender.key, pc)
					})

				}
			}
		})
	})
	t.Logf("%d publish cells (signature and token logins)", cells)
}

// publish runs one publish case from c, the client of sender.
func (w *matrixWorld) publish(t *testing.T, c client, sender string, pc pubCase) {
	t.Helper()
	payload := `{"content":{"media":0,"body":"matrix ` + pc.topic + `"},"ack":7}`
	v := byte(c.Version())
	switch {
	case pc.code == codeMalformed:
		// The broker closes the connection without a PUBACK.
		if !w.rawClosed(t, v, sender, rawPublish(v, pc.topic, payload)) {
			t.Fatal("the connection is still open")
		}
	case pc.code == codeACL && v < 5:
		if !w.rawClosed(t, v, sender, rawPublish(v, pc.topic, payload)) {
			t.Fatal("the connection is still open")
		}
	case pc.code == codeDollar && v < 5:
		if w.rawClosed(t, v, sender, rawPublish(v, pc.topic, payload)) {
			t.Fatal("closed, want a PUBACK")
		}
	default:
		rc := c.Publish(t, pc.topic, payload)
		if c.Version() == 5 && rc != pc.reason {
			t.Errorf("PUBACK %#x, want %#x", rc, pc.reason)
		}
		// The sender's own events: an ack, or the error event, then the
		// marker (nothing else).
		id := identity(sender)
		m := w.e.marker(id)
		inbox := "users/" + id.ID
		if id.Kind == chat.KindPassenger {
			inbox = "passengers/" + id.ID
		}
		got := nextEvent(t, c)
		switch {
		case pc.code == 0:
			if got.Topic != inbox+"/ack" {
				t.Fatalf("sender got %s %s, want the ack", got.Topic, got.Payload)
			}
			got = nextEvent(t, c)
		case pc.code > 0:
			var ev chat.ErrorEvent
			if got.Topic != inbox+"/error" || json.Unmarshal([]byte(got.Payload), &ev) != nil || ev.ErrorCode != pc.code || ev.Ack == nil || *ev.Ack != 7 {
				t.Fatalf("sender got %s %s, want error %d with ack 7", got.Topic, got.Payload, pc.code)
			}
			got = nextEvent(t, c)
		}
		if got.Topic != inbox+"/marker" || got.Payload != m {
			t.Fatalf("sender got %s %s, want only the marker", got.Topic, got.Payload)
		}
	}
	if pc.to == "" {
		return
	}
	rc := w.inbox[pc.to]
	if pc.code != 0 {
		w.quiet(t, pc.to, rc)
		return
	}
	got := nextEvent(t, rc)
	var ev chat.MessageEvent
	if !strings.HasSuffix(got.Topic, "/message") || json.Unmarshal([]byte(got.Payload), &ev) != nil ||
		ev.From.ID != identity(sender).ID || ev.Content.Body != "matrix "+pc.topic {
		t.Fatalf("%s got %s %s, want the message", pc.to, got.Topic, got.Payload)
	}
	w.quiet(t, pc.to, rc)
}

// Ensure the subscribe half of the matrix: exactly the own inbox is
// granted, and nothing published to anyone else reaches a refused filter.
func TestAuthzMatrix_Subscribe(t *testing.T) {
	cells := 0
	loginModes(t, func(t *testing.T, withTokens bool) {
		versions(t, func(t *testing.T, connect connectFn) {
			w := newMatrixWorld(t, withTokens)
			for _, sub := range []struct {
				key   string
				cases []subCase
			}{{"me", userSubscribes}, {"passenger:p2", passengerSubscribes}} {
				id := identity(sub.key)
				n := 0
				login := func() client {
					n++
					return w.connectAs(t, connect, id, fmt.Sprintf("%s-s%d", id.ID, n))
				}
				c := login()
				for _, sc := range sub.cases {
					cells++
					if sc.result == subMalformed {
						v := byte(c.Version())
						if !w.rawClosed(t, v, sub.key, rawSubscribe(v, sc.filter)) {
							t.Errorf("%s subscribe %q: the connection is still open", sub.key, sc.filter)
						}
						continue
					}
					want := byte(0x87)
					switch {
					case sc.result == subGranted:
						want = 1
					case c.Version() < 5:
						want = 0x80
					}
					if got := c.Subscribe(t, sc.filter); got != want {
						t.Errorf("%s subscribe %q: %#x, want %#x", sub.key, sc.filter, got, want)
					}
				}
				// Events for everyone else, then a marker for c's identity:
				// only the marker arrives (once per granted filter is fine).
				for key := range w.inbox {
					w.e.svc.Publisher.Publish(identity(key), "message", []byte(`"not for `+sub.key+`"`), "")
				}
				for _, u := range []string{"me", "friend", "own", "other"} {
					if chat.User(u) != id {
						w.e.svc.Publisher.Publish(chat.User(u), "sys", []byte(`"not for you"`), "")
					}
				}
				m := w.e.marker(id)
				if got := nextEvent(t, c); !strings.HasSuffix(got.Topic, "/marker") || got.Payload != m {
					t.Fatalf("%s received %s %s through a refused filter", sub.key, got.Topic, got.Payload)
				}
			}
		})
	})
	t.Logf("%d subscribe cells (signature and token logins)", cells)
}

// loginModes runs f with signature logins (client_key_login on) and with
// token logins (client_key_login off).
func loginModes(t *testing.T, f func(t *testing.T, withTokens bool)) {
	t.Run("signature", func(t *testing.T) { f(t, false) })
	t.Run("token", func(t *testing.T) { f(t, true) })
}

// rawClosed logs in as username over a raw connection of version (4 or
// 5), sends pkt and reports whether the broker closed the connection
// without acknowledging it (an MQTT 5 DISCONNECT before the close is
// fine). Client libraries refuse to send malformed packets themselves.
func (w *matrixWorld) rawClosed(t *testing.T, version byte, username string, pkt []byte) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", w.e.addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	body := append(str("MQTT"), version, 0xC2, 0, 60)
	if version == 5 {
		body = append(body, 0) // no properties
	}
	body = append(body, str(fmt.Sprintf("raw-%d", w.e.seq.Add(1)))...)
	body = append(body, str(username)...)
	body = append(body, str(w.e.password(username))...)
	connect := mqttwire.Packet(0x10, body)
	if _, err := c.Write(append(connect, pkt...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	r := bufio.NewReader(c)
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr[0] != 0x20 {
		t.Fatalf("CONNACK: %x, %v", hdr, err)
	}
	ack := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, ack); err != nil || ack[1] != 0 {
		t.Fatalf("CONNACK %x: %v", ack, err)
	}
	first, err := r.ReadByte()
	switch {
	case err != nil:
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return false
		}
		return true // closed
	case first>>4 == 4 || first>>4 == 5 || first>>4 == 9: // PUBACK, PUBREC, SUBACK
		return false
	case first != 0xE0:
		t.Errorf("got packet %#x before the close, want nothing or a DISCONNECT", first)
	}
	_, err = io.Copy(io.Discard, r)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// rawSubscribe is a SUBSCRIBE of filter at QoS 1, packet id 1.
func rawSubscribe(version byte, filter string) []byte {
	body := []byte{0, 1}
	if version == 5 {
		body = append(body, 0)
	}
	body = append(body, byte(len(filter)>>8), byte(len(filter)))
	body = append(body, filter...)
	body = append(body, 1)
	return mqttwire.Packet(0x82, body)
}

// rawPublish is a QoS 1 PUBLISH of payload on topic, packet id 1.
func rawPublish(version byte, topic, payload string) []byte {
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	body = append(body, 0, 1)
	if version == 5 {
		body = append(body, 0)
	}
	body = append(body, payload...)
	return mqttwire.Packet(0x32, body)
}

// Ensure every login credential gets the documented CONNACK (docs/maxim.md
// §2.4–§2.5), MQTT 3.1.1 and 5, with client_key_login on and off: tokens
// log in as their subject only; expired, revoked, forged and foreign
// tokens are bad credentials (0x86 / 4); a banned user is 0x8A / 5; the
// client key works only while client_key_login is on, the master key
// always. A refused login leaves no session.
func TestAuthzMatrix_Login(t *testing.T) {
	cells := 0
	for _, keyLogin := range []bool{true, false} {
		t.Run(fmt.Sprintf("client_key_login=%v", keyLogin), func(t *testing.T) {
			e := newEnv(t, func(o *hooks.Options) { o.NoClientKey = !keyLogin })
			e.users(t, "me", "friend", "banned", "revoked")
			ctx := context.Background()
			now := time.Now()
			oldToken := mint(t, "revoked", now.Add(-time.Minute), now.Add(time.Hour))
			if _, err := e.svc.RevokeTokens(ctx, chat.User("revoked")); err != nil {
				t.Fatal(err)
			}
			acc, err := e.svc.Account(ctx, chat.User("revoked"))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the clock past the revocation", func() bool { return time.Now().UnixMilli() > acc.NotBefore })
			if _, err := e.svc.BanIdentity(ctx, chat.User("banned"), 0, "matrix"); err != nil {
				t.Fatal(err)
			}
			type cell struct {
				name, username, password string
				v5                       byte // CONNACK reason; the 3.1.1 code follows
			}
			v3Of := map[byte]byte{0: 0, 0x86: 4, 0x8A: 5}
			keyRC := byte(0)
			if !keyLogin {
				keyRC = 0x86
			}
			hour := now.Add(time.Hour)
			table := []cell{
				{"own token", "me", mint(t, "me", now, hour), 0},
				{"passenger's own token", "passenger:p9", mint(t, "passenger:p9", now, hour), 0},
				{"another user's token", "me", mint(t, "friend", now, hour), 0x86},
				{"a user's token as its passenger namesake", "passenger:me", mint(t, "me", now, hour), 0x86},
				{"expired token", "me", mint(t, "me", now.Add(-2*time.Hour), now.Add(-time.Hour)), 0x86},
				{"revoked token", "revoked", oldToken, 0x86},
				{"token minted after the revocation", "revoked", mint(t, "revoked", time.Now(), hour), 0},
				{"forged token", "me", mint(t, "me", now, hour) + "x", 0x86},
				{"banned user's token", "banned", mint(t, "banned", now, hour), 0x8A},
				{"banned user's signature", "banned", chat.Sign(testMaster, now.UnixMilli()), 0x8A},
				{"client key signature", "me", sign(), keyRC},
				{"master key signature", "me", chat.Sign(testMaster, now.UnixMilli()), 0},
			}
			for _, c := range table {
				for _, v := range []int{4, 5} {
					cid := fmt.Sprintf("login-%d", e.seq.Add(1))
					if v == 5 {
						cl, _ := e.connectV5(t, cid, c.username, c.password, c.v5, nil)
						if cl != nil {
							cl.Close()
						}
					} else {
						cl := e.connectV3(t, cid, c.username, c.password, true, v3Of[c.v5], nil)
						if cl != nil {
							cl.Close()
						}
					}
					if c.v5 != 0 {
						if _, ok := e.srv.MQTT().Clients.Get(cid); ok {
							waitFor(t, "refused session "+cid+" gone", func() bool { _, ok := e.srv.MQTT().Clients.Get(cid); return !ok })
						}
					}
					cells++
				}
			}
			t.Logf("%d login cells", len(table)*2)
		})
	}
	t.Logf("%d login cells in all", cells)
}
