package hooks_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/internal/testwait"
	"github.com/mqim/mqim/storage"
)

// countingStore is a chat.SessionStore that counts the ops by kind.
type countingStore struct {
	chat.SessionStore
	mu    sync.Mutex
	count map[chat.SessionOpKind]int
}

func (s *countingStore) SaveSessions(ctx context.Context, ops []chat.SessionOp) error {
	s.mu.Lock()
	if s.count == nil {
		s.count = map[chat.SessionOpKind]int{}
	}
	for _, op := range ops {
		s.count[op.Kind]++
	}
	s.mu.Unlock()
	return s.SessionStore.SaveSessions(ctx, ops)
}

func (s *countingStore) n(k chat.SessionOpKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[k]
}

// startSessionEnv starts a broker with the hooks, persistent sessions kept
// in db through store.
func startSessionEnv(t *testing.T, db *storage.DB, store chat.SessionStore, expiry time.Duration) *env {
	t.Helper()
	return startEnv(t, envConfig{
		db:     db,
		broker: func(o *broker.Options) { o.SessionExpiry = expiry },
		hooks: func(o *hooks.Options) {
			o.Auth.Keys = []chat.Key{{Value: testKey, Role: chat.RoleClient}} // no master key
			o.Sessions = store
		},
	})
}

// storedSessions returns the client id and state of each session stored
// in db.
func storedSessions(t *testing.T, db *storage.DB) (ids, states []string) {
	t.Helper()
	err := db.LoadSessions(context.Background(), func(s chat.StoredSession) error {
		ids = append(ids, s.ClientID)
		states = append(states, string(s.State))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, states
}

// Ensure a persistent session's queue is kept across a shutdown and
// restart, in queue order; that events to a connected session cost no
// store write; and that the restored client id still belongs to its
// identity.
func TestSessions_Restart(t *testing.T) {
	db := openTestDB(t)
	store := &countingStore{SessionStore: db}
	e := startSessionEnv(t, db, store, 0)
	e.users(t, "dave", "eve")

	dave := e.connectV3(t, "dave-tab", "dave", sign(), false, 0, nil)
	dave.Subscribe(t, "users/dave/#")
	for i := range 20 {
		e.svc.Publisher.Publish(chat.User("dave"), "message", []byte(strconv.Itoa(i)), "")
		expect(t, dave, "users/dave/message", strconv.Itoa(i))
	}
	if n := store.n(chat.SessionPutEvent); n != 0 {
		t.Errorf("%d event writes for a connected session, want 0", n)
	}
	// Acknowledged, so nothing is in flight when dave goes.
	testwait.Until(t, "dave's acks", wait, func() bool {
		cl, ok := e.srv.MQTT().Clients.Get("dave-tab")
		return ok && cl.State.Inflight.Len() == 0
	})
	dave.Close()
	testwait.Until(t, "dave offline", wait, func() bool {
		cl, ok := e.srv.MQTT().Clients.Get("dave-tab")
		return ok && cl.Closed()
	})
	const n = 10
	for i := 1; i <= n; i++ {
		e.svc.Publisher.Publish(chat.User("dave"), "message", []byte(strconv.Itoa(i)), "")
	}
	_ = e.srv.Close()
	if got := store.n(chat.SessionPutEvent); got != n {
		t.Errorf("%d event writes for the disconnected session, want %d", got, n)
	}

	e = startSessionEnv(t, db, db, 0)
	e.connectV3(t, "dave-tab", "eve", sign(), false, 5, nil) // not authorized: dave's session
	dave = e.connectV3(t, "dave-tab", "dave", sign(), false, 0, nil)
	for i := 1; i <= n; i++ {
		expect(t, dave, "users/dave/message", strconv.Itoa(i))
	}
	m := e.marker(chat.User("dave"))
	expect(t, dave, "users/dave/marker", m)
}

// Ensure a stored session past mqtt.session_expiry (counted from its
// disconnect, not from the restart) is not restored, and is deleted.
func TestSessions_ExpiredAtRestart(t *testing.T) {
	db := openTestDB(t)
	state := func(id string, ago time.Duration) chat.SessionOp {
		b, _ := json.Marshal(map[string]any{
			"client":       map[string]any{"id": id, "username": []byte("dave"), "protocolVersion": 4},
			"subs":         []map[string]any{{"filter": "users/dave/#", "qos": 1}},
			"disconnected": time.Now().Add(-ago).Unix(),
		})
		return chat.SessionOp{Kind: chat.SessionPut, ClientID: id, Data: b}
	}
	if err := db.SaveSessions(context.Background(), []chat.SessionOp{state("old", 2*time.Hour), state("recent", time.Minute)}); err != nil {
		t.Fatal(err)
	}
	e := startSessionEnv(t, db, db, time.Hour)
	if _, ok := e.srv.MQTT().Clients.Get("old"); ok {
		t.Error("expired session restored")
	}
	if cl, ok := e.srv.MQTT().Clients.Get("recent"); !ok || cl.State.Subscriptions.Len() != 1 {
		t.Fatal("recent session not restored with its subscription")
	}
	_ = e.srv.Close()
	ids, _ := storedSessions(t, db)
	if len(ids) != 1 || ids[0] != "recent" {
		t.Errorf("stored sessions %v, want [recent]", ids)
	}
}

// Ensure an MQTT 5 session that ends with its connection (DISCONNECT with
// session expiry 0) leaves nothing stored, and a persistent one is stored
// with its subscription.
func TestSessions_V5ExpiryZeroAtDisconnect(t *testing.T) {
	db := openTestDB(t)
	e := startSessionEnv(t, db, db, 0)
	e.users(t, "dave")
	expiry := uint32(3600)
	persist := func(c *paho5.Connect) {
		c.CleanStart = false
		c.Properties = &paho5.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	stays, _ := e.connectV5(t, "dave-stays", "dave", sign(), 0, persist)
	stays.Subscribe(t, "users/dave/#")
	ends, _ := e.connectV5(t, "dave-ends", "dave", sign(), 0, persist)
	ends.Subscribe(t, "users/dave/#")
	zero := uint32(0)
	_ = ends.c.Disconnect(&paho5.Disconnect{Properties: &paho5.DisconnectProperties{SessionExpiryInterval: &zero}})
	testwait.Until(t, "dave-ends gone", wait, func() bool {
		_, ok := e.srv.MQTT().Clients.Get("dave-ends")
		return !ok
	})
	_ = e.srv.Close()
	ids, states := storedSessions(t, db)
	if len(ids) != 1 || ids[0] != "dave-stays" || !strings.Contains(states[0], `"filter":"users/dave/#"`) {
		t.Errorf("stored sessions %q %q, want dave-stays with its subscription", ids, states)
	}
}

// Ensure a session connected at shutdown is stored with its subscription,
// so that events published after the restart, before it reconnects, are
// queued for it.
func TestSessions_ConnectedAtShutdown(t *testing.T) {
	db := openTestDB(t)
	e := startSessionEnv(t, db, db, 0)
	e.users(t, "dave")
	dave := e.connectV3(t, "dave-tab", "dave", sign(), false, 0, nil)
	dave.Subscribe(t, "users/dave/#")
	_ = e.srv.Close()

	e = startSessionEnv(t, db, db, 0)
	for i := 1; i <= 3; i++ {
		e.svc.Publisher.Publish(chat.User("dave"), "message", []byte(strconv.Itoa(i)), "")
	}
	dave = e.connectV3(t, "dave-tab", "dave", sign(), false, 0, nil)
	for i := 1; i <= 3; i++ {
		expect(t, dave, "users/dave/message", strconv.Itoa(i))
	}
}

// Ensure erasing a user removes its persistent sessions, the connected
// one (MQTT 5, kicked) and the disconnected one with queued events (MQTT
// 3.1.1), from mochi and from the store by the time EraseUser returns: no
// key naming the user is left but its account record, nothing is restored
// after a restart, and its client ids are free. Another user's session
// stays.
func TestSessions_Erase(t *testing.T) {
	db := openTestDB(t)
	e := startSessionEnv(t, db, db, 0)
	e.users(t, "dave", "eve")
	expiry := uint32(3600)
	persist := func(c *paho5.Connect) {
		c.CleanStart = false
		c.Properties = &paho5.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	tab := e.connectV3(t, "dave-tab", "dave", sign(), false, 0, nil)
	tab.Subscribe(t, "users/dave/#")
	tab.Close()
	testwait.Until(t, "dave-tab offline", wait, func() bool {
		cl, ok := e.srv.MQTT().Clients.Get("dave-tab")
		return ok && cl.Closed()
	})
	phone, _ := e.connectV5(t, "dave-phone", "dave", sign(), 0, persist)
	phone.Subscribe(t, "users/dave/#")
	eve := e.connectV3(t, "eve-tab", "eve", sign(), false, 0, nil)
	eve.Subscribe(t, "users/eve/#")
	for i := 1; i <= 3; i++ {
		e.svc.Publisher.Publish(chat.User("dave"), "message", []byte(strconv.Itoa(i)), "")
		expect(t, phone, "users/dave/message", strconv.Itoa(i))
	}
	queued := func() (n int) {
		err := db.LoadSessions(context.Background(), func(s chat.StoredSession) error {
			if s.ClientID == "dave-tab" {
				n = len(s.Events)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	testwait.Until(t, "dave-tab's queue stored", wait, func() bool { return queued() == 3 })

	if err := e.svc.EraseUser(context.Background(), "dave", true); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dave-tab", "dave-phone"} {
		if _, ok := e.srv.MQTT().Clients.Get(id); ok {
			t.Errorf("%s still in mochi after the erasure", id)
		}
	}
	traces := func() []string {
		t.Helper()
		var keys []string
		err := db.Keys(context.Background(), func(k string) error {
			if strings.Contains(k, "dave") && k != "a\x00user:dave" {
				keys = append(keys, strings.ReplaceAll(k, "\x00", "␀"))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	if keys := traces(); len(keys) > 0 {
		t.Errorf("keys naming dave after the erasure: %q", keys)
	}
	if ids, _ := storedSessions(t, db); len(ids) != 1 || ids[0] != "eve-tab" {
		t.Errorf("stored sessions %q, want eve-tab's only", ids)
	}
	// The phone's disconnect settles after EraseUser returned: still
	// nothing is stored for it, and its client id is free.
	testwait.Until(t, "dave-phone's client id free", wait, func() bool {
		return !e.svc.Presence.Online(chat.User("dave"))
	})
	e.connectV3(t, "dave-phone", "eve", sign(), true, 0, nil).Close()

	_ = e.srv.Close()
	if keys := traces(); len(keys) > 0 {
		t.Errorf("keys naming dave after the shutdown: %q", keys)
	}
	e = startSessionEnv(t, db, db, 0)
	for _, id := range []string{"dave-tab", "dave-phone"} {
		if _, ok := e.srv.MQTT().Clients.Get(id); ok {
			t.Errorf("%s restored after the erasure", id)
		}
	}
	if _, ok := e.srv.MQTT().Clients.Get("eve-tab"); !ok {
		t.Error("eve-tab not restored")
	}
	e.connectV3(t, "dave-tab", "eve", sign(), true, 0, nil).Close() // free, not dave's
}
