// Package mqttcheck judges single MQTT 3.1.1 and 5 packets sent by a
// client: whether each is valid, and if not, the reason code to close the
// connection with. It holds no connection and reads nothing; the broker's
// framer (broker/framer.go) buffers packets and acts on the verdicts, and
// the conformance harness and the fuzz tests call it directly.
//
// Reason codes follow MQTT 5 and, where the specification leaves the choice
// open, Mosquitto's (its byte-level catalogue, docs/conformance.md): a
// malformed encoding is 0x81, a well-formed packet that breaks a protocol
// rule is 0x82, a property not allowed in the packet is 0x82 (0x81 in
// SUBSCRIBE and UNSUBSCRIBE). For MQTT 3.1.1, which has no way to say why
// it closes, most verdicts are Silent.
package mqttcheck

import "github.com/mochi-mqtt/server/v2/packets"

// OK is the verdict on a valid packet; Silent means close without sending
// anything. Every other verdict is an MQTT 5 reason code.
const (
	OK     byte = 0x00
	Silent byte = 0x01
)

// The reason codes the checks return, from mochi's table. They are
// variables there, so they are read once here.
var (
	malformed        = packets.ErrMalformedPacket.Code
	protocol         = packets.ErrProtocolViolation.Code
	unsupportedProto = packets.ErrUnsupportedProtocolVersion.Code
	badClientID      = packets.ErrClientIdentifierNotValid.Code
	badAuthMethod    = packets.ErrBadAuthenticationMethod.Code
	badTopicAlias    = packets.ErrTopicAliasInvalid.Code
)

// Session is what the checks need to know about the connection.
type Session struct {
	// Version is the protocol level of the accepted CONNECT; 0 before it.
	Version byte
	// Expiry: that CONNECT set a non-zero Session Expiry Interval.
	Expiry bool
	// TopicAliasMax is the server's Topic Alias Maximum: a PUBLISH alias of
	// 0 or above it gets 0x94.
	TopicAliasMax uint16
}

func (s *Session) v5() bool { return s.Version == 5 }

// Check judges one whole packet: header is the first byte of its fixed
// header, body what follows the remaining length. The remaining length
// itself and the maximum packet size are the caller's to check. A valid
// PUBLISH to a $ topic is OK: what to do with it is the caller's policy.
func Check(s Session, header byte, body []byte) byte {
	if rc := Header(s.Version, header); rc != OK {
		return rc
	}
	switch typ := header >> 4; typ {
	case packets.Connect:
		if s.Version != 0 {
			return pick(s.v5(), protocol) // [MQTT-3.1.0-2]
		}
		rc, _ := Connect(header&0x0F, body)
		return rc
	case packets.Publish:
		rc, _, _ := Publish(s, header, body)
		return rc
	default:
		return verdict(&s, typ, header&0x0F, body)
	}
}

// Header judges the first byte of a packet, before its length is read.
func Header(version, header byte) byte {
	typ := header >> 4
	if version == 0 && typ != packets.Connect {
		return Silent // [MQTT-3.1.0-1]
	}
	if typ == packets.Reserved {
		return protocol
	}
	return OK
}

// verdict checks a whole packet of a type other than CONNECT and PUBLISH.
func verdict(s *Session, typ, flags byte, body []byte) byte {
	v5 := s.v5()
	switch typ {
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		return checkAck(v5, typ, flags, body)
	case packets.Subscribe:
		return checkSubscribe(v5, flags, body)
	case packets.Unsubscribe:
		return checkUnsubscribe(v5, flags, body)
	case packets.Pingreq:
		switch {
		case flags != 0:
			return pick(v5, malformed)
		case len(body) != 0:
			return Silent
		}
		return OK
	case packets.Disconnect:
		return checkDisconnect(s, flags, body)
	case packets.Suback, packets.Unsuback, packets.Pingresp:
		// Server-to-client packets sent by a client.
		switch {
		case flags != 0:
			return pick(v5, malformed)
		case typ == packets.Pingresp && len(body) != 0:
			return Silent
		}
		return pick(v5, protocol)
	case packets.Auth:
		// No enhanced authentication is offered, so no AUTH exchange can
		// be in progress [MQTT-4.12.0-1]; 3.1.1 has no AUTH.
		return pick(v5, protocol)
	}
	// CONNACK, or the reserved type 0.
	return pick(v5, protocol)
}

// pick returns code for MQTT 5 and Silent for MQTT 3.1.1, which has no
// way to say why it closes.
func pick(v5 bool, code byte) byte {
	if v5 {
		return code
	}
	return Silent
}

// ConnectInfo is what an accepted CONNECT tells about the session.
type ConnectInfo struct {
	Level     byte   // protocol level (3, 4 or 5); 0 if unknown
	Expiry    bool   // Session Expiry Interval > 0
	MaxPacket uint32 // the client's Maximum Packet Size; 0 if none
}

// Connect validates a CONNECT (MQTT 3.1.1 §3.1, MQTT 5 §3.1) from its fixed
// header flags and body. It returns the verdict and, as far as it got,
// what the CONNECT says.
func Connect(flags byte, body []byte) (byte, ConnectInfo) {
	var ci ConnectInfo
	if flags != 0 { // [MQTT-2.2.2-2]
		return Silent, ci
	}
	r := reader{b: body}
	name := r.str()
	level := r.u8()
	if r.bad {
		return Silent, ci
	}
	switch {
	case string(name) == "MQTT" && (level == 4 || level == 5):
	case string(name) == "MQIsdp" && level == 3:
		// MQTT 3.1: same layout as 3.1.1; mochi refuses it by policy.
	case string(name) == "MQTT" || string(name) == "MQIsdp":
		return unsupportedProto, ci
	default:
		return Silent, ci // [MQTT-3.1.2-1]
	}
	ci.Level = level
	v5 := level == 5
	cf := r.u8()
	r.u16()                    // keepalive
	if r.bad || cf&0x01 != 0 { // [MQTT-3.1.2-3]
		return Silent, ci
	}
	will, willQos, willRetain := cf&0x04 != 0, (cf>>3)&3, cf&0x20 != 0
	user, pass, clean := cf&0x80 != 0, cf&0x40 != 0, cf&0x02 != 0
	if willQos == 3 || (!will && (willQos != 0 || willRetain)) { // [MQTT-3.1.2-14] [MQTT-3.1.2-11]
		return Silent, ci
	}
	if !v5 && pass && !user { // [MQTT-3.1.2-22]
		return Silent, ci
	}
	var pv propValues
	if v5 {
		if rc := r.props(propsConnect, &pv); rc != OK {
			return rc, ci
		}
	}
	id := r.str()
	if r.bad {
		return Silent, ci
	}
	if !validUTF8Strict(id) { // [MQTT-3.1.3-4]
		return pick(v5, badClientID), ci
	}
	if len(id) == 0 && !v5 && !clean { // [MQTT-3.1.3-7]
		return badClientID, ci
	}
	if will {
		if v5 {
			if rc := r.props(propsWill, nil); rc != OK {
				return rc, ci
			}
		}
		topic := r.str()
		r.bin()
		if r.bad || !validTopicName(topic) || topic[0] == '$' {
			// A will is a publish by the client: no reserved ($) topics.
			return pick(v5, malformed), ci
		}
	}
	if user {
		if u := r.str(); r.bad || !validUTF8Strict(u) { // [MQTT-3.1.3-11]
			return Silent, ci
		}
	}
	if pass {
		if r.bin(); r.bad {
			return Silent, ci
		}
	}
	if r.left() != 0 || (!user && pass && !v5) {
		return pick(v5, malformed), ci
	}
	if pv.authMethod {
		// No enhanced authentication method is supported.
		return badAuthMethod, ci
	}
	ci.Expiry, ci.MaxPacket = pv.expiry, pv.maxPacket
	return OK, ci
}

// checkAck validates PUBACK, PUBREC, PUBREL and PUBCOMP.
func checkAck(v5 bool, typ, flags byte, body []byte) byte {
	badFlags, flagsCode := flags != 0, malformed
	if typ == packets.Pubrel {
		badFlags, flagsCode = flags != 2, protocol // [MQTT-3.6.1-1]
	}
	if !v5 {
		if badFlags || len(body) != 2 || body[0]|body[1] == 0 {
			return Silent
		}
		return OK
	}
	if badFlags {
		return flagsCode
	}
	r := reader{b: body}
	id := r.u16()
	if r.bad {
		return malformed
	}
	if id == 0 {
		return protocol // [MQTT-2.2.1-3]
	}
	if r.left() == 0 {
		return OK
	}
	code := r.u8()
	if r.left() > 0 {
		if rc := r.props(propsAck, nil); rc != OK {
			return rc
		}
		if r.left() != 0 {
			return malformed
		}
	}
	if !validAckCode(typ, code) {
		return protocol
	}
	return OK
}

// validAckCode reports whether code is a reason code of packet type typ
// (MQTT 5 §3.4.2.1, §3.5.2.1, §3.6.2.1, §3.7.2.1).
func validAckCode(typ, code byte) bool {
	if typ == packets.Pubrel || typ == packets.Pubcomp {
		return code == packets.CodeSuccess.Code || code == packets.ErrPacketIdentifierNotFound.Code
	}
	switch code {
	case packets.CodeSuccess.Code, packets.CodeNoMatchingSubscribers.Code, packets.ErrUnspecifiedError.Code,
		packets.ErrImplementationSpecificError.Code, packets.ErrNotAuthorized.Code, packets.ErrTopicNameInvalid.Code,
		packets.ErrPacketIdentifierInUse.Code, packets.ErrQuotaExceeded.Code, packets.ErrPayloadFormatInvalid.Code:
		return true
	}
	return false
}

// checkSubscribe validates a SUBSCRIBE (MQTT 3.1.1 §3.8, MQTT 5 §3.8).
func checkSubscribe(v5 bool, flags byte, body []byte) byte {
	if flags != 2 { // [MQTT-3.8.1-1]
		return pick(v5, malformed)
	}
	r := reader{b: body}
	if id := r.u16(); r.bad || id == 0 {
		return pick(v5, malformed)
	}
	if v5 {
		if rc := r.props(propsSubscribe, nil); rc != OK {
			return rc
		}
	}
	if r.left() == 0 { // [MQTT-3.8.3-3]
		return pick(v5, malformed)
	}
	for r.left() > 0 {
		filter := r.str()
		opts := r.u8()
		if r.bad || !validFilter(filter) {
			return pick(v5, malformed)
		}
		if !v5 {
			if opts&0xFC != 0 || opts&3 == 3 { // [MQTT-3-8.3-4]
				return Silent
			}
			continue
		}
		if opts&0xC0 != 0 || opts&3 == 3 || opts&0x30 == 0x30 { // [MQTT-3.8.3-5]
			return malformed
		}
		if opts&0x04 != 0 && isShared(filter) { // [MQTT-3.8.3-4]
			return protocol
		}
	}
	return OK
}

// checkUnsubscribe validates an UNSUBSCRIBE (MQTT 3.1.1 §3.10, MQTT 5 §3.10).
func checkUnsubscribe(v5 bool, flags byte, body []byte) byte {
	if flags != 2 { // [MQTT-3.10.1-1]
		return pick(v5, malformed)
	}
	r := reader{b: body}
	if id := r.u16(); r.bad || id == 0 {
		return pick(v5, malformed)
	}
	if v5 {
		if rc := r.props(propsUnsubscribe, nil); rc != OK {
			return rc
		}
	}
	if r.left() == 0 { // [MQTT-3.10.3-2]
		return pick(v5, malformed)
	}
	for r.left() > 0 {
		if filter := r.str(); r.bad || !validFilter(filter) {
			return pick(v5, malformed)
		}
	}
	return OK
}

// checkDisconnect validates a DISCONNECT (MQTT 3.1.1 §3.14, MQTT 5 §3.14).
func checkDisconnect(s *Session, flags byte, body []byte) byte {
	if !s.v5() {
		if flags != 0 || len(body) != 0 {
			return Silent
		}
		return OK
	}
	if flags != 0 { // [MQTT-3.14.1-1]
		return protocol
	}
	if len(body) <= 1 {
		return OK
	}
	r := reader{b: body, i: 1}
	var pv propValues
	if rc := r.props(propsDisconnect, &pv); rc != OK {
		return rc
	}
	if r.left() != 0 {
		return malformed
	}
	if pv.expiry && !s.Expiry { // [MQTT-3.14.2-2]
		return protocol
	}
	return OK
}

// PublishFlags checks the fixed header flags of a PUBLISH; the framer
// calls it before reading the body.
func PublishFlags(header byte, v5 bool) byte {
	qos := (header >> 1) & 3
	if qos == 3 || (qos == 0 && header&0x08 != 0) { // [MQTT-3.3.1-4] [MQTT-3.3.1-2]
		return pick(v5, malformed)
	}
	return OK
}

// Publish validates a PUBLISH (MQTT 3.1.1 §3.3, MQTT 5 §3.3) on its fixed
// header flags and variable header: hdr is the body or any prefix of it
// that holds the variable header (PublishHeaderLen), since the payload is
// not looked at. It returns the packet id and whether the topic starts
// with $.
func Publish(s Session, header byte, hdr []byte) (rc byte, id uint16, dollar bool) {
	v5 := s.v5()
	if rc := PublishFlags(header, v5); rc != OK {
		return rc, 0, false
	}
	qos := (header >> 1) & 3
	r := reader{b: hdr}
	topic := r.str()
	if qos > 0 {
		id = r.u16()
	}
	if r.bad {
		return pick(v5, malformed), 0, false
	}
	var pv propValues
	if v5 {
		if rc := r.props(propsPublish, &pv); rc != OK {
			return rc, 0, false
		}
	}
	switch {
	case len(topic) == 0:
		if !pv.alias {
			return pick(v5, protocol), 0, false // [MQTT-3.3.2-1] [MQTT-4.7.3-1]
		}
	case !validTopicName(topic): // [MQTT-3.3.2-2]
		return pick(v5, malformed), 0, false
	}
	if qos > 0 && id == 0 { // [MQTT-2.2.1-3]
		return pick(v5, protocol), 0, false
	}
	if pv.alias && (pv.aliasVal == 0 || pv.aliasVal > s.TopicAliasMax) { // [MQTT-3.3.2-8] [MQTT-3.3.2-9]
		return badTopicAlias, 0, false
	}
	return OK, id, len(topic) > 0 && topic[0] == '$'
}

// PublishHeaderLen returns how many bytes of a PUBLISH body of rem bytes
// hold its variable header (at most rem), given b, the body's first bytes.
// need > 0 means b is too short to tell: call again with need bytes. A
// broken header is not reported here but by Publish on the n bytes.
func PublishHeaderLen(b []byte, header byte, v5 bool, rem int) (n, need int) {
	if len(b) < min(2, rem) {
		return 0, min(2, rem)
	}
	if len(b) < 2 {
		return rem, 0
	}
	off := 2 + (int(b[0])<<8 | int(b[1]))
	if (header>>1)&3 > 0 {
		off += 2
	}
	if !v5 || off >= rem {
		return min(off, rem), 0
	}
	if len(b) <= off {
		return 0, off + 1
	}
	plen, k := Varint(b[off:min(len(b), rem)])
	switch {
	case k > 0:
		return min(off+k+plen, rem), 0
	case k < 0:
		return off + 4, 0 // Publish refuses the five-byte integer
	case len(b) >= rem:
		return rem, 0
	}
	return 0, len(b) + 1
}
