package hooks

import (
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/broker"
)

// TakeOver ends the live connection of clientID on b, if any, because a
// newer connection with the same client id was accepted elsewhere (another
// node of a cluster, docs/scaleout.md): MQTT 5 clients get DISCONNECT 0x8E
// session taken over, 3.1.1 clients a closed connection. It reports whether
// a connection was ended.
func TakeOver(b *broker.Server, clientID string) bool {
	cl, ok := b.MQTT().Clients.Get(clientID)
	if !ok || cl.Closed() {
		return false
	}
	if cl.Properties.ProtocolVersion < 5 {
		cl.Stop(packets.ErrSessionTakenOver)
		return true
	}
	_ = b.MQTT().DisconnectClient(cl, packets.ErrSessionTakenOver) // the connection is closed either way
	return true
}
