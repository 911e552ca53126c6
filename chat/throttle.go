package chat

import (
	"container/list"
	"sync"
	"time"
)

// Login throttle defaults (docs/maxim.md §2.7).
const (
	DefaultMaxFailures   = 10
	ThrottleWindow       = time.Minute
	DefaultThrottleIPCap = 65536
)

// LoginThrottle counts failed logins per source address: more than Max
// within ThrottleWindow refuses the address for ThrottleWindow. It keeps
// at most Cap addresses, least recently seen dropped first, so a flood of
// distinct addresses cannot grow it without bound. Safe for concurrent
// use.
type LoginThrottle struct {
	max int
	cap int
	// Now is the clock; tests replace it before use.
	Now func() time.Time

	mu  sync.Mutex
	lru *list.List               // of *throttleEntry, most recent at the front
	by  map[string]*list.Element // by address
}

type throttleEntry struct {
	addr     string
	start    time.Time // of the current window
	failures int
	blocked  time.Time // refused until then
}

// NewLoginThrottle returns a throttle allowing max failures a minute per
// address and keeping at most capacity addresses (≤ 0: the default).
func NewLoginThrottle(max, capacity int) *LoginThrottle {
	if capacity <= 0 {
		capacity = DefaultThrottleIPCap
	}
	return &LoginThrottle{max: max, cap: capacity, Now: time.Now, lru: list.New(), by: map[string]*list.Element{}}
}

// Allow reports whether addr may try to log in now.
func (t *LoginThrottle) Allow(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.by[addr]
	if !ok {
		return true
	}
	t.lru.MoveToFront(el)
	return !t.Now().Before(el.Value.(*throttleEntry).blocked)
}

// Fail records a failed login from addr.
func (t *LoginThrottle) Fail(addr string) {
	now := t.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.by[addr]
	if !ok {
		if t.lru.Len() >= t.cap {
			old := t.lru.Back()
			t.lru.Remove(old)
			delete(t.by, old.Value.(*throttleEntry).addr)
		}
		el = t.lru.PushFront(&throttleEntry{addr: addr, start: now})
		t.by[addr] = el
	}
	t.lru.MoveToFront(el)
	e := el.Value.(*throttleEntry)
	if now.Sub(e.start) >= ThrottleWindow {
		e.start, e.failures = now, 0
	}
	e.failures++
	if e.failures > t.max {
		e.blocked = now.Add(ThrottleWindow)
	}
}

// Len is how many addresses are tracked.
func (t *LoginThrottle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
