package rest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
	"github.com/mqim/mqim/storage"
)

// Names of this file are prefixed sys: the other test files of the package
// have their own helpers.
const (
	sysApp    = "sys-test-app"
	sysKey    = "sys-client-key"
	sysMaster = "sys-master-key"
)

// sysPublisher records the events the Service publishes.
type sysPublisher struct {
	mu  sync.Mutex
	got []string // "event to payload"
}

func (p *sysPublisher) Publish(to chat.Identity, event string, payload []byte, _ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, event+" "+to.String()+" "+string(payload))
}

func (p *sysPublisher) PublishSession(string, chat.Identity, string, []byte) {}

func (p *sysPublisher) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	got := p.got
	p.got = nil
	sort.Strings(got)
	return got
}

// sysPusher records pushes.
type sysPusher struct {
	mu    sync.Mutex
	users []string
}

func (p *sysPusher) Push(_ context.Context, n chat.PushNotification) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users = append(p.users, n.User+":"+n.Alert)
}

type sysEnv struct {
	srv  *rest.Server
	svc  *chat.Service
	pub  *sysPublisher
	push *sysPusher
	now  int64
}

func newSysEnv(t *testing.T, strict bool) *sysEnv {
	t.Helper()
	db, err := storage.Open(storage.Options{Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e := &sysEnv{pub: &sysPublisher{}, push: &sysPusher{}, now: time.Now().UnixMilli()}
	e.svc = chat.NewService(db, chat.Options{AppID: sysApp, MaxBodyLen: 64})
	e.svc.Publisher, e.svc.Pusher = e.pub, e.push
	e.svc.Now = func() time.Time { return time.UnixMilli(e.now) }
	e.srv = rest.New(rest.Options{
		Service: e.svc, StrictAdmin: strict, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Auth: &chat.Authenticator{AppID: sysApp, Tolerance: 15 * time.Minute,
			Keys: []chat.Key{{Value: sysKey, Role: chat.RoleClient}, {Value: sysMaster, Role: chat.RoleMaster}}},
	})
	err = db.Update(context.Background(), func(tx chat.Tx) error {
		for _, u := range []*chat.UserRecord{{ID: "alice"}, {ID: "bob", Installs: []string{"ib"}}} {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		if err := tx.PutPassenger(&chat.PassengerRecord{ID: "visitor"}); err != nil {
			return err
		}
		if err := tx.PutGroup(&chat.Group{ID: "g1", Owner: "alice", Members: []string{"bob"}}); err != nil {
			return err
		}
		return tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"alice", "bob"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Presence.Open(chat.User("alice"), "a1", false)
	e.svc.Presence.Open(chat.Passenger("visitor"), "v1", false)
	return e
}

// post sends POST path with body, signed with key, and returns the status
// and the body.
func (e *sysEnv) post(t *testing.T, path, body, key string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-ML-AppId", sysApp)
	req.Header.Set("X-ML-Request-Sign", chat.Sign(key, time.Now().UnixMilli()))
	res, err := e.srv.App().Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Ensure S1 and S2 deliver sys to the right sessions with a 202 and no
// body, and refuse bad requests with MaxIM errors.
func TestSystem_Routes(t *testing.T) {
	e := newSysEnv(t, false)
	body := `{"content":{"media":0,"body":"hello all!"},"remark":"r","ts":12}`
	sys := `{"content":{"media":0,"body":"hello all!"},"ts":` + jsonInt(e.now) + `,"remark":"r"}`
	tests := []struct {
		path string
		want []string
		push []string
	}{
		{"/system", []string{"sys passenger:visitor " + sys, "sys user:alice " + sys}, nil},
		{"/system/alice", []string{"sys user:alice " + sys}, nil},
		{"/system/bob", []string{"sys user:bob " + sys}, []string{"bob:hello all!"}},
		{"/system/visitor", []string{"sys passenger:visitor " + sys}, nil},
		{"/system/g1?group", []string{"sys user:alice " + sys, "sys user:bob " + sys}, []string{"bob:hello all!"}},
		{"/system/r1?room", []string{"sys user:alice " + sys}, nil},
		{"/system/r1/?room=", []string{"sys user:alice " + sys}, nil},
	}
	for _, tt := range tests {
		status, b := e.post(t, tt.path, body, sysKey)
		if status != 202 || b != "" {
			t.Errorf("POST %s = %d %q, want 202 and no body", tt.path, status, b)
		}
		if got := e.pub.take(); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("POST %s delivered\n%s\nwant\n%s", tt.path, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
		e.push.mu.Lock()
		if strings.Join(e.push.users, ",") != strings.Join(tt.push, ",") {
			t.Errorf("POST %s pushed %v, want %v", tt.path, e.push.users, tt.push)
		}
		e.push.users = nil
		e.push.mu.Unlock()
	}

	for _, tt := range []struct {
		path, body string
		status     int
		code       int
	}{
		{"/system", `{"content":{"media":0}}`, 400, chat.CodeInvalid},
		{"/system", `not json`, 400, chat.CodeInvalid},
		{"/system/bob", `{}`, 400, chat.CodeInvalid},
		{"/system/nobody", body, 404, chat.CodeNotFound},
		{"/system/nogroup?group", body, 404, chat.CodeNotFound},
		{"/system/bob?room", body, 404, chat.CodeNotFound},
		{"/system/g1?group&room", body, 400, chat.CodeInvalid},
		{"/system/bob", `{"content":{"body":"` + strings.Repeat("x", 65) + `"}}`, 400, chat.CodeTooLong},
	} {
		status, b := e.post(t, tt.path, tt.body, sysKey)
		var eb struct {
			ErrorCode int `json:"errorCode"`
		}
		_ = json.Unmarshal([]byte(b), &eb)
		if status != tt.status || eb.ErrorCode != tt.code {
			t.Errorf("POST %s %s = %d %s, want %d/%d", tt.path, tt.body, status, b, tt.status, tt.code)
		}
	}
	if got := e.pub.take(); len(got) != 0 {
		t.Errorf("refused requests delivered %v", got)
	}
}

// Ensure strict-admin mode requires the master key for S1 and S2.
func TestSystem_StrictAdmin(t *testing.T) {
	e := newSysEnv(t, true)
	body := `{"content":{"body":"x"}}`
	for _, path := range []string{"/system", "/system/alice"} {
		if status, _ := e.post(t, path, body, sysKey); status != 403 {
			t.Errorf("client key POST %s = %d, want 403", path, status)
		}
		if status, _ := e.post(t, path, body, sysMaster); status != 202 {
			t.Errorf("master key POST %s = %d, want 202", path, status)
		}
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
