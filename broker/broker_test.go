package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/mqim/mqim/chat"
)

// Ensure the truncated MQTT 5 SUBSCRIBE of mochi-mqtt/server#501 (82 r6
// m1234 v0 s1 'p', no options byte), which panics mochi's decoder, closes
// only that connection: a connected client keeps its session and new
// clients are served.
func TestServer_TruncatedSubscribe(t *testing.T) {
	s := startBroker(t, nil)
	bob := connectV3(t, "tcp://"+s.TCPAddr().String(), "bob-phone", "bob", true, "users/bob/#")

	c := rawConnectV5(t, s.TCPAddr().String(), "attacker")
	if _, err := c.Write([]byte{0x82, 0x06, 0x04, 0xD2, 0x00, 0x00, 0x01, 'p'}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c, wait)

	// The panicking client is gone from the broker, the others are not.
	waitFor(t, "the panicked clean session to be removed", func() bool {
		_, ok := s.MQTT().Clients.Get("attacker")
		return !ok
	})
	s.Publish(chat.User("bob"), "sys", []byte(`"still here"`), "")
	if m := bob.next(t); string(m.Payload()) != `"still here"` {
		t.Errorf("bob got %q", m.Payload())
	}
	carol := connectV3(t, "tcp://"+s.TCPAddr().String(), "carol-1", "carol", true, "users/carol/#")
	s.Publish(chat.User("carol"), "sys", []byte(`1`), "")
	carol.next(t)
}

// Ensure the same packet over WebSocket closes only that connection.
func TestServer_TruncatedSubscribeWebSocket(t *testing.T) {
	s := startBroker(t, nil)
	ws, resp := dialWS(t, s)
	if resp.Header.Get("Sec-Websocket-Protocol") != "mqtt" {
		t.Errorf("subprotocol = %q, want mqtt", resp.Header.Get("Sec-Websocket-Protocol"))
	}
	connect := []byte{0x10, 0x0F, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 2, 'w', 's'}
	if err := ws.WriteMessage(websocket.BinaryMessage, connect); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	if _, msg, err := ws.ReadMessage(); err != nil || msg[0] != 0x20 {
		t.Fatalf("CONNACK: %x, %v", msg, err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte{0x82, 0x06, 0x04, 0xD2, 0x00, 0x00, 0x01, 'p'}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("websocket still open")
			}
			break
		}
	}
	connectV3(t, "ws://"+s.WSAddr().String()+DefaultWSPath, "after", "after", true, "users/after/#")
}

// Ensure a connection that never sends CONNECT is closed by the deadline,
// and one that sends it in time is not.
func TestServer_ConnectDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	s := startBroker(t, func(o *Options) { o.ConnectTimeout = deadline })
	start := time.Now()
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, wait)
	if d := time.Since(start); d < deadline {
		t.Errorf("closed after %v, before the %v deadline", d, deadline)
	}

	// The keepalive replaces the CONNECT deadline once CONNECT is processed.
	ok := rawConnectV5(t, s.TCPAddr().String(), "in-time")
	if _, err := ok.Write([]byte{0xC0, 0}); err != nil { // PINGREQ after the deadline would have passed
		t.Fatal(err)
	}
	_ = ok.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, 2)
	if _, err := ok.Read(b); err != nil || b[0] != 0xD0 {
		t.Fatalf("PINGRESP: %x, %v", b, err)
	}
}

// Ensure a first packet claiming 256 MB is refused from its fixed header:
// the connection is closed at once (not after the CONNECT deadline, which
// is where a server waiting for the body would be) and nothing near that
// size is allocated.
func TestServer_OversizedFirstPacket(t *testing.T) {
	s := startBroker(t, func(o *Options) { o.ConnectTimeout = time.Minute })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0x10, 0xFF, 0xFF, 0xFF, 0x7F}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c, wait)
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Errorf("allocated %d bytes while refusing the packet", grown)
	}
	// Just over the configured maximum is refused too.
	s2 := startBroker(t, func(o *Options) { o.MaxPacketSize = 1024; o.ConnectTimeout = time.Minute })
	c2, err := net.Dial("tcp", s2.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte{0x10, 0x80, 0x08}); err != nil { // remaining length 1024: packet 1027 bytes
		t.Fatal(err)
	}
	expectClosed(t, c2, wait)
}

// Ensure sockets beyond MaxConnections are closed at accept.
func TestServer_MaxConnections(t *testing.T) {
	s := startBroker(t, func(o *Options) { o.MaxConnections = 2; o.WSAddr = "" })
	url := "tcp://" + s.TCPAddr().String()
	connectV3(t, url, "c1", "u1", true, "")
	connectV3(t, url, "c2", "u2", true, "")
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, wait)
}

// Ensure Publish with an excepted session reaches the identity's other
// sessions only, PublishSession the named session only (and only when it
// is logged in as that identity), and a persistent offline session gets
// Publish queued for its next connection.
func TestServer_Publisher(t *testing.T) {
	s := startBroker(t, nil)
	url := "tcp://" + s.TCPAddr().String()
	b1 := connectV3(t, url, "b1", "bob", true, "users/bob/#")
	b2 := connectV3(t, url, "b2", "bob", true, "users/bob/+")
	alice := connectV3(t, url, "a1", "alice", true, "users/alice/#")

	s.Publish(chat.User("bob"), "yourself", []byte(`"y"`), "b1")
	if m := b2.next(t); m.Topic() != "users/bob/yourself" || string(m.Payload()) != `"y"` || m.Qos() != 1 {
		t.Errorf("b2 got %s %q qos %d", m.Topic(), m.Payload(), m.Qos())
	}
	s.PublishSession("b1", chat.User("bob"), "ack", []byte(`{"ack":1}`))
	if m := b1.next(t); m.Topic() != "users/bob/ack" || m.Qos() != 1 {
		t.Errorf("b1 got %s qos %d, want the ack", m.Topic(), m.Qos())
	}
	// A session of another identity is never the target.
	s.PublishSession("a1", chat.User("bob"), "ack", []byte(`{"ack":2}`))
	s.PublishSession("b2", chat.User("alice"), "ack", []byte(`{"ack":3}`))
	// Markers: everything above was written before them.
	s.Publish(chat.User("bob"), "marker", []byte(`"m"`), "")
	s.Publish(chat.User("alice"), "marker", []byte(`"m"`), "")
	for name, c := range map[string]*v3Client{"b1": b1, "b2": b2, "alice": alice} {
		if m := c.next(t); m.Topic() != "users/"+map[string]string{"b1": "bob", "b2": "bob", "alice": "alice"}[name]+"/marker" {
			t.Errorf("%s got %s %q before the marker", name, m.Topic(), m.Payload())
		}
	}

	// Persistent session: subscribe, go away, get what was published.
	p := connectV3(t, url, "b3", "bob", false, "users/bob/#")
	p.Disconnect(100)
	s.Publish(chat.User("bob"), "message", []byte(`"while away"`), "")
	p = connectV3(t, url, "b3", "bob", false, "")
	if m := p.next(t); string(m.Payload()) != `"while away"` {
		t.Errorf("queued message = %q", m.Payload())
	}
}

// Ensure the WebSocket listener serves /mqtt only.
func TestServer_WebSocketPath(t *testing.T) {
	s := startBroker(t, nil)
	resp, err := http.Get("http://" + s.WSAddr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / = %d, want 404", resp.StatusCode)
	}
	c := connectV3(t, "ws://"+s.WSAddr().String()+"/mqtt", "w1", "wendy", true, "users/wendy/#")
	s.Publish(chat.User("wendy"), "sys", []byte(`"over ws"`), "")
	if m := c.next(t); string(m.Payload()) != `"over ws"` {
		t.Errorf("got %q", m.Payload())
	}
}

// Ensure TLS is served with the configured certificate.
func TestServer_TLS(t *testing.T) {
	cert := selfSigned(t)
	s := startBroker(t, func(o *Options) {
		o.TCPAddr, o.WSAddr = "", ""
		o.TLSAddr, o.WSSAddr = "127.0.0.1:0", "127.0.0.1:0"
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	if s.TCPAddr() != nil || s.WSAddr() != nil {
		t.Fatal("plain listeners are on")
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	conf := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	for _, url := range []string{"ssl://" + s.TLSAddr().String(), "wss://" + s.WSSAddr().String() + "/mqtt"} {
		c := newV3(t, url, conf)
		s.Publish(chat.User("tina"), "sys", []byte(`"secure"`), "")
		if m := c.next(t); string(m.Payload()) != `"secure"` {
			t.Errorf("%s: got %q", url, m.Payload())
		}
		c.Disconnect(0)
	}
}

// Ensure Close returns promptly with a socket that never sent CONNECT.
func TestServer_CloseWithPendingConnection(t *testing.T) {
	s := startBroker(t, func(o *Options) { o.ConnectTimeout = time.Hour })
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.WSAddr().String()+"/mqtt", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Close blocked by a connection without CONNECT")
	}
}

func newV3(t *testing.T, url string, conf *tls.Config) *v3Client {
	t.Helper()
	c := &v3Client{msgs: make(chan paho.Message, 10)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID("tls-1").SetUsername("tina").SetPassword("x").
		SetAutoReconnect(false).SetTLSConfig(conf).SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.msgs <- m })
	c.Client = paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	if tok := c.Subscribe("users/tina/#", 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return c
}

// selfSigned returns a certificate for localhost and 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// dialWS opens a WebSocket to s's MQTT endpoint with the mqtt subprotocol,
// read deadline set; the test's cleanup closes it.
func dialWS(t *testing.T, s *Server) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: wait}
	ws, resp, err := d.Dial("ws://"+s.WSAddr().String()+DefaultWSPath, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	return ws, resp
}
