package hooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/rest"
)

// syncEnv is env plus the REST API on the same Service, served on a real
// port, for the tests of history sync, conversations and read cursors.
type syncEnv struct {
	*env
	base string
}

// newSyncEnv starts both with the say rate limit off.
func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	e := newEnv(t, func(o *hooks.Options) { o.RateLimit = -1 })
	srv := rest.New(rest.Options{
		Service: e.svc,
		Auth: &chat.Authenticator{AppID: testApp, Tolerance: 15 * time.Minute,
			Keys: []chat.Key{{Value: testKey, Role: chat.RoleClient}, {Value: testMaster, Role: chat.RoleMaster}}},
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &syncEnv{env: e, base: "http://" + srv.Addr().String()}
}

// call makes a signed REST call and returns the status and body.
func (e *syncEnv) call(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-ML-AppId", testApp)
	req.Header.Set("X-ML-Request-Sign", sign())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// get makes a GET that must answer 200 and decodes its body into v.
func (e *syncEnv) get(t *testing.T, path string, v any) {
	t.Helper()
	status, b := e.call(t, "GET", path, nil)
	if status != 200 {
		t.Fatalf("GET %s = %d %s", path, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v (%s)", path, err, b)
	}
}

// histRecord is a history record as REST returns it.
type histRecord struct {
	Speaker string       `json:"speaker"`
	Content chat.Content `json:"content"`
	TS      int64        `json:"ts"`
	Seq     uint64       `json:"seq"`
	ID      string       `json:"id"`
}
