package mqttcheck

import (
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// FuzzCheck feeds Check arbitrary packets. `go test` runs the seeds (the
// checkTests vectors); `go test -run '^$' -fuzz FuzzCheck -fuzztime 30s
// ./internal/mqttcheck` explores further. It asserts what the framer
// relies on: Check does not panic, a PUBLISH is judged the same on its
// variable header alone, an MQTT 3.1.1 connection is closed silently
// outside CONNECT, and mochi decodes what Check passes without panicking
// (mochi#501).
func FuzzCheck(f *testing.F) {
	for _, tc := range checkTests {
		header, body := split(tc.packet)
		f.Add(tc.sess.Version, tc.sess.Expiry, header, body)
	}
	f.Fuzz(func(t *testing.T, version byte, expiry bool, header byte, body []byte) {
		s := Session{Version: version % 6, Expiry: expiry, TopicAliasMax: 4}
		rc := Check(s, header, body)
		typ := header >> 4
		if typ == packets.Publish && s.Version != 0 {
			checkHeaderOnly(t, s, header, body)
		}
		if (s.Version == 3 || s.Version == 4) && typ != packets.Connect && typ != packets.Reserved &&
			rc != OK && rc != Silent {
			t.Fatalf("v%d % X % X: 0x%02X, want OK or Silent", s.Version, header, body, rc)
		}
		if rc == OK {
			version := s.Version
			if typ == packets.Connect {
				_, ci := Connect(header&0x0F, body)
				version = ci.Level
			}
			mochiDecode(t, version, header, body)
		}
	})
}

// mochiDecode decodes a packet as mochi's client read loop does, failing t
// if that panics. A decode error is not a failure: mochi answers it.
func mochiDecode(t *testing.T, version, header byte, body []byte) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("mochi panics on v%d % X % X, which Check passed: %v", version, header, body, p)
		}
	}()
	pk := packets.Packet{ProtocolVersion: version}
	if err := pk.FixedHeader.Decode(header); err != nil {
		return
	}
	pk.FixedHeader.Remaining = len(body)
	buf := append([]byte(nil), body...)
	if decode, ok := mochiDecoders[pk.FixedHeader.Type]; ok {
		_ = decode(&pk, buf)
	}
}

// mochiDecoders are the decoders of mochi's client read loop by the type
// of a packet a client sends.
var mochiDecoders = map[byte]func(*packets.Packet, []byte) error{
	packets.Connect:     (*packets.Packet).ConnectDecode,
	packets.Publish:     (*packets.Packet).PublishDecode,
	packets.Puback:      (*packets.Packet).PubackDecode,
	packets.Pubrec:      (*packets.Packet).PubrecDecode,
	packets.Pubrel:      (*packets.Packet).PubrelDecode,
	packets.Pubcomp:     (*packets.Packet).PubcompDecode,
	packets.Subscribe:   (*packets.Packet).SubscribeDecode,
	packets.Unsubscribe: (*packets.Packet).UnsubscribeDecode,
	packets.Pingreq:     (*packets.Packet).PingreqDecode,
	packets.Disconnect:  (*packets.Packet).DisconnectDecode,
	packets.Auth:        (*packets.Packet).AuthDecode,
}
