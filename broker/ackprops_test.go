package broker

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Ensure client User Properties are not echoed in acknowledgements.
func TestAckPropsHook(t *testing.T) {
	h := new(ackPropsHook)
	user := []packets.UserProperty{{Key: "k", Val: "v"}}
	in := packets.Packet{Properties: packets.Properties{User: user}}
	if p := h.OnSubscribe(nil, in); p.Properties.User != nil {
		t.Error("SUBSCRIBE user properties kept")
	}
	if p := h.OnUnsubscribe(nil, in); p.Properties.User != nil {
		t.Error("UNSUBSCRIBE user properties kept")
	}
	if !h.Provides(mqtt.OnSubscribe) || !h.Provides(mqtt.OnUnsubscribe) || h.Provides(mqtt.OnPacketEncode) {
		t.Error("Provides")
	}
	if !(&Options{}).capabilities().Compatibilities.NoInheritedPropertiesOnAck {
		t.Error("PUBACK..PUBCOMP would inherit user properties")
	}
}
