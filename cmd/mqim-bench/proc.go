package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqim/mqim/chat"
)

// Broker kinds.
const (
	KindMQIM      = "mqim"
	KindMosquitto = "mosquitto"
	KindMochi     = "mochi"
)

// BrokerSpec says how to start one broker under test.
type BrokerSpec struct {
	Kind string
	// Bin is the executable: the mqim binary, mosquitto, or baremochi.
	Bin string
	// MaxConnections is mqim's mqtt.max_connections.
	MaxConnections int
	// PprofAddr, when set, is passed to mqim as MQIM_PPROF_ADDR.
	PprofAddr string
	// SyncWrites is mqim's storage.sync_writes.
	SyncWrites bool

	// Cluster mode (mqim only, docs/scaleout.md): PostgresURL, when set,
	// is storage.postgres_url with storage.driver postgres; NATSURL is
	// cluster.nats_url and NodeID cluster.node_id. The nodes of one
	// deployment share DataDir (credentials, attachments) and the app
	// credentials AppID, Key, MasterKey; empty: a fresh directory and
	// fresh credentials.
	PostgresURL, NATSURL, NodeID string
	DataDir                      string
	AppID, Key, MasterKey        string
}

// Broker is a running broker child process.
type Broker struct {
	Spec BrokerSpec
	// Addr is the MQTT/TCP address, host:port.
	Addr string
	// HTTP is mqim's REST base URL.
	HTTP       string
	AppID, Key string

	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *os.File
}

// MaxIM reports whether the broker speaks the MaxIM protocol (mqim):
// logins are signed, senders publish to say/..., REST sets up friends and
// groups.
func (b *Broker) MaxIM() bool { return b.Spec.Kind == KindMQIM }

// Pid returns the broker's process id.
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().String(), nil
}

// StartBroker starts spec in a fresh directory under workDir and waits
// until its listeners accept connections.
func StartBroker(spec BrokerSpec, workDir string) (*Broker, error) {
	dir, err := os.MkdirTemp(workDir, spec.Kind+"-")
	if err != nil {
		return nil, err
	}
	b := &Broker{Spec: spec, dir: dir}
	if b.Addr, err = freeAddr(); err != nil {
		return nil, err
	}
	var args, env []string
	switch spec.Kind {
	case KindMQIM:
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		b.HTTP = "http://" + httpAddr
		b.AppID, b.Key = "benchapp", chat.RandomHex(15)
		master := chat.RandomHex(15)
		if spec.AppID != "" {
			b.AppID, b.Key, master = spec.AppID, spec.Key, spec.MasterKey
		}
		dataDir := filepath.Join(dir, "data")
		if spec.DataDir != "" {
			dataDir = spec.DataDir
		}
		var extra string
		if spec.PostgresURL != "" {
			extra = fmt.Sprintf("  driver: postgres\n  postgres_url: %q\n", spec.PostgresURL)
		}
		if spec.NATSURL != "" {
			extra += fmt.Sprintf("cluster:\n  nats_url: %q\n  node_id: %q\n", spec.NATSURL, spec.NodeID)
		}
		maxConns := spec.MaxConnections
		if maxConns <= 0 {
			maxConns = 10000
		}
		// Production settings: authentication, ACL, persistence, PUBACK
		// after store; only the addresses, the credentials, the
		// connection limit and the per-user rate limit (a policy, default
		// 100 says/s, below what each simulated user sends) are the
		// bench's.
		conf := fmt.Sprintf(`data_dir: %q
app:
  id: %q
  key: %q
  master_key: %q
http:
  addr: %q
mqtt:
  tcp_addr: %q
  ws_addr: ""
  max_connections: %d
  rate_limit: 0
storage:
  sync_writes: %v
%s`, dataDir, b.AppID, b.Key, master, httpAddr, b.Addr, maxConns, spec.SyncWrites, extra)
		path := filepath.Join(dir, "mqim.yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		args = []string{"--config", path}
		if spec.PprofAddr != "" {
			env = append(env, "MQIM_PPROF_ADDR="+spec.PprofAddr)
		}
	case KindMosquitto:
		host, port, _ := net.SplitHostPort(b.Addr)
		// A pure relay: anonymous, no persistence, defaults otherwise.
		conf := fmt.Sprintf("listener %s %s\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n", port, host)
		path := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		args = []string{"-c", path}
	case KindMochi:
		args = []string{"-addr", b.Addr}
	default:
		return nil, fmt.Errorf("unknown broker kind %q", spec.Kind)
	}
	if b.log, err = os.Create(filepath.Join(dir, spec.Kind+".log")); err != nil {
		return nil, err
	}
	b.cmd = exec.Command(spec.Bin, args...)
	b.cmd.Env = append(os.Environ(), env...)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	// The broker dies with the bench, however the bench ends.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		_ = b.log.Close() // the start error is the one to report
		return nil, fmt.Errorf("start %s: %w", spec.Kind, err)
	}
	b.done = make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	ready := []string{b.Addr}
	if b.HTTP != "" {
		ready = append(ready, strings.TrimPrefix(b.HTTP, "http://"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range ready {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				_ = c.Close() // a probe: the broker accepts connections
				break
			}
			if time.Now().After(deadline) || b.exited() {
				b.Stop()
				return nil, fmt.Errorf("%s did not start listening on %s: %w; log:\n%s", spec.Kind, a, err, b.LogTail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return b, nil
}

func (b *Broker) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// LogTail returns the last lines of the broker's output.
func (b *Broker) LogTail() string {
	data, _ := os.ReadFile(b.log.Name())
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// Stop terminates the broker (SIGTERM, then SIGKILL after 10 s) and removes
// its directory.
func (b *Broker) Stop() {
	if b.done != nil {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	}
	// Teardown of a stopped broker: its log was copied where it mattered,
	// and a data directory left behind sits in the temporary directory.
	if b.log != nil {
		_ = b.log.Close()
	}
	_ = os.RemoveAll(b.dir)
}

// clkTck is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; it is
// 100 on every Linux architecture Go supports.
const clkTck = 100

// CPUTime returns the user plus system CPU time of pid so far.
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// plain. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// Memory returns VmRSS and VmHWM (peak RSS) of pid, in bytes.
func Memory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwm
		default:
			continue
		}
		fs := strings.Fields(line)
		if len(fs) >= 2 {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			*dst = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// rest sends a signed MaxIM REST request to mqim and returns the body.
func (b *Broker) rest(ctx context.Context, method, path, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.HTTP+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-ML-AppId", b.AppID)
	req.Header.Set("X-ML-Request-Sign", chat.Sign(b.Key, time.Now().UnixMilli()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read only
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, out.String())
	}
	return out.Bytes(), nil
}
