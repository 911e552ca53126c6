package mqttwire

import (
	"bytes"
	"testing"
)

func TestAppendVarint(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7F}},
		{128, []byte{0x80, 0x01}},
		{16383, []byte{0xFF, 0x7F}},
		{16384, []byte{0x80, 0x80, 0x01}},
		{268435455, []byte{0xFF, 0xFF, 0xFF, 0x7F}},
		{268435456, []byte{0x80, 0x80, 0x80, 0x80, 0x01}}, // past MQTT's limit, on purpose
	} {
		if got := AppendVarint([]byte{0xAA}, tc.n); !bytes.Equal(got, append([]byte{0xAA}, tc.want...)) {
			t.Errorf("AppendVarint(%d) = % X, want AA % X", tc.n, got, tc.want)
		}
	}
}

func TestPacket(t *testing.T) {
	if got, want := Packet(0xC0, nil), []byte{0xC0, 0x00}; !bytes.Equal(got, want) {
		t.Errorf("Packet(PINGREQ) = % X, want % X", got, want)
	}
	body := bytes.Repeat([]byte{7}, 200)
	got := Packet(0x30, body)
	if !bytes.Equal(got[:3], []byte{0x30, 0xC8, 0x01}) || !bytes.Equal(got[3:], body) {
		t.Errorf("Packet(PUBLISH, 200 bytes) starts % X", got[:3])
	}
}

func TestHexPacket(t *testing.T) {
	if got, want := HexPacket(0x30, `00 03 'a/b' FF`), []byte{0x30, 0x06, 0x00, 0x03, 'a', '/', 'b', 0xFF}; !bytes.Equal(got, want) {
		t.Errorf("HexPacket = % X, want % X", got, want)
	}
}
