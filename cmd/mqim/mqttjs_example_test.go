package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testwait"
)

// Ensure the MQTT.js example of docs/realtime.md (the block after
// <!-- mqttjs-example -->) works as written with Node.js against the real
// binary, and sends its message once: alice's "hi bob" is acknowledged
// (PUBACK) and in bob's history; alice is then kicked, the example
// reconnects (a second "connected") and receives a system message on its
// new session, and bob's history still holds one message from alice. Only
// the app id, the key and the address are the test's.
func TestMain_MQTTJSExample(t *testing.T) {
	jsDir, _ := filepath.Abs("../../test/js")
	_, err := exec.LookPath("node")
	needTool(t, "node", "install Node.js", err != nil)
	_, err = os.Stat(filepath.Join(jsDir, "node_modules", "mqtt"))
	needTool(t, "MQTT.js", "make test-deps", err != nil)
	doc, err := os.ReadFile("../../docs/realtime.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "<!-- mqttjs-example -->\n```js\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("docs/realtime.md has no block after <!-- mqttjs-example -->")
	}

	p := startMQIM(t, t.TempDir())
	expect(t, "friends", p.do("POST", "/ctx/alice/friends/bob", nil), 201)
	script = strings.NewReplacer(`"<app id>"`, `"`+p.AppID+`"`, `"<client key>"`, `"`+p.Key+`"`,
		"ws://127.0.0.1:8083/mqtt", "ws://"+p.WS+"/mqtt").Replace(script)
	// The script imports mqtt and blueimp-md5: run it next to test/js's
	// node_modules.
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(jsDir, "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "example.mjs"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	node := exec.Command("node", filepath.Join(dir, "example.mjs"))
	node.Dir = dir
	lines := streamLines(t, node)

	fromAlice := func() int {
		var recs []struct {
			Speaker string
			Content struct{ Body string }
		}
		r := p.do("GET", "/ctx/bob/friends/alice/chats", nil)
		expect(t, "history", r, 200)
		if err := json.Unmarshal(r.Body, &recs); err != nil {
			t.Fatalf("history %s: %v", r.Body, err)
		}
		n := 0
		for _, rec := range recs {
			if rec.Speaker == "alice" {
				if rec.Content.Body != "hi bob" {
					t.Fatalf("alice said %q, want \"hi bob\"", rec.Content.Body)
				}
				n++
			}
		}
		return n
	}

	waitLine(t, lines, "the first connect", func(l string) bool { return l == "connected" })
	// The PUBACK, before the kick: a QoS 1 publish still unacknowledged
	// when the connection drops is sent again after the reconnect (MQTT's
	// at-least-once), which is not what this test is about.
	waitLine(t, lines, "the PUBACK of hi bob", func(l string) bool { return l == "stored: hi bob" })
	if n := fromAlice(); n != 1 {
		t.Fatalf("bob's history holds %d messages from alice after the first connect, want 1", n)
	}

	r := p.doWith("POST", "/ctx/alice/kick", nil, p.master())
	expect(t, "kick", r, 200)
	waitLine(t, lines, "the reconnect after the kick", func(l string) bool { return l == "connected" })
	// A system message reaches the new session once it has subscribed,
	// which the connect handler does in the same turn as anything else it
	// would publish: by the time the example prints it, a publish from the
	// reconnect would have been stored.
	// System messages are not queued: send one on each poll until the
	// example prints one.
	testwait.Until(t, "a system message on the new session", 30*time.Second, func() bool {
		expect(t, "system", p.doWith("POST", "/system/alice", `{"content":{"media":0,"body":"welcome back"}}`, p.master()), 202)
		for {
			select {
			case l := <-lines:
				if l == "system: welcome back" {
					return true
				}
			default:
				return false
			}
		}
	})
	if n := fromAlice(); n != 1 {
		t.Fatalf("bob's history holds %d messages from alice after a reconnect, want 1 (the example sent again on connect)", n)
	}
}
