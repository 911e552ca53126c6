package mqttcheck

import (
	"testing"

	"github.com/mqim/mqim/internal/mqttwire"
)

var (
	hx = mqttwire.Hex       // hx(`00 03 'a/b'`): hex with spaces, quoted text literal
	pk = mqttwire.HexPacket // pk(first byte, hex body): a framed packet
)

// split takes a packet built by pk or hx apart into Check's arguments.
func split(p []byte) (byte, []byte) {
	_, n := Varint(p[1:])
	return p[0], p[1+n:]
}

var (
	connect4 = pk(0x10, `0004 'MQTT' 04 02 003C 0001 'p'`)
	connect5 = pk(0x10, `0004 'MQTT' 05 02 003C 00 0001 'p'`)

	none     = Session{}
	v4       = Session{Version: 4}
	v5       = Session{Version: 5}
	v5expiry = Session{Version: 5, Expiry: true}
)

// checkTests are packets with the verdict on each: OK, Silent or the MQTT 5
// reason code. The broker's framer tests (broker/framer_test.go) check how
// the verdicts are answered on the wire; a valid PUBLISH to a $ topic is
// OK here and dropped there.
var checkTests = []struct {
	name   string
	sess   Session
	packet []byte
	want   byte
}{
	// PUBLISH
	{"v5 publish qos0", v5, pk(0x30, `0003 't/a' 00 'hi'`), OK},
	{"v5 publish qos1 props", v5, pk(0x32, `0003 't/a' 0001 0B 0101 0300 01 'x' 26 0000 0000 'hi'`), OK},
	{"v5 publish qos2 empty payload", v5, pk(0x34, `0003 't/a' 0001 00`), OK},
	{"v5 publish qos3", v5, pk(0x36, `0003 't/a' 0001 00`), 0x81},
	{"v5 publish qos0 dup", v5, pk(0x38, `0003 't/a' 00`), 0x81},
	{"v5 publish wildcard topic", v5, pk(0x30, `0003 't/+' 00`), 0x81},
	{"v5 publish topic U+0000", v5, pk(0x30, `0003 74 00 61 00`), 0x81},
	{"v5 publish topic surrogate", v5, pk(0x30, `0003 EDA080 00`), 0x81},
	{"v5 publish topic control", v5, pk(0x30, `0003 74 01 61 00`), 0x81},
	{"v5 publish empty topic", v5, pk(0x30, `0000 00`), 0x82},
	{"v5 publish qos1 id 0", v5, pk(0x32, `0003 't/a' 0000 00`), 0x82},
	{"v5 publish truncated topic", v5, pk(0x30, `0009 't/a'`), 0x81},
	{"v5 publish props too long", v5, pk(0x30, `0003 't/a' 09 0101`), 0x81},
	{"v5 publish prop value missing", v5, pk(0x30, `0003 't/a' 01 01 'payload'`), 0x81},
	{"v5 publish unknown prop", v5, pk(0x30, `0003 't/a' 02 0401`), 0x81},
	{"v5 publish non-minimal prop id", v5, pk(0x30, `0003 't/a' 03 800001`), 0x81},
	{"v5 publish duplicate prop", v5, pk(0x30, `0003 't/a' 04 0101 0101`), 0x82},
	{"v5 publish prop not allowed", v5, pk(0x30, `0003 't/a' 02 1700`), 0x82},
	{"v5 publish subscription id", v5, pk(0x30, `0003 't/a' 02 0B01`), 0x82},
	{"v5 publish payload format 2", v5, pk(0x30, `0003 't/a' 02 0102`), 0x82},
	{"v5 publish response topic wildcard", v5, pk(0x30, `0003 't/a' 06 08 0003 'r/#'`), 0x82},
	{"v5 publish bad utf8 user property", v5, pk(0x30, `0003 't/a' 07 26 0001 00 0001 'v'`), 0x81},
	{"v5 publish topic alias", v5, pk(0x30, `0003 't/a' 03 230001`), 0x94},
	{"v5 publish $SYS qos0 dropped", v5, pk(0x30, `0004 '$SYS' 00`), OK},
	{"v5 publish $SYS qos1 refused", v5, pk(0x32, `0004 '$SYS' 007B 00`), OK},
	{"v5 publish $share qos2 refused", v5, pk(0x34, `0008 '$share/a' 007B 00`), OK},
	{"v3 publish qos1", v4, pk(0x32, `0003 't/a' 0001 'hi'`), OK},
	{"v3 publish qos0 dup", v4, pk(0x38, `0003 't/a'`), Silent},
	{"v3 publish control char", v4, pk(0x30, `0003 74 1F 61`), Silent},
	{"v3 publish $SYS qos1 acked", v4, pk(0x32, `0004 '$SYS' 007B`), OK},
	// SUBSCRIBE
	{"v5 subscribe", v5, pk(0x82, `04D2 00 0003 'a/#' 01 0001 '+' 2E`), OK},
	{"v5 subscribe mochi#501", v5, hx(`82 06 04 D2 00 00 01 70`), 0x81},
	{"v5 subscribe empty filter no options", v5, hx(`82 05 04 D2 00 0000`), 0x81},
	{"v5 subscribe no filters", v5, pk(0x82, `04D2 00`), 0x81},
	{"v5 subscribe flags", v5, pk(0x80, `04D2 00 0001 'p' 00`), 0x81},
	{"v5 subscribe id 0", v5, pk(0x82, `0000 00 0001 'p' 00`), 0x81},
	{"v5 subscribe qos 3", v5, pk(0x82, `04D2 00 0001 'p' 03`), 0x81},
	{"v5 subscribe retain handling 3", v5, pk(0x82, `04D2 00 0001 'p' 30`), 0x81},
	{"v5 subscribe reserved option", v5, pk(0x82, `04D2 00 0001 'p' 40`), 0x81},
	{"v5 subscribe bad filter", v5, pk(0x82, `04D2 00 0005 'ab/+e' 00`), 0x81},
	{"v5 subscribe # not last", v5, pk(0x82, `04D2 00 0003 '#/a' 00`), 0x81},
	{"v5 subscribe trailing byte", v5, pk(0x82, `04D2 00 0001 'p' 00 00`), 0x81},
	{"v5 subscribe shared no local", v5, pk(0x82, `04D2 00 000A '$share/p/p' 04`), 0x82},
	{"v5 subscribe shared no name", v5, pk(0x82, `04D2 00 0009 '$share//p' 00`), 0x81},
	{"v5 subscribe subscription id 0", v5, pk(0x82, `04D2 02 0B00 0001 'p' 00`), 0x82},
	{"v5 subscribe prop not allowed", v5, pk(0x82, `04D2 02 0100 0001 'p' 00`), 0x81},
	{"v3 subscribe", v4, pk(0x82, `04D2 0001 'p' 02`), OK},
	{"v3 subscribe empty filter", v4, pk(0x82, `04D2 0000 00`), Silent},
	{"v3 subscribe bad options", v4, pk(0x82, `04D2 0001 'p' 04`), Silent},
	// UNSUBSCRIBE
	{"v5 unsubscribe", v5, pk(0xA2, `04D2 00 0001 'p'`), OK},
	{"v5 unsubscribe no filters", v5, pk(0xA2, `04D2 00`), 0x81},
	{"v5 unsubscribe empty filter", v5, pk(0xA2, `04D2 00 0000`), 0x81},
	{"v5 unsubscribe flags", v5, pk(0xA0, `04D2 00 0001 'p'`), 0x81},
	{"v3 unsubscribe invalid filter", v4, pk(0xA2, `04D2 0003 'a#b'`), Silent},
	// Acknowledgements
	{"v5 puback", v5, pk(0x40, `0001`), OK},
	{"v5 puback rc props", v5, pk(0x40, `0001 10 04 1F 0001 'x'`), OK},
	{"v5 puback id 0", v5, pk(0x40, `0000 00`), 0x82},
	{"v5 puback short", v5, pk(0x40, `01`), 0x81},
	{"v5 puback excess", v5, pk(0x40, `0001 00 00 00`), 0x81},
	{"v5 puback bad rc", v5, pk(0x40, `0001 FF 00`), 0x82},
	{"v5 puback flags", v5, pk(0x41, `0001 00`), 0x81},
	{"v5 pubrel", v5, pk(0x62, `0001 92 00`), OK},
	{"v5 pubrel flags", v5, pk(0x60, `0001`), 0x82},
	{"v5 pubcomp bad rc", v5, pk(0x70, `0001 80`), 0x82},
	{"v5 pubrec prop not allowed", v5, pk(0x50, `0001 00 02 0100`), 0x82},
	{"v3 puback long", v4, pk(0x40, `0001 00`), Silent},
	{"v3 pubrec id 0", v4, pk(0x50, `0000`), Silent},
	// Server-to-client packets, AUTH, reserved type
	{"v5 connack", v5, pk(0x20, `0000`), 0x82},
	{"v5 suback", v5, pk(0x90, `0001 00 00`), 0x82},
	{"v5 suback flags", v5, pk(0x91, `0001 00 00`), 0x81},
	{"v5 unsuback", v5, pk(0xB0, `0001 00 00`), 0x82},
	{"v5 pingresp", v5, pk(0xD0, ``), 0x82},
	{"v5 pingresp flags", v5, pk(0xD1, ``), 0x81},
	{"v5 pingresp long", v5, pk(0xD0, `00`), Silent},
	{"v5 auth", v5, pk(0xF0, `00`), 0x82},
	{"v3 suback", v4, pk(0x90, `0001 00`), Silent},
	{"v3 auth", v4, pk(0xF0, ``), Silent},
	// PINGREQ, DISCONNECT
	{"v5 pingreq", v5, pk(0xC0, ``), OK},
	{"v5 pingreq flags", v5, pk(0xC1, ``), 0x81},
	{"v5 pingreq long", v5, pk(0xC0, `00`), Silent},
	{"v3 pingreq flags", v4, pk(0xC2, ``), Silent},
	{"v5 disconnect", v5, pk(0xE0, `04 05 1F 0002 'ok'`), OK},
	{"v5 disconnect flags", v5, pk(0xE1, ``), 0x82},
	{"v5 disconnect bad prop", v5, pk(0xE0, `00 01 00`), 0x81},
	{"v5 disconnect prop not allowed", v5, pk(0xE0, `00 02 0100`), 0x82},
	{"v5 disconnect expiry after zero", v5, pk(0xE0, `00 05 11 00000001`), 0x82},
	{"v5 disconnect expiry after non-zero", v5expiry, pk(0xE0, `00 05 11 00000001`), OK},
	{"v3 disconnect long", v4, pk(0xE0, `00`), Silent},
	// Framing
	{"v5 second connect", v5, connect5, 0x82},
	{"v3 second connect", v4, connect4, Silent},
	{"publish before connect", none, pk(0x30, `0003 't/a'`), Silent},
	{"pingreq before connect", none, pk(0xC0, ``), Silent},
	// CONNECT
	{"v5 connect", none, connect5, OK},
	{"v3 connect", none, connect4, OK},
	{"v3.1 connect", none, pk(0x10, `0006 'MQIsdp' 03 02 003C 0001 'p'`), OK},
	{"v5 connect props will user pass", none, pk(0x10, `0004 'MQTT' 05 EE 003C 08 2100 0A 2700 01 0000 0001 'p' 02 0101 0003 't/w' 0003 'bye' 0002 'us' 0002 'pw'`), OK},
	{"connect flags", none, pk(0x11, `0004 'MQTT' 04 02 003C 0001 'p'`), Silent},
	{"connect protocol name", none, pk(0x10, `0004 'MQTU' 04 02 003C 0001 'p'`), Silent},
	{"connect protocol level 3", none, pk(0x10, `0004 'MQTT' 03 02 003C 0001 'p'`), 0x84},
	{"connect protocol level 6", none, pk(0x10, `0004 'MQTT' 06 02 003C 0001 'p'`), 0x84},
	{"connect reserved flag", none, pk(0x10, `0004 'MQTT' 04 03 003C 0001 'p'`), Silent},
	{"connect will qos 3", none, pk(0x10, `0004 'MQTT' 05 1E 003C 00 0001 'p' 00 0001 'w' 0001 'm'`), Silent},
	{"connect will qos without will", none, pk(0x10, `0004 'MQTT' 04 0A 003C 0001 'p'`), Silent},
	{"v3 connect password without user", none, pk(0x10, `0004 'MQTT' 04 42 003C 0001 'p' 0001 'x'`), Silent},
	{"v3 connect excess", none, pk(0x10, `0004 'MQTT' 04 02 003C 0001 'p' 00`), Silent},
	{"v3 connect empty id clean false", none, pk(0x10, `0004 'MQTT' 04 00 003C 0000`), 0x85},
	{"v3 connect control char id", none, pk(0x10, `0004 'MQTT' 04 02 003C 0002 'p' 01`), Silent},
	{"v5 connect control char id", none, pk(0x10, `0004 'MQTT' 05 02 003C 00 0002 'p' 01`), 0x85},
	{"v5 connect excess", none, pk(0x10, `0004 'MQTT' 05 02 003C 00 0001 'q' 0001 'q'`), 0x81},
	{"v5 connect missing will", none, pk(0x10, `0004 'MQTT' 05 06 003C 00 0001 'p'`), 0x81},
	{"v5 connect will to $", none, pk(0x10, `0004 'MQTT' 05 06 003C 00 0001 'p' 00 0004 '$SYS' 0000`), 0x81},
	{"v5 connect username missing", none, pk(0x10, `0004 'MQTT' 05 82 003C 00 0001 'p'`), Silent},
	{"v5 connect username U+0000", none, pk(0x10, `0004 'MQTT' 05 82 003C 00 0001 'p' 0002 'u' 00`), Silent},
	{"v5 connect receive maximum 0", none, pk(0x10, `0004 'MQTT' 05 02 003C 03 210000 0001 'p'`), 0x82},
	{"v5 connect duplicate prop", none, pk(0x10, `0004 'MQTT' 05 02 003C 04 1901 1901 0001 'p'`), 0x82},
	{"v5 connect prop not allowed", none, pk(0x10, `0004 'MQTT' 05 02 003C 02 0101 0001 'p'`), 0x82},
	{"v5 connect prop truncated", none, pk(0x10, `0004 'MQTT' 05 02 003C 01 21 0001 'p'`), 0x81},
	{"v5 connect will prop not allowed", none, pk(0x10, `0004 'MQTT' 05 06 003C 00 0001 'p' 03 130001 0001 'w' 0001 'm'`), 0x82},
	{"v5 connect auth data without method", none, pk(0x10, `0004 'MQTT' 05 02 003C 04 16 0001 'x' 0001 'p'`), 0x82},
	{"v5 connect auth method", none, pk(0x10, `0004 'MQTT' 05 02 003C 07 15 0004 'SCRM' 0001 'p'`), 0x8C},
	{"v5 tiny client maximum packet size", v5, pk(0xC1, ``), 0x81},
}

// Ensure each packet gets its verdict, per type and protocol version.
func TestCheck(t *testing.T) {
	for _, tc := range checkTests {
		header, body := split(tc.packet)
		if got := Check(tc.sess, header, body); got != tc.want {
			t.Errorf("%s: Check = 0x%02X, want 0x%02X", tc.name, got, tc.want)
		}
	}
}

// Ensure a PUBLISH is judged the same on its variable header alone, as
// the framer judges one too large for its buffer, whether the header
// arrives at once or a byte at a time.
func TestPublishHeaderLen(t *testing.T) {
	for _, tc := range checkTests {
		header, body := split(tc.packet)
		if header>>4 != 3 || tc.sess.Version == 0 {
			continue
		}
		checkHeaderOnly(t, tc.sess, header, body)
	}
}

// checkHeaderOnly fails t if Publish on the bytes PublishHeaderLen picks
// disagrees with Publish on the whole body.
func checkHeaderOnly(t *testing.T, s Session, header byte, body []byte) {
	t.Helper()
	wantRC, wantID, wantDollar := Publish(s, header, body)
	v5 := s.Version == 5
	n, need := PublishHeaderLen(body, header, v5, len(body))
	if need != 0 || n > len(body) {
		t.Fatalf("% X: PublishHeaderLen of the whole body = %d, need %d", body, n, need)
	}
	// Byte by byte, as a trickling client sends it.
	m, got := 0, 0
	for more := min(2, len(body)); more != 0; {
		if more <= m || more > len(body) {
			t.Fatalf("% X: PublishHeaderLen asked for %d bytes after %d", body, more, m)
		}
		m = more
		got, more = PublishHeaderLen(body[:m], header, v5, len(body))
	}
	if got != n {
		t.Fatalf("% X: PublishHeaderLen = %d byte by byte, %d at once", body, got, n)
	}
	if rc, id, dollar := Publish(s, header, body[:n]); rc != wantRC || id != wantID || dollar != wantDollar {
		t.Fatalf("% X: on %d header bytes %02X %d %v, on the body %02X %d %v",
			body, n, rc, id, dollar, wantRC, wantID, wantDollar)
	}
}
