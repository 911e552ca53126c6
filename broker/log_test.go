package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"
)

// Ensure packets logged by mochi lose their payload and password.
func TestRedactHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newRedactHandler(zerolog.NewSlogHandler(zerolog.New(&buf))))
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   "say/friend/bob", PacketID: 7, Payload: []byte("secret message"),
	}
	pk.Connect.Password = []byte("secret password")
	log.Warn("error processing packet", "pk", pk, "client", "c1")
	log.With("packet", &pk).Debug("failed publishing packet")
	out := buf.String()
	if strings.Contains(out, "secret") {
		t.Fatalf("log leaks a secret: %s", out)
	}
	for _, want := range []string{`"pk.topic":"say/friend/bob"`, `"pk.payload_bytes":14`, `"client":"c1"`, `"packet.id":7`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
}
