package mqttcheck

import "github.com/mochi-mqtt/server/v2/packets"

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
	v, n := Varint(r.b[r.i:])
	if n <= 0 || (n > 1 && r.b[r.i+n-1] == 0) {
		r.bad = true
		return 0, false
	}
	r.i += n
	return v, true
}

// Data types of the property values (MQTT 5 §2.2.2.2).
const (
	ptByte = iota + 1
	ptU16
	ptU32
	ptVarint
	ptString
	ptBinary
	ptPair
)

// propTypes maps each property identifier to its data type; 0 is unknown.
var propTypes = [...]byte{
	packets.PropPayloadFormat:          ptByte,
	packets.PropMessageExpiryInterval:  ptU32,
	packets.PropContentType:            ptString,
	packets.PropResponseTopic:          ptString,
	packets.PropCorrelationData:        ptBinary,
	packets.PropSubscriptionIdentifier: ptVarint,
	packets.PropSessionExpiryInterval:  ptU32,
	packets.PropAssignedClientID:       ptString,
	packets.PropServerKeepAlive:        ptU16,
	packets.PropAuthenticationMethod:   ptString,
	packets.PropAuthenticationData:     ptBinary,
	packets.PropRequestProblemInfo:     ptByte,
	packets.PropWillDelayInterval:      ptU32,
	packets.PropRequestResponseInfo:    ptByte,
	packets.PropResponseInfo:           ptString,
	packets.PropServerReference:        ptString,
	packets.PropReasonString:           ptString,
	packets.PropReceiveMaximum:         ptU16,
	packets.PropTopicAliasMaximum:      ptU16,
	packets.PropTopicAlias:             ptU16,
	packets.PropMaximumQos:             ptByte,
	packets.PropRetainAvailable:        ptByte,
	packets.PropUser:                   ptPair,
	packets.PropMaximumPacketSize:      ptU32,
	packets.PropWildcardSubAvailable:   ptByte,
	packets.PropSubIDAvailable:         ptByte,
	packets.PropSharedSubAvailable:     ptByte,
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
	propsConnect = propKind{propSet(packets.PropSessionExpiryInterval, packets.PropAuthenticationMethod,
		packets.PropAuthenticationData, packets.PropRequestProblemInfo, packets.PropRequestResponseInfo,
		packets.PropReceiveMaximum, packets.PropTopicAliasMaximum, packets.PropUser, packets.PropMaximumPacketSize), protocol}
	propsWill = propKind{propSet(packets.PropPayloadFormat, packets.PropMessageExpiryInterval, packets.PropContentType,
		packets.PropResponseTopic, packets.PropCorrelationData, packets.PropWillDelayInterval, packets.PropUser), protocol}
	propsPublish = propKind{propSet(packets.PropPayloadFormat, packets.PropMessageExpiryInterval, packets.PropContentType,
		packets.PropResponseTopic, packets.PropCorrelationData, packets.PropTopicAlias, packets.PropUser), protocol}
	propsAck        = propKind{propSet(packets.PropReasonString, packets.PropUser), protocol}
	propsDisconnect = propKind{propSet(packets.PropSessionExpiryInterval, packets.PropServerReference,
		packets.PropReasonString, packets.PropUser), protocol}
	propsSubscribe   = propKind{propSet(packets.PropSubscriptionIdentifier, packets.PropUser), malformed}
	propsUnsubscribe = propKind{propSet(packets.PropUser), malformed}
)

// propValues are the property values the checks act on.
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
		return malformed
	}
	if pv == nil {
		pv = new(propValues)
	}
	p := reader{b: r.b[:r.i+n], i: r.i}
	r.i += n
	var seen uint64
	rc := OK
	for p.left() > 0 {
		id, ok := p.varint()
		if !ok || id >= len(propTypes) || propTypes[id] == 0 {
			return malformed
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
				return malformed
			}
		case ptBinary:
			p.bin()
		case ptPair:
			k, v := p.str(), p.str()
			if !p.bad && (!validUTF8(k) || !validUTF8(v)) {
				return malformed
			}
		}
		if p.bad {
			return malformed
		}
		if rc != OK {
			continue
		}
		bit := uint64(1) << id
		switch {
		case kind.allowed&bit == 0:
			rc = kind.notAllowed
		case id != int(packets.PropUser) && seen&bit != 0:
			rc = protocol
		default:
			seen |= bit
			rc = propValue(byte(id), num, str, pv)
		}
	}
	if rc == OK && pv.authData && !pv.authMethod {
		rc = protocol // [MQTT-3.1.2-?] Authentication Data without a method
	}
	return rc
}

// propValue checks one property value and records what the checks need.
func propValue(id byte, num uint32, str []byte, pv *propValues) byte {
	switch id {
	case packets.PropPayloadFormat, packets.PropRequestProblemInfo, packets.PropRequestResponseInfo:
		if num > 1 {
			return protocol
		}
	case packets.PropReceiveMaximum, packets.PropSubscriptionIdentifier:
		if num == 0 {
			return protocol
		}
	case packets.PropMaximumPacketSize:
		if num == 0 {
			return protocol
		}
		pv.maxPacket = num
	case packets.PropResponseTopic:
		if !validTopicName(str) { // [MQTT-3.3.2-14]
			return protocol
		}
	case packets.PropSessionExpiryInterval:
		pv.expiry = num != 0
	case packets.PropTopicAlias:
		pv.alias, pv.aliasVal = true, uint16(num)
	case packets.PropAuthenticationMethod:
		pv.authMethod = true
	case packets.PropAuthenticationData:
		pv.authData = true
	}
	return OK
}
