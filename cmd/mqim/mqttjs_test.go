package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Ensure a browser-style client works: MQTT.js over WebSocket (MQTT 5 with
// the auth JSON password, and 3.1.1 with a signature) against the real
// binary. test/js holds the script; `npm ci --prefix test/js` installs
// MQTT.js (.ci/run does it).
func TestMain_MQTTJS(t *testing.T) {
	jsDir, _ := filepath.Abs("../../test/js")
	_, err := exec.LookPath("node")
	needTool(t, "node", "install Node.js", err != nil)
	_, err = os.Stat(filepath.Join(jsDir, "node_modules", "mqtt"))
	needTool(t, "MQTT.js", "make test-deps", err != nil)
	p := startMQIM(t, t.TempDir())
	expect(t, "friends", p.do("POST", "/ctx/alice/friends/bob", nil), 201)

	cmd := exec.Command("node", filepath.Join(jsDir, "say.mjs"))
	cmd.Env = append(os.Environ(), "WS_URL=ws://"+p.WS+"/mqtt", "APP="+p.AppID, "KEY="+p.Key)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node say.mjs: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	events := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		name, _ := ev["event"].(string)
		events[name] = ev
	}
	msg, _ := events["bob.message"]["payload"].(map[string]any)
	from, _ := msg["from"].(map[string]any)
	content, _ := msg["content"].(map[string]any)
	if from["id"] != "alice" || from["type"] != float64(0) || content["body"] != "hi bob" {
		t.Fatalf("bob's message = %v", events["bob.message"])
	}
	ack, _ := events["alice.ack"]["payload"].(map[string]any)
	if ack["ack"] != float64(7) || ack["ts"] != msg["ts"] {
		t.Fatalf("alice's ack = %v, want ack 7 with the message ts %v", ack, msg["ts"])
	}
	if nf := events["nonfriend"]; nf["refused"] != true || nf["code"] != float64(0x87) {
		t.Fatalf("non-friend publish = %v, want refused with 0x87", nf)
	}
	if events["done"] == nil {
		t.Fatalf("script did not finish: %s", out)
	}
}
