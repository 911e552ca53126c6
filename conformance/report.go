package conformance

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of one Run.
type Report struct {
	// Results has one entry per case, in the order the cases were given.
	Results []Result
	Elapsed time.Duration
	// Restarts counts broker restarts after crashes.
	Restarts int
}

// Tally counts the outcomes of a set of cases.
type Tally struct {
	File                                  string
	Cases, Passed, Failed, Hangs, Crashes int
	NotRun                                int
}

func (t *Tally) add(o Outcome) {
	t.Cases++
	switch o {
	case Pass:
		t.Passed++
	case Fail:
		t.Failed++
	case Hang:
		t.Hangs++
	case Crash:
		t.Crashes++
	case NotRun:
		t.NotRun++
	}
}

// Tallies counts outcomes per file, in file name order, and in total.
func (r *Report) Tallies() (files []Tally, total Tally) {
	byFile := make(map[string]*Tally)
	for _, res := range r.Results {
		t := byFile[res.Case.File]
		if t == nil {
			t = &Tally{File: res.Case.File}
			byFile[res.Case.File] = t
		}
		t.add(res.Outcome)
		total.add(res.Outcome)
	}
	for _, t := range byFile {
		files = append(files, *t)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].File < files[j].File })
	total.File = "total"
	return files, total
}

// Table renders the per-file tally as a Markdown table. The crash and
// not-run columns appear only when some case has that outcome.
func (r *Report) Table() string {
	files, total := r.Tallies()
	crashCol, notRunCol := total.Crashes > 0, total.NotRun > 0
	var b strings.Builder
	b.WriteString("| file | cases | passed | failed | hangs |")
	sep := "| --- | ---: | ---: | ---: | ---: |"
	if crashCol {
		b.WriteString(" crashes |")
		sep += " ---: |"
	}
	if notRunCol {
		b.WriteString(" not run |")
		sep += " ---: |"
	}
	b.WriteString("\n" + sep + "\n")
	row := func(t Tally, bold bool) {
		f := func(v any) string {
			if bold {
				return fmt.Sprintf("**%v**", v)
			}
			return fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |", f(t.File), f(t.Cases), f(t.Passed), f(t.Failed), f(t.Hangs))
		if crashCol {
			fmt.Fprintf(&b, " %s |", f(t.Crashes))
		}
		if notRunCol {
			fmt.Fprintf(&b, " %s |", f(t.NotRun))
		}
		b.WriteString("\n")
	}
	for _, t := range files {
		row(t, false)
	}
	row(total, true)
	return b.String()
}

// Problems returns the hangs and crashes, in catalogue order.
func (r *Report) Problems() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Outcome == Hang || res.Outcome == Crash {
			out = append(out, res)
		}
	}
	return out
}

// Classes counts results by failure class (passes excluded), largest first.
func (r *Report) Classes() []ClassCount {
	m := make(map[string]int)
	for _, res := range r.Results {
		if res.Outcome != Pass && res.Outcome != NotRun {
			m[res.Class]++
		}
	}
	var out []ClassCount
	for k, v := range m {
		out = append(out, ClassCount{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Class < out[j].Class
	})
	return out
}

// ClassCount is the number of results of one failure class.
type ClassCount struct {
	Class string
	N     int
}

// WriteTSV writes one line per case: file, group, name, outcome, class,
// isolated flag, elapsed milliseconds, reason. It is meant for diffing two
// runs.
func (r *Report) WriteTSV(w io.Writer) error {
	clean := func(s string) string { return strings.NewReplacer("\t", " ", "\n", " ").Replace(s) }
	if _, err := fmt.Fprintln(w, "file\tgroup\tname\toutcome\tclass\tisolated\tms\treason"); err != nil {
		return err
	}
	for _, res := range r.Results {
		c := res.Case
		if _, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%t\t%d\t%s\n", c.File, clean(c.Group), clean(c.Name),
			res.Outcome, res.Class, res.Isolated, res.Elapsed.Milliseconds(), clean(res.Reason)); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceSection replaces the text between the lines
// "<!-- BEGIN name -->" and "<!-- END name -->" of doc with content and
// returns the new document.
func ReplaceSection(doc []byte, name, content string) ([]byte, error) {
	begin := []byte("<!-- BEGIN " + name + " -->\n")
	end := []byte("<!-- END " + name + " -->")
	i := bytes.Index(doc, begin)
	if i < 0 {
		return nil, fmt.Errorf("marker %q not found", strings.TrimSpace(string(begin)))
	}
	j := bytes.Index(doc[i+len(begin):], end)
	if j < 0 {
		return nil, fmt.Errorf("marker %q not found", end)
	}
	j += i + len(begin)
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.WriteString(content)
	out.Write(doc[j:])
	return out.Bytes(), nil
}
