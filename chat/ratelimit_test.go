package chat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
)

// Ensure the limiter allows a burst, then the rate, per key, and forgets
// keys whose bucket has refilled.
func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := chat.NewRateLimiter(10, 3)
	for i := 0; i < 3; i++ {
		if !l.Allow("bob", t0) {
			t.Fatalf("burst message %d refused", i)
		}
	}
	if l.Allow("bob", t0) {
		t.Fatal("4th message at once allowed")
	}
	if !l.Allow("alice", t0) {
		t.Fatal("another key is limited by bob's bucket")
	}
	if l.Allow("bob", t0.Add(99*time.Millisecond)) {
		t.Fatal("allowed before a token came back")
	}
	if !l.Allow("bob", t0.Add(100*time.Millisecond)) || l.Allow("bob", t0.Add(100*time.Millisecond)) {
		t.Fatal("one token per 1/rate")
	}
	// Idle keys are dropped by the sweep: memory follows active keys.
	for i := 0; i < 1000; i++ {
		l.Allow(fmt.Sprint("u", i), t0.Add(time.Second))
	}
	l.Allow("late", t0.Add(10*time.Second))
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys tracked after all refilled, want 1", n)
	}
	// Off.
	off := chat.NewRateLimiter(0, 5)
	for i := 0; i < 1000; i++ {
		if !off.Allow("bob", t0) {
			t.Fatal("a rate of 0 limits")
		}
	}
}
