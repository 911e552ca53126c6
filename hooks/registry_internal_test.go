package hooks

import (
	"errors"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/chat"
)

// Ensure a client id whose expiring session mochi still lists (closed,
// released by Auth.OnDisconnect, not yet deleted) is free for a new login,
// while a live client unknown to the registry still holds its id.
func TestRegistry_ReleasedSessionStillListed(t *testing.T) {
	srv := mqtt.New(nil)
	r := newRegistry(srv)
	cl := srv.NewClient(nil, "tcp", "a1", false)
	srv.Clients.Add(cl)
	if err := r.check("a1", chat.User("alice")); !errors.Is(err, errClientIDTaken) {
		t.Fatalf("live unregistered client: %v, want errClientIDTaken", err)
	}
	cl.Stop(errors.New("connection lost"))
	if err := r.check("a1", chat.User("alice")); err != nil {
		t.Fatalf("closed released client: %v, want nil", err)
	}
}
