package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Ensure the curl examples of docs/attachments.md (the block after
// <!-- attachments-example -->) work as written against the real binary:
// a multipart upload of an image (URL and thumbnail URL) and of a text
// file, their downloads without credentials, the thumbnail and a range.
// Only the address is the test's; the block runs in a directory holding
// the server's data/ as `make run` would.
func TestMain_AttachmentsExample(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "md5sum", "base64", "cmp"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install curl jq coreutils diffutils", err != nil)
	}
	doc, err := os.ReadFile("../../docs/attachments.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "<!-- attachments-example -->\n```sh\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("docs/attachments.md has no block after <!-- attachments-example -->")
	}
	work := t.TempDir()
	p := startMQIM(t, filepath.Join(work, "data"))
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", p.HTTP)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("example failed: %v\n%s", err, out)
	}
	base := regexp.QuoteMeta(p.HTTP) + `/attachments/[0-9a-f]{8}/[0-9a-f]{8}`
	want := []*regexp.Regexp{
		regexp.MustCompile(`^\["(` + base + `)\.png","(` + base + `)\.sm\.png"\]$`),
		regexp.MustCompile(`^` + base + `\.txt$`),
		regexp.MustCompile(`^meeting notes$`),
		regexp.MustCompile(`^identical$`),
		regexp.MustCompile(`^200 image/png$`),
		regexp.MustCompile(`^meeting 206$`),
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("example printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !w.MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i+1, lines[i], w)
		}
	}
	if m := want[0].FindStringSubmatch(lines[0]); m != nil && m[1] != m[2] {
		t.Errorf("thumbnail URL %s is not the image's %s with .sm", m[2], m[1])
	}
}
