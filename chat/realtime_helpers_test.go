package chat_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/storage"
)

// delivery is one event a recordingPublisher was asked to deliver.
type delivery struct {
	To      chat.Identity
	Event   string
	Payload string
	Except  string // Publish: the excepted session
	Session string // PublishSession: the only session
}

// recordingPublisher records what the Service publishes.
type recordingPublisher struct {
	mu  sync.Mutex
	got []delivery
}

func (p *recordingPublisher) Publish(to chat.Identity, event string, payload []byte, except string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, delivery{To: to, Event: event, Payload: string(payload), Except: except})
}

func (p *recordingPublisher) PublishSession(session string, to chat.Identity, event string, payload []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, delivery{To: to, Event: event, Payload: string(payload), Session: session})
}

// take returns and forgets what was recorded.
func (p *recordingPublisher) take() []delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	got := p.got
	p.got = nil
	return got
}

// recordingPusher records push notifications.
type recordingPusher struct {
	mu  sync.Mutex
	got []chat.PushNotification
}

func (p *recordingPusher) Push(_ context.Context, n chat.PushNotification) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, n)
}

func (p *recordingPusher) take() []chat.PushNotification {
	p.mu.Lock()
	defer p.mu.Unlock()
	got := p.got
	p.got = nil
	return got
}

// rtEnv is a Service on a real Badger store in a temp dir, with recording
// publisher and pusher and a fixed clock.
type rtEnv struct {
	svc  *chat.Service
	db   *storage.DB
	pub  *recordingPublisher
	push *recordingPusher
	now  time.Time
}

// rtNow is the fixed clock of the tests: a whole second close to the real
// time, because Badger expires records by real time (TTL).
var rtNow = time.Now().Truncate(time.Second).UnixMilli()

func newRTEnv(t *testing.T) *rtEnv {
	t.Helper()
	db, err := storage.Open(storage.Options{Dir: t.TempDir(), Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e := &rtEnv{db: db, pub: &recordingPublisher{}, push: &recordingPusher{}, now: time.UnixMilli(rtNow)}
	e.svc = chat.NewService(db, chat.Options{AppID: "app", MaxBodyLen: 64})
	e.svc.Publisher = e.pub
	e.svc.Pusher = e.push
	e.svc.Now = func() time.Time { return e.now }
	return e
}

// seed writes directly to the store, past the Service and its membership
// cache: it sets up what the Service has not yet looked at.
func (e *rtEnv) seed(t *testing.T, fn func(tx chat.Tx) error) {
	t.Helper()
	if err := e.db.Update(context.Background(), fn); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

func (e *rtEnv) users(t *testing.T, ids ...string) {
	t.Helper()
	e.seed(t, func(tx chat.Tx) error {
		for _, id := range ids {
			if err := tx.PutUser(&chat.UserRecord{ID: id, Attributes: chat.Attributes{}, Installs: []string{}, Created: rtNow, TS: rtNow}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *rtEnv) friends(t *testing.T, a, b string) {
	t.Helper()
	e.seed(t, func(tx chat.Tx) error {
		return tx.PutFriendship(&chat.Friendship{ID: chat.NewFriendshipID(), From: a, To: b, NS: "app", TS: rtNow})
	})
}

// decode unmarshals a recorded payload.
func decode(t *testing.T, payload string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	return m
}
