package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ensure the real MaxIM JS SDK (maxleap-im 3.0.17 from npm, its files
// untouched; test/js/sdk.cjs redirects its hard-coded hosts to the server)
// logs in, exchanges friend messages both ways with a socket.io client,
// reaches REST with its signature headers, logs a passenger in, and on a
// login signed with a wrong key gets 5003 and stops: at most 2 handshakes
// in the 10 s the script waits.
func TestMain_MaxIMSDK(t *testing.T) {
	jsDir, _ := filepath.Abs("../../test/js")
	_, err := os.Stat(filepath.Join(jsDir, "node_modules", "maxleap-im"))
	needTool(t, "maxleap-im", "make test-deps", err != nil)
	p := startMQIM(t, t.TempDir())
	expect(t, "friends", p.do("POST", "/ctx/alice/friends/bob", nil), 201)
	evs := runSIO(t, p, "sdk.cjs")
	one := func(who, event string) map[string]any {
		t.Helper()
		got := find(evs, who, event)
		if len(got) != 1 {
			t.Fatalf("%s %s: %d events %v, want 1; all: %s", who, event, len(got), got, dump(evs))
		}
		return got[0]
	}
	for _, who := range []string{"alice", "bob", "passenger"} {
		if l := one(who, "login"); l["success"] != true {
			t.Fatalf("%s login = %v", who, l)
		}
	}
	if l := one("passenger", "login"); l["id"] != "p1" {
		t.Fatalf("passenger login = %v, want id p1", l)
	}
	m := one("bob", "message")
	if m["content"].(map[string]any)["body"] != "hi bob from the sdk" || m["from"].(map[string]any)["id"] != "alice" {
		t.Fatalf("bob's message = %v", m)
	}
	m = one("alice", "message")
	if m["content"].(map[string]any)["body"] != "hi alice from bob" || m["from"].(map[string]any)["id"] != "bob" {
		t.Fatalf("alice's message = %v", m)
	}
	if f, _ := one("alice", "friends")["value"].([]any); len(f) != 1 || f[0] != "bob" {
		t.Fatalf("alice's friends through the SDK's REST = %v, want [bob]", f)
	}
	if l := one("mallory", "login"); l["success"] != false || l["error"] != float64(5003) {
		t.Fatalf("wrong-key login = %v, want success false, error 5003", l)
	}
	hs := one("script", "handshakes")
	if n, _ := hs["mallory"].(float64); n < 1 || n > 2 {
		t.Fatalf("wrong-key handshakes in 10 s = %v, want 1 or 2", hs["mallory"])
	}
	t.Logf("handshakes per client: %v", hs)
}

// Ensure the SDK reconnects by itself after a server restart (same ports,
// same data directory) and receives a message sent after it.
func TestMain_MaxIMSDKRestart(t *testing.T) {
	jsDir, _ := filepath.Abs("../../test/js")
	_, err := exec.LookPath("node")
	needTool(t, "node", "install Node.js", err != nil)
	_, err = os.Stat(filepath.Join(jsDir, "node_modules", "maxleap-im"))
	needTool(t, "maxleap-im", "make test-deps", err != nil)
	dir := t.TempDir()
	p := startMQIM(t, dir)
	expect(t, "friends", p.do("POST", "/ctx/alice/friends/bob", nil), 201)
	ports := []string{"MQIM_HTTP_ADDR=" + strings.TrimPrefix(p.HTTP, "http://"), "MQIM_MQTT_ADDR=" + p.MQTT, "MQIM_WS_ADDR=" + p.WS}

	// The script bounds its own waits; the context only guards against a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(jsDir, "sdk.cjs"))
	cmd.Env = append(os.Environ(), "MODE=restart", "BASE="+p.HTTP, "APP="+p.AppID, "KEY="+p.Key)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var evs []sioEvent
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var ev sioEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		evs = append(evs, ev)
		if ev.Who == "script" && ev.Event == "restart-me" {
			p.stop()
			p = startMQIM(t, dir, ports...)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node sdk.cjs: %v\nevents: %s\nstderr: %s", err, dump(evs), stderr.String())
	}
	logins := find(evs, "alice", "login")
	if len(logins) != 2 || logins[0]["success"] != true || logins[1]["success"] != true {
		t.Fatalf("alice's logins = %v, want 2 successful (before and after the restart); all: %s", logins, dump(evs))
	}
	msgs := find(evs, "alice", "message")
	if len(msgs) != 1 || msgs[0]["content"].(map[string]any)["body"] != "after the restart" {
		t.Fatalf("alice's messages = %v; all: %s", msgs, dump(evs))
	}
	t.Logf("handshakes per client: %v", find(evs, "script", "handshakes"))
}
