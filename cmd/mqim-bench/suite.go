package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Suite scenario names, as the report shows them.
const (
	nameFriendMax  = "friend chat, max"
	nameFriendHalf = "friend chat, half rate"
	nameGroup      = "group fan-out"
	nameConns      = "idle connections"
)

// suiteRun is one scenario of the suite with each broker's median result.
type suiteRun struct {
	name    string
	params  Params
	results map[string]*Result // by broker kind: the median round
	rounds  map[string][]*Result
}

// runSuite runs every scenario against every broker, alternating brokers
// (and rotating their order each round), then writes the report.
func runSuite(ctx context.Context, c *Config, logf func(string, ...any)) error {
	start := time.Now()
	brokers := slices.Clone(c.Brokers)
	if c.MosquittoBin == "" {
		logf("mosquitto is not installed: comparing with bare mochi only")
		brokers = slices.DeleteFunc(brokers, func(k string) bool { return k == KindMosquitto })
	}
	var all []*Result
	var runs []*suiteRun
	scenario := func(name string, p Params) error {
		run := &suiteRun{name: name, params: p, results: map[string]*Result{}}
		per := map[string][]*Result{}
		for round := range max(c.Rounds, 1) {
			order := slices.Clone(brokers)
			for range round % len(order) {
				order = append(order[1:], order[0])
			}
			for _, kind := range order {
				logf("%s: %s (round %d)", name, kind, round+1)
				r, err := runOne(ctx, c, kind, p, logf)
				if err != nil {
					return err
				}
				printResult(os.Stderr, r)
				per[kind] = append(per[kind], r)
				all = append(all, r)
			}
		}
		for kind, rs := range per {
			run.results[kind] = median(rs, p.Rate > 0)
		}
		run.rounds = per
		runs = append(runs, run)
		return nil
	}

	if err := scenario(nameFriendMax, c.params(ScenarioFriend, 0)); err != nil {
		return err
	}
	// Half of mqim's maximum send rate (of the first broker's when mqim is
	// not in the comparison), the same absolute rate for every broker.
	ref := runs[0].results[KindMQIM]
	if ref == nil {
		ref = runs[0].results[brokers[0]]
	}
	half := max(ref.SendRate/2, 100)
	if err := scenario(nameFriendHalf, c.params(ScenarioFriend, half)); err != nil {
		return err
	}
	if err := scenario(nameGroup, c.params(ScenarioGroup, 0)); err != nil {
		return err
	}
	if err := scenario(nameConns, c.params(ScenarioConns, 0)); err != nil {
		return err
	}
	if c.JSONOut != "" {
		writeJSON(c.JSONOut, all)
	}
	report := renderReport(c, brokers, runs, time.Since(start))
	fmt.Println(report)
	if c.Out != "" {
		return writeReport(c.Out, report)
	}
	return nil
}

// median returns the result with the median delivery rate, or for a run
// at a fixed send rate (where every round delivers the same) the one with
// the median p99 latency.
func median(rs []*Result, byLatency bool) *Result {
	s := slices.Clone(rs)
	key := func(r *Result) float64 {
		if byLatency {
			return float64(r.P99)
		}
		return r.Rate
	}
	slices.SortFunc(s, func(a, b *Result) int {
		switch {
		case key(a) < key(b):
			return -1
		case key(a) > key(b):
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

// printResult writes progress lines to a console or a test log; a failed
// write loses a line of progress, never a result (the report is separate).
func printResult(w io.Writer, r *Result) {
	if r.Scenario == ScenarioConns {
		_, _ = fmt.Fprintf(w, "  %-9s conns: %d connected in %v (%.0f/s), RSS %.1f → %.1f MiB = %.2f KiB/conn, %v later %.1f MiB = %.2f KiB/conn, peak %.1f MiB, CPU %.2fs\n",
			r.Broker, r.Connected, r.ConnectTime.Round(time.Millisecond), r.Rate,
			mib(r.RSSBefore), mib(r.RSSAfter), r.PerConnKiB, settleTime, mib(r.RSSSettled), r.SettledKiB, mib(r.PeakRSS), r.CPU.Seconds())
	} else {
		_, _ = fmt.Fprintf(w, "  %-9s %s: sent %d acked %d delivered %d/%d lost %d dups %d in %v → %.0f msgs/s; latency p50 %v p99 %v p99.9 %v max %v; CPU %.2fs = %.1f µs/msg; peak RSS %.1f MiB\n",
			r.Broker, r.Scenario, r.Sent, r.Acked, r.Delivered, r.Expected, r.Lost, r.Dups,
			r.Elapsed.Round(time.Millisecond), r.Rate, r.P50, r.P99, r.P999, r.Max,
			r.CPU.Seconds(), us(r.CPUPerMsg), mib(r.PeakRSS))
	}
	for _, e := range r.Errors {
		_, _ = fmt.Fprintf(w, "    error: %s\n", e)
	}
}

func mib(b int64) float64        { return float64(b) / (1 << 20) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) string  { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// Report markers: writeReport replaces what lies between them and keeps
// the rest of the file (the hand-written analysis).
const (
	beginMarker = "<!-- mqim-bench:begin -->"
	endMarker   = "<!-- mqim-bench:end -->"
)

func writeReport(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	block := beginMarker + "\n" + section + "\n" + endMarker
	var out string
	i, j := bytes.Index(old, []byte(beginMarker)), bytes.Index(old, []byte(endMarker))
	if i >= 0 && j > i {
		out = string(old[:i]) + block + string(old[j+len(endMarker):])
	} else {
		out = "# mqim benchmarks\n\n" + block + "\n" + string(old)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// renderReport renders the results section of docs/benchmarks.md.
func renderReport(c *Config, brokers []string, runs []*suiteRun, took time.Duration) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Results (generated by `make bench`, %s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("### Machine and versions\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %d × %s |\n", runtime.NumCPU(), cpuModel())
	p("| memory | %s |\n", memTotal())
	p("| kernel | %s |\n", firstLine(cmdOut("uname", "-sr")))
	p("| Go | %s |\n", runtime.Version())
	p("| mqim | %s |\n", firstLine(cmdOut(c.MQIMBin, "--version")))
	if slices.Contains(brokers, KindMosquitto) {
		p("| Mosquitto | %s |\n", mosquittoVersion(c.MosquittoBin))
	}
	p("| mochi (bare, and inside mqim) | %s |\n", binDepVersion(c.MochiBin, "github.com/mochi-mqtt/server/v2"))
	p("| load generator | paho.mqtt.golang %s, MQTT 3.1.1, GOMAXPROCS %d |\n\n", depVersion("github.com/eclipse/paho.mqtt.golang"), runtime.GOMAXPROCS(0))

	p("### Workloads\n\n")
	for _, r := range runs {
		p("- **%s**: %s\n", r.name, describe(r.params))
	}
	p("\nEvery broker is started fresh for each run, as a child process; CPU is its utime+stime from /proc/<pid>/stat over the send phase and drain, peak RSS is VmHWM. Latency is end to end (publish call to the receiver's handler), from the same process clock. *Lost* counts deliveries owed for PUBACKed messages that never arrived; *dups* counts second copies. Runs per broker and scenario: %d (the median: by delivery rate, or by p99 latency for the fixed-rate run). Total time: %v.\n\n", max(c.Rounds, 1), took.Round(time.Second))

	lo, hi := 1e9, 0.0
	for _, r := range runs {
		for _, x := range r.results {
			lo, hi = min(lo, x.Load1), max(hi, x.Load1)
		}
	}
	p("1-minute load average as each run started: %.2f to %.2f (the bench's own previous run included; anything well above that means other work on the machine skewed the figures).\n\n", lo, hi)
	p("### Figures\n\n")
	p("| scenario | broker | delivered msgs/s | p50 ms | p99 ms | p99.9 ms | lost | dups | broker CPU s | CPU µs/msg | peak RSS MiB |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		if r.params.Scenario == ScenarioConns {
			continue
		}
		for _, k := range brokers {
			x := r.results[k]
			if x == nil {
				continue
			}
			p("| %s | %s | %.0f | %s | %s | %s | %d | %d | %.2f | %.1f | %.1f |\n",
				r.name, k, x.Rate, ms(x.P50), ms(x.P99), ms(x.P999), x.Lost, x.Dups, x.CPU.Seconds(), us(x.CPUPerMsg), mib(x.PeakRSS))
		}
	}
	p("\n| idle connections | broker | connected | connect time s | RSS before MiB | RSS after MiB | KiB per connection | RSS %v later MiB | KiB per connection then | CPU ms per connection |\n", settleTime)
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		if r.params.Scenario != ScenarioConns {
			continue
		}
		for _, k := range brokers {
			x := r.results[k]
			if x == nil {
				continue
			}
			p("| %d | %s | %d | %.1f | %.1f | %.1f | %.2f | %.1f | %.2f | %.3f |\n",
				r.params.Conns, k, x.Connected, x.ConnectTime.Seconds(), mib(x.RSSBefore), mib(x.RSSAfter), x.PerConnKiB, mib(x.RSSSettled), x.SettledKiB, us(x.CPUPerMsg)/1000)
		}
	}

	p("\n### Ratios (mqim / reference)\n\n")
	refs := slices.DeleteFunc(slices.Clone(brokers), func(k string) bool { return k == KindMQIM })
	p("| scenario | metric |")
	for _, k := range refs {
		p(" mqim / %s |", k)
	}
	p("\n|---|---|")
	for range refs {
		p("---:|")
	}
	p("\n")
	row := func(r *suiteRun, metric string, f func(*Result) float64) {
		m := r.results[KindMQIM]
		if m == nil {
			return
		}
		p("| %s | %s |", r.name, metric)
		for _, k := range refs {
			if x := r.results[k]; x != nil {
				p(" %s |", ratio(f(m), f(x)))
			} else {
				p(" n/a |")
			}
		}
		p("\n")
	}
	for _, r := range runs {
		switch r.params.Scenario {
		case ScenarioConns:
			row(r, "KiB per connection", func(x *Result) float64 { return x.PerConnKiB })
			row(r, fmt.Sprintf("KiB per connection, %v later", settleTime), func(x *Result) float64 { return x.SettledKiB })
		default:
			row(r, "delivered msgs/s", func(x *Result) float64 { return x.Rate })
			row(r, "CPU per message", func(x *Result) float64 { return float64(x.CPUPerMsg) })
			row(r, "p99 latency", func(x *Result) float64 { return float64(x.P99) })
		}
	}

	p("\n### Goals\n\n")
	p("| goal | target | measured | met |\n|---|---|---|---|\n")
	goal := func(name, target, measured string, ok bool) {
		p("| %s | %s | %s | %s |\n", name, target, measured, map[bool]string{true: "yes", false: "**no**"}[ok])
	}
	find := func(name string) *suiteRun {
		for _, r := range runs {
			if r.name == name {
				return r
			}
		}
		return nil
	}
	if r := find(nameFriendMax); r != nil && r.results[KindMQIM] != nil && r.results[KindMosquitto] != nil {
		m, q := r.results[KindMQIM], r.results[KindMosquitto]
		goal("friend chat throughput", "≥ 1.0× Mosquitto, 0 lost", fmt.Sprintf("%.0f vs %.0f msgs/s = %s, lost %d", m.Rate, q.Rate, ratio(m.Rate, q.Rate), m.Lost), m.Rate >= q.Rate && m.Lost == 0)
		goal("friend chat CPU per message", "≤ 1.5× Mosquitto", fmt.Sprintf("%.1f vs %.1f µs = %s", us(m.CPUPerMsg), us(q.CPUPerMsg), ratio(float64(m.CPUPerMsg), float64(q.CPUPerMsg))), float64(m.CPUPerMsg) <= 1.5*float64(q.CPUPerMsg))
	}
	if r := find(nameFriendHalf); r != nil && r.results[KindMQIM] != nil {
		m := r.results[KindMQIM]
		var each []string
		for _, x := range r.rounds[KindMQIM] {
			each = append(each, ms(x.P99))
		}
		goal("p99 at half of mqim's max rate", "≤ 10 ms", fmt.Sprintf("%s ms at %.0f msgs/s (rounds: %s ms)", ms(m.P99), r.params.Rate, strings.Join(each, ", ")), m.P99 <= 10*time.Millisecond)
	}
	if r := find(nameGroup); r != nil && r.results[KindMQIM] != nil && r.results[KindMosquitto] != nil {
		m, q := r.results[KindMQIM], r.results[KindMosquitto]
		goal("group fan-out deliveries/s", "≥ 1.0× Mosquitto", fmt.Sprintf("%.0f vs %.0f = %s", m.Rate, q.Rate, ratio(m.Rate, q.Rate)), m.Rate >= q.Rate)
	}
	if r := find(nameConns); r != nil && r.results[KindMQIM] != nil {
		m := r.results[KindMQIM]
		goal("idle connection memory", fmt.Sprintf("≤ 8 KiB RSS per connection at %d", r.params.Conns),
			fmt.Sprintf("%.2f KiB right after connecting, %.2f KiB %v later (%d connected)", m.PerConnKiB, m.SettledKiB, settleTime, m.Connected),
			max(m.PerConnKiB, m.SettledKiB) <= 8 && m.Connected == r.params.Conns)
	}
	var micro []byte
	if c.MicroFile != "" {
		micro, _ = os.ReadFile(c.MicroFile)
	}
	if m := regexp.MustCompile(`([0-9.]+) p99-ns-10k\s+([0-9.]+) p99-ns-1M\s+([0-9.]+) p99-ratio`).FindSubmatch(micro); m != nil {
		goal("history \"latest 20\" p99 at 1M vs 10k records", "≤ 1.5×", fmt.Sprintf("%s vs %s ns = %s× (BenchmarkHistoryP99)", m[2], m[1], m[3]), parseFloat(m[3]) <= 1.5)
	}
	if c.MicroFile != "" {
		if data := micro; len(data) > 0 {
			p("\n### Micro-benchmarks (`go test -bench`)\n\n```\n%s```\n", strings.TrimLeft(string(data), "\n"))
		}
	}
	p("\n### Reproduce\n\n```sh\nmake bench                      # scripts/bench.sh -rounds 3: builds bin/mqim, bin/baremochi, bin/mqim-bench; installs mosquitto if missing; rewrites this section\nscripts/bench.sh -rounds 1      # quicker; extra flags go to mqim-bench suite\nbin/mqim-bench run -broker mqim -scenario group -duration 5s\nbin/mqim-bench run -broker mqim -scenario friend -profile bin/profiles   # CPU and allocation profiles\n```\n")
	return b.String()
}

func describe(p Params) string {
	switch p.Scenario {
	case ScenarioFriend:
		rate := "as fast as PUBACKs allow"
		if p.Rate > 0 {
			rate = fmt.Sprintf("at a total of %.0f msgs/s", p.Rate)
		}
		return fmt.Sprintf("%d pairs (%d clients, each sending to its peer), QoS 1, %d in flight per sender, %s, %v", p.Pairs, 2*p.Pairs, p.InFlight, rate, p.Duration)
	case ScenarioGroup:
		return fmt.Sprintf("%d groups of %d members, member 0 of each sends QoS 1 with %d in flight, the %d others receive, %v", p.Groups, p.GroupSize, p.InFlight, p.GroupSize-1, p.Duration)
	case ScenarioConns:
		return fmt.Sprintf("%d clients connect (32 at a time), log in and subscribe to their inbox, then idle; RSS growth per connection", p.Conns)
	}
	return p.Scenario
}

func cmdOut(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func mosquittoVersion(bin string) string {
	for _, l := range strings.Split(cmdOut(bin, "-h"), "\n") {
		if strings.HasPrefix(l, "mosquitto version") {
			return strings.TrimPrefix(l, "mosquitto version ")
		}
	}
	return "?"
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "model name") {
			if i := strings.IndexByte(l, ':'); i >= 0 {
				return strings.TrimSpace(l[i+1:])
			}
		}
	}
	return "?"
}

func memTotal() string {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			var kb int64
			if _, err := fmt.Sscan(f[1], &kb); err != nil {
				break
			}
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

// binDepVersion returns the version of module path linked into bin.
func binDepVersion(bin, path string) string {
	for _, l := range strings.Split(cmdOut("go", "version", "-m", bin), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "dep" && f[1] == path {
			return f[2]
		}
	}
	return "?"
}

func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "?"
}

func parseFloat(b []byte) float64 {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return math.Inf(1)
	}
	return f
}
