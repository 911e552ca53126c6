package broker

import (
	"bytes"
	"slices"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/chat"
)

var _ chat.Publisher = (*Server)(nil)

// eventQoS is the QoS of every inbox event (docs/protocol.md §3.3): a persistent
// session gets what was published while it was away, within the broker's
// bounds.
const eventQoS = 1

// Publish implements chat.Publisher: it publishes event on the inbox topic
// of to, at QoS 1, through mochi's own delivery path. Each recipient passes
// the read ACL, gets a copy in its outbound queue (never blocking the
// caller), and a disconnected persistent session gets it queued.
//
// exceptSession relies on MQTT's No Local rule: the broker marks every client
// subscription No Local (see noLocalHook), and the event is injected with
// exceptSession as its origin client id, so mochi skips exactly that
// session. Client ids are bound to one identity by the auth hook, and no
// client may use the inline client's id, so no other session is affected.
func (s *Server) Publish(to chat.Identity, event string, payload []byte, exceptSession string) {
	if exceptSession != "" && s.hasOther != nil && !s.hasOther(to, exceptSession) {
		return // the excepted session is the only one: nobody to deliver to
	}
	topic := InboxTopic(to, event)
	var err error
	if exceptSession == "" {
		err = s.mqtt.Publish(topic, payload, false, eventQoS)
	} else {
		origin := s.origins.Get().(*mqtt.Client)
		origin.ID = exceptSession
		err = s.mqtt.InjectPacket(origin, packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: eventQoS},
			TopicName:   topic,
			Payload:     payload,
			PacketID:    1, // the inbound QoS exchange is skipped for inline clients; the id only has to be valid
		})
		origin.ID = ""
		s.origins.Put(origin)
	}
	if err != nil {
		s.log.Error().Err(err).Str("topic", topic).Msg("publish failed")
	}
}

// PublishSession implements chat.Publisher: it delivers event to the one
// client id session, if it is connected as to and subscribed to that event
// in its inbox.
//
// mochi has no public way to publish to one client among several matching
// subscribers, so this follows publishToClient: the packet gets a packet id
// and an inflight entry (so the client's PUBACK settles it and a persistent
// session gets it again after a reconnect) and is written on the caller's
// goroutine. It is meant for replies to the session whose packet is being
// handled (ack, error), which is also the caller's goroutine; from another
// goroutine it may wait up to that connection's write deadline. Unlike
// mochi's path it does not hold the event back when the client's Receive
// Maximum is used up: at most the one reply in flight goes over it.
func (s *Server) PublishSession(session string, to chat.Identity, event string, payload []byte) {
	cl, ok := s.mqtt.Clients.Get(session)
	if !ok || cl.Net.Inline || cl.Closed() || !bytes.Equal(cl.Properties.Username, []byte(Username(to))) {
		return
	}
	topic := InboxTopic(to, event)
	sub, ok := s.mqtt.Topics.Subscribers(topic).Subscriptions[cl.ID]
	if !ok {
		return // not subscribed to its inbox: MQTT delivers nothing
	}
	s.writeTo(cl, sub, topic, payload)
}

// writeTo writes a publish of payload on topic to cl, which subscribed to it
// with sub.
func (s *Server) writeTo(cl *mqtt.Client, sub packets.Subscription, topic string, payload []byte) {
	now := time.Now().Unix()
	out := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: min(sub.Qos, eventQoS)},
		TopicName:   topic,
		Payload:     payload,
		Origin:      mqtt.InlineClientId,
		Created:     now,
	}
	if exp := s.mqtt.Options.Capabilities.MaximumMessageExpiryInterval; exp > 0 {
		out.Expiry = now + exp
	}
	for _, id := range sub.Identifiers {
		if id > 0 {
			out.Properties.SubscriptionIdentifier = append(out.Properties.SubscriptionIdentifier, id)
		}
	}
	slices.Sort(out.Properties.SubscriptionIdentifier)

	if out.FixedHeader.Qos > 0 {
		if cl.State.Inflight.Len() >= int(s.mqtt.Options.Capabilities.MaximumInflight) {
			atomic.AddInt64(&s.mqtt.Info.InflightDropped, 1)
			s.log.Warn().Str("client", cl.ID).Str("topic", topic).Msg("client inflight quota reached; event dropped")
			return
		}
		id, err := cl.NextPacketID()
		if err != nil {
			atomic.AddInt64(&s.mqtt.Info.InflightDropped, 1)
			s.log.Warn().Str("client", cl.ID).Str("topic", topic).Err(err).Msg("packet ids exhausted; event dropped")
			return
		}
		out.PacketID = uint16(id)
		if cl.State.Inflight.Set(out) {
			atomic.AddInt64(&s.mqtt.Info.Inflight, 1)
			// Balanced by mochi's IncreaseSendQuota when the PUBACK arrives.
			cl.State.Inflight.DecreaseSendQuota()
		}
	}
	if cl.Closed() {
		return // a QoS 1 event stays queued for the session's next connection
	}
	if err := cl.WritePacket(out); err != nil {
		s.log.Debug().Err(err).Str("client", cl.ID).Str("topic", topic).Msg("session event not written")
	}
}

// noLocalHook is the broker's own hook, added first: it marks every client
// subscription No Local, which is what Publish's exceptSession relies on.
// Clients never publish to inbox topics, so No Local changes nothing else
// for them. Shared subscriptions are left alone (No Local on them is a
// protocol error); the ACL refuses them anyway.
type noLocalHook struct{ mqtt.HookBase }

// ID implements mqtt.Hook.
func (h *noLocalHook) ID() string { return "mqim-nolocal" }

// Provides implements mqtt.Hook.
func (h *noLocalHook) Provides(b byte) bool { return b == mqtt.OnSubscribe }

// OnSubscribe implements mqtt.Hook.
func (h *noLocalHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	filters := make(packets.Subscriptions, len(pk.Filters))
	for i, f := range pk.Filters {
		if !mqtt.IsSharedFilter(f.Filter) {
			f.NoLocal = true
		}
		// No retained message ever exists (see capabilities), so mochi's
		// scan for them at subscribe time can only find nothing; for a
		// wildcard filter its recursion, 4 KiB a level, is what grew a new
		// session's stack from 32 to 64 KiB (trim.go).
		f.RetainHandling = 2
		filters[i] = f
	}
	pk.Filters = filters
	return pk
}
