package chat

import (
	"sync"
	"time"
)

// Defaults of the per-identity message rate limit.
const (
	DefaultRateLimit = 100 // messages per second, sustained
	DefaultRateBurst = 200 // messages at once
)

// RateLimiter is a token bucket per key (an identity: a user id or
// passenger:<id>), shared by every session of that key. Each key holds at
// most Burst tokens and regains Rate per second; a message takes one.
//
// Memory is bounded by the keys active within the last Burst/Rate seconds:
// a key whose bucket has refilled is the same as a key never seen, so it is
// dropped by the periodic sweep.
type RateLimiter struct {
	rate  float64 // tokens per second
	burst float64

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a limiter of rate messages per second with bursts
// of burst. It returns nil, which allows everything, when rate is not
// positive. A burst below 1 is 1.
func NewRateLimiter(rate float64, burst int) *RateLimiter {
	if rate <= 0 {
		return nil
	}
	return &RateLimiter{rate: rate, burst: float64(max(burst, 1)), buckets: map[string]*bucket{}}
}

// Allow takes a token of key at now, reporting false when none is left.
// A nil limiter allows everything.
func (l *RateLimiter) Allow(key string, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refill is how long an empty bucket takes to fill up again.
func (l *RateLimiter) refill() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}

// sweep drops the buckets that have refilled, at most once per refill
// period (and at least once a minute), so the map holds only keys active
// recently.
func (l *RateLimiter) sweep(now time.Time) {
	every := min(max(l.refill(), time.Second), time.Minute)
	if now.Sub(l.lastSweep) < every {
		return
	}
	l.lastSweep = now
	full := l.refill()
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
}

// Len returns the number of keys tracked (tests).
func (l *RateLimiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
