package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Ensure the real MaxIM JS SDK (maxleap-im 3.0.17 from npm, its files
// untouched; test/js/sdk.cjs redirects its hard-coded hosts to the server)
// logs in, exchanges friend messages both ways with a socket.io client,
// reaches REST with its signature headers, logs a passenger in, and on a
// login signed with a wrong key gets 5003 and stops: at most 2 handshakes
// in the 5 s the script waits.
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
		t.Fatalf("wrong-key handshakes in 5 s = %v, want 1 or 2", hs["mallory"])
	}
	t.Logf("handshakes per client: %v", hs)
}
