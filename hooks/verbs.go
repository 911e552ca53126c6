package hooks

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Verbs turns a publish to recall/, edit/ or typing/ into the
// chat.Service call of that verb, the way [Say] handles say/: on the
// client's goroutine, before the PUBACK, never forwarded or retained. A
// refusal is an error event (every version) and, for MQTT 5 at QoS 1 or 2,
// the PUBACK reason code of [ReasonCode]. Publishes to other topics pass
// on to the next hook.
//
// Typing is not counted against the say rate limit: the Service forwards
// at most one a second per sender and conversation and drops the rest.
//
// Recall and edit are counted against the say rate limit (they write the
// store) and, like says, a QoS 1/2 retransmission with DUP of one that was
// accepted is acknowledged again without a second edit.
type Verbs struct {
	mqtt.HookBase
	reg      *registry
	opts     Options
	limiter  *chat.RateLimiter // shared with Say; nil allows everything
	deadline sharedDeadline
}

// ID implements mqtt.Hook.
func (h *Verbs) ID() string { return "mqim-verbs" }

// Provides implements mqtt.Hook.
func (h *Verbs) Provides(b byte) bool { return b == mqtt.OnPublish }

// OnPublish implements mqtt.Hook.
func (h *Verbs) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	vt, isVerb, ok := broker.ParseVerbTopic(pk.TopicName)
	if !isVerb {
		return pk, nil // say/, handled by Say
	}
	from, known := broker.ParseUsername(string(cl.Properties.Username))
	if !known {
		return pk, packets.ErrRejectPacket // unreachable after Auth
	}
	svc := h.opts.Service
	var id said
	track := pk.FixedHeader.Qos > 0 && ok && vt.Verb != broker.LevelTyping
	if track {
		id = said{packetID: pk.PacketID, sum: h.reg.sayHash(pk.TopicName, pk.Payload)}
		if pk.FixedHeader.Dup && h.reg.duplicate(cl.ID, id) {
			return pk, packets.CodeSuccessIgnore
		}
	}
	ctx := h.deadline.context(time.Now())
	var err error
	code := packets.ErrTopicNameInvalid
	switch {
	case !ok:
		err = chat.Errorf(chat.CodeInvalid, "invalid topic %q", truncate(pk.TopicName, 64))
		svc.RefuseVerb(from, cl.ID, pk.Payload, err)
	case vt.Verb == broker.LevelTyping:
		if _, err = svc.Typing(ctx, from, vt.Ref); err != nil {
			svc.RefuseVerb(from, cl.ID, pk.Payload, err)
		}
		code = ReasonCode(err)
	case !h.limiter.Allow(from.String(), svc.Now()):
		err = chat.Errorf(chat.CodeRateLimited, "message rate limit exceeded (%g per second)", h.opts.RateLimit)
		svc.RefuseVerb(from, cl.ID, pk.Payload, err)
		code = packets.ErrQuotaExceeded
		h.opts.Metrics.RateLimited(metrics.MQTT)
	case vt.Verb == broker.LevelRecall:
		err = svc.RecallMessage(ctx, from, cl.ID, vt.Ref, pk.Payload)
		code = ReasonCode(err)
	case vt.Verb == broker.LevelEdit:
		err = svc.EditMessage(ctx, from, cl.ID, vt.Ref, pk.Payload)
		code = ReasonCode(err)
	}
	if err == nil && track {
		h.reg.accepted(cl.ID, id)
	}
	return answer(h.opts.Log, cl, pk, err, code)
}
