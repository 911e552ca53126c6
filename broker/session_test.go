package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/mqttwire"
)

// rawClient is a hand-driven MQTT connection: the test chooses every packet
// id.
type rawClient struct {
	t       *testing.T
	c       net.Conn
	r       *bufio.Reader
	version byte
}

// dialRaw connects clientID as username over MQTT version (4 or 5), clean
// or not (MQTT 5: session expiry 1 h when not clean), and returns the
// client and the CONNACK's session-present flag.
func dialRaw(t *testing.T, addr, clientID, username string, version byte, clean bool) (*rawClient, bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	flags := byte(0xC0) // username, password
	if clean {
		flags |= 0x02
	}
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', version, flags, 0, 60}
	if version == 5 {
		if clean {
			body = append(body, 0)
		} else {
			body = append(body, 5, 0x11, 0, 0, 0x0E, 0x10) // session expiry 3600 s
		}
	}
	for _, s := range []string{clientID, username, "x"} {
		body = binary.BigEndian.AppendUint16(body, uint16(len(s)))
		body = append(body, s...)
	}
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c), version: version}
	rc.write(mqttwire.Packet(0x10, body))
	typ, ack := rc.read()
	if typ != 0x20 || len(ack) < 2 || ack[1] != 0 {
		t.Fatalf("CONNACK: type %#x %x", typ, ack)
	}
	return rc, ack[0]&1 == 1
}

func (rc *rawClient) write(b []byte) {
	rc.t.Helper()
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatal(err)
	}
}

// read returns the next packet's first byte and body.
func (rc *rawClient) read() (byte, []byte) {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(wait))
	first, err := rc.r.ReadByte()
	if err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	n, err := binary.ReadUvarint(rc.r)
	if err != nil {
		rc.t.Fatalf("read length: %v", err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		rc.t.Fatalf("read body: %v", err)
	}
	return first, body
}

// publish reads a PUBLISH and returns its packet id and payload.
func (rc *rawClient) publish() (uint16, string) {
	rc.t.Helper()
	first, b := rc.read()
	if first>>4 != 3 {
		rc.t.Fatalf("got packet %#x %x, want PUBLISH", first, b)
	}
	tl := int(binary.BigEndian.Uint16(b))
	b = b[2+tl:]
	var id uint16
	if first&0x06 != 0 {
		id, b = binary.BigEndian.Uint16(b), b[2:]
	}
	if rc.version == 5 {
		pl, n := binary.Uvarint(b)
		b = b[n+int(pl):]
	}
	return id, string(b)
}

// subscribe sends SUBSCRIBE (or UNSUBSCRIBE) with packet id id and returns
// the acknowledgement's packet id and reason codes.
func (rc *rawClient) subscribe(unsub bool, id uint16, filter string) (uint16, []byte) {
	rc.t.Helper()
	body := binary.BigEndian.AppendUint16(nil, id)
	if rc.version == 5 {
		body = append(body, 0)
	}
	body = binary.BigEndian.AppendUint16(body, uint16(len(filter)))
	body = append(body, filter...)
	first := byte(0x82)
	if unsub {
		first = 0xA2
	} else {
		body = append(body, 1)
	}
	rc.write(mqttwire.Packet(first, body))
	typ, ack := rc.read()
	if want := first&0xF0 + 0x10; typ != want {
		rc.t.Fatalf("got %#x %x, want %#x", typ, ack, want)
	}
	codes := ack[2:]
	if rc.version == 5 {
		pl, n := binary.Uvarint(codes)
		codes = codes[n+int(pl):]
	}
	return binary.BigEndian.Uint16(ack), codes
}

// Ensure a client reconnecting to a queue of events can subscribe and
// unsubscribe with packet ids that the server's queued events use
// (mochi answered SUBACK 0x91), and gets the queue in the order it was
// queued, for MQTT 3.1.1 and 5.
func TestSession_QueueAndClientPacketIDs(t *testing.T) {
	for _, v := range []byte{4, 5} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			s := startBroker(t, nil)
			addr := s.TCPAddr().String()
			dave, _ := dialRaw(t, addr, "dave-tab", "dave", v, false)
			if id, codes := dave.subscribe(false, 1, "users/dave/#"); id != 1 || len(codes) != 1 || codes[0] != 1 {
				t.Fatalf("first SUBACK id %d codes %x", id, codes)
			}
			dave.write([]byte{0xE0, 0})
			expectClosed(t, dave.c, wait)
			waitFor(t, "dave's session offline", func() bool {
				cl, ok := s.MQTT().Clients.Get("dave-tab")
				return ok && cl.Closed()
			})
			const n = 8
			for i := 1; i <= n; i++ {
				s.Publish(chat.User("dave"), "message", []byte(strconv.Itoa(i)), "")
			}
			dave, present := dialRaw(t, addr, "dave-tab", "dave", v, false)
			if !present {
				t.Fatal("session not present")
			}
			ids := map[uint16]bool{}
			for i := 1; i <= n; i++ {
				id, payload := dave.publish()
				if payload != strconv.Itoa(i) {
					t.Fatalf("queued event %d is %q", i, payload)
				}
				ids[id] = true
			}
			// Ids 1 and 2 are queued events' ids, still unacknowledged.
			if !ids[1] || !ids[2] {
				t.Fatalf("queued ids %v do not include 1 and 2", ids)
			}
			if id, codes := dave.subscribe(false, 1, "users/dave/message"); id != 1 || len(codes) != 1 || codes[0] != 1 {
				t.Errorf("SUBACK id %d codes %x, want id 1 granted QoS 1", id, codes)
			}
			if id, codes := dave.subscribe(true, 2, "users/dave/message"); id != 2 || (v == 5 && (len(codes) != 1 || codes[0] != 0)) {
				t.Errorf("UNSUBACK id %d codes %x, want id 2 success", id, codes)
			}
		})
	}
}

// Ensure the replay order with paho clients: MQTT 3.1.1
// (paho.mqtt.golang) and MQTT 5 (paho.golang), 12 queued events.
func TestSession_ReplayOrderPaho(t *testing.T) {
	const n = 12
	queue := func(t *testing.T, s *Server) {
		waitFor(t, "session offline", func() bool {
			cl, ok := s.MQTT().Clients.Get("carol-1")
			return ok && cl.Closed()
		})
		for i := 1; i <= n; i++ {
			s.Publish(chat.User("carol"), "message", []byte(strconv.Itoa(i)), "")
		}
	}
	t.Run("v3", func(t *testing.T) {
		s := startBroker(t, nil)
		url := "tcp://" + s.TCPAddr().String()
		c := connectV3(t, url, "carol-1", "carol", false, "users/carol/#")
		c.Disconnect(100)
		queue(t, s)
		c = connectV3(t, url, "carol-1", "carol", false, "")
		for i := 1; i <= n; i++ {
			if m := c.next(t); string(m.Payload()) != strconv.Itoa(i) {
				t.Fatalf("event %d is %q", i, m.Payload())
			}
		}
	})
	t.Run("v5", func(t *testing.T) {
		s := startBroker(t, nil)
		addr := s.TCPAddr().String()
		connect := func() (*paho5.Client, chan string) {
			conn, err := net.DialTimeout("tcp", addr, wait)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan string, 2*n)
			c := paho5.NewClient(paho5.ClientConfig{Conn: conn,
				OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
					got <- string(pr.Packet.Payload)
					return true, nil
				}}})
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			expiry := uint32(3600)
			if _, err := c.Connect(ctx, &paho5.Connect{ClientID: "carol-1", KeepAlive: 30, Username: "carol", UsernameFlag: true,
				Password: []byte("x"), PasswordFlag: true, Properties: &paho5.ConnectProperties{SessionExpiryInterval: &expiry}}); err != nil {
				t.Fatalf("connect: %v", err)
			}
			return c, got
		}
		c, _ := connect()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if _, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "users/carol/#", QoS: 1}}}); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		_ = c.Disconnect(&paho5.Disconnect{})
		queue(t, s)
		c, got := connect()
		defer func() { _ = c.Disconnect(&paho5.Disconnect{}) }()
		for i := 1; i <= n; i++ {
			select {
			case p := <-got:
				if p != strconv.Itoa(i) {
					t.Fatalf("event %d is %q", i, p)
				}
			case <-time.After(wait):
				t.Fatalf("event %d missing", i)
			}
		}
	})
}

// Ensure QueueOrder orders by time, then by packet id across the id wrap,
// and renumbers times into one 65536-second block, never later than the
// original.
func TestSession_QueueOrder(t *testing.T) {
	const block = 5 << 16
	fl := mqtt.NewInflights()
	// Queued in this order: ids wrap from 65534 to 2; the last three events
	// straddle a block boundary.
	queued := []struct {
		id      uint16
		created int64
	}{{65534, block - 3}, {65535, block - 3}, {1, block - 3}, {2, block - 3}, {3, block - 1}, {4, block}, {5, block}}
	for _, q := range queued {
		fl.Set(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: q.id, Created: q.created})
	}
	fl.Set(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: 9, Created: block})
	order := QueueOrder(fl)
	if len(order) != len(queued) {
		t.Fatalf("order has %d publishes", len(order))
	}
	for i, pk := range order {
		if pk.PacketID != queued[i].id || pk.Created > queued[i].created || pk.Created >= block {
			t.Errorf("%d: id %d created %d, want id %d created ≤ %d and < %d", i, pk.PacketID, pk.Created, queued[i].id, queued[i].created, block)
		}
	}
	var got []uint16
	for _, pk := range fl.GetAll(false) { // mochi's resend order
		if pk.FixedHeader.Type == packets.Publish {
			got = append(got, pk.PacketID)
		}
	}
	for i := range queued {
		if got[i] != queued[i].id {
			t.Fatalf("mochi's order %v", got)
		}
	}
}

// Ensure a shutdown closes an MQTT 3.1.1 connection without a DISCONNECT
// (3.1.1 has none from the server), and sends MQTT 5 clients DISCONNECT
// 0x8B server shutting down.
func TestSession_ShutdownDisconnect(t *testing.T) {
	s := startBroker(t, nil)
	addr := s.TCPAddr().String()
	v3, _ := dialRaw(t, addr, "v3", "erin", 4, true)
	v5, _ := dialRaw(t, addr, "v5", "erin", 5, true)
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()

	_ = v3.c.SetReadDeadline(time.Now().Add(wait))
	if b, err := io.ReadAll(v3.r); len(b) != 0 || err != nil {
		t.Errorf("3.1.1 client got %x before the close (%v), want nothing", b, err)
	}
	typ, body := v5.read()
	if typ != 0xE0 || len(body) < 1 || body[0] != 0x8B {
		t.Errorf("MQTT 5 client got %#x %x, want DISCONNECT 0x8B", typ, body)
	}
	<-done
}
