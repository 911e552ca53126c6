package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ackPropsHook keeps the client's User Properties out of SUBACK and
// UNSUBACK: mochi builds them with the User Properties of the SUBSCRIBE or
// UNSUBSCRIBE that the hooks return. (Its NoInheritedPropertiesOnAck,
// set in options.go, covers only PUBACK to PUBCOMP.) User Properties of an
// acknowledgement are the sender's own information (MQTT 5 §3.4.2.2.3), and
// mqim adds none. It works on the inbound packets, off the delivery path.
type ackPropsHook struct{ mqtt.HookBase }

// ID implements mqtt.Hook.
func (h *ackPropsHook) ID() string { return "mqim-ackprops" }

// Provides implements mqtt.Hook.
func (h *ackPropsHook) Provides(b byte) bool {
	return b == mqtt.OnSubscribe || b == mqtt.OnUnsubscribe
}

// OnSubscribe implements mqtt.Hook.
func (h *ackPropsHook) OnSubscribe(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	pk.Properties.User = nil
	return pk
}

// OnUnsubscribe implements mqtt.Hook.
func (h *ackPropsHook) OnUnsubscribe(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	pk.Properties.User = nil
	return pk
}
