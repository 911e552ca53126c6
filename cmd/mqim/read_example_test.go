package main

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Ensure the read-state example of docs/realtime.md (the block after
// <!-- read-example -->) works as written with mosquitto-clients, curl and
// jq against the real binary: its output is the "# {...}" lines of the
// block, and alice's tablet and bob's phone get the read and receipt events
// it names. Only the addresses are the test's.
func TestMain_ReadExampleWithMosquittoClients(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "mosquitto_pub", "curl", "jq", "md5sum", "bash", "stdbuf"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install mosquitto-clients curl jq coreutils", err != nil)
	}
	script := realtimeExample(t, "read-example")
	var want []string
	for _, l := range strings.Split(script, "\n") {
		if j, ok := strings.CutPrefix(l, "# {"); ok {
			want = append(want, "{"+j)
		}
	}

	p := startMQIM(t, t.TempDir())
	host, port, _ := net.SplitHostPort(p.MQTT)
	env := []string{"APP=" + p.AppID, "KEY=" + p.Key}
	prelude := `TS=$(date +%s%3N); SIGN="$(printf '%s' "$TS$KEY" | md5sum | cut -d' ' -f1),$TS"; `

	// watch runs mosquitto_sub as user on topic and returns its lines once
	// the SUBACK is in.
	watch := func(user, client, topic string) <-chan string {
		sub := exec.Command("bash", "-c", prelude+`exec stdbuf -oL mosquitto_sub -d -h `+host+` -p `+port+
			` -q 1 -i `+client+` -u `+user+` -P "$SIGN" -t '`+topic+`' -v`)
		sub.Env = append(sub.Environ(), env...)
		lines := streamLines(t, sub)
		waitLine(t, lines, client+" SUBACK", func(l string) bool { return strings.Contains(l, "SUBACK") })
		return lines
	}
	tablet := watch("alice", "alice-tablet", "users/alice/read")
	bob := watch("bob", "bob-tablet", "users/bob/receipt")

	out := runExample(t, p, script)
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("example printed:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	waitLine(t, tablet, "alice's read event", func(l string) bool {
		return l == `users/alice/read {"kind":"friend","id":"bob","seq":2}`
	})
	waitLine(t, bob, "bob's receipt", func(l string) bool {
		return strings.HasPrefix(l, `users/bob/receipt {"kind":"friend","id":"alice","seq":2,"ts":`)
	})
}

// waitLine reads lines until match; the bound only keeps a broken server
// from hanging the test.
func waitLine(t *testing.T, lines <-chan string, what string, match func(string) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("mosquitto_sub ended before %s; saw:\n%s", what, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if match(l) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s within 30s; saw:\n%s", what, strings.Join(seen, "\n"))
		}
	}
}
