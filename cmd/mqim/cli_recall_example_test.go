package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// Ensure the edit and recall example of docs/realtime.md (the block after
// <!-- recall-example -->) works as written with mosquitto-clients and
// curl against the real binary; only the addresses are the test's.
func TestMain_RecallEditExampleWithMosquittoClients(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "mosquitto_pub", "curl", "md5sum", "bash"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install mosquitto-clients curl coreutils", err != nil)
	}
	script := realtimeExample(t, "recall-example")
	p := startMQIM(t, t.TempDir())
	out := runExample(t, p, script)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 8 {
		t.Fatalf("example printed %d lines, want 8:\n%s", len(lines), out)
	}
	// Lines 2-5 are the four events, in the order the queue of bob's
	// session replays them (not necessarily the order they were sent).
	events := map[string][]string{}
	for _, l := range lines[1:5] {
		topic, payload, _ := strings.Cut(l, " ")
		events[topic] = append(events[topic], payload)
	}
	event := func(topic string, i int, v any) {
		t.Helper()
		if len(events[topic]) <= i || json.Unmarshal([]byte(events[topic][i]), v) != nil {
			t.Fatalf("no %s number %d in\n%s", topic, i+1, out)
		}
	}
	var m1, m2 struct {
		Content struct{ Body string }
		TS      int64
		Seq     uint64
	}
	event("users/bob/message", 0, &m1)
	event("users/bob/message", 1, &m2)
	if m1.Seq > m2.Seq {
		m1, m2 = m2, m1
	}
	var ed struct {
		Kind, ID string
		Seq      uint64
		Content  struct {
			Media int
			Body  string
		}
		Edited int64
	}
	event("users/bob/edit", 0, &ed)
	var rc struct {
		Kind, ID, By string
		Seq          uint64
		TS           int64
	}
	event("users/bob/recall", 0, &rc)
	if lines[0] != "201" || m1.Seq != 1 || m1.Content.Body != "hi bbo" || m2.Seq != 2 ||
		ed.Kind != "friend" || ed.ID != "alice" || ed.Seq != 1 || ed.Content.Body != "hi bob" || ed.Edited < m1.TS ||
		rc.Kind != "friend" || rc.ID != "alice" || rc.Seq != 2 || rc.By != "alice" || rc.TS < m2.TS {
		t.Fatalf("events:\n%s", out)
	}
	var hist []map[string]any
	if err := json.Unmarshal([]byte(lines[5]), &hist); err != nil || len(hist) != 2 ||
		hist[0]["content"].(map[string]any)["body"] != "hi bob" || hist[0]["edited"] != float64(ed.Edited) ||
		hist[1]["recalled"] != true || hist[1]["content"] != nil {
		t.Fatalf("history line %q (%v)", lines[5], err)
	}
	var edits []struct {
		Content struct{ Body string }
		TS      int64
	}
	if err := json.Unmarshal([]byte(lines[6]), &edits); err != nil || len(edits) != 1 || edits[0].Content.Body != "hi bbo" || edits[0].TS != ed.Edited {
		t.Fatalf("edits line %q (%v)", lines[6], err)
	}
	if lines[7] != "204" {
		t.Fatalf("REST recall line %q, want 204", lines[7])
	}
}
