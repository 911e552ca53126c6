package broker

import (
	"cmp"
	"math"
	"slices"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// sessionHook fixes two things mochi (v2.7.9) gets wrong with a persistent
// session's queue, from outside mochi:
//
//   - Packet ids. mochi refuses a SUBSCRIBE or UNSUBSCRIBE whose packet id
//     is in cl.State.Inflight (SUBACK 0x91, not even valid in 3.1.1), but
//     that map holds the server's own outgoing QoS 1 ids, a separate id
//     space (MQTT 3.1.1 §2.3.1, 5.0 §2.2.1). A client reconnecting to a
//     queue of events was refused its subscription whenever its id (most
//     start at 1) matched a queued event. OnPacketRead gives the packet id
//     0, which the server never allocates, and OnPacketEncode puts the
//     client's id back into the SUBACK/UNSUBACK. Both run on the client's
//     read goroutine, which writes that acknowledgement itself.
//   - Replay order. mochi resends a session's queue sorted by
//     uint16(Created), Created in seconds, with an unstable sort over map
//     order: events of the same second come back in any order. When the
//     CONNACK of a present session is encoded (after mochi cloned the old
//     queue, before it resends it), queueOrder renumbers Created so that
//     mochi's sort yields the order the events were queued in.
type sessionHook struct {
	mqtt.HookBase
	mu      sync.Mutex
	pending map[*mqtt.Client]uint16 // the client's id of the SUBSCRIBE/UNSUBSCRIBE being handled
}

// ID implements mqtt.Hook.
func (h *sessionHook) ID() string { return "mqim-session" }

// Provides implements mqtt.Hook.
func (h *sessionHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnPacketRead implements mqtt.Hook.
func (h *sessionHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if t := pk.FixedHeader.Type; t == packets.Subscribe || t == packets.Unsubscribe {
		h.mu.Lock()
		if h.pending == nil {
			h.pending = map[*mqtt.Client]uint16{}
		}
		h.pending[cl] = pk.PacketID
		h.mu.Unlock()
		// Qos 0 keeps mochi's "missing packet id" check quiet; the
		// framer has already checked the fixed header's flags.
		pk.PacketID, pk.FixedHeader.Qos = 0, 0
	}
	return pk, nil
}

// OnPacketEncode implements mqtt.Hook.
func (h *sessionHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Suback, packets.Unsuback:
		if pk.PacketID == 0 {
			h.mu.Lock()
			pk.PacketID = h.pending[cl]
			delete(h.pending, cl)
			h.mu.Unlock()
		}
	case packets.Connack:
		if pk.SessionPresent {
			QueueOrder(cl.State.Inflight)
		}
	}
	return pk
}

// OnDisconnect implements mqtt.Hook: a connection that ended between a
// SUBSCRIBE and its SUBACK leaves no entry behind.
func (h *sessionHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	delete(h.pending, cl)
	h.mu.Unlock()
}

// QueueOrder rewrites the Created times of the publishes queued in fl so
// that mochi's resend (sorted by uint16(Created)) follows the order they
// were queued in, and returns that order. The queue order is Created, then,
// within one second, packet id order: ids are allocated one after the
// other, wrapping at 65535, so the oldest id of a second is the one after
// the largest gap between that second's ids.
//
// New times only move earlier (an event never outlives its expiry) and stay
// close to the real ones: each is at most the original and one second
// before the next. mochi compares the low 16 bits only, so all of them must
// fall into one block of 65536 seconds; when the queue spans a block
// boundary, the whole queue is moved before it (expiring the later events
// early, which history catch-up covers).
func QueueOrder(fl *mqtt.Inflight) []packets.Packet {
	all := fl.GetAll(false)
	var pubs []packets.Packet
	for _, pk := range all {
		if pk.FixedHeader.Type == packets.Publish {
			pubs = append(pubs, pk)
		}
	}
	if len(pubs) == 0 {
		return nil
	}
	slices.SortFunc(pubs, func(a, b packets.Packet) int {
		if c := cmp.Compare(a.Created, b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.PacketID, b.PacketID)
	})
	// Within each second, rotate the ids so the oldest comes first.
	for i := 0; i < len(pubs); {
		j := i + 1
		for j < len(pubs) && pubs[j].Created == pubs[i].Created {
			j++
		}
		rotateAfterGap(pubs[i:j])
		i = j
	}
	orig := make([]int64, len(pubs))
	for i := range pubs {
		orig[i] = pubs[i].Created
	}
	KeepOrder(pubs)
	for i := range pubs {
		if pubs[i].Created != orig[i] {
			fl.Set(pubs[i])
		}
	}
	return pubs
}

// KeepOrder rewrites the Created times of pks, given in queue order, so
// that mochi's sort by uint16(Created) keeps that order: each time becomes
// at most the original and less than the next one, and all fall into one
// block of 65536 seconds (before the boundary when they straddle one).
func KeepOrder(pks []packets.Packet) {
	if len(pks) == 0 {
		return
	}
	next := int64(math.MaxInt64)
	for i := len(pks) - 1; i >= 0; i-- {
		next = min(pks[i].Created, next-1)
		pks[i].Created = next
	}
	if block := pks[len(pks)-1].Created &^ 0xFFFF; pks[0].Created < block {
		next = block
		for i := len(pks) - 1; i >= 0; i-- {
			next = min(pks[i].Created, next-1)
			pks[i].Created = next
		}
	}
}

// rotateAfterGap rotates pks, sorted by packet id, so that it starts after
// the largest gap between consecutive ids (the wrap from the last id back
// to the first counts too).
func rotateAfterGap(pks []packets.Packet) {
	n := len(pks)
	if n < 2 {
		return
	}
	start, gap := 0, int(pks[0].PacketID)+65536-int(pks[n-1].PacketID)
	for i := 1; i < n; i++ {
		if g := int(pks[i].PacketID) - int(pks[i-1].PacketID); g > gap {
			start, gap = i, g
		}
	}
	if start > 0 {
		rotated := append(slices.Clone(pks[start:]), pks[:start]...)
		copy(pks, rotated)
	}
}
