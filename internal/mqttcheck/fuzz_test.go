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
	switch pk.FixedHeader.Type {
	case packets.Connect:
		_ = pk.ConnectDecode(buf)
	case packets.Publish:
		_ = pk.PublishDecode(buf)
	case packets.Puback:
		_ = pk.PubackDecode(buf)
	case packets.Pubrec:
		_ = pk.PubrecDecode(buf)
	case packets.Pubrel:
		_ = pk.PubrelDecode(buf)
	case packets.Pubcomp:
		_ = pk.PubcompDecode(buf)
	case packets.Subscribe:
		_ = pk.SubscribeDecode(buf)
	case packets.Unsubscribe:
		_ = pk.UnsubscribeDecode(buf)
	case packets.Pingreq:
		_ = pk.PingreqDecode(buf)
	case packets.Disconnect:
		_ = pk.DisconnectDecode(buf)
	case packets.Auth:
		_ = pk.AuthDecode(buf)
	}
}
