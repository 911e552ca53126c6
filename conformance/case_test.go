package conformance

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/mqttcheck"
)

// testTimeout keeps silent-broker tests short; nothing here is slow.
const testTimeout = 200 * time.Millisecond

// fakeBroker accepts connections on 127.0.0.1:0 and runs handle for each.
// Cleanup closes the listener and every connection and waits for the
// handlers.
func fakeBroker(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readPacket reads one whole MQTT packet, or returns nil at EOF.
func readPacket(c net.Conn) []byte {
	hdr := make([]byte, 1, 5)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil
	}
	b := make([]byte, 1)
	for range 4 {
		if _, err := io.ReadFull(c, b); err != nil {
			return nil
		}
		hdr = append(hdr, b[0])
		if b[0]&0x80 == 0 {
			break
		}
	}
	rl, n := mqttcheck.Varint(hdr[1:])
	if n <= 0 {
		return nil
	}
	body := make([]byte, rl)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil
	}
	return append(hdr, body...)
}

// serveConnack reads the CONNECT and answers CONNACK 0.
func serveConnack(c net.Conn) bool {
	if p := readPacket(c); p == nil || p[0] != 0x10 {
		return false
	}
	_, err := c.Write([]byte{0x20, 0x02, 0x00, 0x00})
	return err == nil
}

// answerPings answers PINGREQ with PINGRESP until the connection ends.
func answerPings(c net.Conn) {
	for {
		p := readPacket(c)
		if p == nil {
			return
		}
		if p[0] == 0xC0 {
			c.Write(pingresp)
		}
	}
}

func mustPayload(t *testing.T, s string) []byte {
	t.Helper()
	b, err := ParsePayload(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pingCase sends a SUBSCRIBE and expects a SUBACK, with the given ending.
func subCase(t *testing.T, expectDisconnect bool) *Case {
	return &Case{
		File: "T.json", Group: "g", Name: "n", Ver: 4, Connect: true, ExpectDisconnect: expectDisconnect,
		Steps: []Step{
			{Kind: StepSend, Data: mustPayload(t, "82 r6 m1 s1 'p' 00")},
			{Kind: StepRecv, Data: mustPayload(t, "90 r3 m1 00")},
		},
	}
}

var suback = []byte{0x90, 0x03, 0x00, 0x01, 0x00}

func TestRunCase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		expectDisconnect bool
		handle           func(c net.Conn)
		outcome          Outcome
		class            string
	}{
		{"PassDisconnect", true, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(suback)
			}
		}, Pass, ""},
		{"PassPing", false, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(suback)
				answerPings(c)
			}
		}, Pass, ""},
		{"ConnackRefused", true, func(c net.Conn) {
			readPacket(c)
			c.Write([]byte{0x20, 0x02, 0x00, 0x05})
		}, Fail, ClassConnack},
		{"ConnackMissing", true, func(c net.Conn) {
			readPacket(c)
		}, Fail, ClassConnack},
		{"Mismatch", true, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write([]byte{0x90, 0x03, 0x00, 0x01, 0x80})
			}
		}, Fail, ClassMismatch},
		{"Closed", true, func(c net.Conn) {
			if serveConnack(c) {
				readPacket(c)
			}
		}, Fail, ClassClosed},
		{"ShortThenClose", true, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(suback[:3])
			}
		}, Fail, ClassShort},
		{"NoReplyAlive", true, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				answerPings(c)
			}
		}, Fail, ClassNoReply},
		{"ClosedOnProbe", true, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				readPacket(c) // the PINGREQ
			}
		}, Fail, ClassClosedProbe},
		{"Hang", true, func(c net.Conn) {
			if serveConnack(c) {
				io.Copy(io.Discard, c) // reads everything, answers nothing
			}
		}, Hang, ClassHang},
		{"NotClosed", true, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(suback)
				answerPings(c)
			}
		}, Fail, ClassNotClosed},
		{"ExtraBeforeClose", true, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(suback)
				c.Write([]byte{0xE0, 0x00})
			}
		}, Fail, ClassExtraClose},
		{"ExtraOpen", true, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(append(append([]byte(nil), suback...), 0x30, 0x00))
				io.Copy(io.Discard, c)
			}
		}, Fail, ClassExtraOpen},
		{"PingClosed", false, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(suback)
			}
		}, Fail, ClassClosed},
		{"PingWrongAnswer", false, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(suback)
				readPacket(c)
				c.Write([]byte{0xE0, 0x00})
			}
		}, Fail, ClassPing},
		{"PingHang", false, func(c net.Conn) {
			if serveConnack(c) && readPacket(c) != nil {
				c.Write(suback)
				io.Copy(io.Discard, c)
			}
		}, Hang, ClassHang},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := fakeBroker(t, tt.handle)
			res := RunCase(context.Background(), addr, subCase(t, tt.expectDisconnect), testTimeout)
			if res.Outcome != tt.outcome || res.Class != tt.class {
				t.Fatalf("RunCase() = %s/%s (%s), want %s/%s", res.Outcome, res.Class, res.Reason, tt.outcome, tt.class)
			}
			if res.Outcome != Pass && res.Reason == "" {
				t.Errorf("RunCase() gave no reason")
			}
			if res.Elapsed > 10*testTimeout {
				t.Errorf("RunCase() took %v, more than 10 timeouts", res.Elapsed)
			}
		})
	}
}

// TestRunCase_FairConnack checks the fair-runner rule: an MQTT 5 CONNACK
// with the broker's own properties passes, and the CONNECT is the
// catalogue's default one.
func TestRunCase_FairConnack(t *testing.T) {
	t.Parallel()
	c := &Case{File: "T.json", Group: "v5", Name: "fair", Ver: 5, Connect: true, ExpectDisconnect: false}
	gotConnect := make(chan []byte, 1)
	addr := fakeBroker(t, func(conn net.Conn) {
		gotConnect <- readPacket(conn)
		// Session present 0, reason 0, properties: Topic Alias Maximum 10,
		// Receive Maximum 20, Maximum Packet Size 2000000.
		conn.Write(mustPayload(t, "20 r14 00 00 v11 22 H10 21 H20 27 L2000000"))
		answerPings(conn)
	})
	res := RunCase(context.Background(), addr, c, testTimeout)
	if res.Outcome != Pass {
		t.Fatalf("RunCase() = %s (%s), want pass", res.Outcome, res.Reason)
	}
	want := mustPayload(t, "10 r23 s4 'MQTT' 05 02 k60 v3 21 H20 s7 'v5 fair'")
	if got := <-gotConnect; !bytes.Equal(got, want) {
		t.Errorf("CONNECT = % X, want % X", got, want)
	}
}

func TestRunCase_ExternalPublish(t *testing.T) {
	t.Parallel()
	c := &Case{
		File: "T.json", Group: "g", Name: "n", Ver: 4, Connect: true, ExpectDisconnect: false,
		Steps: []Step{
			{Kind: StepSubscribe, Topic: "p", QoS: 2},
			{Kind: StepExternalPublish, Topic: "p", QoS: 2, Payload: []byte("message")},
			{Kind: StepRecv, Data: mustPayload(t, "30 r10 s1 'p' 'message'")},
			{Kind: StepUnsubscribe, Topic: "p"},
		},
	}
	var mu sync.Mutex
	var subscriber net.Conn
	var helperSaw [][]byte
	addr := fakeBroker(t, func(conn net.Conn) {
		p := readPacket(conn)
		if p == nil {
			return
		}
		conn.Write([]byte{0x20, 0x02, 0x00, 0x00})
		if bytes.Contains(p, []byte("helper")) {
			pub := readPacket(conn)
			conn.Write([]byte{0x50, 0x02, 0x00, 0x01})
			rel := readPacket(conn)
			conn.Write([]byte{0x70, 0x02, 0x00, 0x01})
			mu.Lock()
			helperSaw = append(helperSaw, pub, rel)
			sub := subscriber
			mu.Unlock()
			sub.Write(mustPayload(t, "30 r10 s1 'p' 'message'"))
			readPacket(conn)
			return
		}
		mu.Lock()
		subscriber = conn
		mu.Unlock()
		if !bytes.Equal(readPacket(conn), mustPayload(t, "82 r6 m1 s1 'p' 02")) {
			return
		}
		conn.Write(mustPayload(t, "90 r3 m1 02"))
		if !bytes.Equal(readPacket(conn), mustPayload(t, "A2 r5 m1 s1 'p'")) {
			return
		}
		conn.Write(mustPayload(t, "B0 r2 m1"))
		answerPings(conn)
	})
	res := RunCase(context.Background(), addr, c, testTimeout)
	if res.Outcome != Pass {
		t.Fatalf("RunCase() = %s (%s), want pass", res.Outcome, res.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(helperSaw) != 2 || !bytes.Equal(helperSaw[0], mustPayload(t, "34 r12 s1 'p' m1 'message'")) ||
		!bytes.Equal(helperSaw[1], mustPayload(t, "62 r2 m1")) {
		t.Errorf("helper sent % X", helperSaw)
	}
}

func TestRunCase_Dial(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res := RunCase(context.Background(), addr, subCase(t, true), testTimeout)
	if res.Outcome != Fail || res.Class != ClassDial {
		t.Fatalf("RunCase() = %s/%s (%s), want fail/dial", res.Outcome, res.Class, res.Reason)
	}
}

func TestHexBytes(t *testing.T) {
	t.Parallel()
	if got := hexBytes(nil); got != "(nothing)" {
		t.Errorf("hexBytes(nil) = %q", got)
	}
	if got := hexBytes([]byte{0xE0, 0x01, 0x81}); got != "E0 01 81" {
		t.Errorf("hexBytes = %q", got)
	}
	if got := hexBytes(make([]byte, 100)); !strings.HasSuffix(got, "…(+52)") {
		t.Errorf("hexBytes of 100 bytes = %q", got)
	}
}
