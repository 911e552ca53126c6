package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSmoke keeps the harness from rotting: every scenario runs briefly
// against mqim (the real binary, built here; friend-sio on mqim only) and
// bare mochi, and against Mosquitto when it is installed, and must deliver something, lose nothing
// and duplicate nothing. How fast does not matter here.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs broker binaries")
	}
	raiseFileLimit()
	dir := t.TempDir()
	build := func(name, pkg string) string {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		return out
	}
	c := &Config{
		MQIMBin:      build("mqim", "github.com/mqim/mqim/cmd/mqim"),
		MochiBin:     build("baremochi", "github.com/mqim/mqim/cmd/mqim-bench/internal/baremochi"),
		MosquittoBin: findMosquitto(),
		WorkDir:      dir,
		Pairs:        2, InFlight: 8,
		Groups: 2, GroupSize: 50,
		Conns:    50,
		Duration: 700 * time.Millisecond,
	}
	brokers := []string{KindMQIM, KindMochi}
	if c.MosquittoBin != "" {
		brokers = append(brokers, KindMosquitto)
	} else {
		t.Log("mosquitto not installed: skipped")
	}
	for _, kind := range brokers {
		scenarios := []string{ScenarioFriend, ScenarioGroup, ScenarioConns}
		if kind == KindMQIM {
			scenarios = append(scenarios, ScenarioFriendSIO)
		}
		for _, sc := range scenarios {
			for _, rate := range []float64{0, 200} {
				if rate > 0 && sc != ScenarioFriend {
					continue
				}
				r, err := runOne(context.Background(), c, kind, c.params(sc, rate), t.Logf)
				if err != nil {
					t.Fatalf("%s %s: %v", kind, sc, err)
				}
				printResult(testWriter{t}, r)
				if r.Delivered == 0 || r.Lost != 0 || r.Dups != 0 || len(r.Errors) > 0 {
					t.Errorf("%s %s (rate %v): delivered %d, lost %d, dups %d, errors %q; want delivered > 0 and nothing lost, duplicated or failed",
						kind, sc, rate, r.Delivered, r.Lost, r.Dups, r.Errors)
				}
				if sc == ScenarioConns && r.Connected != c.Conns {
					t.Errorf("%s conns: %d of %d connected", kind, r.Connected, c.Conns)
				}
			}
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func TestHist(t *testing.T) {
	var h Hist
	for i := 1; i <= 10000; i++ {
		h.Add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0.999, 9990 * time.Microsecond}} {
		got := h.Quantile(c.q)
		if d := got - c.want; d < -c.want/25 || d > c.want/25 {
			t.Errorf("Quantile(%v) = %v, want %v ± 4%%", c.q, got, c.want)
		}
	}
	if h.Max() != 10*time.Millisecond {
		t.Errorf("Max = %v", h.Max())
	}
}

func TestParseBody(t *testing.T) {
	p := appendSay(nil, 12, 345, 6789)
	ev := []byte(`{"from":{"id":"a","type":0},"to":{"id":"b","type":0},"content":{"media":0,"body":"12.345.6789"},"ts":1}`)
	for _, b := range [][]byte{p, ev} {
		s, q, ts, ok := parseBody(b)
		if !ok || s != 12 || q != 345 || ts != 6789 {
			t.Errorf("parseBody(%s) = %d %d %d %v", b, s, q, ts, ok)
		}
	}
	if _, _, _, ok := parseBody([]byte(`{"content":{"body":"hello"}}`)); ok {
		t.Error("parseBody accepted a foreign body")
	}
}
