package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/internal/mqttcheck"
)

// The validating framer sits between a client's socket and mochi. It reads
// whole MQTT packets off the wire (fixed header, remaining length bounded by
// the maximum packet size, body), has each one checked against MQTT 3.1.1
// and 5 (internal/mqttcheck, which also holds the choice of reason codes),
// and hands mochi only the exact bytes of valid packets. An invalid packet
// is answered here — MQTT 5: DISCONNECT with a reason code, or CONNACK with
// one for a bad CONNECT; MQTT 3.1.1: nothing, or CONNACK 0x01/0x02 where
// 3.1.1 defines one — and the connection is closed, so mochi never decodes
// a malformed packet. That removes the decoder panics of mochi#501 at their
// root; the listener's recover stays as a second line.
//
// A broken remaining length closes without a packet, since nothing after it
// can be trusted.
//
// Hot path: a PUBLISH is checked on its variable header only (topic, packet
// id, properties); its payload is passed through without a copy when it was
// not already buffered. The read buffer is reused across packets.

// framerConfig is what the framer needs from the broker's options.
type framerConfig struct {
	// maxPacket bounds a whole packet (fixed header included); 0 means the
	// protocol's own bound.
	maxPacket uint32
	// topicAliasMax is the server's Topic Alias Maximum: a PUBLISH alias of
	// 0 or above it gets DISCONNECT 0x94.
	topicAliasMax uint16
}

const (
	// framerBufSize is the initial read buffer; a larger packet grows it,
	// and a buffer grown past framerKeepSize is dropped once empty.
	framerBufSize  = 2048
	framerKeepSize = 64 << 10
	// rejectWriteTimeout bounds the write of the final DISCONNECT/CONNACK.
	rejectWriteTimeout = time.Second
)

// ErrInvalidPacket is the error mochi sees (and hooks get in OnDisconnect)
// when the framer closed a connection because of an invalid packet.
var ErrInvalidPacket = errors.New("broker: invalid MQTT packet")

// rejectError carries the reason code of a rejected packet.
type rejectError struct {
	typ  byte
	code byte
}

func (e *rejectError) Error() string {
	return fmt.Sprintf("%v (packet type %d, reason 0x%02X); connection closed", ErrInvalidPacket, e.typ, e.code)
}

func (e *rejectError) Unwrap() error { return ErrInvalidPacket }

// framer is a net.Conn whose Read yields only validated MQTT packets. Writes
// are serialised, because the framer writes its own answers from mochi's
// read goroutine while mochi writes from others.
type framer struct {
	net.Conn
	cfg *framerConfig

	// The write side (coalesce.go). wmu serialises writes; acks holds
	// acknowledgements deferred while the read goroutine works through the
	// packets it has read.
	wmu      sync.Mutex
	acks     []byte
	ackTimer *time.Timer
	armed    bool // ackTimer is set to flush acks
	waiting  bool // the read goroutine is (about to be) blocked on the connection
	closed   bool
	v311     bool // the CONNECT was MQTT 3.1.1: no DISCONNECT is written (disconnectAt)
	// connecting: a CONNECT was accepted and no CONNACK written yet; early
	// holds what mochi wrote meanwhile (see holdUntilConnack).
	connecting bool
	early      []byte

	buf    []byte // raw bytes read from the connection
	r, w   int    // buf[r:w] is read but not yet handed on
	remain int    // bytes of the current, validated packet still to hand on

	sess      mqttcheck.Session // protocol level and expiry of the accepted CONNECT
	clientMax uint32            // the client's Maximum Packet Size; 0 if none
	err       error             // sticky: once set, Read returns it
}

func newFramer(c net.Conn, cfg *framerConfig) *framer {
	return &framer{Conn: c, cfg: cfg, sess: mqttcheck.Session{TopicAliasMax: cfg.topicAliasMax}}
}

// Read implements net.Conn: it returns bytes of validated packets only.
func (f *framer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for f.remain == 0 {
		if f.err != nil {
			return 0, f.err
		}
		if err := f.next(); err != nil {
			f.err = err
			return 0, err
		}
	}
	if f.remain <= f.w-f.r && f.sess.Version != 0 {
		// Hand on, with this packet, the valid ones buffered after it.
		for f.remain < len(p) {
			n := f.scan(f.r + f.remain)
			if n == 0 {
				break
			}
			f.remain += n
		}
	}
	n := min(len(p), f.remain)
	if f.w > f.r {
		n = copy(p[:n], f.buf[f.r:min(f.w, f.r+n)])
		f.r += n
		f.remain -= n
		f.compact()
		return n, nil
	}
	// The rest of a PUBLISH payload: straight from the connection.
	n, err := f.readConn(p[:n])
	f.remain -= n
	if err != nil && f.remain > 0 {
		f.err = err
	}
	return n, err
}

// compact resets the buffer when it is empty, and releases a grown one.
func (f *framer) compact() {
	if f.r == f.w {
		f.r, f.w = 0, 0
		if len(f.buf) > framerKeepSize {
			f.buf = nil
		}
	}
}

// fill makes sure that n bytes are buffered at f.buf[f.r:], reading more
// from the connection as needed. The buffer grows with the bytes that
// arrive, not with the length a header claims: a peer that announces a
// large packet and trickles it pins only what it has sent.
func (f *framer) fill(n int) error {
	for f.w-f.r < n {
		if f.w == len(f.buf) {
			if f.r > 0 {
				f.w = copy(f.buf, f.buf[f.r:f.w])
				f.r = 0
			} else {
				nb := make([]byte, max(framerBufSize, min(2*len(f.buf), n)))
				f.w = copy(nb, f.buf[:f.w])
				f.buf = nb
			}
			continue
		}
		m, err := f.readConn(f.buf[f.w:])
		f.w += m
		if err != nil {
			if f.w-f.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && f.w > f.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// next reads and checks the next packet. On success f.remain is its length
// (fixed header included); on an invalid packet the connection is answered
// and closed and the error returned.
func (f *framer) next() error {
	if err := f.fill(1); err != nil {
		return err
	}
	b0 := f.buf[f.r]
	typ := b0 >> 4
	if rc := mqttcheck.Header(f.sess.Version, b0); rc != mqttcheck.OK {
		return f.reject(typ, rc)
	}
	// Remaining length: read a byte at a time until it ends, at most four.
	rem, n := mqttcheck.Varint(f.buf[f.r+1 : f.w])
	for n == 0 {
		if err := f.fill(f.w - f.r + 1); err != nil {
			return err
		}
		rem, n = mqttcheck.Varint(f.buf[f.r+1 : f.w])
	}
	if n < 0 {
		return f.reject(typ, mqttcheck.Silent)
	}
	hl := 1 + n
	if uint64(hl+rem) > f.limit() {
		return f.reject(typ, packets.ErrPacketTooLarge.Code)
	}
	if typ == packets.Publish {
		return f.nextPublish(b0, hl, rem)
	}
	if err := f.fill(hl + rem); err != nil {
		return err
	}
	body := f.buf[f.r+hl : f.r+hl+rem]
	if typ == packets.Connect && f.sess.Version == 0 {
		return f.connect(b0&0x0F, body, hl+rem)
	}
	if rc := mqttcheck.Check(f.sess, b0, body); rc != mqttcheck.OK {
		return f.reject(typ, rc)
	}
	f.remain = hl + rem
	return nil
}

// limit is the largest packet accepted, fixed header included.
func (f *framer) limit() uint64 {
	if f.cfg.maxPacket == 0 {
		return mqttcheck.MaxVarint + 5
	}
	return uint64(f.cfg.maxPacket)
}

// scan returns the length of the complete and valid packet buffered at
// f.buf[off:], or 0 when it is incomplete or needs next: a CONNECT, an
// invalid packet, a $ topic. It reads nothing and has no effect; Read uses
// it to hand mochi all the packets that one read from the socket brought.
func (f *framer) scan(off int) int {
	if off >= f.w {
		return 0
	}
	b0 := f.buf[off]
	rem, n := mqttcheck.Varint(f.buf[off+1 : f.w])
	if n <= 0 {
		return 0
	}
	hl := 1 + n
	if off+hl+rem > f.w || uint64(hl+rem) > f.limit() {
		return 0
	}
	body := f.buf[off+hl : off+hl+rem]
	if b0>>4 == packets.Publish {
		if rc, _, dollar := mqttcheck.Publish(f.sess, b0, body); rc != mqttcheck.OK || dollar {
			return 0
		}
	} else if mqttcheck.Check(f.sess, b0, body) != mqttcheck.OK {
		// Check refuses a CONNECT here too: the session has one.
		return 0
	}
	return hl + rem
}

// reject answers an invalid packet, closes the connection and returns the
// error for mochi. For MQTT 5 the answer is DISCONNECT with code, unless the
// client's Maximum Packet Size cannot take it.
func (f *framer) reject(typ, code byte) error {
	if code != mqttcheck.Silent && f.sess.Version == 5 && (f.clientMax == 0 || f.clientMax >= 3) {
		f.send([]byte{packets.Disconnect << 4, 1, code})
	}
	_ = f.Close()
	return &rejectError{typ: typ, code: code}
}

// send writes the framer's last packet before a close, bounded in time: a
// client that does not read must not hold the read goroutine. The deadline
// is not enough on its own (gorilla/websocket resets it on every write), so
// a timer closes the connection, which also releases a mochi write that
// holds the lock.
func (f *framer) send(pkt []byte) {
	_ = f.Conn.SetWriteDeadline(time.Now().Add(rejectWriteTimeout))
	timer := time.AfterFunc(rejectWriteTimeout, func() { _ = f.Conn.Close() })
	f.wmu.Lock()
	_, _ = f.writeLocked(pkt)
	f.wmu.Unlock()
	timer.Stop()
}

// connect checks a CONNECT, records what the session needs from it, and
// answers a refused one. body is the whole variable header and payload; n
// the packet's length.
func (f *framer) connect(flags byte, body []byte, n int) error {
	rc, ci := mqttcheck.Connect(flags, body)
	switch {
	case rc == mqttcheck.OK:
		f.sess.Version, f.sess.Expiry, f.clientMax = ci.Level, ci.Expiry, ci.MaxPacket
		f.wmu.Lock() // written by other goroutines than this one
		f.v311 = ci.Level < 5
		f.connecting = true
		f.wmu.Unlock()
		f.remain = n
		return nil
	case rc == mqttcheck.Silent:
	case rc == packets.ErrUnsupportedProtocolVersion.Code:
		// Answered in 3.1.1's format for every level [MQTT-3.1.2-2]: the
		// client's level is unknown to us, and 3.1.1's answer is shortest.
		f.send([]byte{packets.Connack << 4, 2, 0, 0x01})
	case ci.Level == 5:
		f.send([]byte{packets.Connack << 4, 3, 0, rc, 0})
	case rc == packets.ErrClientIdentifierNotValid.Code:
		f.send([]byte{packets.Connack << 4, 2, 0, 0x02}) // [MQTT-3.1.3-9]
	}
	_ = f.Conn.Close()
	return &rejectError{typ: packets.Connect, code: rc}
}

// nextPublish checks a PUBLISH on its variable header. A packet that fits
// the buffer is read whole; a larger one only up to the end of its
// properties, and its payload then flows through Read unbuffered.
func (f *framer) nextPublish(b0 byte, hl, rem int) error {
	if rc := mqttcheck.PublishFlags(b0, f.sess.Version == 5); rc != mqttcheck.OK {
		return f.reject(packets.Publish, rc)
	}
	n := rem
	if hl+rem > max(len(f.buf), framerBufSize) {
		var err error
		if n, err = f.publishHeader(b0, hl, rem); err != nil {
			return err
		}
	}
	if err := f.fill(hl + n); err != nil {
		return err
	}
	rc, id, dollar := mqttcheck.Publish(f.sess, b0, f.buf[f.r+hl:f.r+hl+n])
	if rc != mqttcheck.OK {
		return f.reject(packets.Publish, rc)
	}
	if dollar {
		return f.dropDollar(b0, hl+rem, id)
	}
	f.remain = hl + rem
	return nil
}

// publishHeader returns how many bytes of a PUBLISH body hold its variable
// header (at most rem), reading as much as it needs to find out.
func (f *framer) publishHeader(b0 byte, hl, rem int) (int, error) {
	v5 := f.sess.Version == 5
	for need := min(2, rem); ; {
		if err := f.fill(hl + need); err != nil {
			return rem, err
		}
		n, more := mqttcheck.PublishHeaderLen(f.buf[f.r+hl:min(f.w, f.r+hl+rem)], b0, v5, rem)
		if more == 0 {
			return n, nil
		}
		need = more
	}
}
