package rest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
	"github.com/mqim/mqim/storage"
)

// Ensure GET /backup streams the store's backup to the master key only,
// and that a backup failing part way gives a body that does not verify.
func TestBackup_Route(t *testing.T) {
	var ts *testServer
	ts = newTestServer(t, func(o *rest.Options) {
		o.Backup = func(ctx context.Context, w io.Writer) error { return ts.db.Backup(ctx, w, []byte("meta")) }
	})
	ts.seed(chat.FriendConv("alice", "bob"), "alice", "hello", time.Now().UnixMilli())

	r := ts.callWith("GET", "/backup", nil, masterSigned()).ok(200)
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	meta, err := storage.VerifyBackup(bytes.NewReader(r.Body))
	if err != nil || string(meta) != "meta" {
		t.Fatalf("VerifyBackup(body of %d bytes) = %q, %v", len(r.Body), meta, err)
	}
	ts.callWith("GET", "/backup", nil, map[string]string{"X-ML-AppId": testApp, "X-ML-MasterKey": testMaster}).ok(200)

	ts.callWith("GET", "/backup", nil, signed()).expectError(403, chat.CodeUnauthorized)
	ts.callWith("POST", "/ctx/alice/attributes", map[string]any{"k": 1}, masterSigned()).ok(201)
	now := ts.now()
	ts.callWith("GET", "/backup", nil, bearer(mint(t, chat.User("alice"), now, now+60_000))).expectError(403, chat.CodeUnauthorized)
	ts.callWith("GET", "/backup", nil, nil).expectError(401, chat.CodeUnauthorized)
}

// Ensure a server without Options.Backup answers 404, and a failing backup
// ends the body without the end marker.
func TestBackup_RouteFailures(t *testing.T) {
	newTestServer(t).callWith("GET", "/backup", nil, masterSigned()).expectError(404, chat.CodeNotFound)

	ts := newTestServer(t, func(o *rest.Options) {
		o.Backup = func(ctx context.Context, w io.Writer) error {
			_, _ = w.Write([]byte("MQIMBKUP\x01\x00\x00\x00\x00\x00\x00\x00"))
			return errors.New("disk on fire")
		}
	})
	r := ts.callWith("GET", "/backup", nil, masterSigned())
	if _, err := storage.VerifyBackup(bytes.NewReader(r.Body)); err == nil {
		t.Fatalf("a failed backup's body (%q) verifies", r.Body)
	}
}
