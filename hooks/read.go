package hooks

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/chat"
)

// onRead handles a publish to read/{kind}/{id} ({"seq":N}): the Service
// checks the conversation as for a say, moves the cursor and sends the read
// and receipt events; a refusal is answered like a refused say (error
// event, and the MQTT 5 reason code). Reads are idempotent, so a
// retransmission needs no duplicate check, and they are not rate limited:
// a cursor only moves forward, which bounds the events they cause.
func (h *Say) onRead(cl *mqtt.Client, from chat.Identity, pk packets.Packet, kind, id string) (packets.Packet, error) {
	err := h.opts.Service.ReadFromSession(h.deadline.context(time.Now()), from, cl.ID, kind, id, pk.Payload)
	return answer(h.opts.Log, cl, pk, err, ReasonCode(err))
}
