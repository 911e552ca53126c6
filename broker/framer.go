package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"
)

// The validating framer sits between a client's socket and mochi. It reads
// whole MQTT packets off the wire (fixed header, remaining length bounded by
// the maximum packet size, body), checks each one against MQTT 3.1.1 and 5,
// and hands mochi only the exact bytes of valid packets. An invalid packet
// is answered here — MQTT 5: DISCONNECT with a reason code, or CONNACK with
// one for a bad CONNECT; MQTT 3.1.1: nothing, or CONNACK 0x01/0x02 where
// 3.1.1 defines one — and the connection is closed, so mochi never decodes
// a malformed packet. That removes the decoder panics of mochi#501 at their
// root; the listener's recover stays as a second line.
//
// Reason codes follow MQTT 5 and, where the specification leaves the choice
// open, Mosquitto's (its byte-level catalogue, docs/conformance.md): a
// malformed encoding is 0x81, a well-formed packet that breaks a protocol
// rule is 0x82, a property not allowed in the packet is 0x82 (0x81 in
// SUBSCRIBE and UNSUBSCRIBE), and a broken remaining length closes without a
// packet, since nothing after it can be trusted.
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

// Packet types.
const (
	pkReserved    = 0
	pkConnect     = 1
	pkConnack     = 2
	pkPublish     = 3
	pkPuback      = 4
	pkPubrec      = 5
	pkPubrel      = 6
	pkPubcomp     = 7
	pkSubscribe   = 8
	pkSuback      = 9
	pkUnsubscribe = 10
	pkUnsuback    = 11
	pkPingreq     = 12
	pkPingresp    = 13
	pkDisconnect  = 14
	pkAuth        = 15
)

// MQTT 5 reason codes used by the framer, and rcSilent: close without
// sending anything.
const (
	rcOK               byte = 0x00
	rcSilent           byte = 0x01
	rcMalformed        byte = 0x81
	rcProtocol         byte = 0x82
	rcUnsupportedProto byte = 0x84
	rcClientID         byte = 0x85
	rcNotAuthorized    byte = 0x87
	rcBadAuthMethod    byte = 0x8C
	rcTopicAlias       byte = 0x94
	rcTooLarge         byte = 0x95
)

const (
	// framerBufSize is the initial read buffer; a larger packet grows it,
	// and a buffer grown past framerKeepSize is dropped once empty.
	framerBufSize  = 2048
	framerKeepSize = 64 << 10
	// maxRemaining is the largest remaining length MQTT can encode.
	maxRemaining = 268435455
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

	buf    []byte // raw bytes read from the connection
	r, w   int    // buf[r:w] is read but not yet handed on
	remain int    // bytes of the current, validated packet still to hand on

	version   byte   // protocol level of the accepted CONNECT; 0 before it
	expiry    bool   // the CONNECT set a non-zero Session Expiry Interval
	clientMax uint32 // the client's Maximum Packet Size; 0 if none
	err       error  // sticky: once set, Read returns it
}

func newFramer(c net.Conn, cfg *framerConfig) *framer {
	return &framer{Conn: c, cfg: cfg}
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
	if f.remain <= f.w-f.r && f.version != 0 {
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
	v5 := f.version == 5
	if f.version == 0 && typ != pkConnect {
		return f.reject(typ, rcSilent) // [MQTT-3.1.0-1]
	}
	if typ == pkReserved {
		return f.reject(typ, rcProtocol)
	}
	// Remaining length: at most four bytes.
	rem, hl := 0, 1
	for mul := 1; ; mul *= 128 {
		if hl == 5 {
			return f.reject(typ, rcSilent)
		}
		if err := f.fill(hl + 1); err != nil {
			return err
		}
		d := f.buf[f.r+hl]
		hl++
		rem += int(d&127) * mul
		if d < 128 {
			break
		}
	}
	if uint64(hl+rem) > f.limit() {
		return f.reject(typ, rcTooLarge)
	}
	if typ == pkPublish {
		return f.nextPublish(b0, hl, rem)
	}
	if err := f.fill(hl + rem); err != nil {
		return err
	}
	body := f.buf[f.r+hl : f.r+hl+rem]
	if typ == pkConnect {
		if f.version != 0 {
			return f.reject(typ, pick(v5, rcProtocol)) // [MQTT-3.1.0-2]
		}
		return f.connect(b0&0x0F, body, hl+rem)
	}
	rc := f.verdict(typ, b0&0x0F, body)
	if rc != rcOK {
		return f.reject(typ, rc)
	}
	f.remain = hl + rem
	return nil
}

// limit is the largest packet accepted, fixed header included.
func (f *framer) limit() uint64 {
	if f.cfg.maxPacket == 0 {
		return maxRemaining + 5
	}
	return uint64(f.cfg.maxPacket)
}

// verdict checks a whole packet of a type other than CONNECT and PUBLISH.
func (f *framer) verdict(typ, flags byte, body []byte) byte {
	v5 := f.version == 5
	switch typ {
	case pkPuback, pkPubrec, pkPubrel, pkPubcomp:
		return f.checkAck(typ, flags, body)
	case pkSubscribe:
		return f.checkSubscribe(flags, body)
	case pkUnsubscribe:
		return f.checkUnsubscribe(flags, body)
	case pkPingreq:
		switch {
		case flags != 0:
			return pick(v5, rcMalformed)
		case len(body) != 0:
			return rcSilent
		}
		return rcOK
	case pkDisconnect:
		return f.checkDisconnect(flags, body)
	case pkSuback, pkUnsuback, pkPingresp:
		// Server-to-client packets sent by a client.
		switch {
		case flags != 0:
			return pick(v5, rcMalformed)
		case typ == pkPingresp && len(body) != 0:
			return rcSilent
		}
		return pick(v5, rcProtocol)
	case pkAuth:
		// No enhanced authentication is offered, so no AUTH exchange can
		// be in progress [MQTT-4.12.0-1]; 3.1.1 has no AUTH.
		return pick(v5, rcProtocol)
	}
	// CONNACK, or the reserved type 0.
	return pick(v5, rcProtocol)
}

// publishFlags checks the fixed header flags of a PUBLISH.
func publishFlags(b0 byte, v5 bool) byte {
	qos := (b0 >> 1) & 3
	if qos == 3 || (qos == 0 && b0&0x08 != 0) { // [MQTT-3.3.1-4] [MQTT-3.3.1-2]
		return pick(v5, rcMalformed)
	}
	return rcOK
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
	rem, hl := 0, 1
	for mul := 1; ; mul *= 128 {
		if hl == 5 || off+hl >= f.w {
			return 0
		}
		d := f.buf[off+hl]
		hl++
		rem += int(d&127) * mul
		if d < 128 {
			break
		}
	}
	if off+hl+rem > f.w || uint64(hl+rem) > f.limit() {
		return 0
	}
	body := f.buf[off+hl : off+hl+rem]
	v5 := f.version == 5
	switch typ := b0 >> 4; typ {
	case pkConnect, pkReserved:
		return 0
	case pkPublish:
		if publishFlags(b0, v5) != rcOK {
			return 0
		}
		if rc, _, dollar := f.checkPublish(body, (b0>>1)&3, v5); rc != rcOK || dollar {
			return 0
		}
	default:
		if f.verdict(typ, b0&0x0F, body) != rcOK {
			return 0
		}
	}
	return hl + rem
}

// pick returns code for MQTT 5 and rcSilent for MQTT 3.1.1, which has no
// way to say why it closes.
func pick(v5 bool, code byte) byte {
	if v5 {
		return code
	}
	return rcSilent
}

// reject answers an invalid packet, closes the connection and returns the
// error for mochi. For MQTT 5 the answer is DISCONNECT with code, unless the
// client's Maximum Packet Size cannot take it.
func (f *framer) reject(typ, code byte) error {
	if code != rcSilent && f.version == 5 && (f.clientMax == 0 || f.clientMax >= 3) {
		f.send([]byte{pkDisconnect << 4, 1, code})
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

// connect checks a CONNECT and records the protocol version. body is the
// whole variable header and payload; n the packet's length.
func (f *framer) connect(flags byte, body []byte, n int) error {
	rc, level := f.checkConnect(flags, body)
	switch {
	case rc == rcOK:
		f.version = level
		f.remain = n
		return nil
	case rc == rcSilent:
	case rc == rcUnsupportedProto:
		// Answered in 3.1.1's format for every level [MQTT-3.1.2-2]: the
		// client's level is unknown to us, and 3.1.1's answer is shortest.
		f.send([]byte{pkConnack << 4, 2, 0, 0x01})
	case level == 5:
		f.send([]byte{pkConnack << 4, 3, 0, rc, 0})
	case rc == rcClientID:
		f.send([]byte{pkConnack << 4, 2, 0, 0x02}) // [MQTT-3.1.3-9]
	}
	_ = f.Conn.Close()
	return &rejectError{typ: pkConnect, code: rc}
}

// checkConnect validates a CONNECT (MQTT 3.1.1 §3.1, MQTT 5 §3.1). It
// returns the reason code and the protocol level.
func (f *framer) checkConnect(flags byte, body []byte) (byte, byte) {
	if flags != 0 { // [MQTT-2.2.2-2]
		return rcSilent, 0
	}
	r := reader{b: body}
	name := r.str()
	level := r.u8()
	if r.bad {
		return rcSilent, 0
	}
	switch {
	case string(name) == "MQTT" && (level == 4 || level == 5):
	case string(name) == "MQIsdp" && level == 3:
		// MQTT 3.1: same layout as 3.1.1; mochi refuses it by policy.
	case string(name) == "MQTT" || string(name) == "MQIsdp":
		return rcUnsupportedProto, 0
	default:
		return rcSilent, 0 // [MQTT-3.1.2-1]
	}
	v5 := level == 5
	cf := r.u8()
	r.u16()                    // keepalive
	if r.bad || cf&0x01 != 0 { // [MQTT-3.1.2-3]
		return rcSilent, level
	}
	will, willQos, willRetain := cf&0x04 != 0, (cf>>3)&3, cf&0x20 != 0
	user, pass, clean := cf&0x80 != 0, cf&0x40 != 0, cf&0x02 != 0
	if willQos == 3 || (!will && (willQos != 0 || willRetain)) { // [MQTT-3.1.2-14] [MQTT-3.1.2-11]
		return rcSilent, level
	}
	if !v5 && pass && !user { // [MQTT-3.1.2-22]
		return rcSilent, level
	}
	var pv propValues
	if v5 {
		if rc := r.props(propsConnect, &pv); rc != rcOK {
			return rc, level
		}
	}
	id := r.str()
	if r.bad {
		return rcSilent, level
	}
	if !validUTF8Strict(id) { // [MQTT-3.1.3-4]
		return pick(v5, rcClientID), level
	}
	if len(id) == 0 && !v5 && !clean { // [MQTT-3.1.3-7]
		return rcClientID, level
	}
	if will {
		if v5 {
			if rc := r.props(propsWill, nil); rc != rcOK {
				return rc, level
			}
		}
		topic := r.str()
		r.bin()
		if r.bad || !validTopicName(topic) || topic[0] == '$' {
			// A will is a publish by the client: no reserved ($) topics.
			return pick(v5, rcMalformed), level
		}
	}
	if user {
		if u := r.str(); r.bad || !validUTF8Strict(u) { // [MQTT-3.1.3-11]
			return rcSilent, level
		}
	}
	if pass {
		if r.bin(); r.bad {
			return rcSilent, level
		}
	}
	if r.left() != 0 || (!user && pass && !v5) {
		return pick(v5, rcMalformed), level
	}
	if pv.authMethod {
		// No enhanced authentication method is supported.
		return rcBadAuthMethod, level
	}
	f.expiry = pv.expiry
	f.clientMax = pv.maxPacket
	return rcOK, level
}

// checkAck validates PUBACK, PUBREC, PUBREL and PUBCOMP.
func (f *framer) checkAck(typ, flags byte, body []byte) byte {
	badFlags, flagsCode := flags != 0, rcMalformed
	if typ == pkPubrel {
		badFlags, flagsCode = flags != 2, rcProtocol // [MQTT-3.6.1-1]
	}
	if f.version != 5 {
		if badFlags || len(body) != 2 || body[0]|body[1] == 0 {
			return rcSilent
		}
		return rcOK
	}
	if badFlags {
		return flagsCode
	}
	r := reader{b: body}
	id := r.u16()
	if r.bad {
		return rcMalformed
	}
	if id == 0 {
		return rcProtocol // [MQTT-2.2.1-3]
	}
	if r.left() == 0 {
		return rcOK
	}
	code := r.u8()
	if r.left() > 0 {
		if rc := r.props(propsAck, nil); rc != rcOK {
			return rc
		}
		if r.left() != 0 {
			return rcMalformed
		}
	}
	if !validAckCode(typ, code) {
		return rcProtocol
	}
	return rcOK
}

// validAckCode reports whether code is a reason code of packet type typ
// (MQTT 5 §3.4.2.1, §3.5.2.1, §3.6.2.1, §3.7.2.1).
func validAckCode(typ, code byte) bool {
	if typ == pkPubrel || typ == pkPubcomp {
		return code == 0x00 || code == 0x92
	}
	switch code {
	case 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99:
		return true
	}
	return false
}

// checkSubscribe validates a SUBSCRIBE (MQTT 3.1.1 §3.8, MQTT 5 §3.8).
func (f *framer) checkSubscribe(flags byte, body []byte) byte {
	v5 := f.version == 5
	if flags != 2 { // [MQTT-3.8.1-1]
		return pick(v5, rcMalformed)
	}
	r := reader{b: body}
	if id := r.u16(); r.bad || id == 0 {
		return pick(v5, rcMalformed)
	}
	if v5 {
		if rc := r.props(propsSubscribe, nil); rc != rcOK {
			return rc
		}
	}
	if r.left() == 0 { // [MQTT-3.8.3-3]
		return pick(v5, rcMalformed)
	}
	for r.left() > 0 {
		filter := r.str()
		opts := r.u8()
		if r.bad || !validFilter(filter) {
			return pick(v5, rcMalformed)
		}
		if !v5 {
			if opts&0xFC != 0 || opts&3 == 3 { // [MQTT-3-8.3-4]
				return rcSilent
			}
			continue
		}
		if opts&0xC0 != 0 || opts&3 == 3 || opts&0x30 == 0x30 { // [MQTT-3.8.3-5]
			return rcMalformed
		}
		if opts&0x04 != 0 && isShared(filter) { // [MQTT-3.8.3-4]
			return rcProtocol
		}
	}
	return rcOK
}

// checkUnsubscribe validates an UNSUBSCRIBE (MQTT 3.1.1 §3.10, MQTT 5 §3.10).
func (f *framer) checkUnsubscribe(flags byte, body []byte) byte {
	v5 := f.version == 5
	if flags != 2 { // [MQTT-3.10.1-1]
		return pick(v5, rcMalformed)
	}
	r := reader{b: body}
	if id := r.u16(); r.bad || id == 0 {
		return pick(v5, rcMalformed)
	}
	if v5 {
		if rc := r.props(propsUnsubscribe, nil); rc != rcOK {
			return rc
		}
	}
	if r.left() == 0 { // [MQTT-3.10.3-2]
		return pick(v5, rcMalformed)
	}
	for r.left() > 0 {
		if filter := r.str(); r.bad || !validFilter(filter) {
			return pick(v5, rcMalformed)
		}
	}
	return rcOK
}

// checkDisconnect validates a DISCONNECT (MQTT 3.1.1 §3.14, MQTT 5 §3.14).
func (f *framer) checkDisconnect(flags byte, body []byte) byte {
	if f.version != 5 {
		if flags != 0 || len(body) != 0 {
			return rcSilent
		}
		return rcOK
	}
	if flags != 0 { // [MQTT-3.14.1-1]
		return rcProtocol
	}
	if len(body) <= 1 {
		return rcOK
	}
	r := reader{b: body, i: 1}
	var pv propValues
	if rc := r.props(propsDisconnect, &pv); rc != rcOK {
		return rc
	}
	if r.left() != 0 {
		return rcMalformed
	}
	if pv.expiry && !f.expiry { // [MQTT-3.14.2-2]
		return rcProtocol
	}
	return rcOK
}

// nextPublish checks a PUBLISH on its variable header. A packet that fits
// the buffer is read whole; a larger one only up to the end of its
// properties, and its payload then flows through Read unbuffered.
func (f *framer) nextPublish(b0 byte, hl, rem int) error {
	v5 := f.version == 5
	qos := (b0 >> 1) & 3
	if rc := publishFlags(b0, v5); rc != rcOK {
		return f.reject(pkPublish, rc)
	}
	n := rem
	if hl+rem > max(len(f.buf), framerBufSize) {
		var err error
		if n, err = f.publishHeader(hl, rem, qos, v5); err != nil {
			return err
		}
	}
	if err := f.fill(hl + n); err != nil {
		return err
	}
	rc, id, dollar := f.checkPublish(f.buf[f.r+hl:f.r+hl+n], qos, v5)
	if rc != rcOK {
		return f.reject(pkPublish, rc)
	}
	if !dollar {
		f.remain = hl + rem
		return nil
	}
	// Topics starting with $ are the server's ($SYS) or not topics at all
	// ($share/...): the message is dropped here, where mochi would drop it
	// without any acknowledgement, leaving a QoS 1/2 sender waiting
	// forever. MQTT 5 refuses it as "not authorised"; MQTT 3.1.1 cannot
	// refuse and acknowledges positively [MQTT-3.3.5-2], as Mosquitto does.
	if err := f.fill(hl + rem); err != nil {
		return err
	}
	f.r += hl + rem
	f.compact()
	if qos == 0 {
		return nil
	}
	ack := []byte{pkPuback << 4, 2, byte(id >> 8), byte(id), rcNotAuthorized}
	if qos == 2 {
		ack[0] = pkPubrec << 4
	}
	if v5 {
		ack[1] = 3
	} else {
		ack = ack[:4]
	}
	if f.clientMax != 0 && uint32(len(ack)) > f.clientMax {
		return nil // [MQTT-3.1.2-24]
	}
	if _, err := f.Write(ack); err != nil {
		return err
	}
	return nil
}

// publishHeader returns how many bytes of a PUBLISH body hold its variable
// header (at most rem), reading as much as it needs to find out.
func (f *framer) publishHeader(hl, rem int, qos byte, v5 bool) (int, error) {
	body := func(n int) ([]byte, error) {
		n = min(n, rem)
		if err := f.fill(hl + n); err != nil {
			return nil, err
		}
		return f.buf[f.r+hl : f.r+hl+n], nil
	}
	b, err := body(2)
	if err != nil || len(b) < 2 {
		return rem, err
	}
	off := 2 + (int(b[0])<<8 | int(b[1]))
	if qos > 0 {
		off += 2
	}
	if !v5 || off >= rem {
		return min(off, rem), nil
	}
	plen, mul := 0, 1
	for i := 0; i < 4; i++ {
		if b, err = body(off + i + 1); err != nil || len(b) < off+i+1 {
			return rem, err
		}
		d := b[off+i]
		plen += int(d&127) * mul
		mul *= 128
		if d < 128 {
			return min(off+i+1+plen, rem), nil
		}
	}
	return min(off+4, rem), nil
}

// checkPublish validates the variable header of a PUBLISH (MQTT 3.1.1
// §3.3, MQTT 5 §3.3). It returns the packet id and whether the topic starts
// with $.
func (f *framer) checkPublish(hdr []byte, qos byte, v5 bool) (rc byte, id uint16, dollar bool) {
	r := reader{b: hdr}
	topic := r.str()
	if qos > 0 {
		id = r.u16()
	}
	if r.bad {
		return pick(v5, rcMalformed), 0, false
	}
	var pv propValues
	if v5 {
		if rc := r.props(propsPublish, &pv); rc != rcOK {
			return rc, 0, false
		}
	}
	switch {
	case len(topic) == 0:
		if !pv.alias {
			return pick(v5, rcProtocol), 0, false // [MQTT-3.3.2-1] [MQTT-4.7.3-1]
		}
	case !validTopicName(topic): // [MQTT-3.3.2-2]
		return pick(v5, rcMalformed), 0, false
	}
	if qos > 0 && id == 0 { // [MQTT-2.2.1-3]
		return pick(v5, rcProtocol), 0, false
	}
	if pv.alias && (pv.aliasVal == 0 || pv.aliasVal > f.cfg.topicAliasMax) { // [MQTT-3.3.2-8] [MQTT-3.3.2-9]
		return rcTopicAlias, 0, false
	}
	return rcOK, id, len(topic) > 0 && topic[0] == '$'
}

// reader reads MQTT data types from a packet body; reading past the end
// sets bad.
type reader struct {
	b   []byte
	i   int
	bad bool
}

func (r *reader) left() int { return len(r.b) - r.i }

func (r *reader) u8() byte {
	if r.i >= len(r.b) {
		r.bad = true
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *reader) u16() uint16 {
	if r.i+2 > len(r.b) {
		r.bad = true
		return 0
	}
	r.i += 2
	return uint16(r.b[r.i-2])<<8 | uint16(r.b[r.i-1])
}

func (r *reader) u32() uint32 {
	if r.i+4 > len(r.b) {
		r.bad = true
		return 0
	}
	r.i += 4
	b := r.b[r.i-4 : r.i]
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// str reads a two-byte length and that many bytes (UTF-8 string or binary
// data); the caller validates the encoding.
func (r *reader) str() []byte {
	n := int(r.u16())
	if r.bad || r.i+n > len(r.b) {
		r.bad = true
		return nil
	}
	r.i += n
	return r.b[r.i-n : r.i]
}

// bin reads binary data.
func (r *reader) bin() []byte { return r.str() }

// varint reads a variable byte integer: at most four bytes, minimally
// encoded [MQTT-1.5.5-1].
func (r *reader) varint() (int, bool) {
	v, mul := 0, 1
	for k := 0; k < 4; k++ {
		d := r.u8()
		if r.bad {
			return 0, false
		}
		v += int(d&127) * mul
		if d < 128 {
			if k > 0 && d == 0 {
				r.bad = true
				return 0, false
			}
			return v, true
		}
		mul *= 128
	}
	r.bad = true
	return 0, false
}

// Property identifiers (MQTT 5 §2.2.2.2) and their data types.
const (
	propPayloadFormat   = 0x01
	propMessageExpiry   = 0x02
	propContentType     = 0x03
	propResponseTopic   = 0x08
	propCorrelationData = 0x09
	propSubID           = 0x0B
	propSessionExpiry   = 0x11
	propAssignedID      = 0x12
	propServerKeepAlive = 0x13
	propAuthMethod      = 0x15
	propAuthData        = 0x16
	propRequestProblem  = 0x17
	propWillDelay       = 0x18
	propRequestResponse = 0x19
	propResponseInfo    = 0x1A
	propServerReference = 0x1C
	propReasonString    = 0x1F
	propReceiveMaximum  = 0x21
	propTopicAliasMax   = 0x22
	propTopicAlias      = 0x23
	propMaximumQos      = 0x24
	propRetainAvailable = 0x25
	propUser            = 0x26
	propMaximumPacket   = 0x27
	propWildcardAvail   = 0x28
	propSubIDAvail      = 0x29
	propSharedAvail     = 0x2A
)

const (
	ptByte = iota + 1
	ptU16
	ptU32
	ptVarint
	ptString
	ptBinary
	ptPair
)

var propTypes = [...]byte{
	propPayloadFormat: ptByte, propMessageExpiry: ptU32, propContentType: ptString,
	propResponseTopic: ptString, propCorrelationData: ptBinary, propSubID: ptVarint,
	propSessionExpiry: ptU32, propAssignedID: ptString, propServerKeepAlive: ptU16,
	propAuthMethod: ptString, propAuthData: ptBinary, propRequestProblem: ptByte,
	propWillDelay: ptU32, propRequestResponse: ptByte, propResponseInfo: ptString,
	propServerReference: ptString, propReasonString: ptString, propReceiveMaximum: ptU16,
	propTopicAliasMax: ptU16, propTopicAlias: ptU16, propMaximumQos: ptByte,
	propRetainAvailable: ptByte, propUser: ptPair, propMaximumPacket: ptU32,
	propWildcardAvail: ptByte, propSubIDAvail: ptByte, propSharedAvail: ptByte,
}

// propKind is the set of properties a packet may carry from a client, and
// the reason code for one it may not.
type propKind struct {
	allowed    uint64
	notAllowed byte
}

func propSet(ids ...byte) uint64 {
	var s uint64
	for _, id := range ids {
		s |= 1 << id
	}
	return s
}

var (
	propsConnect = propKind{propSet(propSessionExpiry, propAuthMethod, propAuthData, propRequestProblem,
		propRequestResponse, propReceiveMaximum, propTopicAliasMax, propUser, propMaximumPacket), rcProtocol}
	propsWill = propKind{propSet(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propWillDelay, propUser), rcProtocol}
	propsPublish = propKind{propSet(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propTopicAlias, propUser), rcProtocol}
	propsAck         = propKind{propSet(propReasonString, propUser), rcProtocol}
	propsDisconnect  = propKind{propSet(propSessionExpiry, propServerReference, propReasonString, propUser), rcProtocol}
	propsSubscribe   = propKind{propSet(propSubID, propUser), rcMalformed}
	propsUnsubscribe = propKind{propSet(propUser), rcMalformed}
)

// propValues are the property values the framer acts on.
type propValues struct {
	expiry     bool   // Session Expiry Interval > 0
	maxPacket  uint32 // Maximum Packet Size
	alias      bool   // Topic Alias present
	aliasVal   uint16 //
	authMethod bool   // Authentication Method present
	authData   bool   // Authentication Data present
}

// props reads a property block (length, then properties) and checks it:
// an encoding error anywhere in the block is Malformed (0x81); otherwise
// the first property not allowed in kind, repeated where it may appear once
// [MQTT-2.2.2-2], or with an invalid value, decides the code.
func (r *reader) props(kind propKind, pv *propValues) byte {
	n, ok := r.varint()
	if !ok || n > r.left() {
		r.bad = true
		return rcMalformed
	}
	if pv == nil {
		pv = new(propValues)
	}
	p := reader{b: r.b[:r.i+n], i: r.i}
	r.i += n
	var seen uint64
	rc := rcOK
	for p.left() > 0 {
		id, ok := p.varint()
		if !ok || id >= len(propTypes) || propTypes[id] == 0 {
			return rcMalformed
		}
		var num uint32
		var str []byte
		switch propTypes[id] {
		case ptByte:
			num = uint32(p.u8())
		case ptU16:
			num = uint32(p.u16())
		case ptU32:
			num = p.u32()
		case ptVarint:
			v, _ := p.varint()
			num = uint32(v)
		case ptString:
			if str = p.str(); !p.bad && !validUTF8(str) {
				return rcMalformed
			}
		case ptBinary:
			p.bin()
		case ptPair:
			k, v := p.str(), p.str()
			if !p.bad && (!validUTF8(k) || !validUTF8(v)) {
				return rcMalformed
			}
		}
		if p.bad {
			return rcMalformed
		}
		if rc != rcOK {
			continue
		}
		bit := uint64(1) << id
		switch {
		case kind.allowed&bit == 0:
			rc = kind.notAllowed
		case id != propUser && seen&bit != 0:
			rc = rcProtocol
		default:
			seen |= bit
			rc = propValue(byte(id), num, str, pv)
		}
	}
	if rc == rcOK && pv.authData && !pv.authMethod {
		rc = rcProtocol // [MQTT-3.1.2-?] Authentication Data without a method
	}
	return rc
}

// propValue checks one property value and records what the framer needs.
func propValue(id byte, num uint32, str []byte, pv *propValues) byte {
	switch id {
	case propPayloadFormat, propRequestProblem, propRequestResponse:
		if num > 1 {
			return rcProtocol
		}
	case propReceiveMaximum, propSubID:
		if num == 0 {
			return rcProtocol
		}
	case propMaximumPacket:
		if num == 0 {
			return rcProtocol
		}
		pv.maxPacket = num
	case propResponseTopic:
		if !validTopicName(str) { // [MQTT-3.3.2-14]
			return rcProtocol
		}
	case propSessionExpiry:
		pv.expiry = num != 0
	case propTopicAlias:
		pv.alias, pv.aliasVal = true, uint16(num)
	case propAuthMethod:
		pv.authMethod = true
	case propAuthData:
		pv.authData = true
	}
	return rcOK
}

// validUTF8 reports whether b is well-formed UTF-8 without U+0000
// [MQTT-1.5.4-1] [MQTT-1.5.4-2].
func validUTF8(b []byte) bool {
	for i, c := range b {
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return validRunes(b[i:], false)
		}
	}
	return true
}

// validUTF8Strict is validUTF8 that also refuses the control characters
// U+0001–U+001F and U+007F–U+009F and the Unicode non-characters, which
// MQTT says SHOULD NOT appear and a receiver MAY refuse [MQTT-1.5.4-3]
// (Mosquitto does, for topics, client ids and user names).
func validUTF8Strict(b []byte) bool {
	for i, c := range b {
		if c < 0x20 || c == 0x7F {
			return false
		}
		if c >= utf8.RuneSelf {
			return validRunes(b[i:], true)
		}
	}
	return true
}

func validRunes(b []byte, strict bool) bool {
	for len(b) > 0 {
		c, size := utf8.DecodeRune(b)
		switch {
		case c == utf8.RuneError && size <= 1, c == 0:
			return false
		case strict && (c < 0x20 || (c >= 0x7F && c <= 0x9F) ||
			(c >= 0xFDD0 && c <= 0xFDEF) || c&0xFFFE == 0xFFFE):
			return false
		}
		b = b[size:]
	}
	return true
}

// validTopicName reports whether t is a topic name a client may publish
// to: not empty, no wildcards [MQTT-3.3.2-2], UTF-8 as validUTF8Strict.
// It is on the PUBLISH path: one table lookup per ASCII byte.
func validTopicName(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	for i, c := range t {
		switch topicByte[c] {
		case tbBad:
			return false
		case tbMulti:
			return validRunes(t[i:], true)
		}
	}
	return true
}

// Classes of a topic name's bytes.
const (
	tbOK    = 0
	tbBad   = 1 // control character or wildcard
	tbMulti = 2 // start or continuation of a multi-byte sequence
)

var topicByte = func() (t [256]byte) {
	for c := range t {
		switch {
		case c < 0x20 || c == 0x7F || c == '+' || c == '#':
			t[c] = tbBad
		case c >= utf8.RuneSelf:
			t[c] = tbMulti
		}
	}
	return t
}()

// validFilter reports whether f is a valid topic filter (MQTT 5 §4.7):
// not empty, wildcards only as whole levels and # last, a shared
// subscription with a share name and a filter.
func validFilter(f []byte) bool {
	if len(f) == 0 || !validUTF8Strict(f) {
		return false
	}
	for i, c := range f {
		switch c {
		case '+':
			if (i > 0 && f[i-1] != '/') || (i+1 < len(f) && f[i+1] != '/') {
				return false
			}
		case '#':
			if (i > 0 && f[i-1] != '/') || i != len(f)-1 {
				return false
			}
		}
	}
	if isShared(f) {
		rest := f[len(sharePrefix):]
		j := 0
		for j < len(rest) && rest[j] != '/' {
			if rest[j] == '+' || rest[j] == '#' {
				return false
			}
			j++
		}
		if j == 0 || j >= len(rest)-1 { // no share name, or no filter
			return false
		}
	}
	return true
}

const sharePrefix = "$share/"

func isShared(f []byte) bool {
	return len(f) >= len(sharePrefix) && string(f[:len(sharePrefix)]) == sharePrefix
}
