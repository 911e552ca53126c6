package main

import (
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Ensure the docs/protocol.md §5 example works as written with the Debian
// mosquitto-clients against the real binary (only the ports differ: the
// test binds free ones).
func TestMain_ProtocolExampleWithMosquittoClients(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "mosquitto_pub", "curl", "md5sum", "bash", "stdbuf"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install mosquitto-clients curl coreutils", err != nil)
	}
	p := startMQIM(t, t.TempDir())
	mqttHost, mqttPort, _ := net.SplitHostPort(p.MQTT)
	env := []string{"APP=" + p.AppID, "KEY=" + p.Key, "HOST=" + mqttHost, "PORT=" + mqttPort, "BASE=" + p.HTTP}
	prelude := `TS=$(date +%s%3N); SIGN="$(printf '%s' "$TS$KEY" | md5sum | cut -d' ' -f1),$TS"; `

	// Bob subscribes to his inbox; -d prints the SUBACK so we know when the
	// subscription is in place.
	sub := exec.Command("bash", "-c", prelude+
		`exec stdbuf -oL mosquitto_sub -d -h "$HOST" -p "$PORT" -q 1 -i bob-phone -u bob -P "$SIGN" -t 'users/bob/#' -v`)
	sub.Env = append(sub.Environ(), env...)
	lines := streamLines(t, sub)
	var transcript []string
	waitLine := func(what string, match func(string) bool) string {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("mosquitto_sub ended before %s; transcript:\n%s", what, strings.Join(transcript, "\n"))
				}
				transcript = append(transcript, "sub> "+l)
				if match(l) {
					return l
				}
			case <-deadline:
				t.Fatalf("no %s within 15s; transcript:\n%s", what, strings.Join(transcript, "\n"))
			}
		}
	}
	waitLine("SUBACK", func(l string) bool { return strings.Contains(l, "SUBACK") })

	run := func(script string) string {
		t.Helper()
		cmd := exec.Command("bash", "-c", prelude+script)
		cmd.Env = append(cmd.Environ(), env...)
		b, err := cmd.CombinedOutput()
		transcript = append(transcript, "$ "+script, string(b))
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, b)
		}
		return string(b)
	}
	run(`curl -s -X POST -H "X-ML-AppId: $APP" -H "X-ML-Request-Sign: $SIGN" $BASE/ctx/alice/friends/bob`)
	run(`mosquitto_pub -h "$HOST" -p "$PORT" -q 1 -i alice-phone -u alice -P "$SIGN" -t say/friend/bob ` +
		`-m '{"content":{"media":0,"body":"hi bob"},"ack":1}'`)

	line := waitLine("users/bob/message", func(l string) bool { return strings.HasPrefix(l, "users/bob/message ") })
	var msg struct {
		From struct {
			ID   string
			Type int
		}
		To struct {
			ID   string
			Type int
		}
		Content struct {
			Media int
			Body  string
		}
		TS int64
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "users/bob/message ")), &msg); err != nil {
		t.Fatalf("message payload: %v (%s)", err, line)
	}
	if msg.From.ID != "alice" || msg.From.Type != 0 || msg.To.ID != "bob" || msg.To.Type != 0 ||
		msg.Content.Body != "hi bob" || msg.Content.Media != 0 || msg.TS == 0 {
		t.Fatalf("message = %s", line)
	}

	hist := run(`curl -s -H "X-ML-AppId: $APP" -H "X-ML-Request-Sign: $SIGN" $BASE/ctx/bob/friends/alice/chats`)
	var records []struct {
		Speaker string
		Content struct{ Body string }
		TS      int64
	}
	if err := json.Unmarshal([]byte(hist), &records); err != nil || len(records) != 1 ||
		records[0].Speaker != "alice" || records[0].Content.Body != "hi bob" || records[0].TS != msg.TS {
		t.Fatalf("history = %s (%v)", hist, err)
	}
	t.Logf("transcript:\n%s", strings.Join(transcript, "\n"))
}
