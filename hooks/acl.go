package hooks

import (
	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/broker"
)

// ACL is the topic access hook (docs/protocol.md §3). It is structural: the
// client's identity is its CONNECT Username, already checked by [Auth].
//
//   - Publish: only under say/, recall/, edit/ and typing/ (the exact
//     topic and whether the sender may use it are checked by [Say] and
//     [Verbs], with the membership rules of say, answered with an error
//     event), and to well-formed read/{kind}/{id} topics of a kind the
//     sender may say to (membership is checked by the Service); anything
//     else is refused by mochi (MQTT 5: PUBACK 0x87; MQTT 3.1.1:
//     disconnect).
//   - Subscribe and delivery: only inside one's own inbox, users/{me}/... or
//     passengers/{me}/..., see [broker.InboxAllowed].
//
// mochi checks the read side again for every recipient of every message,
// so the check is a few string comparisons with no lookup.
type ACL struct{ mqtt.HookBase }

// ID implements mqtt.Hook.
func (h *ACL) ID() string { return "mqim-acl" }

// Provides implements mqtt.Hook.
func (h *ACL) Provides(b byte) bool { return b == mqtt.OnACLCheck }

// OnACLCheck implements mqtt.Hook.
func (h *ACL) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return broker.IsSayTopic(topic) || broker.IsVerbTopic(topic) || broker.ReadAllowed(cl.Properties.Username, topic)
	}
	return broker.InboxAllowed(cl.Properties.Username, topic)
}
