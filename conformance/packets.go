package conformance

import (
	"encoding/binary"

	"github.com/mqim/mqim/internal/mqttcheck"
	"github.com/mqim/mqim/internal/mqttwire"
)

// Packet type nibbles (the high four bits of the first byte).
const (
	typeConnect     = 0x1
	typeConnack     = 0x2
	typePublish     = 0x3
	typePuback      = 0x4
	typePubrec      = 0x5
	typePubrel      = 0x6
	typePubcomp     = 0x7
	typeSubscribe   = 0x8
	typeSuback      = 0x9
	typeUnsubscribe = 0xA
	typeUnsuback    = 0xB
	typePingreq     = 0xC
	typePingresp    = 0xD
	typeDisconnect  = 0xE
)

var (
	pingreq  = []byte{0xC0, 0x00}
	pingresp = []byte{0xD0, 0x00}
)

// appendString appends an MQTT UTF-8 string: two bytes of length, then the bytes.
func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// ConnectPacket builds the default CONNECT of the catalogue: clean session,
// keepalive 60, the given client id, and for MQTT 5 one property, Receive
// Maximum 20. MQTT 3.1 (ver 3) uses the protocol name "MQIsdp", as the
// original harness does, because a 3.1 broker accepts nothing else.
func ConnectPacket(ver int, clientID string) []byte {
	var body []byte
	if ver == 3 {
		body = appendString(body, "MQIsdp")
	} else {
		body = appendString(body, "MQTT")
	}
	body = append(body, byte(ver), 0x02, 0x00, 60)
	if ver == 5 {
		body = append(body, 0x03, 0x21, 0x00, 20) // properties: Receive Maximum 20
	}
	body = appendString(body, clientID)
	return mqttwire.Packet(typeConnect<<4, body)
}

// subscribePacket builds SUBSCRIBE with packet id 1 for one filter.
func subscribePacket(ver int, topic string, qos byte) []byte {
	body := []byte{0x00, 0x01}
	if ver == 5 {
		body = append(body, 0x00) // no properties
	}
	body = appendString(body, topic)
	body = append(body, qos)
	return mqttwire.Packet(typeSubscribe<<4|0x02, body)
}

// subackPacket is the SUBACK that grants qos to packet id 1.
func subackPacket(ver int, qos byte) []byte {
	body := []byte{0x00, 0x01}
	if ver == 5 {
		body = append(body, 0x00)
	}
	return mqttwire.Packet(typeSuback<<4, append(body, qos))
}

// unsubscribePacket builds UNSUBSCRIBE with packet id 1 for one filter.
func unsubscribePacket(ver int, topic string) []byte {
	body := []byte{0x00, 0x01}
	if ver == 5 {
		body = append(body, 0x00)
	}
	return mqttwire.Packet(typeUnsubscribe<<4|0x02, appendString(body, topic))
}

// unsubackPacket is the UNSUBACK for packet id 1 (MQTT 5: reason Success).
func unsubackPacket(ver int) []byte {
	body := []byte{0x00, 0x01}
	if ver == 5 {
		body = append(body, 0x00, 0x00)
	}
	return mqttwire.Packet(typeUnsuback<<4, body)
}

// publishPacket builds an MQTT 3.1.1 PUBLISH; packet id 1 when qos > 0.
func publishPacket(topic string, qos byte, retain bool, payload []byte) []byte {
	first := byte(typePublish<<4) | qos<<1
	if retain {
		first |= 0x01
	}
	body := appendString(nil, topic)
	if qos > 0 {
		body = append(body, 0x00, 0x01)
	}
	return mqttwire.Packet(first, append(body, payload...))
}

// ackPacket builds a two-byte-body acknowledgement (PUBACK, PUBREC, PUBREL,
// PUBCOMP) for packet id 1 in MQTT 3.1.1 form.
func ackPacket(first byte) []byte { return []byte{first, 0x02, 0x00, 0x01} }

// rawPacket is one packet found by splitPackets. Body may be shorter than
// the remaining length claims if the input ends early.
type rawPacket struct {
	First byte
	Body  []byte
}

// splitPackets walks the fixed headers of b and returns the packets it can
// frame. It stops at a malformed remaining length; a packet whose body runs
// past the end is returned truncated. It is used only to analyse what a
// case sends, never to judge the broker.
func splitPackets(b []byte) []rawPacket {
	var out []rawPacket
	for len(b) >= 2 {
		rl, n := mqttcheck.Varint(b[1:])
		if n <= 0 {
			return out
		}
		rest := b[1+n:]
		if len(rest) < rl {
			return append(out, rawPacket{First: b[0], Body: rest})
		}
		out = append(out, rawPacket{First: b[0], Body: rest[:rl]})
		b = rest[rl:]
	}
	return out
}

// connectInfo is what the scheduler needs from a CONNECT a case sends.
type connectInfo struct {
	ClientID   string
	HasID      bool
	Will       bool
	WillTopic  string
	HasWillTop bool
}

// parseConnect reads as much of a CONNECT body as the scheduler needs. It
// is tolerant: fields it cannot reach are reported as absent.
func parseConnect(body []byte) (ci connectInfo) {
	r := reader{b: body}
	// The protocol name is not checked: a broker that rejects it never
	// reaches the client id, and one that accepts it should be scheduled
	// as if it did.
	if _, ok := r.str(); !ok {
		return ci
	}
	ver, ok1 := r.byte()
	flags, ok2 := r.byte()
	if !ok1 || !ok2 {
		return ci
	}
	ci.Will = flags&0x04 != 0
	if _, ok := r.uint16(); !ok {
		return ci
	}
	if ver == 5 {
		if !r.props() {
			return ci
		}
	}
	ci.ClientID, ci.HasID = r.str()
	if !ci.HasID || !ci.Will {
		return ci
	}
	if ver == 5 && !r.props() {
		return ci
	}
	ci.WillTopic, ci.HasWillTop = r.str()
	return ci
}

// publishTopic returns the topic of a PUBLISH body.
func publishTopic(body []byte) (string, bool) {
	r := reader{b: body}
	return r.str()
}

// subscribeFilters returns the topic filters of a SUBSCRIBE body.
func subscribeFilters(body []byte, ver int) []string { return filters(body, ver, true) }

// unsubscribeFilters returns the topic filters of an UNSUBSCRIBE body.
func unsubscribeFilters(body []byte, ver int) []string { return filters(body, ver, false) }

// filters reads the packet id, the MQTT 5 properties and then the topic
// filters of a SUBSCRIBE (each followed by an options byte) or UNSUBSCRIBE
// body, stopping at the first malformed one.
func filters(body []byte, ver int, withOptions bool) []string {
	r := reader{b: body}
	if _, ok := r.uint16(); !ok {
		return nil
	}
	if ver == 5 && !r.props() {
		return nil
	}
	var out []string
	for len(r.b) > 0 {
		f, ok := r.str()
		if !ok {
			return out
		}
		out = append(out, f)
		if withOptions {
			if _, ok := r.byte(); !ok {
				return out
			}
		}
	}
	return out
}

// reader is a forgiving cursor over packet bytes.
type reader struct{ b []byte }

func (r *reader) byte() (byte, bool) {
	if len(r.b) < 1 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *reader) uint16() (uint16, bool) {
	if len(r.b) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v, true
}

func (r *reader) str() (string, bool) {
	n, ok := r.uint16()
	if !ok || len(r.b) < int(n) {
		return "", false
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s, true
}

// props skips an MQTT 5 property block.
func (r *reader) props() bool {
	n, used := mqttcheck.Varint(r.b)
	if used <= 0 || len(r.b)-used < n {
		return false
	}
	r.b = r.b[used+n:]
	return true
}
