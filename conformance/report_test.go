package conformance

import (
	"bytes"
	"strings"
	"testing"
)

func TestReport_Tallies(t *testing.T) {
	t.Parallel()
	a1 := &Case{File: "A.json", Group: "g", Name: "1"}
	a2 := &Case{File: "A.json", Group: "g", Name: "2"}
	b1 := &Case{File: "B.json", Group: "g", Name: "1"}
	b2 := &Case{File: "B.json", Group: "g", Name: "2"}
	rep := &Report{Results: []Result{
		{Case: b1, Outcome: Crash, Class: ClassCrash, Reason: "boom"},
		{Case: a1, Outcome: Pass},
		{Case: a2, Outcome: Fail, Class: ClassMismatch},
		{Case: b2, Outcome: Hang, Class: ClassHang, Reason: "silent"},
	}}
	files, total := rep.Tallies()
	want := []Tally{
		{File: "A.json", Cases: 2, Passed: 1, Failed: 1},
		{File: "B.json", Cases: 2, Hangs: 1, Crashes: 1},
	}
	if len(files) != 2 || files[0] != want[0] || files[1] != want[1] {
		t.Errorf("Tallies() files = %+v, want %+v", files, want)
	}
	if (total != Tally{File: "total", Cases: 4, Passed: 1, Failed: 1, Hangs: 1, Crashes: 1}) {
		t.Errorf("Tallies() total = %+v", total)
	}
	table := rep.Table()
	for _, s := range []string{
		"| file | cases | passed | failed | hangs | crashes |",
		"| A.json | 2 | 1 | 1 | 0 | 0 |",
		"| **total** | **4** | **1** | **1** | **1** | **1** |",
	} {
		if !strings.Contains(table, s) {
			t.Errorf("Table() lacks %q:\n%s", s, table)
		}
	}
	if p := rep.Problems(); len(p) != 2 || p[0].Case != b1 || p[1].Case != b2 {
		t.Errorf("Problems() = %+v", p)
	}
	if c := rep.Classes(); len(c) != 3 || c[0].N != 1 {
		t.Errorf("Classes() = %+v", c)
	}
	var buf bytes.Buffer
	if err := rep.WriteTSV(&buf); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 5 {
		t.Errorf("WriteTSV wrote %d lines, want 5", lines)
	}
}

func TestReport_TableWithoutCrashes(t *testing.T) {
	t.Parallel()
	rep := &Report{Results: []Result{{Case: &Case{File: "A.json"}, Outcome: Pass}}}
	if table := rep.Table(); strings.Contains(table, "crashes") || strings.Contains(table, "not run") {
		t.Errorf("Table() shows empty columns:\n%s", table)
	}
}

func TestReplaceSection(t *testing.T) {
	t.Parallel()
	doc := []byte("intro\n<!-- BEGIN t -->\nold\nlines\n<!-- END t -->\noutro\n")
	got, err := ReplaceSection(doc, "t", "new")
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n<!-- BEGIN t -->\nnew\n<!-- END t -->\noutro\n"; string(got) != want {
		t.Errorf("ReplaceSection() = %q, want %q", got, want)
	}
	if _, err := ReplaceSection(doc, "missing", "x"); err == nil {
		t.Error("ReplaceSection() of a missing section succeeded")
	}
	if _, err := ReplaceSection([]byte("<!-- BEGIN t -->\nno end"), "t", "x"); err == nil {
		t.Error("ReplaceSection() without an end marker succeeded")
	}
}

func TestSummarizeOutput(t *testing.T) {
	t.Parallel()
	out := "conformance: listening on 127.0.0.1:1\npanic: runtime error: index out of range [6] with length 6\n\n" +
		"goroutine 5 [running]:\n" +
		"github.com/mochi-mqtt/server/v2/packets.(*Packet).SubscribeDecode(0x8372edb8cd8, {0x8372ee94d28, 0x6, 0x8})\n" +
		"\t/root/go/pkg/mod/github.com/mochi-mqtt/server/v2@v2.7.9/packets/packets.go:959 +0x3a5\n"
	want := "panic: runtime error: index out of range [6] with length 6 in github.com/mochi-mqtt/server/v2/packets.(*Packet).SubscribeDecode"
	if got := summarizeOutput(out); got != want {
		t.Errorf("summarizeOutput() = %q, want %q", got, want)
	}
	if got := summarizeOutput("a\nlast words\n"); got != "last words" {
		t.Errorf("summarizeOutput() = %q", got)
	}
}
