package chat_test

import (
	"testing"

	"github.com/mqim/mqim/chat"
)

type countConns struct {
	n     int
	calls []chat.KickCause
}

func (c *countConns) Disconnect(_ chat.Identity, cause chat.KickCause, _ int64) int {
	c.calls = append(c.calls, cause)
	return c.n
}

func (c *countConns) Live(chat.Identity) int { return c.n }

// Ensure MultiConnections reaches every layer once, skips nil ones and
// returns the total.
func TestMultiConnections(t *testing.T) {
	a, b := &countConns{n: 2}, &countConns{n: 1}
	m := chat.MultiConnections{a, nil, b}
	if got := m.Disconnect(chat.User("alice"), chat.KickBanned, 0); got != 3 {
		t.Fatalf("Disconnect = %d, want 3", got)
	}
	if len(a.calls) != 1 || len(b.calls) != 1 || a.calls[0] != chat.KickBanned || b.calls[0] != chat.KickBanned {
		t.Fatalf("calls: %v %v", a.calls, b.calls)
	}
	if got := m.Live(chat.User("alice")); got != 3 {
		t.Fatalf("Live = %d, want 3", got)
	}
}
