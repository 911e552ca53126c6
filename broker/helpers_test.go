package broker

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/internal/testwait"
)

// wait bounds every wait of these tests.
const wait = 5 * time.Second

// testHook lets every client in (the real login is package hooks') and
// applies the real inbox ACL, so that the broker can be tested alone.
type testHook struct{ mqtt.HookBase }

func (testHook) ID() string { return "test-allow" }

func (testHook) Provides(b byte) bool { return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck }

func (testHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (testHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	return write || InboxAllowed(cl.Properties.Username, topic)
}

// startBroker starts a broker on 127.0.0.1:0 (TCP and WebSocket) with the
// test hook; edit adjusts the options first.
func startBroker(t *testing.T, edit func(*Options)) *Server {
	t.Helper()
	opts := Options{
		TCPAddr: "127.0.0.1:0",
		WSAddr:  "127.0.0.1:0",
		Logger:  zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	}
	if edit != nil {
		edit(&opts)
	}
	s := New(opts)
	if err := s.AddHook(&testHook{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// v3Client is a connected paho 3.1.1 client with its received messages.
type v3Client struct {
	paho.Client
	msgs chan paho.Message
}

// connectV3 connects a paho MQTT 3.1.1 client to url as username, and
// subscribes it to filter when filter is not empty.
func connectV3(t *testing.T, url, clientID, username string, clean bool, filter string) *v3Client {
	t.Helper()
	c := &v3Client{msgs: make(chan paho.Message, 100)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(username).SetPassword("x").
		SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.msgs <- m })
	c.Client = paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", clientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	if filter != "" {
		if tok := c.Subscribe(filter, 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
	}
	return c
}

// next returns the next message, failing after the bounded wait.
func (c *v3Client) next(t *testing.T) paho.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message within the wait")
		return nil
	}
}

// expectClosed fails unless the server closes c within d (reading and
// discarding whatever it sends first).
func expectClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
}

// rawConnectV5 dials addr and sends a minimal MQTT 5 CONNECT (client id
// clientID, clean start, keepalive 60), then reads the CONNACK.
func rawConnectV5(t *testing.T, addr, clientID string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0}
	body := append(vh, byte(len(clientID)>>8), byte(len(clientID)))
	body = append(body, clientID...)
	if _, err := c.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	r := bufio.NewReader(c)
	typ, err := r.ReadByte()
	if err != nil || typ != 0x20 {
		t.Fatalf("CONNACK: type %#x, %v", typ, err)
	}
	n, err := r.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, n)
	if _, err := io.ReadFull(r, ack); err != nil || ack[1] != 0 {
		t.Fatalf("CONNACK %x: %v", ack, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// waitFor polls cond until it holds, failing after the bounded wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, wait, cond)
}
