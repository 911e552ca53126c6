package hooks

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// sharedDeadline hands out contexts that end at least timeout after the
// call, shared by every call within one refresh period: a context with a
// timer of its own for every say was 2% of the server's CPU at 14,000 says
// a second, for a bound that only matters when the store stalls. Each
// context ends between timeout and timeout+refresh after the call that
// got it, and with base.
type sharedDeadline struct {
	base    context.Context
	timeout time.Duration
	refresh time.Duration
	cur     atomic.Pointer[deadlineCtx]
	mu      sync.Mutex // serialises the refresh
}

type deadlineCtx struct {
	ctx     context.Context
	renewAt time.Time
	// cancel is never called early: calls may still use ctx after the
	// next one replaces it. Its timer releases it at the deadline.
	cancel context.CancelFunc
}

// context returns a context that ends no sooner than timeout from now.
func (d *sharedDeadline) context(now time.Time) context.Context {
	if c := d.cur.Load(); c != nil && now.Before(c.renewAt) {
		return c.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.cur.Load(); c != nil && now.Before(c.renewAt) {
		return c.ctx
	}
	ctx, cancel := context.WithDeadline(d.base, now.Add(d.timeout+d.refresh))
	d.cur.Store(&deadlineCtx{ctx: ctx, renewAt: now.Add(d.refresh), cancel: cancel})
	return ctx
}
