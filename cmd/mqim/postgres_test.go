package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/storage/postgres/pgtest"
)

// Ensure the binary runs on PostgreSQL (storage.driver postgres): users
// made over REST, a QoS 1 say over MQTT, its history over REST, all still
// there after a restart; nothing is written to a Badger store, and
// backups point the operator at pg_dump.
func TestMain_Postgres(t *testing.T) {
	url := pgtest.URL(t)
	dir := t.TempDir()
	env := []string{"MQIM_STORAGE_DRIVER=postgres", "MQIM_POSTGRES_URL=" + url}
	p := startMQIM(t, dir, env...)

	expect(t, "friends", p.do("POST", "/ctx/alice/friends/bob", nil), 201)
	c := mustConnectV3(t, p, "alice", "alice-1")
	if c == nil {
		t.FailNow()
	}
	payload, _ := json.Marshal(map[string]any{"content": map[string]any{"media": 0, "body": "hello on postgres"}})
	tok := c.Publish("say/friend/bob", 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	c.Disconnect(100)

	history := func(p *proc) []map[string]any {
		t.Helper()
		r := p.do("GET", "/ctx/bob/friends/alice/chats", nil)
		expect(t, "history", r, 200)
		var recs []map[string]any
		r.JSON(t, &recs)
		return recs
	}
	check := func(what string, recs []map[string]any) {
		t.Helper()
		if len(recs) != 1 || recs[0]["speaker"] != "alice" || recs[0]["seq"] != float64(1) {
			t.Fatalf("%s: history = %v, want alice's message at seq 1", what, recs)
		}
		if content, _ := recs[0]["content"].(map[string]any); content["body"] != "hello on postgres" {
			t.Fatalf("%s: history = %v", what, recs)
		}
	}
	check("after the say", history(p))
	expectError(t, "GET /backup", p.doWith("GET", "/backup", nil, map[string]string{
		"X-ML-AppId": p.AppID, "X-ML-MasterKey": p.Master}), 404, chat.CodeNotFound)
	p.stop()

	if _, err := os.Stat(filepath.Join(dir, "db")); !os.IsNotExist(err) {
		t.Errorf("a Badger store was created in the data dir (%v)", err)
	}
	cmd := exec.Command(binPath, "backup", "--out", filepath.Join(t.TempDir(), "b"))
	cmd.Env = append(os.Environ(), append([]string{"MQIM_DATA_DIR=" + dir}, env...)...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "pg_dump") {
		t.Errorf("mqim backup on postgres = %v: %s; want an error naming pg_dump", err, out)
	}

	q := startMQIM(t, dir, env...)
	check("after a restart", history(q))
}
