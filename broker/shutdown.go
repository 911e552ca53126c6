package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// shutdownClient ends cl's connection when the server shuts down. MQTT 5
// has a DISCONNECT for it (0x8B server shutting down); MQTT 3.1.1 allows a
// DISCONNECT only from the client (§3.14), and clients treat one from the
// server as a protocol error, so a 3.1.1 connection is simply closed.
func (s *Server) shutdownClient(cl *mqtt.Client) {
	if cl.Properties.ProtocolVersion == 5 {
		_ = s.mqtt.DisconnectClient(cl, packets.ErrServerShuttingDown)
		return
	}
	cl.Stop(packets.ErrServerShuttingDown)
}
