package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Process is a broker in a child process owned by the runner, so that a
// crash ends the child and not the test binary, and the runner can restart
// it.
type Process struct {
	launch launcher

	mu     sync.Mutex
	cur    *child
	output *tailBuffer
}

// launcher starts a broker process with out as its stdout and stderr and
// returns it once it listens.
type launcher func(ctx context.Context, out io.Writer) (*child, error)

// child is one running broker process.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when the process has exited and been reaped
}

// startCmd starts cmd and reaps it in the background.
func startCmd(cmd *exec.Cmd) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		// The exit status is not the verdict: the cases' outcomes and the
		// output tail are.
		_ = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// kill ends the process and waits (bounded) until it has been reaped.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Kill() // fails only when it has already exited
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

// startupTimeout bounds how long a broker may take to start listening. A
// race-instrumented child on a busy two-core machine needs a few seconds.
const startupTimeout = 30 * time.Second

func newProcess(ctx context.Context, launch launcher) (*Process, error) {
	p := &Process{launch: launch}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Process) start(ctx context.Context) error {
	out := newTailBuffer(64 << 10)
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	c, err := p.launch(ctx, out)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cur, p.output = c, out
	p.mu.Unlock()
	return nil
}

// Addr returns the current listener address.
func (p *Process) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur.addr
}

// Done is closed when the current process has exited.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur.done
}

// Output returns the tail of the current process's output.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// Restart kills the current process if it still runs and starts a new one.
func (p *Process) Restart(ctx context.Context) error {
	p.mu.Lock()
	c := p.cur
	p.mu.Unlock()
	c.kill()
	return p.start(ctx)
}

// Close stops the process.
func (p *Process) Close() error {
	p.mu.Lock()
	c := p.cur
	p.mu.Unlock()
	c.kill()
	return nil
}

// childListening is the line a child broker prints on stdout once it
// listens: the prefix, then the address.
const childListening = "conformance: listening on "

// ChildEnv names the environment variable that turns a re-executed test
// binary into a broker child (see ServeChild and StartChild).
const ChildEnv = "MQIM_CONFORMANCE_CHILD"

// StartChild runs a broker in a child process by re-executing the current
// binary, a test binary whose TestMain calls ServeChild when ChildEnv is
// set, with ChildEnv set to target. "-test.run=^$" keeps a binary that does
// not know the target from running tests instead. The child exits when its
// stdin reaches EOF, so it cannot outlive this process.
func StartChild(ctx context.Context, target string) (*Process, error) {
	return newProcess(ctx, func(ctx context.Context, out io.Writer) (*child, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), ChildEnv+"="+target)
		lw := &lineWatcher{out: out, prefix: childListening, found: make(chan string, 1)}
		cmd.Stdout, cmd.Stderr = lw, out
		// Held open for the child's lifetime: exec closes it after Wait.
		if _, err := cmd.StdinPipe(); err != nil {
			return nil, err
		}
		c, err := startCmd(cmd)
		if err != nil {
			return nil, err
		}
		select {
		case c.addr = <-lw.found:
			return c, nil
		case <-c.done:
			return nil, fmt.Errorf("child %s exited before listening: %s", target, summarizeOutput(tailOf(out)))
		case <-ctx.Done():
			c.kill()
			return nil, fmt.Errorf("child %s did not listen: %w", target, ctx.Err())
		}
	})
}

// lineWatcher forwards output to out and reports the rest of the first
// line that starts with prefix.
type lineWatcher struct {
	out    io.Writer
	prefix string
	found  chan string
	mu     sync.Mutex
	line   []byte
	done   bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.line = append(w.line, p...)
		for {
			i := bytes.IndexByte(w.line, '\n')
			if i < 0 {
				break
			}
			l := string(w.line[:i])
			w.line = w.line[i+1:]
			if a, ok := strings.CutPrefix(l, w.prefix); ok {
				w.found <- strings.TrimSpace(a)
				w.done = true
				w.line = nil
				break
			}
		}
	}
	return w.out.Write(p)
}

// ServeChild is the body of a broker child process. start starts the
// broker and returns its listener address and a stop function. ServeChild
// announces the address on stdout, then serves until stdin reaches EOF (the
// parent closed it or died), and returns the exit code.
func ServeChild(start func() (addr string, stop func() error, err error)) int {
	addr, stop, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance child:", err)
		return 2
	}
	if _, err := fmt.Fprintln(os.Stdout, childListening+addr); err != nil {
		fmt.Fprintln(os.Stderr, "conformance child: announce:", err)
		_ = stop()
		return 2
	}
	// EOF and a read error both mean the parent is gone.
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance child: stop:", err)
		return 1
	}
	return 0
}

// StartMosquitto runs the mosquitto binary on a free loopback port with a
// minimal configuration (anonymous clients allowed, no persistence),
// writing the configuration file into dir.
func StartMosquitto(ctx context.Context, binary, dir string) (*Process, error) {
	return newProcess(ctx, func(ctx context.Context, out io.Writer) (*child, error) {
		var lastErr error
		// The free port is found by binding and releasing it, so another
		// process can take it first; retry with a new one.
		for range 3 {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			conf := filepath.Join(dir, "mosquitto.conf")
			text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n", port)
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				return nil, err
			}
			cmd := exec.Command(binary, "-c", conf)
			cmd.Stdout, cmd.Stderr = out, out
			c, err := startCmd(cmd)
			if err != nil {
				return nil, err
			}
			c.addr = fmt.Sprintf("127.0.0.1:%d", port)
			if err := waitListening(ctx, c); err != nil {
				c.kill()
				lastErr = fmt.Errorf("mosquitto on %s: %w: %s", c.addr, err, summarizeOutput(tailOf(out)))
				continue
			}
			return c, nil
		}
		return nil, lastErr
	})
}

// waitListening polls c.addr until it accepts a TCP connection, the
// process exits, or ctx ends.
func waitListening(ctx context.Context, c *child) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := net.DialTimeout("tcp", c.addr, time.Second)
		if err == nil {
			_ = conn.Close() // a probe: the child accepts connections
			return nil
		}
		select {
		case <-c.done:
			return errors.New("exited during startup")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func tailOf(w io.Writer) string {
	if t, ok := w.(*tailBuffer); ok {
		return t.String()
	}
	return ""
}

// summarizeOutput picks the informative lines of a broker's dying words:
// a Go panic line and the first frame outside the runtime (without its
// argument values, which change from run to run), or else the last line.
func summarizeOutput(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "panic: ") {
			continue
		}
		s := strings.TrimSpace(l)
		for _, f := range lines[i+1:] {
			f = strings.TrimSpace(f)
			if strings.HasSuffix(f, ")") && !strings.HasPrefix(f, "runtime.") &&
				!strings.HasPrefix(f, "panic(") && !strings.HasPrefix(f, "goroutine ") {
				if j := strings.LastIndex(f, "("); j > 0 {
					f = f[:j]
				}
				return s + " in " + f
			}
		}
		return s
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
