package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// crashyBroker is an in-process Broker that "crashes" on an AUTH packet
// carrying "kill" the way a panicking Go broker does: the offending
// connection is closed at once (deferred calls run first), the listener
// and the other connections only a moment later, when the process exits.
// In between, new connections still work, so the health check right
// after the culprit passes.
type crashyBroker struct {
	dying time.Duration

	mu  sync.Mutex
	cur *incarnation
	wg  sync.WaitGroup
}

// incarnation is one "process" of a crashyBroker.
type incarnation struct {
	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	done  chan struct{}
}

func newCrashyBroker(t *testing.T, dying time.Duration) *crashyBroker {
	b := &crashyBroker{dying: dying}
	if err := b.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.current().die()
		b.wg.Wait()
	})
	return b
}

func (b *crashyBroker) current() *incarnation {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur
}

func (b *crashyBroker) Addr() string          { return b.current().ln.Addr().String() }
func (b *crashyBroker) Done() <-chan struct{} { return b.current().done }
func (b *crashyBroker) Output() string {
	return "panic: kill packet\n\ngoroutine 7 [running]:\nfake.(*broker).read(0x1)\n"
}

func (b *crashyBroker) Restart(context.Context) error {
	if cur := b.current(); cur != nil {
		cur.die()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	inc := &incarnation{ln: ln, conns: map[net.Conn]bool{}, done: make(chan struct{})}
	b.mu.Lock()
	b.cur = inc
	b.mu.Unlock()
	b.wg.Add(1)
	go b.accept(inc)
	return nil
}

// die ends the incarnation: listener, connections, Done.
func (inc *incarnation) die() {
	inc.mu.Lock()
	defer inc.mu.Unlock()
	select {
	case <-inc.done:
		return
	default:
	}
	inc.ln.Close()
	for c := range inc.conns {
		c.Close()
	}
	close(inc.done)
}

func (b *crashyBroker) accept(inc *incarnation) {
	defer b.wg.Done()
	for {
		c, err := inc.ln.Accept()
		if err != nil {
			return
		}
		inc.mu.Lock()
		select {
		case <-inc.done: // accepted just before the listener closed
			inc.mu.Unlock()
			c.Close()
			continue
		default:
		}
		inc.conns[c] = true
		inc.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			b.serve(inc, c)
		}()
	}
}

func (b *crashyBroker) serve(inc *incarnation, c net.Conn) {
	if !serveConnack(c) {
		return
	}
	for {
		p := readPacket(c)
		switch {
		case p == nil:
			return
		case p[0] == 0xC0:
			c.Write(pingresp)
		case p[0] == 0xF0 && string(p[2:]) == "kill":
			if b.dying == 0 {
				// Dead before the client sees the close: an AfterFunc
				// may run late on a loaded machine, and the next case
				// would find the broker still alive.
				inc.die()
				return
			}
			c.Close()
			time.AfterFunc(b.dying, inc.die)
			return
		default:
			return // protocol error: close
		}
	}
}

func pingPong(t *testing.T, name string) *Case {
	return &Case{File: "T.json", Group: "g", Name: name, Ver: 4, Connect: true,
		Steps: []Step{{Kind: StepSend, Data: pingreq}, {Kind: StepRecv, Data: pingresp}}}
}

func killer(t *testing.T, name string) *Case {
	return &Case{File: "T.json", Group: "g", Name: name, Ver: 4, Connect: true, ExpectDisconnect: true,
		Steps: []Step{{Kind: StepSend, Data: mustPayload(t, "F0 r4 'kill'")}}}
}

func catalogue(cases ...*Case) []*Case {
	for i, c := range cases {
		c.Index = i
	}
	return cases
}

func TestRunner_FindsCrashes(t *testing.T) {
	t.Parallel()
	var cases []*Case
	for i := range 40 {
		switch i {
		case 7, 23:
			cases = append(cases, killer(t, fmt.Sprintf("killer %d", i)))
		default:
			cases = append(cases, pingPong(t, fmt.Sprintf("ok %d", i)))
		}
	}
	catalogue(cases...)
	b := newCrashyBroker(t, 20*time.Millisecond)
	r := Runner{Broker: b, Timeout: testTimeout, Concurrency: 4, Logf: t.Logf}
	rep := r.Run(context.Background(), cases)
	for i, res := range rep.Results {
		want := Pass
		if i == 7 || i == 23 {
			want = Crash
		}
		if res.Outcome != want {
			t.Errorf("%s: %s (%s), want %s", res.Case, res.Outcome, res.Reason, want)
		}
	}
	if rep.Restarts < 2 {
		t.Errorf("Restarts = %d, want at least 2", rep.Restarts)
	}
	_, total := rep.Tallies()
	if total.Crashes != 2 || total.Passed != 38 {
		t.Errorf("total = %+v", total)
	}
}

// Not parallel: once the fake broker is dead its port is free, and another
// test's fake broker could be given it and answer the cases that follow.
func TestRunner_UnownedBrokerStops(t *testing.T) {
	b := newCrashyBroker(t, 0)
	cases := catalogue(pingPong(t, "a"), killer(t, "k"), pingPong(t, "b"), pingPong(t, "c"))
	// Address hides the process: the runner cannot see it die or restart it.
	r := Runner{Broker: Address(b.Addr()), Timeout: testTimeout, Concurrency: 1}
	rep := r.Run(context.Background(), cases)
	got := []Outcome{}
	for _, res := range rep.Results {
		got = append(got, res.Outcome)
	}
	// The case running when the broker is found dead may be blamed too;
	// what matters is that nothing after the killer passes and the run
	// ends with the rest not run.
	if len(got) != 4 || got[0] != Pass || got[1] != Crash || got[3] != NotRun || (got[2] != Crash && got[2] != NotRun) {
		t.Errorf("outcomes = %v, want [pass crash crash|not-run not-run]", got)
	}
}

func TestRunner_Cancelled(t *testing.T) {
	t.Parallel()
	b := newCrashyBroker(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Runner{Broker: b, Timeout: testTimeout}
	rep := r.Run(ctx, catalogue(pingPong(t, "a"), pingPong(t, "b")))
	for _, res := range rep.Results {
		if res.Outcome != NotRun {
			t.Errorf("%s: %s, want not run", res.Case, res.Outcome)
		}
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	b := newCrashyBroker(t, 0)
	if err := Ping(context.Background(), b.Addr(), "x", testTimeout); err != nil {
		t.Fatalf("Ping() = %v", err)
	}
	b.current().die()
	if err := Ping(context.Background(), b.Addr(), "x", testTimeout); err == nil {
		t.Fatal("Ping() of a dead broker succeeded")
	}
	var ce *caseError
	addr := fakeBroker(t, func(c net.Conn) { readPacket(c) })
	if err := Ping(context.Background(), addr, "x", testTimeout); !errors.As(err, &ce) {
		t.Fatalf("Ping() without CONNACK = %v", err)
	}
}
