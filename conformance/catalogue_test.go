package conformance

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestParseFile_Defaults(t *testing.T) {
	t.Parallel()
	data := []byte(`[
		{"group": "g1", "tests": [
			{"name": "defaults", "msgs": [{"type": "send", "payload": "C0 00"}, {"type": "recv", "payload": "D0 00", "comment": "ping"}]},
			{"name": "overrides", "ver": 5, "connect": false, "expect_disconnect": false, "msgs": []}
		]},
		{"group": "g2", "ver": 3, "connect": false, "expect_disconnect": false, "tests": [
			{"name": "inherits", "msgs": []},
			{"name": "back", "ver": 4, "connect": true, "expect_disconnect": true, "msgs": []}
		]},
		{"group": "off", "disable": true, "tests": [{"name": "skipped", "msgs": []}]},
		{"group": "other", "tests": [{"name": "kinds", "msgs": [
			{"type": "subscribe", "topic": "a/#", "qos": 1},
			{"type": "unsubscribe", "topic": "a/#"},
			{"type": "external_publish", "topic": "a/b", "qos": 2, "payload": "hi there", "retain": true}
		]}]}
	]`)
	cases, err := ParseFile("X.json", data)
	if err != nil {
		t.Fatal(err)
	}
	type flags struct {
		group, name               string
		ver                       int
		connect, expectDisconnect bool
	}
	want := []flags{
		{"g1", "defaults", 4, true, true},
		{"g1", "overrides", 5, false, false},
		{"g2", "inherits", 3, false, false},
		{"g2", "back", 4, true, true},
		{"other", "kinds", 4, true, true},
	}
	if len(cases) != len(want) {
		t.Fatalf("ParseFile() = %d cases, want %d", len(cases), len(want))
	}
	for i, w := range want {
		c := cases[i]
		got := flags{c.Group, c.Name, c.Ver, c.Connect, c.ExpectDisconnect}
		if got != w || c.File != "X.json" {
			t.Errorf("case %d = %+v (file %q), want %+v", i, got, c.File, w)
		}
	}
	if got := cases[0].ClientID(); got != "g1 defaults" {
		t.Errorf("ClientID() = %q, want %q", got, "g1 defaults")
	}
	st := cases[0].Steps
	if len(st) != 2 || st[0].Kind != StepSend || !bytes.Equal(st[0].Data, []byte{0xC0, 0}) ||
		st[1].Kind != StepRecv || !bytes.Equal(st[1].Data, []byte{0xD0, 0}) || st[1].Comment != "ping" {
		t.Errorf("steps of %q = %+v", cases[0].Name, st)
	}
	k := cases[4].Steps
	if len(k) != 3 || k[0].Kind != StepSubscribe || k[0].Topic != "a/#" || k[0].QoS != 1 ||
		k[1].Kind != StepUnsubscribe ||
		k[2].Kind != StepExternalPublish || k[2].QoS != 2 || !k[2].Retain || string(k[2].Payload) != "hi there" {
		t.Errorf("steps of %q = %+v", cases[4].Name, k)
	}
}

func TestParseFile_Errors(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"NotJSON":     `{`,
		"BadPayload":  `[{"group": "g", "tests": [{"name": "n", "msgs": [{"type": "send", "payload": "zz"}]}]}]`,
		"UnknownType": `[{"group": "g", "tests": [{"name": "n", "msgs": [{"type": "publish"}]}]}]`,
		"BadQoS":      `[{"group": "g", "tests": [{"name": "n", "msgs": [{"type": "subscribe", "topic": "t", "qos": 3}]}]}]`,
	} {
		if _, err := ParseFile(name, []byte(data)); err == nil {
			t.Errorf("ParseFile(%s) succeeded, want an error", name)
		}
	}
}

// TestLoadDir_Catalogue checks the real catalogue: every payload parses
// and the case count is the one its README states.
func TestLoadDir_Catalogue(t *testing.T) {
	t.Parallel()
	dir := os.Getenv("MQIM_CONFORMANCE_DATA")
	if dir == "" {
		dir = filepath.Join("testdata", "mosquitto")
	}
	cases, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 1826 {
		t.Errorf("LoadDir() = %d cases, want 1826", len(cases))
	}
	for i, c := range cases {
		if c.Index != i {
			t.Fatalf("case %d has Index %d", i, c.Index)
		}
	}
	if cases[0].File != "AUTH.json" || cases[len(cases)-1].File != "ZZ-broker-check.json" {
		t.Errorf("catalogue order: first %s, last %s", cases[0], cases[len(cases)-1])
	}
}
