package broker

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// Ensure first packets of every type that claim a huge remaining length
// (Mosquitto's 01-bad-initial-packets: 14 packet types, ~256 MB each),
// many sockets at once, are refused from their fixed header: every
// connection is closed at once and memory stays bounded.
func TestLimits_BadInitialPackets(t *testing.T) {
	s := startBroker(t, func(o *Options) { o.ConnectTimeout = time.Minute; o.WSAddr = "" })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	for round := 0; round < 3; round++ {
		for typ := byte(1); typ <= 15; typ++ {
			c, err := net.Dial("tcp", s.TCPAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Remaining length 268,435,455, then a first chunk of body.
			hdr := []byte{typ << 4, 0xFF, 0xFF, 0xFF, 0x7F}
			if typ == 6 || typ == 8 || typ == 10 { // PUBREL, SUBSCRIBE, UNSUBSCRIBE have flags 0010
				hdr[0] |= 0x02
			}
			if _, err := c.Write(append(hdr, make([]byte, 64<<10)...)); err != nil {
				continue // already closed: refused on the header
			}
			conns = append(conns, c)
		}
	}
	for _, c := range conns {
		expectClosed(t, c, wait)
	}
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 16<<20 {
		t.Errorf("heap grew by %d bytes for %d refused connections", grown, len(conns))
	}
	// The broker still serves.
	connectV3(t, "tcp://"+s.TCPAddr().String(), "after", "after", true, "users/after/#")
}

// Ensure the CONNECT deadline is absolute: a client trickling its CONNECT
// one byte at a time, each within the deadline, is still closed by it.
func TestLimits_SlowlorisConnect(t *testing.T) {
	const deadline = 300 * time.Millisecond
	s := startBroker(t, func(o *Options) { o.ConnectTimeout = deadline; o.WSAddr = "" })
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connect := []byte("\x10\x0f\x00\x04MQTT\x04\x02\x00\x3c\x00\x03abc")
	closed := make(chan error, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err := io.Copy(io.Discard, c)
		closed <- err
	}()
	tick := time.NewTicker(deadline / 6)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case err := <-closed:
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("a trickled CONNECT kept the connection open for %v", wait)
			}
			return
		case <-tick.C:
			if i < len(connect)-1 { // never the last byte
				_, _ = c.Write(connect[i : i+1])
			}
		}
	}
}

// Ensure the CONNECT deadline applies to WebSocket connections too, after
// the upgrade.
func TestLimits_WebSocketConnectDeadline(t *testing.T) {
	s := startBroker(t, func(o *Options) { o.ConnectTimeout = 300 * time.Millisecond })
	ws, _ := dialWS(t, s)
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("got a message before CONNECT")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("WebSocket connection still open after %v", wait)
	}
}
