// Command mqim-bench is mqim's load generator: real MQTT clients (paho,
// MQTT 3.1.1) driving mqim, Mosquitto and a bare mochi broker with the same
// workloads, each broker a child process whose CPU time and memory are read
// from /proc.
//
// Scenarios (docs/benchmarks.md):
//
//   - friend: P pairs of users exchanging QoS 1 messages, each sender with
//     at most N unacknowledged publishes, as fast as acknowledgements allow
//     or at a target total rate;
//   - group: groups of 50 members, member 0 of each sending QoS 1 messages
//     that the 49 others receive;
//   - conns: N idle logged-in clients, each subscribed to its inbox;
//   - friend-sio (mqim only): friend over socket.io (Engine.IO v3,
//     websocket, namespace /chat, as MaxIM's SDKs speak it), each sender
//     with at most N says awaiting their ack event.
//
// On mqim, senders publish MaxIM says (say/friend/{uid}, say/group/{gid})
// and receivers read users/{me}/message. Mosquitto and bare mochi are pure
// relays: friend senders publish straight to users/{peer}/message, group
// senders to groups/{g}/message, which the members subscribe to.
//
// Each message carries its sender, sequence number and send time in
// content.body; receivers measure end-to-end latency and count every
// acknowledged message that never arrived (lost) and every second copy
// (duplicates).
//
//	mqim-bench suite -out docs/benchmarks.md          # the full comparison
//	mqim-bench run -broker mqim -scenario friend      # one run
//	mqim-bench run -store postgres -nodes 3           # mqim as three nodes
//	mqim-bench cluster -out docs/scaleout.md          # Badger vs PostgreSQL vs three nodes
//
// With -store postgres the bench creates a fresh database on -postgres-url
// (dropped after) and mqim runs on it; with -nodes N > 1 it also runs a NATS
// server (a child process of this binary, `mqim-bench natsd`) and N nodes
// sharing the database, clients spread round-robin over the nodes. CPU per
// message is then the sum over the nodes, and the NATS server's and
// PostgreSQL's shares are measured apart (docs/scaleout.md).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// Config is the command line.
type Config struct {
	MQIMBin, MochiBin, MosquittoBin string
	WorkDir                         string
	Brokers                         []string

	Pairs, InFlight      int
	Groups, GroupSize    int
	Conns                int
	Duration             time.Duration
	Rate                 float64
	Rounds               int
	Out, JSONOut         string
	MicroFile            string
	ProfileDir           string
	ProfileSeconds       int
	Procs                int
	Scenario, BrokerKind string
	// Cluster mode (mqim only): the store, the number of nodes, the
	// PostgreSQL server the bench creates its database on.
	Store       string
	Nodes       int
	PostgresURL string
	// ConnectWorkers is how many clients connect at once.
	ConnectWorkers int
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	if cmd == "natsd" {
		if err := runNATSD(args); err != nil {
			fmt.Fprintln(os.Stderr, "mqim-bench natsd:", err)
			os.Exit(1)
		}
		return
	}
	var c Config
	fs := flag.NewFlagSet("mqim-bench "+cmd, flag.ExitOnError)
	fs.StringVar(&c.MQIMBin, "mqim", "bin/mqim", "mqim binary")
	fs.StringVar(&c.MochiBin, "baremochi", "bin/baremochi", "bare mochi binary (go build ./cmd/mqim-bench/internal/baremochi)")
	fs.StringVar(&c.MosquittoBin, "mosquitto", "", "mosquitto binary; empty: from PATH or /usr/sbin")
	fs.StringVar(&c.WorkDir, "workdir", os.TempDir(), "where broker data directories are made")
	fs.IntVar(&c.Pairs, "pairs", 20, "friend: pairs of users")
	fs.IntVar(&c.InFlight, "inflight", 16, "unacknowledged publishes per sender")
	fs.IntVar(&c.Groups, "groups", 4, "group: number of groups")
	fs.IntVar(&c.GroupSize, "group-size", 50, "group: members per group, sender included")
	fs.IntVar(&c.Conns, "conns", 10000, "conns: idle connections")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "send phase of friend and group runs")
	fs.Float64Var(&c.Rate, "rate", 0, "run: total target send rate, msgs/s (0: as fast as acks allow)")
	fs.IntVar(&c.Rounds, "rounds", 1, "suite: runs per broker and scenario, alternating brokers; the median is reported")
	fs.StringVar(&c.Out, "out", "", "suite: markdown file whose results section is (re)written")
	fs.StringVar(&c.JSONOut, "json", "", "write every result as JSON to this file")
	fs.StringVar(&c.MicroFile, "micro", "", "suite: go test -bench output to include in the report")
	fs.StringVar(&c.ProfileDir, "profile", "", "suite/run: save mqim CPU and allocation profiles of friend and group runs here")
	fs.IntVar(&c.ProfileSeconds, "profile-seconds", 5, "length of the CPU profile")
	fs.IntVar(&c.Procs, "procs", 0, "GOMAXPROCS of the load generator (0: Go's default)")
	fs.StringVar(&c.Scenario, "scenario", ScenarioFriend, "run: friend, friend-sio, group or conns")
	fs.StringVar(&c.BrokerKind, "broker", KindMQIM, "run: mqim, mosquitto or mochi")
	fs.StringVar(&c.Store, "store", StoreBadger, "run: mqim's store, badger or postgres (a fresh database on -postgres-url, dropped after)")
	fs.IntVar(&c.Nodes, "nodes", 1, "run: mqim nodes sharing the PostgreSQL database and a NATS server the bench starts; clients spread round-robin")
	fs.StringVar(&c.PostgresURL, "postgres-url", DefaultPostgresURL, "PostgreSQL server (a role allowed to create databases) for -store postgres")
	fs.IntVar(&c.ConnectWorkers, "connect-workers", 32, "clients connecting at once")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile here")
	brokers := fs.String("brokers", "mosquitto,mochi,mqim", "suite: brokers to compare, in order")
	_ = fs.Parse(args)
	c.Brokers = splitList(*brokers)
	if c.Procs > 0 {
		runtime.GOMAXPROCS(c.Procs)
	}
	raiseFileLimit()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mqim-bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if c.MosquittoBin == "" {
		c.MosquittoBin = findMosquitto()
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	ctx := context.Background()
	var err error
	switch cmd {
	case "suite":
		err = runSuite(ctx, &c, logf)
	case "cluster":
		err = runClusterSuite(ctx, &c, logf)
	case "run":
		var r *Result
		r, err = runOne(ctx, &c, c.BrokerKind, c.params(c.Scenario, c.Rate), logf)
		if r != nil {
			printResult(os.Stdout, r)
			printShared(os.Stdout, r)
			if c.JSONOut != "" {
				writeJSON(c.JSONOut, []*Result{r})
			}
		}
	default:
		usage()
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "mqim-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mqim-bench suite|run|cluster [flags]  (mqim-bench run -h for the flags)")
	os.Exit(2)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// findMosquitto returns the mosquitto binary, or "" when it is not installed.
func findMosquitto() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	return ""
}

// raiseFileLimit lifts the soft file limit to the hard one, explicitly, so
// that the broker children inherit it too (Go restores the original soft
// limit in children unless the program set it itself).
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// params returns the Params of scenario from the command line.
func (c *Config) params(scenario string, rate float64) Params {
	p := Params{Scenario: scenario, InFlight: c.InFlight, Duration: c.Duration, Rate: rate, ConnectWorkers: c.ConnectWorkers}
	switch scenario {
	case ScenarioFriend, ScenarioFriendSIO:
		p.Pairs = c.Pairs
	case ScenarioGroup:
		p.Groups, p.GroupSize = c.Groups, c.GroupSize
	case ScenarioConns:
		p.Conns = c.Conns
		p.InFlight, p.Duration = 0, 0
	}
	return p
}

// spec returns how to start broker kind.
func (c *Config) spec(kind string, maxConns int) (BrokerSpec, error) {
	s := BrokerSpec{Kind: kind, MaxConnections: maxConns}
	switch kind {
	case KindMQIM:
		s.Bin = c.MQIMBin
	case KindMochi:
		s.Bin = c.MochiBin
	case KindMosquitto:
		s.Bin = c.MosquittoBin
		if s.Bin == "" {
			return s, fmt.Errorf("mosquitto is not installed")
		}
	default:
		return s, fmt.Errorf("unknown broker %q", kind)
	}
	return s, nil
}

// runOne starts a fresh broker of kind, runs p against it and stops it.
func runOne(ctx context.Context, c *Config, kind string, p Params, logf func(string, ...any)) (*Result, error) {
	spec, err := c.spec(kind, max(2*c.Conns, 10000))
	if err != nil {
		return nil, err
	}
	if c.Store == StorePostgres || c.Nodes > 1 {
		return runDeployment(ctx, c, spec, p, logf)
	}
	profile := c.ProfileDir != "" && kind == KindMQIM
	if profile {
		if spec.PprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	load1 := loadAvg()
	b, err := StartBroker(spec, c.WorkDir)
	if err != nil {
		return nil, err
	}
	defer b.Stop()
	r := &Runner{B: b, Log: logf}
	var prof *profiler
	if profile {
		prof = &profiler{addr: spec.PprofAddr, dir: c.ProfileDir, name: profileName(p), seconds: c.ProfileSeconds, logf: logf}
		r.OnSendStart = prof.start
		r.OnIdle = prof.heap
	}
	res, err := r.Run(ctx, p)
	if res != nil {
		res.Load1 = load1
	}
	if prof != nil {
		prof.finish()
	}
	if err != nil {
		return res, fmt.Errorf("%s %s: %w\nbroker log:\n%s", kind, p.Scenario, err, b.LogTail())
	}
	return res, nil
}

func writeJSON(path string, rs []*Result) {
	b, _ := json.MarshalIndent(rs, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "mqim-bench:", err)
	}
}

// loadAvg returns the 1-minute load average (other work on the machine
// skews every figure; the report shows it).
func loadAvg() float64 {
	data, _ := os.ReadFile("/proc/loadavg")
	var l float64
	_, _ = fmt.Sscan(string(data), &l) // unreadable (not Linux): 0, as before
	return l
}
