package broker

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/internal/mqttwire"
)

// scriptConn is a net.Conn that yields its chunks one Read at a time (a
// Read never spans two chunks) and records what is written to it.
type scriptConn struct {
	chunks [][]byte
	out    bytes.Buffer
	closed bool
	reads  int
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	c.reads++
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *scriptConn) Close() error                     { c.closed = true; return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

var (
	hx = mqttwire.Hex       // hx(`00 03 'a/b'`): hex with spaces, quoted text literal
	pk = mqttwire.HexPacket // pk(first byte, hex body): a framed packet
)

var (
	connack  = []byte{packets.Connack << 4, 2, 0, 0}
	connect4 = pk(0x10, `0004 'MQTT' 04 02 003C 0001 'p'`)
	connect5 = pk(0x10, `0004 'MQTT' 05 02 003C 00 0001 'p'`)
)

// frame runs input through a framer in chunks and returns what it handed
// on, what it wrote back, and the error that ended reading.
func frame(cfg framerConfig, chunks ...[]byte) (passed, written []byte, err error, conn *scriptConn) {
	conn = &scriptConn{chunks: chunks}
	f := newFramer(conn, &cfg)
	var out bytes.Buffer
	buf := make([]byte, 7) // small reads: packets span mochi's reads
	for {
		n, e := f.Read(buf)
		out.Write(buf[:n])
		if e != nil {
			written = bytes.Clone(conn.out.Bytes())
			if f.connecting && !conn.closed {
				// mochi's CONNACK: what the framer held goes out after it.
				_, _ = f.Write(connack)
				written = append(written, conn.out.Bytes()[len(written)+len(connack):]...)
			}
			return out.Bytes(), written, e, conn
		}
	}
}

var testCfg = framerConfig{maxPacket: 1024}

// Ensure each packet is handed on unchanged, or answered and the connection
// closed, per type and protocol version. The verdicts themselves are
// tested in internal/mqttcheck; these cases cover each way of answering.
func TestFramer_Packets(t *testing.T) {
	const pass = "pass"
	tests := []struct {
		name    string
		connect []byte // nil: no CONNECT first
		packet  []byte
		want    string // pass, or the hex written before the close ("" = silent close)
		keep    bool   // the packet is consumed, the connection stays open
	}{
		// PUBLISH
		{"v5 publish qos0", connect5, pk(0x30, `0003 't/a' 00 'hi'`), pass, false},
		{"v5 publish qos1 props", connect5, pk(0x32, `0003 't/a' 0001 0B 0101 0300 01 'x' 26 0000 0000 'hi'`), pass, false},
		{"v5 publish qos2 empty payload", connect5, pk(0x34, `0003 't/a' 0001 00`), pass, false},
		{"v5 publish qos3", connect5, pk(0x36, `0003 't/a' 0001 00`), "E00181", false},
		{"v5 publish empty topic", connect5, pk(0x30, `0000 00`), "E00182", false},
		{"v5 publish topic alias", connect5, pk(0x30, `0003 't/a' 03 230001`), "E00194", false},
		{"v5 publish $SYS qos0 dropped", connect5, pk(0x30, `0004 '$SYS' 00`), "", true},
		{"v5 publish $SYS qos1 refused", connect5, pk(0x32, `0004 '$SYS' 007B 00`), "4003007B87", true},
		{"v5 publish $share qos2 refused", connect5, pk(0x34, `0008 '$share/a' 007B 00`), "5003007B87", true},
		{"v3 publish qos1", connect4, pk(0x32, `0003 't/a' 0001 'hi'`), pass, false},
		{"v3 publish control char", connect4, pk(0x30, `0003 74 1F 61`), "", false},
		{"v3 publish $SYS qos1 acked", connect4, pk(0x32, `0004 '$SYS' 007B`), "4002007B", true},
		// SUBSCRIBE
		{"v5 subscribe", connect5, pk(0x82, `04D2 00 0003 'a/#' 01 0001 '+' 2E`), pass, false},
		{"v5 subscribe mochi#501", connect5, hx(`82 06 04 D2 00 00 01 70`), "E00181", false},
		{"v3 subscribe", connect4, pk(0x82, `04D2 0001 'p' 02`), pass, false},
		{"v3 subscribe bad options", connect4, pk(0x82, `04D2 0001 'p' 04`), "", false},
		// UNSUBSCRIBE
		{"v5 unsubscribe", connect5, pk(0xA2, `04D2 00 0001 'p'`), pass, false},
		{"v5 unsubscribe no filters", connect5, pk(0xA2, `04D2 00`), "E00181", false},
		// Acknowledgements
		{"v5 puback", connect5, pk(0x40, `0001`), pass, false},
		{"v5 puback rc props", connect5, pk(0x40, `0001 10 04 1F 0001 'x'`), pass, false},
		{"v5 puback id 0", connect5, pk(0x40, `0000 00`), "E00182", false},
		{"v5 pubrel", connect5, pk(0x62, `0001 92 00`), pass, false},
		{"v3 pubrec id 0", connect4, pk(0x50, `0000`), "", false},
		// Server-to-client packets, AUTH, reserved type
		{"v5 connack", connect5, pk(0x20, `0000`), "E00182", false},
		{"v5 auth", connect5, pk(0xF0, `00`), "E00182", false},
		{"v5 reserved type", connect5, hx(`00 80 80 80 80 01`), "E00182", false},
		{"v3 auth", connect4, pk(0xF0, ``), "", false},
		// PINGREQ, DISCONNECT
		{"v5 pingreq", connect5, pk(0xC0, ``), pass, false},
		{"v5 pingreq long", connect5, pk(0xC0, `00`), "", false},
		{"v5 disconnect", connect5, pk(0xE0, `04 05 1F 0002 'ok'`), pass, false},
		{"v5 disconnect expiry after zero", connect5, pk(0xE0, `00 05 11 00000001`), "E00182", false},
		{"v5 disconnect expiry after non-zero", pk(0x10, `0004 'MQTT' 05 02 003C 05 11 0000000A 0001 'p'`), pk(0xE0, `00 05 11 00000001`), pass, false},
		// Framing
		{"remaining length of five bytes", connect5, hx(`30 FF FF FF FF 01`), "", false},
		{"v5 packet too large", connect5, hx(`30 FF FF FF 7F`), "E00195", false},
		{"v5 packet one byte too large", connect5, pk(0x30, `0003 't/a' 00`+strings.Repeat("00", 1024-8)), "E00195", false},
		{"v5 packet at the limit", connect5, pk(0x30, `0003 't/a' 00`+strings.Repeat("00", 1024-9)), pass, false},
		{"v5 second connect", connect5, connect5, "E00182", false},
		{"v3 second connect", connect4, connect4, "", false},
		{"publish before connect", nil, pk(0x30, `0003 't/a'`), "", false},
		{"pingreq before connect", nil, pk(0xC0, ``), "", false},
		// CONNECT
		{"v5 connect", nil, connect5, pass, false},
		{"v3 connect", nil, connect4, pass, false},
		{"v3.1 connect", nil, pk(0x10, `0006 'MQIsdp' 03 02 003C 0001 'p'`), pass, false},
		{"v5 connect props will user pass", nil, pk(0x10, `0004 'MQTT' 05 EE 003C 08 2100 0A 2700 01 0000 0001 'p' 02 0101 0003 't/w' 0003 'bye' 0002 'us' 0002 'pw'`), pass, false},
		{"connect protocol name", nil, pk(0x10, `0004 'MQTU' 04 02 003C 0001 'p'`), "", false},
		{"connect protocol level 3", nil, pk(0x10, `0004 'MQTT' 03 02 003C 0001 'p'`), "20020001", false},
		{"connect protocol level 6", nil, pk(0x10, `0004 'MQTT' 06 02 003C 0001 'p'`), "20020001", false},
		{"v3 connect empty id clean false", nil, pk(0x10, `0004 'MQTT' 04 00 003C 0000`), "20020002", false},
		{"v5 connect control char id", nil, pk(0x10, `0004 'MQTT' 05 02 003C 00 0002 'p' 01`), "2003008500", false},
		{"v5 connect excess", nil, pk(0x10, `0004 'MQTT' 05 02 003C 00 0001 'q' 0001 'q'`), "2003008100", false},
		{"v5 connect receive maximum 0", nil, pk(0x10, `0004 'MQTT' 05 02 003C 03 210000 0001 'p'`), "2003008200", false},
		{"v5 connect auth method", nil, pk(0x10, `0004 'MQTT' 05 02 003C 07 15 0004 'SCRM' 0001 'p'`), "2003008C00", false},
		{"connect remaining length of five bytes", nil, hx(`10 80 80 80 80 01`), "", false},
		{"v5 tiny client maximum packet size", pk(0x10, `0004 'MQTT' 05 02 003C 05 27 00000002 0001 'p'`), pk(0xC1, ``), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append(append([]byte{}, tc.connect...), tc.packet...)
			passed, written, err, conn := frame(testCfg, in)
			if tc.want == pass {
				if !bytes.Equal(passed, in) || !errors.Is(err, io.EOF) || len(written) != 0 {
					t.Fatalf("passed %x, wrote %x, err %v; want all of %x passed", passed, written, err, in)
				}
				return
			}
			if !bytes.Equal(passed, tc.connect) {
				t.Errorf("passed %x, want only the CONNECT %x", passed, tc.connect)
			}
			if got := strings.ToUpper(hex.EncodeToString(written)); got != tc.want {
				t.Errorf("wrote %s, want %q", got, tc.want)
			}
			if tc.keep {
				if conn.closed || !errors.Is(err, io.EOF) {
					t.Errorf("closed %v, err %v; want the connection kept", conn.closed, err)
				}
				return
			}
			if !conn.closed || !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("closed %v, err %v; want closed with ErrInvalidPacket", conn.closed, err)
			}
		})
	}
}

// Ensure packets split across reads (down to one byte a read) and several
// packets in one read are handed on byte for byte, including a PUBLISH
// larger than the framer's buffer, whose payload is streamed.
func TestFramer_Chunking(t *testing.T) {
	big := pk(0x32, `0005 'big/1' 0007 00`+strings.Repeat("AB", 100<<10))
	stream := bytes.Join([][]byte{
		connect5,
		pk(0x82, `0001 00 0003 'a/#' 01`),
		pk(0x30, `0003 'a/b' 00 'hello'`),
		big,
		pk(0xC0, ``),
		pk(0x40, `0001`),
		pk(0xE0, ``),
	}, nil)
	cfg := framerConfig{maxPacket: 256 << 10}
	for _, size := range []int{1, 2, 3, 7, 100, 4096, len(stream)} {
		var chunks [][]byte
		for i := 0; i < len(stream); i += size {
			chunks = append(chunks, stream[i:min(i+size, len(stream))])
		}
		passed, written, err, _ := frame(cfg, chunks...)
		if !bytes.Equal(passed, stream) || len(written) != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("chunks of %d: passed %d of %d bytes (equal %v), wrote %x, err %v",
				size, len(passed), len(stream), bytes.Equal(passed, stream[:len(passed)]), written, err)
		}
	}
}

// Ensure valid packets before an invalid one are all handed on, and
// nothing after it: mochi processes them before the framer answers.
func TestFramer_ValidThenInvalid(t *testing.T) {
	good := bytes.Join([][]byte{connect5, pk(0xC0, ``), pk(0x30, `0001 'a' 00`)}, nil)
	in := append(append([]byte{}, good...), hx(`82 06 04 D2 00 00 01 70`)...)
	in = append(in, pk(0xC0, ``)...)
	passed, written, err, conn := frame(testCfg, in) // all in one read
	if !bytes.Equal(passed, good) {
		t.Errorf("passed %x, want %x", passed, good)
	}
	if !bytes.Equal(written, hx(`E0 01 81`)) || !conn.closed || !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("wrote %x, closed %v, err %v", written, conn.closed, err)
	}
}

// Ensure an oversize remaining length is refused on the fixed header,
// before the body is buffered.
func TestFramer_OversizeBeforeAllocation(t *testing.T) {
	conn := &scriptConn{chunks: [][]byte{connect5, hx(`30 FF FF FF 7F`), bytes.Repeat([]byte{'x'}, 64<<10)}}
	f := newFramer(conn, &framerConfig{maxPacket: 256 << 10})
	_, err := io.Copy(io.Discard, f)
	if !errors.Is(err, ErrInvalidPacket) || !bytes.Equal(conn.out.Bytes(), hx(`E0 01 95`)) {
		t.Fatalf("err %v, wrote %x", err, conn.out.Bytes())
	}
	if len(f.buf) > framerBufSize {
		t.Errorf("buffer grew to %d bytes", len(f.buf))
	}
	if len(conn.chunks) != 1 {
		t.Errorf("the body was read (%d chunks left)", len(conn.chunks))
	}

	// A packet within the limit that is announced but only trickled pins
	// no more than what arrived.
	conn = &scriptConn{chunks: [][]byte{connect5, hx(`82 80 C0 0C 0001`), bytes.Repeat([]byte{'x'}, 10<<10)}}
	f = newFramer(conn, &framerConfig{maxPacket: 256 << 10})
	_, err = io.Copy(io.Discard, f)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v", err)
	}
	if len(f.buf) > 16<<10 {
		t.Errorf("buffer of %d bytes for 10 KiB received", len(f.buf))
	}
}

// Ensure the broker answers the truncated SUBSCRIBE of mochi#501 with
// DISCONNECT 0x81 on TCP and on WebSocket, before mochi decodes it.
func TestServer_FramerAnswersMalformed(t *testing.T) {
	s := startBroker(t, nil)
	c := rawConnectV5(t, s.TCPAddr().String(), "framer-tcp")
	if _, err := c.Write(hx(`82 06 04 D2 00 00 01 70`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	got, _ := io.ReadAll(c)
	if !bytes.Equal(got, hx(`E0 01 81`)) {
		t.Errorf("TCP: got %x, want E0 01 81 then close", got)
	}

	ws, _ := dialWS(t, s)
	if err := ws.WriteMessage(websocket.BinaryMessage, pk(0x10, `0004 'MQTT' 05 02 003C 00 0002 'ws'`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || msg[0] != 0x20 {
		t.Fatalf("CONNACK: %x, %v", msg, err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, hx(`82 06 04 D2 00 00 01 70`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || !bytes.Equal(msg, hx(`E0 01 81`)) {
		t.Errorf("WebSocket: got %x, %v; want E0 01 81", msg, err)
	}
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("WebSocket still open")
	}
}

// streamConn serves the same bytes again and again, as a socket full of
// PUBLISH packets would.
type streamConn struct {
	scriptConn
	data []byte
	off  int
}

func (c *streamConn) Read(p []byte) (int, error) {
	n := copy(p, c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}

// benchPublish measures reading PUBLISH packets the way mochi does (a
// 2 KiB bufio.Reader, ReadByte for the fixed header, ReadFull for the body)
// from conn.
func benchPublish(b *testing.B, conn net.Conn, packet []byte) {
	r := bufio.NewReaderSize(conn, readBufferSize)
	body := make([]byte, len(packet))
	b.SetBytes(int64(len(packet)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.ReadByte(); err != nil {
			b.Fatal(err)
		}
		rem, _, err := packets.DecodeLength(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, body[:rem]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFramerPublish compares mochi's read path on a raw connection
// ("raw", no framer: before) with the same path through the framer
// ("framer": after), for MQTT 5 QoS 1 PUBLISH packets of a chat-sized and a
// large payload.
func BenchmarkFramerPublish(b *testing.B) {
	for _, size := range []int{200, 16 << 10} {
		packet := pk(0x32, `0012 'say/friend/alice01' 0001 00`+strings.Repeat("61", size))
		stream := bytes.Repeat(packet, max(1, 64<<10/len(packet)))
		name := "200B"
		if size > 200 {
			name = "16KiB"
		}
		b.Run(name+"/raw", func(b *testing.B) {
			benchPublish(b, &streamConn{data: stream}, packet)
		})
		b.Run(name+"/framer", func(b *testing.B) {
			// The stream starts after CONNECT: the framer is told so.
			f := newFramer(&streamConn{data: stream}, &framerConfig{maxPacket: DefaultMaxPacketSize})
			f.sess.Version = 5
			benchPublish(b, f, packet)
		})
	}
}

// Ensure the listener's recover still isolates a panic behind the framer:
// the connection mochi was given is the one closed and reported.
func TestConnGuard_RecoverBehindFramer(t *testing.T) {
	raw := &scriptConn{}
	var got, reported net.Conn
	g := &connGuard{max: 1, timeout: time.Second, onPanic: func(c net.Conn) { reported = c }}
	g.serve("test", raw, func(_ string, c net.Conn) error {
		got = c
		panic("decoder bug")
	})
	if _, ok := got.(*framer); !ok {
		t.Fatalf("establish got %T, want the framer", got)
	}
	if reported != got || !raw.closed {
		t.Errorf("reported %v (want the framer), raw closed %v", reported, raw.closed)
	}
}

// stuckConn is a client that sends but never reads: Write blocks until Close.
type stuckConn struct {
	scriptConn
	done chan struct{}
}

func (c *stuckConn) Write(p []byte) (int, error) {
	<-c.done
	return 0, net.ErrClosed
}

func (c *stuckConn) Close() error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return nil
}

// Ensure the answer to an invalid packet cannot hold the read goroutine
// when the client does not read.
func TestFramer_RejectDoesNotBlock(t *testing.T) {
	c := &stuckConn{scriptConn: scriptConn{chunks: [][]byte{connect5, pk(0xC1, ``)}}, done: make(chan struct{})}
	f := newFramer(c, &testCfg)
	start := time.Now()
	_, err := io.Copy(io.Discard, f)
	if !errors.Is(err, ErrInvalidPacket) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > rejectWriteTimeout+time.Second {
		t.Errorf("reject took %v", d)
	}
}
