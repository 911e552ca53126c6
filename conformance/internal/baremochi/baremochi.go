// Package baremochi starts mochi-mqtt v2 as it comes out of the box: default
// options and capabilities, the allow-all auth hook, one TCP listener. It
// is the conformance runner's reference for "what mochi does without mqim",
// including its known crash on a truncated MQTT 5 SUBSCRIBE (mochi #501),
// so it must run in a child process.
package baremochi

import (
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Start starts the broker with a TCP listener on addr (use
// "127.0.0.1:0") and returns the bound address and a stop function.
func Start(addr string) (string, func() error, error) {
	// Only the logger differs from the defaults: mochi logs every bad
	// packet, and stdout is the child's channel to the runner.
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return "", nil, fmt.Errorf("add allow hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: "tcp", ID: "conformance", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return "", nil, fmt.Errorf("add listener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return "", nil, fmt.Errorf("serve: %w", err)
	}
	return tcp.Address(), srv.Close, nil
}
