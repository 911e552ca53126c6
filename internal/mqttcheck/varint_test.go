package mqttcheck

import (
	"testing"

	"github.com/mqim/mqim/internal/mqttwire"
)

// Ensure Varint decodes exactly the encoder's conforming range and tells
// an unfinished integer from one longer than four bytes.
func TestVarint(t *testing.T) {
	for _, n := range []uint64{0, 1, 127, 128, 16383, 16384, 2097151, 2097152, MaxVarint} {
		b := mqttwire.AppendVarint(nil, n)
		if v, used := Varint(append(b, 0xAA)); used != len(b) || uint64(v) != n {
			t.Errorf("Varint(% X AA) = %d, %d bytes; want %d, %d", b, v, used, n, len(b))
		}
	}
	for _, tc := range []struct {
		in   []byte
		v, n int
	}{
		{nil, 0, 0},
		{[]byte{0x80}, 0, 0},
		{[]byte{0xFF, 0xFF, 0xFF}, 0, 0},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x01}, 0, -1}, // 268435456: five bytes
		{[]byte{0xFF, 0xFF, 0xFF, 0xFF}, 0, -1},
		{[]byte{0x80, 0x00}, 0, 2}, // non-minimal: the caller decides
	} {
		if v, n := Varint(tc.in); v != tc.v || n != tc.n {
			t.Errorf("Varint(% X) = %d, %d; want %d, %d", tc.in, v, n, tc.v, tc.n)
		}
	}
}
