package conformance_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/conformance"
	"github.com/mqim/mqim/conformance/internal/baremochi"
	"github.com/mqim/mqim/conformance/internal/mqimprofile"
)

var (
	update = flag.Bool("update", false, "rewrite the result tables in docs/conformance.md")
	only   = flag.String("conformance.targets", "", "comma-separated targets to run (default: every available one): "+strings.Join(targetNames(), ", "))
	addr   = flag.String("conformance.addr", "", "also run the catalogue against an external broker at host:port (target \"external\")")
	outDir = flag.String("conformance.results", "", "write per-case results as <target>.tsv into this directory")
)

// childStarters are the brokers a re-executed test binary can serve (see
// conformance.StartChild). Both are Go brokers that a panic could kill, so
// they never run inside the test process itself.
var childStarters = map[string]func() (string, func() error, error){
	"baremochi": func() (string, func() error, error) { return baremochi.Start("127.0.0.1:0") },
	"mqim":      func() (string, func() error, error) { return mqimprofile.Start("127.0.0.1:0") },
}

func TestMain(m *testing.M) {
	if t := os.Getenv(conformance.ChildEnv); t != "" {
		start, ok := childStarters[t]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown conformance child %q\n", t)
			os.Exit(2)
		}
		os.Exit(conformance.ServeChild(start))
	}
	os.Exit(m.Run())
}

// target is one broker the catalogue runs against.
type target struct {
	name string
	// doc names the table section in docs/conformance.md.
	doc string
	// strict targets fail the test on any crash or hang; the others are
	// references whose results are only reported.
	strict bool
	// start returns the broker and a cleanup, or skips the test.
	start func(t *testing.T) conformance.Broker
	// describe names the broker and its version for docs/conformance.md.
	describe func() string
	// notes, if set, describes what the broker's output tells after a run.
	notes func(b conformance.Broker) string
}

func targets() []target {
	return []target{
		{name: "baremochi", doc: "table:baremochi", start: startChild("baremochi"), describe: mochiVersion},
		{name: "mosquitto", doc: "table:mosquitto", start: startMosquitto, describe: mosquittoVersion},
		{name: "mqim", doc: "table:mqim", strict: true, start: startChild("mqim"), describe: mochiVersion, notes: recoveredPanics},
		{name: "external", start: startExternal, describe: func() string { return *addr }},
	}
}

func targetNames() []string {
	var n []string
	for _, t := range targets() {
		n = append(n, t.name)
	}
	return n
}

func startChild(name string) func(t *testing.T) conformance.Broker {
	return func(t *testing.T) conformance.Broker {
		if _, ok := childStarters[name]; !ok {
			t.Skipf("target %s is not built in (see docs/conformance.md)", name)
		}
		p, err := conformance.StartChild(context.Background(), name)
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
}

// mosquittoBinary finds the mosquitto broker; Debian puts it in /usr/sbin,
// which is not always on PATH.
func mosquittoBinary() (string, bool) {
	if bin, err := exec.LookPath("mosquitto"); err == nil {
		return bin, true
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// mosquittoVersion is the first line of "mosquitto -h", e.g.
// "mosquitto version 2.0.11".
func mosquittoVersion() string {
	bin, ok := mosquittoBinary()
	if !ok {
		return "mosquitto"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// mosquitto -h prints its usage and exits with status 3.
	out, _ := exec.CommandContext(ctx, bin, "-h").Output()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// mochiVersion is the mochi module version this binary is built with.
// Test binaries carry no dependency list in their build info, so the
// module's go.mod is read instead.
func mochiVersion() string {
	const mod = "github.com/mochi-mqtt/server/v2"
	if b, err := os.ReadFile(filepath.Join("..", "go.mod")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == mod {
				return "mochi-mqtt/server " + f[1]
			}
		}
	}
	return "mochi-mqtt/server"
}

func startMosquitto(t *testing.T) conformance.Broker {
	bin, ok := mosquittoBinary()
	if !ok {
		// A reference only, but .ci/run installs it: under CI=true its
		// absence is a broken setup, not a skip.
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto missing in CI (apt-get install mosquitto)")
		}
		t.Skip("mosquitto is not installed (apt-get install mosquitto); it is only a reference")
	}
	p, err := conformance.StartMosquitto(context.Background(), bin, t.TempDir())
	if err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func startExternal(t *testing.T) conformance.Broker {
	if *addr == "" {
		t.Skip("no -conformance.addr given")
	}
	return conformance.Address(*addr)
}

// catalogueDir is the Mosquitto catalogue: $MQIM_CONFORMANCE_DATA, or the
// copy kept in testdata/mosquitto (see testdata/mosquitto/PROVENANCE.md).
func catalogueDir(t *testing.T) string {
	if d := os.Getenv("MQIM_CONFORMANCE_DATA"); d != "" {
		return d
	}
	d := filepath.Join("testdata", "mosquitto")
	if _, err := os.Stat(filepath.Join(d, "CONNECT.json")); err != nil {
		// The catalogue is part of the repository: a checkout without it
		// is broken, never a reason to pass by skipping.
		t.Fatalf("catalogue not found: %v", err)
	}
	return d
}

// TestConformance_Catalogue replays the whole Mosquitto catalogue against
// every available target, the targets in parallel: a run is mostly
// waiting on brokers that stay silent. The mqim profile must not crash or
// hang; the other targets are references and only report.
func TestConformance_Catalogue(t *testing.T) {
	if testing.Short() {
		t.Skip("the catalogue takes about half a minute per target")
	}
	cases, err := conformance.LoadDir(catalogueDir(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var (
		mu      sync.Mutex
		results = map[string]docResult{}
	)
	// t.Run from several goroutines rather than t.Parallel: -parallel
	// defaults to the number of CPUs, two on the CI machines, and the
	// targets should all run at once.
	var wg sync.WaitGroup
	for _, tg := range targets() {
		if len(want) > 0 && !want[tg.name] {
			continue
		}
		wg.Go(func() {
			t.Run(tg.name, func(t *testing.T) {
				res := runTarget(t, tg, cases)
				if tg.doc != "" {
					mu.Lock()
					results[tg.name] = res
					mu.Unlock()
				}
			})
		})
	}
	wg.Wait()
	if *update && !t.Failed() {
		updateDoc(t, results)
	}
}

// docResult is what docs/conformance.md shows for one target.
type docResult struct {
	broker  string
	summary string
	total   conformance.Tally
}

// runTarget runs the catalogue against one target and returns its summary
// for docs/conformance.md.
func runTarget(t *testing.T, tg target, cases []*conformance.Case) docResult {
	b := tg.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := conformance.Runner{Broker: b, Logf: t.Logf}
	rep := r.Run(ctx, cases)
	_, total := rep.Tallies()
	t.Logf("%s: %d cases in %v: %d passed, %d failed, %d hangs, %d crashes, %d not run, %d restarts\n%s",
		tg.name, total.Cases, rep.Elapsed.Round(time.Millisecond), total.Passed, total.Failed,
		total.Hangs, total.Crashes, total.NotRun, rep.Restarts, rep.Table())
	var classes []string
	for _, c := range rep.Classes() {
		classes = append(classes, fmt.Sprintf("%s %d", c.Class, c.N))
	}
	t.Logf("failure classes: %s", strings.Join(classes, ", "))
	for _, p := range rep.Problems() {
		msg := fmt.Sprintf("%s: %s: %s", p.Outcome, p.Case, p.Reason)
		if tg.strict {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
	if tg.strict && total.NotRun > 0 {
		t.Errorf("%d cases not run", total.NotRun)
	}
	if *outDir != "" {
		writeTSV(t, filepath.Join(*outDir, tg.name+".tsv"), rep)
	}
	broker := tg.describe()
	sum := fmt.Sprintf("Broker: %s.\n\n", broker) + summary(rep)
	if tg.notes != nil {
		n := tg.notes(b)
		t.Log(n)
		sum += "\n" + n + "\n"
	}
	return docResult{broker: broker, summary: sum, total: total}
}

// recoveredPanics counts the connection-handler panics that mqim's
// listener recovered during the run, from the JSON log on the child's
// stderr: they are crashes that the recovery wrapper turned into a closed
// connection.
func recoveredPanics(b conformance.Broker) string {
	count := map[string]int{}
	total := 0
	for _, line := range strings.Split(b.Output(), "\n") {
		var e struct {
			Message string `json:"message"`
			Panic   string `json:"panic"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || !strings.Contains(e.Message, mqimprofile.PanicLog) {
			continue
		}
		count[e.Panic]++
		total++
	}
	if total == 0 {
		// Either mochi no longer panics, or the broker logs the recovery
		// differently now: say what was looked for.
		return fmt.Sprintf("Connection-handler panics recovered by the listener: none logged as %q.", mqimprofile.PanicLog)
	}
	var kinds []string
	for p, n := range count {
		kinds = append(kinds, fmt.Sprintf("%d × `%s`", n, p))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("Connection-handler panics recovered by the listener (each closed only its own connection): %d (%s).",
		total, strings.Join(kinds, "; "))
}

// summary is what docs/conformance.md shows for one target.
func summary(rep *conformance.Report) string {
	var b strings.Builder
	b.WriteString(rep.Table())
	var problems []string
	for _, p := range rep.Problems() {
		problems = append(problems, fmt.Sprintf("- %s: `%s` / `%s`: %s", p.Outcome, p.Case.File, p.Case.ClientID(), p.Reason))
	}
	if len(problems) > 0 {
		b.WriteString("\nHangs and crashes:\n\n" + strings.Join(problems, "\n") + "\n")
	}
	var classes []string
	for _, c := range rep.Classes() {
		classes = append(classes, fmt.Sprintf("%s %d", c.Class, c.N))
	}
	if len(classes) > 0 {
		b.WriteString("\nNon-passing results by class: " + strings.Join(classes, ", ") + ".\n")
	}
	return b.String()
}

func writeTSV(t *testing.T, path string, rep *conformance.Report) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := rep.WriteTSV(f); err != nil {
		t.Fatal(err)
	}
}

// updateDoc writes each target's section of docs/conformance.md, and the
// summary table when every documented target ran.
func updateDoc(t *testing.T, results map[string]docResult) {
	t.Helper()
	path := filepath.Join("..", "docs", "conformance.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("-update: %v", err)
	}
	var rows []string
	all := true
	for _, tg := range targets() {
		if tg.doc == "" {
			continue
		}
		res, ok := results[tg.name]
		if !ok {
			all = false
			continue
		}
		if doc, err = conformance.ReplaceSection(doc, tg.doc, res.summary); err != nil {
			t.Fatalf("-update %s: %v", path, err)
		}
		n := res.total
		rows = append(rows, fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d |",
			tg.name, res.broker, n.Cases, n.Passed, n.Failed, n.Hangs, n.Crashes))
	}
	if all {
		table := "| target | broker | cases | passed | failed | hangs | crashes |\n" +
			"| --- | --- | ---: | ---: | ---: | ---: | ---: |\n" + strings.Join(rows, "\n")
		if doc, err = conformance.ReplaceSection(doc, "table:summary", table); err != nil {
			t.Fatalf("-update %s: %v", path, err)
		}
	}
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", path)
}
