package hooks

import (
	"context"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
)

// Presence keeps chat.Presence in step with the connections: each
// established connection is a session (session id = client id), and the
// Service announces the 0↔1 transitions (docs/maxim.md §4.4).
//
// mochi may call the old connection's OnDisconnect after the new
// connection's OnSessionEstablished when a client id is taken over; the
// registry keeps the session with whichever connection holds it (see
// registry.clearOnline), so a reconnect never shows the user offline.
type Presence struct {
	mqtt.HookBase
	reg  *registry
	opts Options
}

var _ broker.Aborter = (*Presence)(nil)

// ID implements mqtt.Hook.
func (h *Presence) ID() string { return "mqim-presence" }

// Provides implements mqtt.Hook.
func (h *Presence) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnClientExpired:
		return true
	}
	return false
}

// OnSessionEstablished implements mqtt.Hook: it runs after the CONNACK,
// when the connection is a live session.
func (h *Presence) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.locked(cl, func(id chat.Identity) {
		if _, notifyAll, ok := h.reg.setOnline(cl); ok {
			ctx, cancel := context.WithTimeout(h.opts.BaseContext, h.opts.Timeout)
			defer cancel()
			h.opts.Service.SessionOpened(ctx, id, cl.ID, notifyAll)
		}
	})
}

// OnDisconnect implements mqtt.Hook.
func (h *Presence) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { h.closed(cl) }

// OnClientExpired implements mqtt.Hook. A session registered by a
// connection that never reached OnSessionEstablished after taking over
// (its CONNACK failed) is only settled here.
func (h *Presence) OnClientExpired(cl *mqtt.Client) {
	h.locked(cl, func(chat.Identity) {
		if id, ok := h.reg.clearStale(cl.ID); ok {
			h.sessionClosed(id, cl.ID)
		}
	})
}

// Abort implements broker.Aborter.
func (h *Presence) Abort(cl *mqtt.Client) { h.closed(cl) }

func (h *Presence) closed(cl *mqtt.Client) {
	h.locked(cl, func(chat.Identity) {
		if id, ok := h.reg.clearOnline(cl); ok {
			h.sessionClosed(id, cl.ID)
		}
	})
}

// locked runs fn under the presence lock of cl's identity, so that the
// opening and closing of that identity's sessions are seen in order.
func (h *Presence) locked(cl *mqtt.Client, fn func(chat.Identity)) {
	id, ok := broker.ParseUsername(string(cl.Properties.Username))
	if !ok {
		return
	}
	mu := h.reg.identityLock(id)
	mu.Lock()
	defer mu.Unlock()
	fn(id)
}

func (h *Presence) sessionClosed(id chat.Identity, session string) {
	ctx, cancel := context.WithTimeout(h.opts.BaseContext, h.opts.Timeout)
	defer cancel()
	h.opts.Service.SessionClosed(ctx, id, session)
}
