package hooks

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Say turns a publish to a send topic into chat.Service.Say (docs/protocol.md
// §3.1). OnPublish runs on the client's goroutine before mochi writes the
// PUBACK, so a successful PUBACK means the message is stored and handed to
// delivery.
//
// The raw say packet is never forwarded or retained: success returns
// packets.CodeSuccessIgnore. A refusal is told by an error event (sent by
// the Service, to every client version) and, for MQTT 5 at QoS 1 or 2, by
// the PUBACK or PUBREC reason code of [ReasonCode]. MQTT 3.1.1 cannot fail
// a PUBACK, so there the QoS exchange completes normally.
//
// A QoS 1/2 say retransmitted with the DUP flag after its PUBACK was lost
// (the connection dropped, the client resends on reconnect) is acknowledged
// again but not stored or delivered twice, when it is one of the last
// accepted says of that client id (same packet id, topic and payload). The
// memory is the server's: a retransmission across a server restart is
// stored again.
type Say struct {
	mqtt.HookBase
	reg  *registry
	opts Options
	// limiter is the per-identity rate limit of says (Options.RateLimit);
	// nil allows everything.
	limiter *chat.RateLimiter
	// deadline bounds the store work of each say (Options.Timeout).
	deadline sharedDeadline
}

// ID implements mqtt.Hook.
func (h *Say) ID() string { return "mqim-say" }

// Provides implements mqtt.Hook.
func (h *Say) Provides(b byte) bool { return b == mqtt.OnPublish }

// OnPublish implements mqtt.Hook.
func (h *Say) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the server's own events
	}
	from, ok := broker.ParseUsername(string(cl.Properties.Username))
	if !ok {
		return pk, packets.ErrRejectPacket // unreachable after Auth
	}
	if kind, target, ok := broker.ParseReadTopic(pk.TopicName); ok {
		return h.onRead(cl, from, pk, kind, target)
	}
	var id said
	if pk.FixedHeader.Qos > 0 {
		id = said{packetID: pk.PacketID, sum: h.reg.sayHash(pk.TopicName, pk.Payload)}
		if pk.FixedHeader.Dup && h.reg.duplicate(cl.ID, id) {
			h.opts.Log.Debug().Str("client", cl.ID).Uint16("packet_id", pk.PacketID).Msg("retransmitted say acknowledged again")
			return pk, packets.CodeSuccessIgnore
		}
	}
	svc := h.opts.Service
	var err error
	var code packets.Code
	st, ok := broker.ParseSendTopic(pk.TopicName)
	target, allowed := st.Target(from.Kind)
	switch {
	case !h.limiter.Allow(from.String(), svc.Now()):
		err = chat.Errorf(chat.CodeRateLimited, "message rate limit exceeded (%g per second)", h.opts.RateLimit)
		code = packets.ErrQuotaExceeded
		svc.RefuseSay(from, cl.ID, pk.Payload, err)
		h.opts.Metrics.RateLimited(metrics.MQTT)
	case !ok:
		err = chat.Errorf(chat.CodeInvalid, "invalid send topic %q", truncate(pk.TopicName, 64))
		code = packets.ErrTopicNameInvalid
		svc.RefuseSay(from, cl.ID, pk.Payload, err)
	case !allowed:
		err = chat.Errorf(chat.CodeUnauthorized, "a %s may not publish to say/%s", from.Kind, st.Kind)
		code = packets.ErrNotAuthorized
		svc.RefuseSay(from, cl.ID, pk.Payload, err)
	default:
		_, err = svc.Say(h.deadline.context(time.Now()), from, cl.ID, target, pk.Payload)
		code = ReasonCode(err)
	}
	if err == nil && pk.FixedHeader.Qos > 0 {
		h.reg.accepted(cl.ID, id)
	}
	h.opts.Metrics.Say(sayKind(from.Kind, st.Kind), metrics.SayOutcome(err))
	return answer(h.opts.Log, cl, pk, err, code)
}

// answer ends the handling of a client publish (say/, read/ and the verbs):
// nothing is forwarded; a refusal of an MQTT 5 QoS 1/2 publish gets its
// reason code. Otherwise the error event already told the client and the
// QoS exchange completes normally.
func answer(log zerolog.Logger, cl *mqtt.Client, pk packets.Packet, err error, code packets.Code) (packets.Packet, error) {
	if err == nil {
		return pk, packets.CodeSuccessIgnore
	}
	log.Debug().Str("client", cl.ID).Str("topic", pk.TopicName).Err(err).Msg("publish refused")
	if cl.Properties.ProtocolVersion < 5 || pk.FixedHeader.Qos == 0 {
		return pk, packets.CodeSuccessIgnore
	}
	// Write the failing PUBACK (or PUBREC for QoS 2, which mochi would get
	// wrong, mochi#510) here and tell mochi to send nothing: returning the
	// code instead would also log every refusal at error level.
	typ := packets.Puback
	if pk.FixedHeader.Qos == 2 {
		typ = packets.Pubrec
	}
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: typ},
		PacketID:    pk.PacketID,
		ReasonCode:  code.Code,
		Properties:  packets.Properties{ReasonString: chat.ErrorMessage(err)},
	}
	if werr := cl.WritePacket(ack); werr != nil {
		log.Debug().Str("client", cl.ID).Err(werr).Msg("refusal ack not written")
	}
	return pk, packets.ErrRejectPacket
}

// ReasonCode maps a say error to the MQTT 5 reason code of its PUBACK:
//
//	5001 invalid, 5010 too long          → 0x99 payload format invalid
//	5003 not a friend / member / allowed → 0x87 not authorized
//	5004 unknown target, 5005 conflict   → 0x90 topic name invalid
//	5013 rate limited                    → 0x97 quota exceeded
//	5009 unsupported                     → 0x83 implementation specific error
//	anything else (5002 internal)        → 0x80 unspecified error
func ReasonCode(err error) packets.Code {
	switch chat.ErrorCode(err) {
	case 0:
		return packets.CodeSuccess
	case chat.CodeInvalid, chat.CodeTooLong:
		return packets.ErrPayloadFormatInvalid
	case chat.CodeUnauthorized:
		return packets.ErrNotAuthorized
	case chat.CodeNotFound, chat.CodeConflict:
		return packets.ErrTopicNameInvalid
	case chat.CodeRateLimited:
		return packets.ErrQuotaExceeded
	case chat.CodeUnsupported:
		return packets.ErrImplementationSpecificError
	}
	return packets.ErrUnspecifiedError
}

// sayKind is the metrics kind of a say to topic kind topicKind ("" for a
// malformed topic): the kind of conversation it goes to.
func sayKind(from chat.Kind, topicKind string) string {
	if from == chat.KindPassenger || topicKind == broker.SayUser {
		return metrics.KindPassenger
	}
	return topicKind // friend, group, room, passenger, stranger; "" counts as unknown
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
