package hooks_test

import (
	"sync"
	"testing"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/internal/testwait"
	"github.com/mqim/mqim/storage"
)

// heldLog records the Held reports, the last count per identity.
type heldLog struct {
	mu   sync.Mutex
	last map[chat.Identity]int
	n    int // reports
}

func (l *heldLog) report(id chat.Identity, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[chat.Identity]int{}
	}
	l.last[id] = n
	l.n++
}

func (l *heldLog) get(id chat.Identity) (last, reports int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[id], l.n
}

func startHeldEnv(t *testing.T, db *storage.DB, l *heldLog) *env {
	t.Helper()
	return startEnv(t, envConfig{
		db: db,
		hooks: func(o *hooks.Options) {
			o.Auth.Keys = []chat.Key{{Value: testKey, Role: chat.RoleClient}}
			o.Sessions = db
			o.Held = l.report
		},
	})
}

// Ensure Options.Held counts an identity's persistent sessions, connected
// or not: a disconnect changes nothing, an MQTT 5 disconnect with expiry 0
// and a clean session replacing one lower it, and the sessions restored at
// start are reported.
func TestSessions_Held(t *testing.T) {
	db := openTestDB(t)
	l := &heldLog{}
	e := startHeldEnv(t, db, l)
	e.users(t, "dave")
	dave := chat.User("dave")
	held := func(want int) {
		t.Helper()
		testwait.Until(t, "dave's held sessions", wait, func() bool { n, _ := l.get(dave); return n == want })
	}
	tab := e.connectV3(t, "dave-tab", "dave", sign(), false, 0, nil)
	tab.Subscribe(t, "users/dave/#")
	held(1)
	expiry := uint32(3600)
	phone, _ := e.connectV5(t, "dave-phone", "dave", sign(), 0, func(c *paho5.Connect) {
		c.CleanStart = false
		c.Properties = &paho5.ConnectProperties{SessionExpiryInterval: &expiry}
	})
	held(2)
	_, before := l.get(dave)
	tab.Close()
	testwait.Until(t, "dave-tab offline", wait, func() bool {
		cl, ok := e.srv.MQTT().Clients.Get("dave-tab")
		return ok && cl.Closed()
	})
	if n, reports := l.get(dave); n != 2 || reports != before {
		t.Fatalf("after an offline-going disconnect: %d held, %d reports (was %d), want 2 and no report", n, reports, before)
	}
	zero := uint32(0)
	_ = phone.c.Disconnect(&paho5.Disconnect{Properties: &paho5.DisconnectProperties{SessionExpiryInterval: &zero}})
	held(1)
	_ = e.srv.Close()

	l2 := &heldLog{}
	e = startHeldEnv(t, db, l2)
	if n, _ := l2.get(dave); n != 1 {
		t.Fatalf("restored: %d held, want 1", n)
	}
	e.connectV3(t, "dave-tab", "dave", sign(), true, 0, nil) // a clean session replaces it
	testwait.Until(t, "the clean session drops the held one", wait, func() bool { n, _ := l2.get(dave); return n == 0 })
}
