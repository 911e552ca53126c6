package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
	"github.com/mqim/mqim/storage"
)

// master returns the master-key headers of p.
func (p *proc) master() map[string]string {
	return map[string]string{"X-ML-AppId": p.AppID, "X-ML-MasterKey": p.Master}
}

// mintToken asks p for a token of body ({"user":...}).
func (p *proc) mintToken(t *testing.T, body string) string {
	t.Helper()
	r := p.doWith("POST", "/tokens", body, p.master())
	expect(t, "POST /tokens", r, 201)
	var out struct {
		Token   string `json:"token"`
		Expires int64  `json:"expires"`
	}
	r.JSON(t, &out)
	if out.Token == "" || out.Expires <= time.Now().UnixMilli() {
		t.Fatalf("POST /tokens = %s", r.Body)
	}
	return out.Token
}

// rawConn is an MQTT session over a raw TCP connection.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

// rawConnect sends a CONNECT of version (4 or 5) and returns the session
// and the CONNACK code.
func rawConnect(t *testing.T, p *proc, version byte, clientID, username, password string) (*rawConn, byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.MQTT, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', version, 0xC2, 0, 60}
	if version == 5 {
		body = append(body, 0)
	}
	for _, s := range []string{clientID, username, password} {
		body = append(body, byte(len(s)>>8), byte(len(s)))
		body = append(body, s...)
	}
	// Remaining length as a varint (a token makes the packet > 127 bytes).
	pkt := []byte{0x10}
	for n := len(body); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	if _, err := c.Write(append(pkt, body...)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, err := r.ReadByte()
	if err != nil || typ != 0x20 {
		t.Fatalf("v%d CONNACK: %#x %v", version, typ, err)
	}
	n, _ := r.ReadByte()
	rest := make([]byte, n)
	if _, err := io.ReadFull(r, rest); err != nil {
		t.Fatalf("v%d CONNACK %x: %v", version, rest, err)
	}
	return &rawConn{c: c, r: r}, rest[1]
}

// ended waits for the server to end the session: the MQTT 5 DISCONNECT
// reason, or -1 when the connection closed without a packet.
func (rc *rawConn) ended(t *testing.T) int {
	t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, err := rc.r.ReadByte()
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the session was not ended")
		}
		return -1
	}
	if typ != 0xE0 {
		t.Fatalf("got packet %#x, want DISCONNECT or a close", typ)
	}
	n, _ := rc.r.ReadByte()
	rest := make([]byte, n)
	if _, err := io.ReadFull(rc.r, rest); err != nil || n == 0 {
		return 0
	}
	return int(rest[0])
}

// Ensure tokens end to end: minted with the master key, they log in over
// TCP and WebSocket (paho, MQTT 3.1.1) as their user only and call REST as
// it; with client_key_login off the client key logs in nowhere.
func TestMain_TokenLogin(t *testing.T) {
	p := startMQIM(t, t.TempDir(), "MQIM_CLIENT_KEY_LOGIN=false")
	alice := p.mintToken(t, `{"user":"alice","ttl":"1h"}`)
	for _, url := range []string{"tcp://" + p.MQTT, "ws://" + p.WS + "/mqtt"} {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("alice-" + url[:2]).
			SetUsername("alice").SetPassword(alice).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: token login: %v", url, tok.Error())
		}
		c.Disconnect(100)
	}
	for _, v := range []byte{4, 5} {
		if _, code := rawConnect(t, p, v, fmt.Sprintf("as-bob-%d", v), "bob", alice); code != map[byte]byte{4: 4, 5: 0x86}[v] {
			t.Errorf("v%d: alice's token as bob: CONNACK %#x", v, code)
		}
		if _, code := rawConnect(t, p, v, fmt.Sprintf("key-%d", v), "alice", chat.Sign(p.Key, time.Now().UnixMilli())); code != map[byte]byte{4: 4, 5: 0x86}[v] {
			t.Errorf("v%d: client key with client_key_login off: CONNACK %#x", v, code)
		}
	}
	bearer := map[string]string{"Authorization": "Bearer " + alice}
	expect(t, "own attributes", p.doWith("POST", "/ctx/alice/attributes", `{"a":1}`, bearer), 201)
	expectError(t, "bob's attributes", p.doWith("GET", "/ctx/bob/attributes", nil, bearer), 403, chat.CodeUnauthorized)
	expectError(t, "client key", p.do("GET", "/ctx", nil), 401, chat.CodeUnauthorized)
}

// Ensure kick, ban, revocation and erasure against the real binary: kick
// and ban end live MQTT 3.1.1 and 5 sessions (DISCONNECT 0x98 for 5, a
// closed connection for 3.1.1); a banned user is refused (0x8A, 3.1.1: 5)
// until the ban is lifted; revoking one's tokens ends the token sessions
// and refuses the old token; an erased user leaves no trace, across a
// restart: its persistent session, with events queued and stored, is gone
// from the store and not restored, and its client id has no session.
func TestMain_AccountControl(t *testing.T) {
	dir := t.TempDir()
	p := startMQIM(t, dir, "MQIM_LOG_LEVEL=debug") // eventsSaved reads the debug log
	sign := func() string { return chat.Sign(p.Key, time.Now().UnixMilli()) }
	login := func(v byte, id, user, pw string) *rawConn {
		t.Helper()
		rc, code := rawConnect(t, p, v, id, user, pw)
		if code != 0 {
			t.Fatalf("%s: CONNACK %#x", id, code)
		}
		return rc
	}
	wantEnded := func(rc *rawConn, v byte, what string) {
		t.Helper()
		want := map[byte]int{4: -1, 5: 0x98}[v]
		if got := rc.ended(t); got != want {
			t.Errorf("%s v%d: ended with %#x, want %#x", what, v, got, want)
		}
	}
	expect(t, "friends", p.doWith("POST", "/ctx/alice/friends/bob", nil, p.master()), 201)

	// Kick.
	k3, k5 := login(4, "alice-k3", "alice", sign()), login(5, "alice-k5", "alice", sign())
	r := p.doWith("POST", "/ctx/alice/kick", nil, p.master())
	if expect(t, "kick", r, 200); string(r.Body) != `{"kicked":2}` {
		t.Errorf("kick = %s", r.Body)
	}
	wantEnded(k3, 4, "kick")
	wantEnded(k5, 5, "kick")
	expectError(t, "kick with the client key", p.do("POST", "/ctx/alice/kick", nil), 403, chat.CodeUnauthorized)

	// Ban.
	b3, b5 := login(4, "alice-b3", "alice", sign()), login(5, "alice-b5", "alice", sign())
	expect(t, "ban", p.doWith("PUT", "/ctx/alice/ban", `{"until":0,"reason":"spam"}`, p.master()), 200)
	wantEnded(b3, 4, "ban")
	wantEnded(b5, 5, "ban")
	tok := p.mintToken(t, `{"user":"alice"}`)
	if _, code := rawConnect(t, p, 5, "alice-b5b", "alice", tok); code != 0x8A {
		t.Errorf("banned v5 token login: CONNACK %#x, want 0x8A", code)
	}
	if _, code := rawConnect(t, p, 4, "alice-b3b", "alice", sign()); code != 5 {
		t.Errorf("banned v3 login: CONNACK %d, want 5", code)
	}
	expectError(t, "banned token", p.doWith("GET", "/ctx", nil, map[string]string{"Authorization": "Bearer " + tok}), 403, chat.CodeUnauthorized)
	r = p.doWith("GET", "/ctx/alice", nil, p.master())
	if expect(t, "GET banned", r, 200); !strings.Contains(string(r.Body), `"banned":{"until":0,"reason":"spam"`) {
		t.Errorf("GET /ctx/alice = %s", r.Body)
	}
	expect(t, "unban", p.doWith("DELETE", "/ctx/alice/ban", nil, p.master()), 204)

	// Revocation with the user's own token: token sessions end, the
	// signature session stays.
	t3, t5 := login(4, "alice-t3", "alice", tok), login(5, "alice-t5", "alice", tok)
	s5 := login(5, "alice-s5", "alice", sign())
	expect(t, "revoke", p.doWith("DELETE", "/ctx/alice/tokens", nil, map[string]string{"Authorization": "Bearer " + tok}), 200)
	wantEnded(t3, 4, "revocation")
	wantEnded(t5, 5, "revocation")
	if _, code := rawConnect(t, p, 5, "alice-t5b", "alice", tok); code != 0x86 {
		t.Errorf("revoked token: CONNACK %#x, want 0x86", code)
	}
	expectError(t, "revoked token", p.doWith("GET", "/ctx", nil, map[string]string{"Authorization": "Bearer " + tok}), 401, chat.CodeUnauthorized)

	// Erase, with a persistent session holding two stored events.
	persistent := func(p *proc) (c paho.Client, present bool) {
		t.Helper()
		c = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + p.MQTT).
			SetClientID("alice-p").SetUsername("alice").SetPassword(sign()).
			SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false))
		tok := c.Connect()
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect alice-p: %v", tok.Error())
		}
		return c, tok.(*paho.ConnectToken).SessionPresent()
	}
	ap, _ := persistent(p)
	if tok := ap.Subscribe("users/alice/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe alice-p: %v", tok.Error())
	}
	ap.Disconnect(0)
	testwait.Until(t, "alice-p offline", 10*time.Second, func() bool { return sessionsOf(p, "alice") == 1 })
	bob := mustConnectV3(t, p, "bob", "bob-phone")
	if bob == nil {
		t.FailNow()
	}
	saved := eventsSaved(p)
	for i := range 2 {
		tok := bob.Publish("say/friend/alice", 1, false, fmt.Sprintf(`{"content":{"media":0,"body":"q%d"}}`, i))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("say %d: %v", i, tok.Error())
		}
	}
	bob.Disconnect(0)
	testwait.Until(t, "alice-p's queue stored", 10*time.Second, func() bool { return eventsSaved(p) >= saved+2 })
	expect(t, "erase", p.doWith("DELETE", "/ctx/alice?history=true", nil, p.master()), 204)
	wantEnded(s5, 5, "erasure")
	check := func(p *proc) {
		t.Helper()
		expectError(t, "erased user", p.doWith("GET", "/ctx/alice", nil, p.master()), 404, chat.CodeNotFound)
		if r := p.doWith("GET", "/ctx/bob/friends", nil, p.master()); string(r.Body) != "[]" {
			t.Errorf("bob's friends after the erasure: %s", r.Body)
		}
		if r := p.doWith("GET", "/ctx", nil, p.master()); strings.Contains(string(r.Body), "alice") {
			t.Errorf("search after the erasure: %s", r.Body)
		}
	}
	check(p)
	p.stop()
	db, err := storage.Open(storage.Options{Dir: filepath.Join(dir, "db"), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	var traces []string
	err = db.Keys(context.Background(), func(k string) error {
		if strings.Contains(k, "alice") && k != "a\x00user:alice" {
			traces = append(traces, strings.ReplaceAll(k, "\x00", "␀"))
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err != nil || len(traces) > 0 {
		t.Errorf("keys naming alice after the erasure: %q, %v", traces, err)
	}
	p2 := startMQIM(t, dir)
	check(p2)
	if restored := p2.logged("persistent sessions restored"); restored == nil || restored["sessions"] != float64(0) {
		t.Errorf("restart after the erasure: %v, want 0 sessions restored", restored)
	}
	c, present := persistent(p2)
	c.Disconnect(0)
	if present {
		t.Error("alice-p: session present after the erasure")
	}
}

// logged returns the first log line of p with message msg, or nil.
func (p *proc) logged(msg string) map[string]any {
	for _, l := range p.allLogs() {
		if l["message"] == msg {
			return l
		}
	}
	return nil
}
