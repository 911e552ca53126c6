package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// needTool skips the test when a tool is missing on a developer machine,
// and fails it in CI (CI=true), where .ci/run installs every tool: a CI run
// must never pass by skipping.
func needTool(t testing.TB, what, hint string, missing bool) {
	t.Helper()
	if !missing {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s missing in CI (%s)", what, hint)
	}
	t.Skipf("%s not installed (%s)", what, hint)
}

// binPath is the mqim binary built once for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mqim-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "mqim")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mqim:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir) // a temporary directory; the code is the verdict
	os.Exit(code)
}

// proc is one running mqim process.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	stdout  *bytes.Buffer
	mu      sync.Mutex
	logs    []map[string]any
	HTTP    string // base URL of the REST API
	MQTT    string // host:port of MQTT over TCP
	WS      string // host:port of MQTT over WebSocket
	AppID   string
	Key     string
	Master  string
	exited  chan struct{}
	exitErr error
	// cluster is set on the front of a test cluster (cluster_harness_test.go):
	// stop, kill, waitLog and logText then act on every node, and REST
	// calls go through client (one new connection per call).
	cluster *testCluster
	client  *http.Client
}

// startMQIM runs the binary on free ports with data in dataDir and waits
// until every listener is bound. extraEnv overrides the environment.
func startMQIM(t testing.TB, dataDir string, extraEnv ...string) *proc {
	t.Helper()
	return startMQIMArgs(t, dataDir, nil, extraEnv...)
}

// startMQIMConfig is startMQIM with a --config file holding yaml.
func startMQIMConfig(t testing.TB, dataDir, yaml string, extraEnv ...string) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mqim.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return startMQIMArgs(t, dataDir, []string{"--config", path}, extraEnv...)
}

// startMQIMArgs is startMQIM with command-line arguments. With
// MQIM_TEST_CLUSTER=n set it starts a cluster of n nodes on PostgreSQL
// and NATS instead and returns its front (cluster_harness_test.go).
func startMQIMArgs(t testing.TB, dataDir string, args []string, extraEnv ...string) *proc {
	t.Helper()
	if n := clusterSize(); n > 0 {
		return startClusterFront(t, n, dataDir, args, extraEnv...)
	}
	return startProc(t, dataDir, args, extraEnv...)
}

// startProc runs one mqim process (startMQIMArgs outside cluster mode).
func startProc(t testing.TB, dataDir string, args []string, extraEnv ...string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(),
		"MQIM_DATA_DIR="+dataDir,
		"MQIM_HTTP_ADDR=127.0.0.1:0",
		"MQIM_MQTT_ADDR=127.0.0.1:0",
		"MQIM_WS_ADDR=127.0.0.1:0",
		"MQIM_LOG_LEVEL=info",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	p := &proc{t: t, cmd: cmd, stdout: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mqim: %v", err)
	}
	ready := make(chan struct{})
	go p.readLogs(stderr, ready)
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("mqim exited before it was ready: %v\nlogs: %s", p.exitErr, p.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("mqim not ready after 30s; logs: %s", p.logText())
	}
	creds := readCredentials(t, dataDir)
	p.AppID, p.Key, p.Master = creds.AppID, creds.Key, creds.MasterKey
	return p
}

// readLogs parses the JSON log lines and picks up the bound addresses.
func (p *proc) readLogs(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			line = map[string]any{"raw": sc.Text()}
		}
		p.mu.Lock()
		p.logs = append(p.logs, line)
		msg, _ := line["message"].(string)
		addr, _ := line["addr"].(string)
		switch msg {
		case "rest listening":
			p.HTTP = "http://" + addr
		case "mqtt listening":
			switch line["listener"] {
			case "tcp":
				p.MQTT = addr
			case "ws":
				p.WS = addr
			}
		}
		done := p.HTTP != "" && p.MQTT != "" && p.WS != ""
		p.mu.Unlock()
		if done && !signalled {
			signalled = true
			close(ready)
		}
	}
}

// waitLog waits until a log line matches (30s bound a hang, not a
// timing assertion).
func (p *proc) waitLog(t testing.TB, what string, match func(map[string]any) bool) {
	t.Helper()
	if p.cluster != nil {
		testwait.Until(t, "log line "+what+" on a node", 30*time.Second, func() bool {
			for _, n := range p.cluster.nodes() {
				if n.hasLog(match) {
					return true
				}
			}
			return false
		})
		return
	}
	testwait.Until(t, "log line "+what, 30*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, l := range p.logs {
			if match(l) {
				return true
			}
		}
		return false
	})
}

// allLogs returns a copy of the log lines (of every node on a cluster's
// front).
func (p *proc) allLogs() []map[string]any {
	if p.cluster != nil {
		var all []map[string]any
		for _, n := range p.cluster.nodes() {
			if n != nil {
				all = append(all, n.allLogs()...)
			}
		}
		return all
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.logs...)
}

// hasLog reports whether a log line matches.
func (p *proc) hasLog(match func(map[string]any) bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.logs {
		if match(l) {
			return true
		}
	}
	return false
}

func (p *proc) logText() string {
	if p.cluster != nil {
		return p.cluster.logText()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.logs {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if p.cluster != nil {
		p.cluster.stop()
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.exitErr != nil {
			p.t.Fatalf("mqim exit: %v; logs: %s", p.exitErr, p.logText())
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("mqim did not stop within 30s after SIGTERM")
	}
}

// signal sends sig to the process (to every node on a cluster's front,
// whose exited channel then closes once they all ended).
func (p *proc) signal(sig os.Signal) {
	if p.cluster != nil {
		nodes := p.cluster.nodes()
		for _, n := range nodes {
			if n != nil {
				_ = n.cmd.Process.Signal(sig)
			}
		}
		go func() {
			for _, n := range nodes {
				if n != nil {
					<-n.exited
				}
			}
			p.cluster.closeFront()
		}()
		return
	}
	_ = p.cmd.Process.Signal(sig)
}

func (p *proc) kill() {
	if p.cluster != nil {
		p.cluster.kill()
		return
	}
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func readCredentials(t testing.TB, dataDir string) credentials {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "credentials.json"))
	if err != nil {
		t.Fatalf("credentials: %v", err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("credentials: %v", err)
	}
	return c
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Body   []byte
	Header http.Header
}

// JSON decodes the body into v, failing the test on error.
func (r response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// do sends a request signed with a fresh MaxIM signature of the client key.
func (p *proc) do(method, path string, body any) response {
	p.t.Helper()
	return p.doWith(method, path, body, map[string]string{
		"X-ML-AppId":        p.AppID,
		"X-ML-Request-Sign": chat.Sign(p.Key, time.Now().UnixMilli()),
	})
}

func (p *proc) doWith(method, path string, body any, headers map[string]string) response {
	p.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, p.HTTP+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := http.DefaultClient
	if p.client != nil {
		client = p.client
	}
	res, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Body: b, Header: res.Header}
}

// expect fails unless the response has the status.
func expect(t testing.TB, what string, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
	}
}

// expectError fails unless the response is a MaxIM error with status and code.
func expectError(t testing.TB, what string, r response, status, code int) {
	t.Helper()
	expect(t, what, r, status)
	var e struct {
		ErrorCode    int    `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	}
	r.JSON(t, &e)
	if e.ErrorCode != code || e.ErrorMessage == "" {
		t.Fatalf("%s: error body %s, want errorCode %d and a message", what, r.Body, code)
	}
}

// realtimeExample returns the ```sh block that follows <!-- marker --> in
// docs/realtime.md.
func realtimeExample(t *testing.T, marker string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/realtime.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "<!-- "+marker+" -->\n```sh\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatalf("docs/realtime.md has no block after <!-- %s -->", marker)
	}
	return script
}

// runExample runs a docs example against p, as written but for the
// addresses (p's REST base and MQTT host and port instead of the
// defaults), with bash -euo pipefail and APP and KEY set; it returns the
// combined output.
func runExample(t *testing.T, p *proc, script string) []byte {
	t.Helper()
	host, port, _ := net.SplitHostPort(p.MQTT)
	script = strings.NewReplacer("-h 127.0.0.1 -p 1883", "-h "+host+" -p "+port, "http://127.0.0.1:8080", p.HTTP).Replace(script)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(cmd.Environ(), "APP="+p.AppID, "KEY="+p.Key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("example failed: %v\n%s", err, out)
	}
	return out
}

// streamLines starts cmd and returns its standard output line by line (the
// channel is closed when the output ends); cmd is killed when the test
// ends.
func streamLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}
