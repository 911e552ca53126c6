package main

// Cluster mode (docs/scaleout.md): mqim on PostgreSQL, one node or several
// sharing one database and one NATS server. The bench creates a fresh
// database on a PostgreSQL server (and drops it after), and runs the NATS
// server as a child process of its own binary (`mqim-bench natsd`, the
// nats-server library), so that its CPU time is read from /proc like the
// nodes'. PostgreSQL is driven with psql (the PostgreSQL client package).

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/mqim/mqim/chat"
)

// Stores.
const (
	StoreBadger   = "badger"
	StorePostgres = "postgres"
)

// DefaultPostgresURL is the server the bench creates its databases on.
const DefaultPostgresURL = "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Shared is what a cluster run measured outside the nodes, over the send
// phase and the drain.
type Shared struct {
	// NATSCPU is the NATS server process's CPU time.
	NATSCPU time.Duration `json:"nats_cpu"`
	// PGCPU is the CPU time of the PostgreSQL backends connected to the
	// bench's database; PGBgCPU that of the server's background processes
	// (WAL writer, checkpointer, background writer, …), which serve every
	// database of the server.
	PGCPU   time.Duration `json:"pg_cpu"`
	PGBgCPU time.Duration `json:"pg_bg_cpu"`
	// What the NATS server received and sent (its varz counters).
	NATSInMsgs   int64 `json:"nats_in_msgs"`
	NATSInBytes  int64 `json:"nats_in_bytes"`
	NATSOutMsgs  int64 `json:"nats_out_msgs"`
	NATSOutBytes int64 `json:"nats_out_bytes"`
	// The bench database's pg_stat_database counters: transactions
	// committed (reads included) and rows written.
	PGXacts    int64 `json:"pg_xacts"`
	PGInserted int64 `json:"pg_inserted"`
	PGUpdated  int64 `json:"pg_updated"`
	PGDeleted  int64 `json:"pg_deleted"`
	// WALBytes is how far the server's WAL advanced (every database of the
	// server: other users of it add theirs).
	WALBytes int64 `json:"wal_bytes"`
}

// deployment is a running cluster-mode setup: nodes, and the database and
// NATS server they share.
type deployment struct {
	nodes    []*Broker
	adminURL string
	db       string
	dataDir  string
	nats     *exec.Cmd
	natsDone chan struct{}
	natsMon  string // http://host:port of the NATS monitoring endpoint
	logf     func(string, ...any)

	// Meter state between Begin and End.
	cpu0    map[int]procCPU
	nats0   varz
	pg0     pgCounters
	natsCPU time.Duration
}

type procCPU struct {
	bg  bool
	cpu time.Duration
}

type varz struct {
	InMsgs   int64 `json:"in_msgs"`
	OutMsgs  int64 `json:"out_msgs"`
	InBytes  int64 `json:"in_bytes"`
	OutBytes int64 `json:"out_bytes"`
}

type pgCounters struct{ xacts, ins, upd, del, wal int64 }

// startDeployment creates a database, starts the NATS server when nodes >
// 1, then the nodes one after the other.
func startDeployment(c *Config, spec BrokerSpec, nodes int, logf func(string, ...any)) (d *deployment, err error) {
	d = &deployment{adminURL: c.PostgresURL, logf: logf}
	if d.adminURL == "" {
		d.adminURL = DefaultPostgresURL
	}
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()
	d.db = "mqimbench_" + chat.RandomHex(6)
	if _, err := psql(d.adminURL, "CREATE DATABASE "+d.db); err != nil {
		return d, fmt.Errorf("create the bench database (is PostgreSQL running? -postgres-url): %w", err)
	}
	dbURL, err := withDatabase(d.adminURL, d.db)
	if err != nil {
		return d, err
	}
	if d.dataDir, err = os.MkdirTemp(c.WorkDir, "mqim-cluster-"); err != nil {
		return d, err
	}
	spec.PostgresURL, spec.DataDir = dbURL, d.dataDir
	spec.AppID, spec.Key, spec.MasterKey = "benchapp", chat.RandomHex(15), chat.RandomHex(15)
	if nodes > 1 {
		if spec.NATSURL, err = d.startNATS(); err != nil {
			return d, err
		}
	}
	for i := range nodes {
		s := spec
		if nodes > 1 {
			s.NodeID = fmt.Sprintf("bench%d", i+1)
		}
		b, err := StartBroker(s, c.WorkDir)
		if err != nil {
			return d, err
		}
		d.nodes = append(d.nodes, b)
	}
	return d, nil
}

// Stop stops the nodes, the NATS server, and drops the database.
func (d *deployment) Stop() {
	for _, b := range d.nodes {
		b.Stop()
	}
	if d.nats != nil {
		_ = d.nats.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.natsDone:
		case <-time.After(5 * time.Second):
			_ = d.nats.Process.Kill()
			<-d.natsDone
		}
	}
	if d.db != "" {
		if _, err := psql(d.adminURL, "DROP DATABASE IF EXISTS "+d.db+" WITH (FORCE)"); err != nil {
			d.logf("drop database %s: %v", d.db, err)
		}
	}
	if d.dataDir != "" {
		_ = os.RemoveAll(d.dataDir)
	}
}

// startNATS starts `mqim-bench natsd` and returns its URL.
func (d *deployment) startNATS() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	mon, err := freeAddr()
	if err != nil {
		return "", err
	}
	d.nats = exec.Command(self, "natsd", "-addr", addr, "-http", mon)
	d.nats.Stdout, d.nats.Stderr = os.Stderr, os.Stderr
	d.nats.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.nats.Start(); err != nil {
		d.nats = nil
		return "", fmt.Errorf("start the NATS server: %w", err)
	}
	d.natsDone = make(chan struct{})
	go func() { _ = d.nats.Wait(); close(d.natsDone) }()
	d.natsMon = "http://" + mon
	for deadline := time.Now().Add(15 * time.Second); ; {
		if _, err := d.varz(); err == nil {
			return "nats://" + addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the NATS server did not start on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *deployment) varz() (varz, error) {
	var v varz
	resp, err := http.Get(d.natsMon + "/varz")
	if err != nil {
		return v, err
	}
	defer func() { _ = resp.Body.Close() }() // read only
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// pgProcs returns the CPU time so far of the backends connected to the
// bench database and of the server's background processes.
func (d *deployment) pgProcs() map[int]procCPU {
	out, err := psql(d.adminURL, fmt.Sprintf(
		"SELECT pid, datname IS DISTINCT FROM '%s' FROM pg_stat_activity WHERE datname = '%s' OR backend_type NOT IN ('client backend', 'autovacuum worker', 'parallel worker', 'walsender')", d.db, d.db))
	m := map[int]procCPU{}
	if err != nil {
		d.logf("pg_stat_activity: %v", err)
		return m
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 2 {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		t, err := CPUTime(pid)
		if err == nil {
			m[pid] = procCPU{bg: f[1] == "t", cpu: t}
		}
	}
	return m
}

func (d *deployment) pgCounters() pgCounters {
	var c pgCounters
	out, err := psql(d.adminURL, fmt.Sprintf(
		"SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint FROM pg_stat_database WHERE datname = '%s'", d.db))
	if err != nil {
		d.logf("pg_stat_database: %v", err)
		return c
	}
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) == 5 {
		v := make([]int64, 5)
		for i := range f {
			v[i], _ = strconv.ParseInt(f[i], 10, 64)
		}
		c = pgCounters{v[0], v[1], v[2], v[3], v[4]}
	}
	return c
}

func (d *deployment) walNow() int64 {
	out, _ := psql(d.adminURL, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
	n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	return n
}

// pgStatsDelay is how long Stop waits before it reads pg_stat_database: an
// idle backend reports its counters within 10 s (PostgreSQL 15).
const pgStatsDelay = 11 * time.Second

// Begin implements Meter.
func (d *deployment) Begin() {
	// The setup's counters (logins, friends, groups) reach the statistics
	// within pgStatsDelay; most are in before the send phase.
	d.pg0 = d.pgCounters()
	d.pg0.wal = d.walNow()
	d.cpu0 = d.pgProcs()
	if d.nats != nil {
		d.nats0, _ = d.varz()
		d.natsCPU, _ = CPUTime(d.nats.Process.Pid)
	}
}

// End implements Meter.
func (d *deployment) End(res *Result) {
	s := &Shared{}
	if d.nats != nil {
		s.NATSCPU, _ = CPUTime(d.nats.Process.Pid)
		s.NATSCPU -= d.natsCPU
		v, _ := d.varz()
		s.NATSInMsgs, s.NATSInBytes = v.InMsgs-d.nats0.InMsgs, v.InBytes-d.nats0.InBytes
		s.NATSOutMsgs, s.NATSOutBytes = v.OutMsgs-d.nats0.OutMsgs, v.OutBytes-d.nats0.OutBytes
	}
	for pid, p := range d.pgProcs() {
		delta := p.cpu - d.cpu0[pid].cpu // a process started since: all of it
		if p.bg {
			s.PGBgCPU += delta
		} else {
			s.PGCPU += delta
		}
	}
	wal := d.walNow()
	time.Sleep(pgStatsDelay)
	c := d.pgCounters()
	s.PGXacts, s.PGInserted = c.xacts-d.pg0.xacts, c.ins-d.pg0.ins
	s.PGUpdated, s.PGDeleted = c.upd-d.pg0.upd, c.del-d.pg0.del
	s.WALBytes = wal - d.pg0.wal
	res.Shared = s
}

// psql runs one SQL statement with the psql client and returns its
// unaligned, tuples-only output.
func psql(dbURL, sql string) (string, error) {
	out, err := exec.Command("psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbURL, "-c", sql).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// withDatabase returns dbURL naming database db.
func withDatabase(dbURL, db string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("-postgres-url %q: a postgres:// URL is needed", dbURL)
	}
	u.Path = "/" + db
	return u.String(), nil
}

// runNATSD is `mqim-bench natsd`: a NATS server (the nats-server library,
// as the cluster tests run it) on 127.0.0.1 with its monitoring endpoint,
// until SIGTERM.
func runNATSD(args []string) error {
	fs := flag.NewFlagSet("mqim-bench natsd", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:4222", "client address")
	mon := fs.String("http", "", "monitoring address (empty: none)")
	_ = fs.Parse(args)
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	o := &natsserver.Options{Host: host, NoLog: true, NoSigs: true}
	if o.Port, err = strconv.Atoi(port); err != nil {
		return err
	}
	if *mon != "" {
		h, p, err := net.SplitHostPort(*mon)
		if err != nil {
			return err
		}
		o.HTTPHost = h
		if o.HTTPPort, err = strconv.Atoi(p); err != nil {
			return err
		}
	}
	ns, err := natsserver.NewServer(o)
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats server not ready on %s", *addr)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ns.Shutdown()
	return nil
}
