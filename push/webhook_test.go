package push

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

const wait = 5 * time.Second

// newWebhook starts a pusher against h on 127.0.0.1 (httptest).
func newWebhook(t *testing.T, h http.HandlerFunc, edit func(*Options)) (*Webhook, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	o := Options{URL: srv.URL, Retries: DefaultRetries, Backoff: time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t))}
	if edit != nil {
		edit(&o)
	}
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, srv
}

// waitFor polls cond until it holds, failing after the bounded wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, wait, cond)
}

// Ensure a notification is POSTed as JSON with the configured
// Authorization header.
func TestWebhook_Delivers(t *testing.T) {
	got := make(chan map[string]any, 1)
	w, _ := newWebhook(t, func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer s3cret" {
			t.Errorf("request %s %v", r.Method, r.Header)
		}
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body %s: %v", b, err)
		}
		got <- m
		rw.WriteHeader(http.StatusNoContent)
	}, func(o *Options) { o.AuthHeader = "Bearer s3cret" })
	badge := 2
	w.Push(context.Background(), chat.PushNotification{
		User: "bob", Installs: []string{"i1"}, Alert: "A: hi", Sound: "default", Badge: &badge,
		Event: "message", Parrot: `{"from":{"id":"a","type":0}}`, Settings: &chat.PushSettings{Prefix: "A: "},
	})
	want := map[string]any{"user": "bob", "installs": []any{"i1"}, "alert": "A: hi", "sound": "default", "badge": 2.0,
		"event": "message", "parrot": `{"from":{"id":"a","type":0}}`}
	select {
	case m := <-got:
		if !reflect.DeepEqual(m, want) {
			t.Errorf("body = %v\nwant   %v", m, want)
		}
	case <-time.After(wait):
		t.Fatal("no request")
	}
	waitFor(t, "sent count", func() bool { return w.Sent() == 1 })
}

// Ensure failures that may pass are retried, and others are not.
func TestWebhook_Retries(t *testing.T) {
	var calls atomic.Int32
	w, _ := newWebhook(t, func(rw http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rw.WriteHeader(http.StatusOK)
	}, nil)
	w.Push(context.Background(), chat.PushNotification{User: "u"})
	waitFor(t, "delivery after two failures", func() bool { return w.Sent() == 1 })
	if calls.Load() != 3 {
		t.Errorf("calls = %d, want 3", calls.Load())
	}

	var bad atomic.Int32
	w2, _ := newWebhook(t, func(rw http.ResponseWriter, r *http.Request) {
		bad.Add(1)
		rw.WriteHeader(http.StatusBadRequest)
	}, nil)
	w2.Push(context.Background(), chat.PushNotification{User: "u"})
	waitFor(t, "the drop", func() bool { return w2.Dropped() == 1 })
	if bad.Load() != 1 {
		t.Errorf("400 tried %d times, want 1", bad.Load())
	}

	var slow atomic.Int32
	w3, _ := newWebhook(t, func(rw http.ResponseWriter, r *http.Request) {
		slow.Add(1)
		_, _ = io.ReadAll(r.Body) // the server notices a closed connection only after the body
		<-r.Context().Done()      // never answers in time
	}, func(o *Options) { o.Timeout = 20 * time.Millisecond; o.Retries = 1 })
	w3.Push(context.Background(), chat.PushNotification{User: "u"})
	waitFor(t, "the drop after timeouts", func() bool { return w3.Dropped() == 1 })
	if slow.Load() != 2 {
		t.Errorf("timed-out request tried %d times, want 2", slow.Load())
	}
}

// Ensure Push never blocks: with the worker stuck and the queue full, new
// notifications are dropped and counted.
func TestWebhook_FullQueueDrops(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var users []string
	w, _ := newWebhook(t, func(rw http.ResponseWriter, r *http.Request) {
		var n chat.PushNotification
		_ = json.NewDecoder(r.Body).Decode(&n)
		mu.Lock()
		users = append(users, n.User)
		mu.Unlock()
		<-release
	}, func(o *Options) { o.QueueSize = 1; o.Workers = 1 })
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	w.Push(context.Background(), chat.PushNotification{User: "first"})
	waitFor(t, "the first request", func() bool { mu.Lock(); defer mu.Unlock(); return len(users) == 1 })
	done := make(chan struct{})
	go func() {
		w.Push(context.Background(), chat.PushNotification{User: "queued"})
		w.Push(context.Background(), chat.PushNotification{User: "dropped"})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Push blocked")
	}
	if w.Dropped() != 1 {
		t.Errorf("dropped = %d, want 1", w.Dropped())
	}
	once.Do(func() { close(release) })
	waitFor(t, "the queued request", func() bool { return w.Sent() == 2 })
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(users, []string{"first", "queued"}) {
		t.Errorf("delivered %v", users)
	}
}

// Ensure Close returns with a request in flight and drops what is queued.
func TestWebhook_Close(t *testing.T) {
	started := make(chan struct{}, 1)
	w, _ := newWebhook(t, func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		started <- struct{}{}
		<-r.Context().Done()
	}, func(o *Options) { o.Workers = 1; o.Timeout = time.Hour })
	w.Push(context.Background(), chat.PushNotification{User: "a"})
	<-started
	w.Push(context.Background(), chat.PushNotification{User: "b"})
	done := make(chan struct{})
	go func() { _ = w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Close blocked")
	}
	if w.Dropped() != 2 {
		t.Errorf("dropped = %d, want 2", w.Dropped())
	}
	w.Push(context.Background(), chat.PushNotification{User: "c"}) // after Close: no panic, no effect
}

func TestNew_BadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "://"} {
		if _, err := New(Options{URL: u}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
