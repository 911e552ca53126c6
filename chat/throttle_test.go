package chat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
)

// Ensure the throttle: 10 failures a minute are allowed, the 11th refuses
// the address for a minute (other addresses unaffected), and failures
// spread over more than a minute never add up.
func TestLoginThrottle(t *testing.T) {
	th := chat.NewLoginThrottle(10, 0)
	now := time.Unix(1_700_000_000, 0)
	th.Now = func() time.Time { return now }
	for i := 0; i < 10; i++ {
		th.Fail("10.0.0.1")
	}
	if !th.Allow("10.0.0.1") {
		t.Fatal("refused after 10 failures")
	}
	th.Fail("10.0.0.1")
	if th.Allow("10.0.0.1") {
		t.Fatal("allowed after 11 failures")
	}
	if !th.Allow("10.0.0.2") {
		t.Fatal("another address refused")
	}
	now = now.Add(59 * time.Second)
	if th.Allow("10.0.0.1") {
		t.Fatal("allowed within the minute")
	}
	now = now.Add(2 * time.Second)
	if !th.Allow("10.0.0.1") {
		t.Fatal("still refused after the minute")
	}
	// Slow failures: 10 a minute for ever never block.
	for i := 0; i < 50; i++ {
		th.Fail("10.0.0.3")
		now = now.Add(6100 * time.Millisecond)
	}
	if !th.Allow("10.0.0.3") {
		t.Fatal("slow failures blocked")
	}
}

// Ensure memory stays bounded under a flood of distinct addresses: at most
// the capacity is tracked, and an address being throttled at the time is
// still refused while the flood goes on (it is the most recently seen).
func TestLoginThrottle_Bounded(t *testing.T) {
	const capacity = 1000
	th := chat.NewLoginThrottle(10, capacity)
	now := time.Unix(1_700_000_000, 0)
	th.Now = func() time.Time { return now }
	for i := 0; i < 11; i++ {
		th.Fail("attacker")
	}
	for i := 0; i < 100_000; i++ {
		th.Fail(fmt.Sprintf("fake-%d", i))
		if i%50 == 0 && th.Allow("attacker") {
			t.Fatalf("attacker allowed after %d fake addresses", i)
		}
		if n := th.Len(); n > capacity {
			t.Fatalf("%d addresses tracked, cap %d", n, capacity)
		}
	}
	if n := th.Len(); n != capacity {
		t.Fatalf("%d addresses tracked, want %d", n, capacity)
	}
}
