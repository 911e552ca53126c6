// Package mqttwire builds raw MQTT packets byte by byte, for the tests and
// the conformance harness that must send exactly what they mean, malformed
// input included.
package mqttwire

import "encoding/binary"

// AppendVarint appends n as an MQTT variable byte integer, which is
// encoding/binary's unsigned varint. Unlike a conforming encoder it does
// not stop at four bytes: 268435456 becomes 80 80 80 80 01, which is
// exactly the malformed input some tests want.
func AppendVarint(b []byte, n uint64) []byte { return binary.AppendUvarint(b, n) }

// Packet frames body with a fixed header: the first byte, then the
// remaining length.
func Packet(first byte, body []byte) []byte {
	b := append(make([]byte, 0, 6+len(body)), first)
	b = AppendVarint(b, uint64(len(body)))
	return append(b, body...)
}
