package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Ensure the README's quick start works as written against the real
// binary: the block after <!-- quickstart --> runs with bash, with only the
// data directory and the address replaced by the test's.
func TestMain_READMEQuickStart(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "md5sum"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install curl jq", err != nil)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- quickstart -->\n```sh\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README has no quick start block after <!-- quickstart -->")
	}
	work := t.TempDir()
	p := startMQIM(t, filepath.Join(work, "data"))
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", p.HTTP)

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work // the script reads data/credentials.json
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quick start failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"201",
		`"from":"alice","to":"bob","ns":"` + p.AppID + `"`,
		`"friends":["bob"]`,
		`[{"id":"alice","online":false`,
		"", // the group id, checked below
		`"owner":"alice","members":["bob"]`,
		`"`,
		"[]",
		`["` + p.HTTP + `/attachments/`, // an upload: mq sends no JSON type with -F
	}
	if len(lines) != len(want) {
		t.Fatalf("quick start printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to contain %q", i+1, lines[i], w)
		}
	}
	if gid := lines[4]; len(gid) != 32 || !strings.Contains(lines[5], gid) {
		t.Errorf("group id line %q, detail %q", gid, lines[5])
	}
}

// Ensure the README's token flow works as written against the real binary
// with curl, jq and mosquitto_pub: the block after <!-- tokenflow --> runs
// with bash, with only the data directory and the ports replaced.
func TestMain_READMETokenFlow(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "mosquitto_pub"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install curl jq mosquitto-clients", err != nil)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- tokenflow -->\n```sh\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README has no token flow block after <!-- tokenflow -->")
	}
	work := t.TempDir()
	p := startMQIM(t, filepath.Join(work, "data"))
	host, port, _ := net.SplitHostPort(p.MQTT)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", p.HTTP)
	script = strings.ReplaceAll(script, "-h 127.0.0.1 -p 1883", "-h "+host+" -p "+port)

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("token flow failed: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "Connection error") && !strings.HasPrefix(l, "Error:") {
			lines = append(lines, l) // mosquitto_pub's own complaint before "refused"
		}
	}
	want := []string{`[{"speaker":"alice","content":{"media":0,"body":"hi bob"}`, `{"errorCode":5003,`, "refused"}
	if len(lines) != len(want) {
		t.Fatalf("token flow printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	t.Logf("output:\n%s", out)
}
