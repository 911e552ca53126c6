package hooks

import (
	"context"
	"testing"
	"time"
)

// Ensure a shared deadline context ends no sooner than the timeout after
// the call that got it, is shared within one refresh period, renewed
// after it, and ends with its base.
func TestSharedDeadline(t *testing.T) {
	base, cancel := context.WithCancel(context.Background())
	d := &sharedDeadline{base: base, timeout: time.Minute, refresh: time.Second}
	t0 := time.Now()
	a := d.context(t0)
	if b := d.context(t0.Add(999 * time.Millisecond)); b != a {
		t.Error("a call within the refresh period got a new context")
	}
	later := t0.Add(1500 * time.Millisecond)
	c := d.context(later)
	if c == a {
		t.Fatal("a call after the refresh period got the old context")
	}
	for _, tc := range []struct {
		ctx context.Context
		at  time.Time
	}{{a, t0.Add(999 * time.Millisecond)}, {c, later}} {
		dl, ok := tc.ctx.Deadline()
		if !ok || dl.Before(tc.at.Add(time.Minute)) {
			t.Errorf("deadline %v, want at least %v", dl, tc.at.Add(time.Minute))
		}
	}
	if a.Err() != nil {
		t.Error("the replaced context ended early")
	}
	cancel()
	<-a.Done()
	<-c.Done()
}
