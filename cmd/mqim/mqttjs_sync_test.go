package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// Ensure the sync verbs work for a browser-style client, MQTT.js over
// WebSocket against the real binary, with MQTT 3.1.1 and with MQTT 5
// (test/js/sync.mjs): three devices of one user and a peer; a read on one
// device reaches all three and the peer as a receipt, and the conversation
// list agrees; a burst of typing is forwarded once; a recall and an edit
// reach every session of both parties and show in history, which also
// pages with after=<seq>.
func TestMain_MQTTJS_Sync(t *testing.T) {
	jsDir, _ := filepath.Abs("../../test/js")
	_, err := exec.LookPath("node")
	needTool(t, "node", "install Node.js", err != nil)
	_, err = os.Stat(filepath.Join(jsDir, "node_modules", "mqtt"))
	needTool(t, "MQTT.js", "make test-deps", err != nil)

	for _, proto := range []int{4, 5} {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			alice, bob := fmt.Sprintf("alice%d", proto), fmt.Sprintf("bob%d", proto)
			p := startMQIM(t, t.TempDir())
			expect(t, "friends", p.do("POST", "/ctx/"+alice+"/friends/"+bob, nil), 201)

			cmd := exec.Command("node", filepath.Join(jsDir, "sync.mjs"))
			cmd.Env = append(os.Environ(), "WS_URL=ws://"+p.WS+"/mqtt", "APP="+p.AppID, "KEY="+p.Key,
				fmt.Sprintf("PROTO=%d", proto), "ALICE="+alice, "BOB="+bob)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node sync.mjs: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
			}
			obs := parseObservations(t, out)
			if obs.one(t, "done", "") == nil {
				t.Fatalf("script did not finish: %s", out)
			}
			checkSyncObservations(t, obs, alice, bob)
			checkSyncREST(t, p, alice, bob)
		})
	}
}

// observations are sync.mjs's printed lines, by step and device.
type observations struct {
	raw   []byte
	lines []map[string]any
}

func parseObservations(t *testing.T, out []byte) observations {
	t.Helper()
	o := observations{raw: out}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		o.lines = append(o.lines, ev)
	}
	return o
}

// all returns the lines of step from dev ("" for any device).
func (o observations) all(step, dev string) []map[string]any {
	var got []map[string]any
	for _, l := range o.lines {
		if l["step"] == step && (dev == "" || l["dev"] == dev) {
			got = append(got, l)
		}
	}
	return got
}

// one returns the single line of step from dev, failing on more than one;
// nil when there is none.
func (o observations) one(t *testing.T, step, dev string) map[string]any {
	t.Helper()
	got := o.all(step, dev)
	switch len(got) {
	case 0:
		return nil
	case 1:
		return got[0]
	}
	t.Fatalf("%d %s lines for %q, want one:\n%s", len(got), step, dev, o.raw)
	return nil
}

// payload returns the single line's payload, failing when it is missing.
func (o observations) payload(t *testing.T, step, dev string) map[string]any {
	t.Helper()
	l := o.one(t, step, dev)
	p, ok := l["payload"].(map[string]any)
	if !ok {
		t.Fatalf("no %s payload for %s:\n%s", step, dev, o.raw)
	}
	return p
}

var aliceDevs = []string{"alice-1", "alice-2", "alice-3"}

func checkSyncObservations(t *testing.T, o observations, alice, bob string) {
	// bob's three messages reached each of alice's devices, seq 1..3.
	for _, d := range aliceDevs {
		msgs := o.all("message", d)
		if len(msgs) != 3 {
			t.Fatalf("%s got %d messages, want 3:\n%s", d, len(msgs), o.raw)
		}
		for i, m := range msgs {
			if m["seq"] != float64(i+1) || m["from"] != bob || m["body"] != fmt.Sprintf("m%d", i+1) {
				t.Fatalf("%s message %d = %v, want seq %d from %s", d, i, m, i+1, bob)
			}
		}
	}

	// The read on device 1 reaches all three devices; bob gets a receipt.
	for _, d := range aliceDevs {
		if p := o.payload(t, "read", d); !reflect.DeepEqual(p, map[string]any{"kind": "friend", "id": bob, "seq": float64(2)}) {
			t.Fatalf("%s read = %v", d, p)
		}
	}
	r := o.payload(t, "receipt", "bob")
	if ts, _ := r["ts"].(float64); r["kind"] != "friend" || r["id"] != alice || r["seq"] != float64(2) || ts <= 0 || len(r) != 4 {
		t.Fatalf("bob's receipt = %v, want friend/%s seq 2 with a ts", r, alice)
	}

	// Ten typings in a burst: one forwarded to each of alice's devices,
	// none to the typist.
	wantTyping := map[string]any{"kind": "friend", "id": bob, "from": bob}
	for _, d := range aliceDevs {
		l := o.one(t, "typing", d)
		ps, _ := l["payloads"].([]any)
		if l["count"] != float64(1) || len(ps) != 1 || !reflect.DeepEqual(ps[0], wantTyping) {
			t.Fatalf("%s typing = %v, want exactly one %v (burst took %v ms)", d, l, wantTyping, l["burstMs"])
		}
	}
	if l := o.one(t, "typing", "bob"); l["count"] != float64(0) {
		t.Fatalf("the typist got its own typing: %v", l)
	}

	// Recall and edit reach every session of both parties, each naming the
	// conversation from its side.
	var recallTS float64
	for _, d := range append(append([]string{}, aliceDevs...), "bob") {
		peer := bob
		if d == "bob" {
			peer = alice
		}
		p := o.payload(t, "recall", d)
		ts, _ := p["ts"].(float64)
		if p["kind"] != "friend" || p["id"] != peer || p["seq"] != float64(3) || p["by"] != bob || ts <= 0 || len(p) != 5 {
			t.Fatalf("%s recall = %v, want friend/%s seq 3 by %s", d, p, peer, bob)
		}
		if recallTS != 0 && ts != recallTS {
			t.Fatalf("%s recall ts %v, another party's %v", d, ts, recallTS)
		}
		recallTS = ts

		e := o.payload(t, "edit", d)
		edited, _ := e["edited"].(float64)
		if e["kind"] != "friend" || e["id"] != peer || e["seq"] != float64(1) || edited <= 0 || len(e) != 5 ||
			!reflect.DeepEqual(e["content"], map[string]any{"media": float64(0), "body": "edited"}) {
			t.Fatalf("%s edit = %v, want friend/%s seq 1 with body edited", d, e, peer)
		}
		if l := o.one(t, "late", d); l == nil || len(l["events"].([]any)) != 0 {
			t.Fatalf("%s got more events than expected: %v", d, l)
		}
	}
}

// conversation is an entry of GET /ctx/{uid}/conversations.
type conversation struct {
	Kind   string         `json:"kind"`
	ID     string         `json:"id"`
	Seq    uint64         `json:"seq"`
	Read   uint64         `json:"read"`
	Unread uint64         `json:"unread"`
	TS     int64          `json:"ts"`
	Last   map[string]any `json:"last"`
}

func conversations(t *testing.T, p *proc, uid string) []conversation {
	t.Helper()
	r := p.do("GET", "/ctx/"+uid+"/conversations", nil)
	expect(t, "conversations of "+uid, r, 200)
	var cs []conversation
	r.JSON(t, &cs)
	return cs
}

func checkSyncREST(t *testing.T, p *proc, alice, bob string) {
	// alice read up to 2 of 3: one unread, the recalled seq 3 still a
	// message after her cursor (unread = seq - read).
	cs := conversations(t, p, alice)
	if len(cs) != 1 {
		t.Fatalf("%s's conversations = %+v, want one", alice, cs)
	}
	c := cs[0]
	if c.Kind != "friend" || c.ID != bob || c.Seq != 3 || c.Read != 2 || c.Unread != 1 {
		t.Fatalf("%s's conversation = %+v, want friend/%s seq 3 read 2 unread 1", alice, c, bob)
	}
	if c.Last["seq"] != float64(3) || c.Last["speaker"] != bob || c.TS == 0 || c.Last["ts"] != float64(c.TS) {
		t.Fatalf("%s's last message = %v (ts %d), want seq 3 of %s with the list's ts", alice, c.Last, c.TS, bob)
	}
	checkRecalled(t, "the conversation list's last record", c.Last, bob)
	// bob's own messages moved his cursor.
	cs = conversations(t, p, bob)
	if len(cs) != 1 || cs[0].Kind != "friend" || cs[0].ID != alice || cs[0].Seq != 3 || cs[0].Read != 3 || cs[0].Unread != 0 {
		t.Fatalf("%s's conversations = %+v, want friend/%s seq 3 read 3 unread 0", bob, cs, alice)
	}

	// History: seq 3 recalled without content, seq 1 edited.
	path := "/ctx/" + alice + "/friends/" + bob + "/chats"
	r := p.do("GET", path, nil)
	expect(t, "history", r, 200)
	var recs []map[string]any
	r.JSON(t, &recs)
	bySeq := map[float64]map[string]any{}
	for _, rec := range recs {
		seq, _ := rec["seq"].(float64)
		bySeq[seq] = rec
	}
	if len(recs) != 3 || len(bySeq) != 3 {
		t.Fatalf("history = %s, want seqs 1..3", r.Body)
	}
	if rec := bySeq[3]; rec["recalled"] != true || rec["content"] != nil || rec["speaker"] != bob {
		t.Fatalf("seq 3 = %v, want recalled without content", rec)
	}
	if rec := bySeq[1]; !reflect.DeepEqual(rec["content"], map[string]any{"media": float64(0), "body": "edited"}) || rec["edited"] == nil {
		t.Fatalf("seq 1 = %v, want the edited body with edited", rec)
	}
	if rec := bySeq[2]; rec["content"].(map[string]any)["body"] != "m2" || rec["recalled"] != nil || rec["edited"] != nil {
		t.Fatalf("seq 2 = %v, want m2 untouched", rec)
	}
	// The edit list holds the original text.
	r = p.do("GET", path+"/1/edits", nil)
	expect(t, "edits of seq 1", r, 200)
	var edits []map[string]any
	r.JSON(t, &edits)
	if len(edits) != 1 || !reflect.DeepEqual(edits[0]["content"], map[string]any{"media": float64(0), "body": "m1"}) {
		t.Fatalf("edits of seq 1 = %s, want the original m1", r.Body)
	}

	// after=0 and after=1: oldest first, with the recall and the edit
	// showing as in the history without after.
	for _, after := range []int{0, 1} {
		r = p.do("GET", fmt.Sprintf("%s?after=%d", path, after), nil)
		expect(t, "history after", r, 200)
		recs = nil
		r.JSON(t, &recs)
		var seqs []float64
		for _, rec := range recs {
			seq, _ := rec["seq"].(float64)
			seqs = append(seqs, seq)
		}
		want := []float64{1, 2, 3}[after:]
		if !reflect.DeepEqual(seqs, want) {
			t.Fatalf("history after %d = %s, want seqs %v", after, r.Body, want)
		}
		what := fmt.Sprintf("history after %d", after)
		checkRecalled(t, what+", seq 3", recs[len(recs)-1], bob)
		if body := recs[len(recs)-2]["content"].(map[string]any)["body"]; body != "m2" {
			t.Fatalf("%s: seq 2 = %v, want m2", what, recs[len(recs)-2])
		}
		if after == 0 {
			checkEdited(t, what+", seq 1", recs[0])
		}
	}
}

// checkRecalled asserts that rec is bob's recalled seq 3 as
// docs/realtime.md shows it: {"speaker","ts","recalled":true}, no content.
func checkRecalled(t *testing.T, what string, rec map[string]any, speaker string) {
	t.Helper()
	if rec["seq"] != float64(3) || rec["speaker"] != speaker {
		t.Fatalf("%s = %v, want seq 3 of %s", what, rec, speaker)
	}
	if rec["recalled"] != true || rec["content"] != nil {
		t.Errorf("%s = %v, want recalled:true without content", what, rec)
	}
}

// checkEdited asserts that rec is seq 1 with the edited text and edited.
func checkEdited(t *testing.T, what string, rec map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(rec["content"], map[string]any{"media": float64(0), "body": "edited"}) {
		t.Fatalf("%s = %v, want the edited text", what, rec)
	}
	if edited, _ := rec["edited"].(float64); edited <= 0 {
		t.Errorf("%s = %v, want edited:<ts>", what, rec)
	}
}
