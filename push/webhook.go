// Package push sends MaxIM offline push notifications (docs/maxim.md §9)
// to a webhook: the app's own push gateway turns them into APNs or FCM
// pushes to the installs named in each notification.
package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Defaults for [Options] (applied by New to zero values, except Retries,
// whose zero means no retry).
const (
	DefaultTimeout   = 5 * time.Second
	DefaultRetries   = 3
	DefaultBackoff   = time.Second
	DefaultQueueSize = 1024
	DefaultWorkers   = 2
)

// Options configures a [Webhook].
type Options struct {
	// URL receives each notification as an HTTP POST of its JSON
	// (chat.PushNotification).
	URL string
	// Timeout bounds one request.
	Timeout time.Duration
	// Retries is how many times a failed request (network error, timeout,
	// 408, 429 or 5xx) is tried again (0: never); other 4xx answers are not
	// retried.
	Retries int
	// Backoff is the wait before the first retry; it doubles each time.
	Backoff time.Duration
	// QueueSize bounds the notifications waiting to be sent. When the queue
	// is full a new notification is dropped and logged: push never slows
	// chat delivery down.
	QueueSize int
	// Workers is the number of concurrent senders.
	Workers int
	// AuthHeader, when set, is sent as the Authorization header.
	AuthHeader string
	// Client sends the requests; nil means a client with no overall timeout
	// (Timeout applies per request).
	Client *http.Client
	// Metrics, when set, counts notifications by outcome and reads the
	// queue's depth; nil: none.
	Metrics *metrics.Metrics
	Log     zerolog.Logger
}

// Webhook is a chat.Pusher that POSTs notifications to a URL from a bounded
// queue served by worker goroutines.
type Webhook struct {
	opts    Options
	queue   chan chat.PushNotification
	ctx     context.Context // the senders' lifetime: cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	dropped atomic.Int64
	sent    atomic.Int64
}

var _ chat.Pusher = (*Webhook)(nil)

// New returns a running webhook pusher. The URL must be http or https.
func New(opts Options) (*Webhook, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("push: webhook url %q must be an http or https URL", opts.URL)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	w := &Webhook{opts: opts, queue: make(chan chat.PushNotification, opts.QueueSize)}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	opts.Metrics.SetPushQueue(func() int { return len(w.queue) }, opts.QueueSize)
	for range opts.Workers {
		w.wg.Add(1)
		go w.work()
	}
	return w, nil
}

// Push implements chat.Pusher: it queues n and returns at once. A full queue
// or a closed pusher drops n.
func (w *Webhook) Push(_ context.Context, n chat.PushNotification) {
	if w.closed.Load() {
		return
	}
	select {
	case w.queue <- n:
	default:
		w.dropped.Add(1)
		w.opts.Metrics.Push(metrics.PushDropped)
		w.opts.Log.Warn().Str("user", n.User).Str("event", n.Event).Msg("push queue full; notification dropped")
	}
}

// Dropped returns how many notifications were dropped because the queue was
// full or every attempt failed.
func (w *Webhook) Dropped() int64 { return w.dropped.Load() }

// Sent returns how many notifications the webhook accepted.
func (w *Webhook) Sent() int64 { return w.sent.Load() }

// Close stops the workers: requests in flight are cancelled and queued
// notifications dropped (push is best effort; history is the record).
func (w *Webhook) Close() error {
	if !w.closed.CompareAndSwap(false, true) {
		return nil
	}
	w.cancel()
	w.wg.Wait()
	if n := len(w.queue); n > 0 {
		w.dropped.Add(int64(n))
		w.opts.Log.Warn().Int("count", n).Msg("push queue dropped on close")
	}
	return nil
}

func (w *Webhook) work() {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case n := <-w.queue:
			w.deliver(n)
		}
	}
}

// errPermanent marks an answer that a retry cannot fix.
var errPermanent = errors.New("permanent failure")

// deliver sends n, retrying with exponential backoff.
func (w *Webhook) deliver(n chat.PushNotification) {
	body, err := json.Marshal(n)
	if err != nil {
		w.dropped.Add(1)
		w.opts.Metrics.Push(metrics.PushFailed)
		w.opts.Log.Error().Err(err).Msg("push notification not encodable")
		return
	}
	backoff := w.opts.Backoff
	for attempt := 0; ; attempt++ {
		err = w.post(body)
		if err == nil {
			w.sent.Add(1)
			w.opts.Metrics.Push(metrics.PushSent)
			return
		}
		if errors.Is(err, errPermanent) || attempt >= w.opts.Retries || w.ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(backoff):
		case <-w.ctx.Done():
		}
		backoff *= 2
	}
	w.dropped.Add(1)
	w.opts.Metrics.Push(metrics.PushFailed)
	w.opts.Log.Warn().Err(err).Str("user", n.User).Str("event", n.Event).Msg("push notification not delivered")
}

// post makes one request.
func (w *Webhook) post(body []byte) error {
	ctx, cancel := context.WithTimeout(w.ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mqim-push")
	if w.opts.AuthHeader != "" {
		req.Header.Set("Authorization", w.opts.AuthHeader)
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return err
	}
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return fmt.Errorf("%w: webhook answered %s", errPermanent, resp.Status)
}
