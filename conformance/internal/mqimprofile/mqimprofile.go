// Package mqimprofile starts mqim's MQTT broker in its conformance profile:
// package broker exactly as production builds it (capabilities, limits,
// the guarded TCP listener with its CONNECT deadline, connection cap and
// per-connection panic recovery, the No Local hook), with one difference:
// anonymous clients are allowed and every topic is allowed, by mochi's
// allow-all hook in place of mqim's hooks.
//
// The hooks of package hooks are left out on purpose. Auth and ACL are the
// authentication and authorisation that the profile replaces; Auth also
// carries CONNECT policies (wills refused, keepalive bounds, client ids
// bound to a user) that need a login to mean anything. Say and Presence
// need a chat.Service and answer only say/... topics, which the catalogue
// never uses. See docs/conformance.md.
package mqimprofile

import (
	"fmt"
	"os"

	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
)

// PanicLog is the message the broker logs when it recovers a panic in a
// connection handler; the conformance test counts it in the child's output.
const PanicLog = "connection handler panicked"

// Start starts the broker with its TCP listener on addr (use
// "127.0.0.1:0") and returns the bound address and a stop function.
// Errors are logged as JSON on stderr, so that recovered panics show in
// the child's output.
func Start(addr string) (string, func() error, error) {
	log := zerolog.New(os.Stderr).Level(zerolog.ErrorLevel).With().Timestamp().Logger()
	b := broker.New(broker.Options{TCPAddr: addr, Logger: log})
	if err := b.AddHook(new(auth.AllowHook), nil); err != nil {
		return "", nil, fmt.Errorf("add allow hook: %w", err)
	}
	if err := b.Start(); err != nil {
		return "", nil, fmt.Errorf("start broker: %w", err)
	}
	a := b.TCPAddr()
	if a == nil {
		_ = b.Close() // the missing listener is the error to report
		return "", nil, fmt.Errorf("broker has no TCP listener")
	}
	return a.String(), b.Close, nil
}
