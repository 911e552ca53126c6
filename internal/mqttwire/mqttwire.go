// Package mqttwire builds raw MQTT packets byte by byte, for the tests and
// the conformance harness that must send exactly what they mean, malformed
// input included.
package mqttwire

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
)

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

// Hex decodes hex written with spaces; text between single quotes is taken
// literally: Hex(`00 03 'a/b'`) is 00 03 61 2F 62. It panics on bad hex, as
// the test tables it serves are constants.
func Hex(s string) []byte {
	var out []byte
	for i, part := range strings.Split(s, "'") {
		if i%2 == 1 {
			out = append(out, part...)
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(part, " ", ""))
		if err != nil {
			panic(err)
		}
		out = append(out, b...)
	}
	return out
}

// HexPacket frames the body written for Hex with the first byte.
func HexPacket(first byte, body string) []byte { return Packet(first, Hex(body)) }
