package hooks_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/internal/mqttwire"
)

// rawSession is a raw MQTT connection past its CONNACK.
type rawSession struct {
	c net.Conn
	r *bufio.Reader
}

// rawLogin connects with version (4 or 5) and returns the session once
// the CONNACK accepted it.
func rawLogin(t *testing.T, e *env, version byte, clientID, username, password string) *rawSession {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	body := append(str("MQTT"), version, 0xC2, 0, 60)
	if version == 5 {
		body = append(body, 0)
	}
	body = append(body, str(clientID)...)
	body = append(body, str(username)...)
	body = append(body, str(password)...)
	if _, err := c.Write(mqttwire.Packet(0x10, body)); err != nil {
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
	return &rawSession{c: c, r: r}
}

// ended reads until the server ends the session and returns the MQTT 5
// DISCONNECT reason (-1: closed without one, as for 3.1.1).
func (s *rawSession) ended(t *testing.T) int {
	t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(wait))
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the session was not ended")
			}
			return -1
		}
		n, err := s.r.ReadByte() // remaining length: short packets only here
		if err != nil {
			return -1
		}
		rest := make([]byte, n)
		if _, err := io.ReadFull(s.r, rest); err != nil {
			return -1
		}
		if b == 0xE0 {
			if len(rest) == 0 {
				return 0
			}
			return int(rest[0])
		}
	}
}

// open reports whether the server still keeps the session (a PINGREQ is
// answered).
func (s *rawSession) open(t *testing.T) bool {
	t.Helper()
	if _, err := s.c.Write([]byte{0xC0, 0}); err != nil {
		return false
	}
	_ = s.c.SetReadDeadline(time.Now().Add(wait))
	b, err := s.r.ReadByte()
	if err != nil || b != 0xD0 {
		return false
	}
	_, err = s.r.ReadByte()
	return err == nil
}

// Ensure kick, ban and revocation end live sessions with the documented
// codes (MQTT 5 DISCONNECT 0x98; 3.1.1 a closed connection), that a ban
// then refuses logins until lifted, and that a revocation ends only the
// sessions that logged in with an older token.
func TestAccountControl_Live(t *testing.T) {
	e := newEnv(t, func(o *hooks.Options) { o.MaxConnectionsPerUser = -1 })
	e.users(t, "alice", "bob")
	ctx := context.Background()
	hour := time.Now().Add(time.Hour)
	login := func(v byte, user string, tok bool) *rawSession {
		pw := sign()
		if tok {
			pw = mint(t, user, time.Now(), hour)
		}
		return rawLogin(t, e, v, fmt.Sprintf("acct-%d", e.seq.Add(1)), user, pw)
	}
	wantEnd := func(s *rawSession, v byte) {
		t.Helper()
		want := -1
		if v == 5 {
			want = 0x98
		}
		if got := s.ended(t); got != want {
			t.Errorf("v%d session ended with %#x, want %#x", v, got, want)
		}
	}

	// Kick: every session of alice, none of bob.
	a3, a5, b5 := login(4, "alice", false), login(5, "alice", true), login(5, "bob", true)
	n, err := e.svc.Kick(ctx, chat.User("alice"))
	if err != nil || n != 2 {
		t.Fatalf("Kick = %d, %v, want 2", n, err)
	}
	wantEnd(a3, 4)
	wantEnd(a5, 5)
	if !b5.open(t) {
		t.Error("bob's session ended by alice's kick")
	}

	// Revocation: the token sessions only.
	tok3, tok5, sig5 := login(4, "alice", true), login(5, "alice", true), login(5, "alice", false)
	if n, err := e.svc.RevokeTokens(ctx, chat.User("alice")); err != nil || n != 2 {
		t.Fatalf("RevokeTokens = %d, %v, want 2", n, err)
	}
	wantEnd(tok3, 4)
	wantEnd(tok5, 5)
	if !sig5.open(t) {
		t.Error("a signature session ended by a token revocation")
	}
	acc, err := e.svc.Account(ctx, chat.User("alice"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the clock past the revocation", func() bool { return time.Now().UnixMilli() > acc.NotBefore })
	login(5, "alice", true) // a token minted after the revocation works

	// Ban: sessions end, logins are refused (0x8A / 5) until lifted.
	if _, err := e.svc.BanIdentity(ctx, chat.User("alice"), 0, "spam"); err != nil {
		t.Fatal(err)
	}
	wantEnd(sig5, 5)
	e.connectV5(t, "acct-banned5", "alice", mint(t, "alice", time.Now(), hour), 0x8A, nil)
	e.connectV3(t, "acct-banned3", "alice", sign(), true, 5, nil)
	if err := e.svc.Unban(ctx, chat.User("alice")); err != nil {
		t.Fatal(err)
	}
	login(4, "alice", false)
	login(5, "alice", true)
}

// Ensure the login throttle over MQTT: 11 bad logins from 127.0.0.1 get
// CONNACK 0x86 / 4, then 127.0.0.1 is refused whatever its credentials
// (MQTT 5 0x97, 3.1.1 code 3) for a minute, while 127.0.0.2 logs in.
func TestThrottle_MQTT(t *testing.T) {
	th := chat.NewLoginThrottle(10, 0)
	var mu sync.Mutex
	clock := time.Unix(1_700_000_000, 0)
	th.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	e := newEnv(t, func(o *hooks.Options) { o.Throttle = th })
	e.users(t, "alice")
	from := func(ip string) func(*paho3.ClientOptions) {
		return func(o *paho3.ClientOptions) {
			o.SetDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: wait})
		}
	}
	for i := 0; i < 11; i++ {
		e.connectV3(t, fmt.Sprintf("bad-%d", i), "alice", "wrong,123", true, 4, from("127.0.0.1"))
	}
	e.connectV3(t, "good-1", "alice", sign(), true, 3, from("127.0.0.1"))
	e.connectV5(t, "good-5", "alice", sign(), 0x97, nil) // paho5 dials from 127.0.0.1
	e.connectV3(t, "other-ip", "alice", sign(), true, 0, from("127.0.0.2")).Close()
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	e.connectV3(t, "after-a-minute", "alice", sign(), true, 0, from("127.0.0.1"))
}

// Ensure a session takeover (same client id, same identity) ends the old
// connection as its version allows: MQTT 5 gets DISCONNECT 0x8E (session
// taken over); an MQTT 3.1.1 client, which may not receive a DISCONNECT,
// sees its connection closed with no byte after its CONNACK. The new
// connection works.
func TestAuth_TakeoverByVersion(t *testing.T) {
	e := newEnv(t, nil)
	e.users(t, "dave")
	for _, v := range []byte{4, 5} {
		id := fmt.Sprintf("dave-v%d", v)
		first := rawLogin(t, e, v, id, "dave", sign())
		second := rawLogin(t, e, v, id, "dave", sign())
		if v == 5 {
			if got := first.ended(t); got != 0x8E {
				t.Errorf("v5 taken over: ended with %#x, want DISCONNECT 0x8E", got)
			}
		} else {
			_ = first.c.SetReadDeadline(time.Now().Add(wait))
			rest, err := io.ReadAll(first.r)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("v4 taken over: the connection was not closed")
			}
			if len(rest) > 0 {
				t.Errorf("v4 taken over: got %x before the close, want nothing", rest)
			}
		}
		if !second.open(t) {
			t.Errorf("v%d: the new connection does not answer", v)
		}
		if !e.svc.Presence.HasSession(chat.User("dave"), id) {
			t.Errorf("v%d: %s is not a session after the takeover", v, id)
		}
	}
}
