package mqttcheck

import "encoding/binary"

// MaxVarint is the largest value a variable byte integer can hold in its
// four bytes, and so the largest remaining length.
const MaxVarint = 268435455

// Varint decodes the MQTT variable byte integer at the start of b. It is
// encoding/binary's unsigned varint (7-bit groups, least significant first)
// cut to MQTT's four bytes [MQTT-1.5.5]. n > 0 is the number of bytes used;
// n == 0 means b ends inside the integer; n < 0 means four bytes did not
// end it. A non-minimal encoding (80 00) is accepted here: the fixed header
// takes it, properties refuse it (reader.varint).
func Varint(b []byte) (v, n int) {
	u, n := binary.Uvarint(b[:min(len(b), 4)])
	if n == 0 && len(b) >= 4 {
		return 0, -1
	}
	return int(u), n
}
