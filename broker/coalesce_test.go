package broker

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// pipeConn is a net.Conn whose Read blocks until the test sends a chunk (or
// closes it) and which records every Write call separately.
type pipeConn struct {
	in     chan []byte
	mu     sync.Mutex
	writes [][]byte
	closed chan struct{}
	once   sync.Once
}

func newPipeConn() *pipeConn {
	return &pipeConn{in: make(chan []byte, 16), closed: make(chan struct{})}
}

func (c *pipeConn) Read(p []byte) (int, error) {
	select {
	case b := <-c.in:
		return copy(p, b), nil // the tests send chunks smaller than the buffer
	case <-c.closed:
		return 0, io.EOF
	}
}

func (c *pipeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// written returns the Write calls so far.
func (c *pipeConn) written() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

func (c *pipeConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *pipeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }

// readPacket reads one whole packet through f, as mochi does (header, then
// body).
// connected reads the CONNECT and writes mochi's CONNACK, then forgets
// that write.
func connected(t *testing.T, f *framer, c *pipeConn, connect []byte) {
	t.Helper()
	readPacket(t, f, connect)
	if _, err := f.Write(connack); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.writes = nil
	c.mu.Unlock()
}

// Ensure what mochi writes between accepting a CONNECT and its CONNACK (an
// event to a resumed session, an answer to a pipelined packet) goes out
// right after the CONNACK, in order, in the same write.
func TestFramer_HoldsUntilConnack(t *testing.T) {
	c := newPipeConn()
	f := newFramer(c, &testCfg)
	c.in <- connect4
	readPacket(t, f, connect4)
	d1 := pk(0x32, `0003 't/b' 0001 'one'`)
	d2 := pk(0x32, `0003 't/b' 0002 'two'`)
	for _, p := range [][]byte{d1, d2} {
		if n, err := f.Write(p); n != len(p) || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	if w := c.written(); len(w) != 0 {
		t.Fatalf("written before the CONNACK: %x", w)
	}
	if n, err := f.Write(connack); n != len(connack) || err != nil {
		t.Fatalf("connack: %d %v", n, err)
	}
	want := append(append(bytes.Clone(connack), d1...), d2...)
	if w := c.written(); len(w) != 1 || !bytes.Equal(w[0], want) {
		t.Fatalf("writes %x, want one %x", w, want)
	}
	_, _ = f.Write(d1)
	if w := c.written(); len(w) != 2 || !bytes.Equal(w[1], d1) {
		t.Fatalf("after the CONNACK, writes %x", w)
	}
}

func readPacket(t *testing.T, f *framer, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(f, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %x, %v; want %x", got, err, want)
	}
}

func puback(id byte) []byte { return []byte{packets.Puback << 4, 2, 0, id} }

// Ensure the acks of pipelined publishes go out in one write, before the
// read goroutine waits for more input, in order and complete.
func TestCoalesce_AcksOfOneReadGoTogether(t *testing.T) {
	c := newPipeConn()
	f := newFramer(c, &testCfg)
	c.in <- connect4
	connected(t, f, c, connect4)
	connack := []byte{packets.Connack << 4, 2, 0, 0}
	if _, err := f.Write(connack); err != nil {
		t.Fatal(err)
	}
	if w := c.written(); len(w) != 1 || !bytes.Equal(w[0], connack) {
		t.Fatalf("CONNACK not written at once: %x", w)
	}

	// Three QoS 1 publishes arrive in one segment.
	p1, p2, p3 := pk(0x32, `0003 't/a' 0001 'x'`), pk(0x32, `0003 't/a' 0002 'y'`), pk(0x32, `0003 't/a' 0003 'z'`)
	c.in <- bytes.Join([][]byte{p1, p2, p3}, nil)
	for i, p := range [][]byte{p1, p2, p3} {
		readPacket(t, f, p)
		if _, err := f.Write(puback(byte(i + 1))); err != nil {
			t.Fatal(err)
		}
	}
	if w := c.written(); len(w) != 1 {
		t.Fatalf("acks written before the reader waited: %x", w)
	}

	// The reader asks for more: the acks go out first, in one write.
	done := make(chan struct{})
	go func() {
		defer close(done)
		readPacket(t, f, pk(0xC0, ``))
	}()
	waitFor(t, "the acks", func() bool { return len(c.written()) == 2 })
	want := bytes.Join([][]byte{puback(1), puback(2), puback(3)}, nil)
	if w := c.written(); !bytes.Equal(w[1], want) {
		t.Fatalf("second write %x, want the three acks %x", w[1], want)
	}

	// While the reader waits, an ack written by another goroutine is not
	// deferred: nothing would flush it.
	if _, err := f.Write(puback(9)); err != nil {
		t.Fatal(err)
	}
	if w := c.written(); len(w) != 3 || !bytes.Equal(w[2], puback(9)) {
		t.Fatalf("ack written while the reader waits: %x", w)
	}
	c.in <- pk(0xC0, ``)
	<-done
}

// Ensure a deferred ack goes out ahead of the next other packet, in the
// same write, and that the timer and Close flush what nothing else does.
func TestCoalesce_FlushPoints(t *testing.T) {
	c := newPipeConn()
	f := newFramer(c, &testCfg)
	c.in <- connect4
	connected(t, f, c, connect4)

	// With the next delivery: one write, ack first.
	_, _ = f.Write(puback(1))
	delivery := pk(0x32, `0003 't/b' 0007 'hello'`)
	_, _ = f.Write(delivery)
	w := c.written()
	if want := append(puback(1), delivery...); len(w) != 1 || !bytes.Equal(w[0], want) {
		t.Fatalf("writes %x, want one %x", w, want)
	}

	// A large packet goes with the acks without being copied into them.
	_, _ = f.Write(puback(2))
	large := pk(0x30, `0003 't/b' `+string(bytes.Repeat([]byte("61"), coalesceCopyMax)))
	_, _ = f.Write(large)
	var all []byte
	for _, b := range c.written()[1:] {
		all = append(all, b...)
	}
	if want := append(puback(2), large...); !bytes.Equal(all, want) {
		t.Fatalf("ack and large packet: got %d bytes, want %d", len(all), len(want))
	}

	// Nothing else: the timer.
	n := len(c.written())
	_, _ = f.Write(puback(3))
	waitFor(t, "the timer flush", func() bool { return len(c.written()) == n+1 })
	if w := c.written(); !bytes.Equal(w[n], puback(3)) {
		t.Fatalf("timer flush %x", w[n])
	}

	// Past ackBatchMax bytes the ack is written at once, with the batch.
	n = len(c.written())
	for i := 0; i <= ackBatchMax/4; i++ {
		_, _ = f.Write(puback(byte(i)))
	}
	if w := c.written(); len(w) != n+1 || len(w[n]) != ackBatchMax+4 {
		t.Fatalf("full batch: %d writes, last %d bytes", len(w)-n, len(w[len(w)-1]))
	}

	// Close.
	n = len(c.written())
	_, _ = f.Write(puback(4))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if w := c.written(); len(w) != n+1 || !bytes.Equal(w[n], puback(4)) {
		t.Fatalf("close flush: %x", w[n:])
	}
	// After Close nothing is deferred any more (the write fails or not,
	// as the connection says).
	_, _ = f.Write(puback(5))
	if w := c.written(); len(w) != n+2 {
		t.Fatalf("write after close deferred")
	}
}

// Ensure only short PUBACK, PUBREC and PUBCOMP packets are taken for acks.
func TestCoalesce_IsAck(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want bool
	}{
		{puback(1), true},
		{[]byte{packets.Pubrec << 4, 2, 0, 1}, true},
		{[]byte{packets.Pubcomp << 4, 2, 0, 1}, true},
		{[]byte{packets.Puback << 4, 3, 0, 1, 0x87}, true}, // MQTT 5 with a reason code
		{[]byte{packets.Pubrel<<4 | 2, 2, 0, 1}, false},
		{[]byte{packets.Pingresp << 4, 0}, false},
		{append(puback(1), puback(2)...), false}, // not exactly one packet
		{[]byte{packets.Puback << 4, 2, 0}, false},
		{[]byte{packets.Puback << 4}, false},
	} {
		if got := isAck(tc.p); got != tc.want {
			t.Errorf("isAck(%x) = %v", tc.p, got)
		}
	}
}

// Ensure a DISCONNECT mochi writes to an MQTT 3.1.1 connection (a session
// takeover) never reaches the wire: the packets before it in the same
// write go out, pending acks too, and the connection is closed. An MQTT 5
// connection gets it.
func TestFramer_NoDisconnectFor311(t *testing.T) {
	delivery := pk(0x32, `0003 't/b' 0007 'hello'`)
	disconnect5 := []byte{packets.Disconnect << 4, 1, 0x8E}
	for _, tc := range []struct {
		connect, write, want []byte
		closed               bool
	}{
		{connect4, []byte{packets.Disconnect << 4, 0}, puback(1), true},
		{connect4, append(bytes.Clone(delivery), packets.Disconnect<<4, 0), append(puback(1), delivery...), true},
		{connect5, disconnect5, append(puback(1), disconnect5...), false},
	} {
		c := newPipeConn()
		f := newFramer(c, &testCfg)
		c.in <- tc.connect
		connected(t, f, c, tc.connect)
		_, _ = f.Write(puback(1))
		if n, err := f.Write(tc.write); n != len(tc.write) || err != nil {
			t.Errorf("write %x: %d, %v", tc.write, n, err)
		}
		var all []byte
		for _, b := range c.written() {
			all = append(all, b...)
		}
		if !bytes.Equal(all, tc.want) {
			t.Errorf("after %x: wire %x, want %x", tc.write, all, tc.want)
		}
		select {
		case <-c.closed:
			if !tc.closed {
				t.Errorf("after %x: closed", tc.write)
			}
		default:
			if tc.closed {
				t.Errorf("after %x: not closed", tc.write)
			}
		}
	}
}
