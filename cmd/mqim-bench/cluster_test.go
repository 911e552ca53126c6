package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the NATS server child of cluster runs
// (`mqim-bench natsd`, started from os.Executable()).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "natsd" {
		if err := runNATSD(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "natsd:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// postgresForBench returns the admin URL of the PostgreSQL server the bench
// may create databases on (MQIM_TEST_POSTGRES_URL, else the local default);
// without one the test skips, or fails under CI=true.
func postgresForBench(t *testing.T) string {
	u := os.Getenv("MQIM_TEST_POSTGRES_URL")
	if u == "" {
		u = DefaultPostgresURL
	}
	_, err := exec.LookPath("psql")
	if err == nil {
		_, err = psql(u, "SELECT 1")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL (psql and a server at %s) is required under CI: %v", u, err)
		}
		t.Skipf("no PostgreSQL for the cluster bench: %v", err)
	}
	return u
}

// TestSmoke_Cluster runs friend and group briefly on one PostgreSQL node
// and on two nodes over NATS: everything delivered once, the shared parts
// measured, and the bench database dropped after.
func TestSmoke_Cluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the mqim binary")
	}
	pg := postgresForBench(t)
	raiseFileLimit()
	dir := t.TempDir()
	bin := filepath.Join(dir, "mqim")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/mqim/mqim/cmd/mqim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	before, err := psql(pg, "SELECT count(*) FROM pg_database WHERE datname LIKE 'mqimbench_%'")
	if err != nil {
		t.Fatal(err)
	}
	for _, nodes := range []int{1, 2} {
		for _, sc := range []string{ScenarioFriend, ScenarioGroup} {
			c := &Config{
				MQIMBin: bin, WorkDir: dir, PostgresURL: pg,
				Store: StorePostgres, Nodes: nodes, ConnectWorkers: 1,
				Pairs: 2, InFlight: 4, Groups: 1, GroupSize: 6,
				Duration: 700 * time.Millisecond,
			}
			r, err := runOne(context.Background(), c, KindMQIM, c.params(sc, 0), t.Logf)
			if err != nil {
				t.Fatalf("%d nodes %s: %v", nodes, sc, err)
			}
			printResult(testWriter{t}, r)
			printShared(testWriter{t}, r)
			if r.Delivered == 0 || r.Lost != 0 || r.Dups != 0 || len(r.Errors) > 0 {
				t.Errorf("%d nodes %s: delivered %d, lost %d, dups %d, errors %q", nodes, sc, r.Delivered, r.Lost, r.Dups, r.Errors)
			}
			sh := r.Shared
			if r.Nodes != nodes || sh == nil {
				t.Fatalf("%d nodes %s: nodes %d, shared %+v", nodes, sc, r.Nodes, sh)
			}
			if sh.PGInserted == 0 || sh.WALBytes <= 0 {
				t.Errorf("%d nodes %s: PostgreSQL rows inserted %d, WAL %d bytes; want both > 0", nodes, sc, sh.PGInserted, sh.WALBytes)
			}
			if crossing := nodes > 1; crossing != (sh.NATSInMsgs > 0) {
				t.Errorf("%d nodes %s: %d NATS messages", nodes, sc, sh.NATSInMsgs)
			}
		}
	}
	after, err := psql(pg, "SELECT count(*) FROM pg_database WHERE datname LIKE 'mqimbench_%'")
	if err != nil {
		t.Fatal(err)
	}
	if n0, n1 := atoi(before), atoi(after); n1 > n0 {
		t.Errorf("bench databases left behind: %s before, %s after", before, after)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}
