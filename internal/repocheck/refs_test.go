package repocheck

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// root is the repository root, relative to this package.
const root = "../.."

// repoFiles lists the tracked files (slash-separated, relative to the
// root), or, without git, every file under the root but .git and ignored
// build output.
func repoFiles(t *testing.T) []string {
	t.Helper()
	if out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output(); err == nil && len(out) > 0 {
		var files []string
		for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
			// A file deleted in the work tree but not yet in the index.
			if _, err := os.Stat(filepath.Join(root, f)); err == nil {
				files = append(files, f)
			}
		}
		return files
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "bin", "data":
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// textFiles returns the contents of the tracked text files.
func textFiles(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range repoFiles(t) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			continue // binary
		}
		m[f] = string(b)
	}
	return m
}

// self is this file, which has to name what it forbids.
const self = "internal/repocheck/refs_test.go"

// outside are references to the reference material that lives beside the
// repository on development machines but not in a clone: its directory and
// the names of its documents. The names are split so that this file does
// not match them itself.
var outside = regexp.MustCompile(`\.\./` + `shared\b|\bshared/(docs|conformance)\b|\b(maxim-` + `spec|reliability-` + `notes|mochi-` + `notes|scaleout-` + `notes|style-` + `guide|peers)\.md\b`)

// Ensure no tracked file refers to a file outside the repository: a fresh
// clone with nothing beside it must build, test and read completely.
func TestRepo_NoReferenceOutside(t *testing.T) {
	for f, s := range textFiles(t) {
		if f == self {
			continue
		}
		for i, line := range strings.Split(s, "\n") {
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s:%d: %q refers to a file outside the repository: %s", f, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}

var (
	// mdMention is a path-like mention of a Markdown file in any text:
	// docs/protocol.md, ../README.md, maxim.md.
	mdMention = regexp.MustCompile(`(?:^|[^\w./-])((?:\.{1,2}/)*(?:[\w-]+/)*[\w.-]+\.md)\b`)
	// url is any absolute URL, removed before looking for mentions.
	url = regexp.MustCompile(`[a-z][a-z0-9+.-]*://\S+`)
	// sectionCite is a citation of a numbered section of a document of
	// docs/: docs/maxim.md §4.2.
	sectionCite = regexp.MustCompile(`\b(docs/[\w-]+\.md) §(\d+(?:\.\d+)?)`)
	// linkText is the text part of an inline Markdown link.
	linkText = regexp.MustCompile(`\[[^\]]*\]\(`)
	// mdLink is an inline Markdown link or image: [text](target).
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// fence opens or closes a fenced code block.
	fence = regexp.MustCompile("^\\s*(```|~~~)")
)

// resolves reports whether the mention m in file f names an existing file:
// relative to f's directory, or (for Go comments and prose that name
// docs/X.md) relative to the root.
func resolves(f, m string) bool {
	for _, p := range []string{path.Join(path.Dir(f), m), path.Clean(m)} {
		if strings.HasPrefix(p, "../") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err == nil {
			return true
		}
	}
	return false
}

// Ensure every mention of a Markdown file (docs/X.md in a comment, X.md
// in prose) names a file of the repository.
func TestRepo_MarkdownMentionsResolve(t *testing.T) {
	files := textFiles(t)
	for f, s := range files {
		if f == self || strings.HasSuffix(f, ".json") {
			continue
		}
		for i, line := range strings.Split(s, "\n") {
			if strings.HasSuffix(f, ".go") {
				// Go code names files of its own (test data, outputs);
				// only comments cite documents.
				_, c, ok := strings.Cut(line, "//")
				if !ok {
					continue
				}
				line = c
			}
			line = url.ReplaceAllString(line, "")
			// A link's text is free; its target is checked below.
			line = linkText.ReplaceAllString(line, "(")
			for _, m := range mdMention.FindAllStringSubmatch(line, -1) {
				if !resolves(f, m[1]) {
					t.Errorf("%s:%d: %s does not exist in the repository", f, i+1, m[1])
				}
			}
			for _, m := range sectionCite.FindAllStringSubmatch(line, -1) {
				if doc, ok := files[m[1]]; ok && !hasSection(doc, m[2]) {
					t.Errorf("%s:%d: %s has no section §%s", f, i+1, m[1], m[2])
				}
			}
		}
	}
}

// Ensure every relative link of the Markdown files resolves: the file
// exists, and an anchor names a heading of the target.
func TestRepo_MarkdownLinksResolve(t *testing.T) {
	files := textFiles(t)
	anchors := map[string]map[string]bool{}
	anchorsOf := func(f string) map[string]bool {
		if a, ok := anchors[f]; ok {
			return a
		}
		a := headingAnchors(files[f])
		anchors[f] = a
		return a
	}
	for f, s := range files {
		if !strings.HasSuffix(f, ".md") {
			continue
		}
		for i, line := range proseLines(s) {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				dest := f
				if file != "" {
					dest = path.Join(path.Dir(f), file)
					if strings.HasPrefix(dest, "../") {
						t.Errorf("%s:%d: link %s leaves the repository", f, i+1, target)
						continue
					}
					if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
						t.Errorf("%s:%d: link %s: no such file", f, i+1, target)
						continue
					}
				}
				if anchor == "" || !strings.HasSuffix(dest, ".md") {
					continue
				}
				if _, ok := files[dest]; !ok {
					continue // an untracked Markdown file: existence was enough
				}
				if !anchorsOf(dest)[anchor] {
					t.Errorf("%s:%d: link %s: %s has no heading #%s", f, i+1, target, dest, anchor)
				}
			}
		}
	}
}

// proseLines returns the lines of a Markdown text with fenced code blocks
// blanked, keeping line numbers.
func proseLines(s string) []string {
	lines := strings.Split(s, "\n")
	in := false
	for i, l := range lines {
		if fence.MatchString(l) {
			in = !in
			lines[i] = ""
			continue
		}
		if in {
			lines[i] = ""
		}
	}
	return lines
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown text: lower case, punctuation removed, spaces as hyphens, and a
// -1, -2, ... suffix for repeats.
func headingAnchors(s string) map[string]bool {
	a := map[string]bool{}
	seen := map[string]int{}
	for _, l := range proseLines(s) {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(l, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			a[slug+"-"+itoa(n)] = true
		} else {
			a[slug] = true
		}
		seen[slug]++
	}
	return a
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}

// hasSection reports whether the Markdown text doc has a heading numbered
// sec ("## 3. REST API", "### 3.1 Endpoint table"), or, for N.M, an item M
// of a numbered list under heading N (§8.12: item 12 of section 8).
func hasSection(doc, sec string) bool {
	major, minor, sub := strings.Cut(sec, ".")
	inMajor := false
	for _, l := range proseLines(doc) {
		if strings.HasPrefix(l, "#") {
			h := strings.TrimSpace(strings.TrimLeft(l, "#"))
			if strings.HasPrefix(h, sec+" ") || strings.HasPrefix(h, sec+". ") {
				return true
			}
			if strings.HasPrefix(l, "## ") {
				inMajor = strings.HasPrefix(h, major+". ")
			}
		} else if sub && inMajor && strings.HasPrefix(l, minor+". ") {
			return true
		}
	}
	return false
}
