package chat

import "context"

// QueuedEvent is an inbox event held in a session's queue.
type QueuedEvent struct {
	Name    string
	Payload []byte
}

// Publisher delivers inbox events to live sessions. The broker implements it
// on MQTT: event e for identity i goes to users/{i}/e or passengers/{i}/e.
//
// Publish must not block on slow clients: it hands the event to each
// session's delivery queue and returns.
type Publisher interface {
	// Publish delivers the event to every session of to (and queues it for
	// persistent offline sessions, within the broker's bounds). When
	// exceptSession is not empty, that session is skipped.
	Publish(to Identity, event string, payload []byte, exceptSession string)

	// PublishSession delivers the event to the one session named, if it is
	// still connected as to.
	PublishSession(session string, to Identity, event string, payload []byte)
}

// PushNotification is one offline push (docs/maxim.md §9).
type PushNotification struct {
	User     string        `json:"user"`
	Installs []string      `json:"installs"`
	Alert    string        `json:"alert"`
	Sound    string        `json:"sound,omitempty"`
	Badge    *int          `json:"badge,omitempty"`
	Content  bool          `json:"contentAvailable,omitempty"`
	Event    string        `json:"event"`  // message or sys
	Parrot   string        `json:"parrot"` // the event payload as a JSON string
	Settings *PushSettings `json:"-"`
}

// Pusher sends offline push notifications. Implementations must not block
// chat delivery: Push queues and returns; failures are logged, never returned
// to the sender.
type Pusher interface {
	Push(ctx context.Context, n PushNotification)
}

// NopPublisher drops every event. Useful for a REST-only service in tests.
type NopPublisher struct{}

// Publish implements Publisher.
func (NopPublisher) Publish(Identity, string, []byte, string) {}

// PublishSession implements Publisher.
func (NopPublisher) PublishSession(string, Identity, string, []byte) {}

// NopPusher drops every push.
type NopPusher struct{}

// Push implements Pusher.
func (NopPusher) Push(context.Context, PushNotification) {}
