package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
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

// Ensure persistent MQTT sessions live in PostgreSQL: a mosquitto_sub
// session (clean session false) gets the events queued while it was away
// once, in seq order, after a restart of the binary on the same database
// and a new, empty data dir (nothing of the session is kept locally).
func TestMain_PostgresPersistentSession(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "stdbuf"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install mosquitto-clients coreutils", err != nil)
	}
	url := pgtest.URL(t)
	env := []string{"MQIM_STORAGE_DRIVER=postgres", "MQIM_POSTGRES_URL=" + url}
	dir := t.TempDir()
	p := startMQIM(t, dir, env...)
	expect(t, "friends", p.do("POST", "/ctx/alice/friends/dave", nil), 201)
	sub := startMosquittoSub(t, p, "dave", "dave-tab")
	sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
	sub.stop()
	testwait.Until(t, "dave offline", 10*time.Second, func() bool { return sessionsOf(p, "dave") == 0 })
	const queued = 4
	sayToDave(t, p, 1, queued)
	p.stop()

	// Another node: same database and app credentials, its own data dir.
	other := t.TempDir()
	if err := os.CopyFS(other, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	p = startMQIM(t, other, env...)
	sub = startMosquittoSub(t, p, "dave", "dave-tab")
	for i := 1; i <= queued; i++ {
		seq, body := sub.message(t)
		if seq != uint64(i) || body != fmt.Sprintf("m%d", i) {
			t.Fatalf("event %d: seq %d body %q; transcript:\n%s", i, seq, body, strings.Join(sub.transcript, "\n"))
		}
	}
	sayToDave(t, p, queued+1, 1)
	if seq, body := sub.message(t); seq != queued+1 || body != fmt.Sprintf("m%d", queued+1) {
		t.Fatalf("after the queue: seq %d body %q; transcript:\n%s", seq, body, strings.Join(sub.transcript, "\n"))
	}
}

// Ensure a wrong storage configuration stops the binary with a message
// naming the problem: an unknown driver, postgres without a URL, a
// database that cannot be reached.
func TestMain_StorageConfigErrors(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"MQIM_STORAGE_DRIVER=mysql"}, "storage.driver"},
		{[]string{"MQIM_STORAGE_DRIVER=postgres"}, "storage.postgres_url"},
		{[]string{"MQIM_STORAGE_DRIVER=postgres", "MQIM_POSTGRES_URL=postgres://mqim@127.0.0.1:1/mqim?connect_timeout=2"}, "open store"},
	} {
		cmd := exec.Command(binPath)
		cmd.Env = append(os.Environ(), append([]string{"MQIM_DATA_DIR=" + t.TempDir(),
			"MQIM_HTTP_ADDR=127.0.0.1:0", "MQIM_MQTT_ADDR=127.0.0.1:0", "MQIM_WS_ADDR=127.0.0.1:0"}, c.env...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "panic") {
			t.Errorf("%v: %v, output %s; want an error naming %s", c.env, err, out, c.want)
		}
	}
}
