package conformance

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Broker is a broker under test.
type Broker interface {
	// Addr is the host:port of its MQTT TCP listener. It may change after
	// Restart.
	Addr() string
	// Done is closed when the broker's process has exited. A broker whose
	// process the runner does not own returns nil, which never fires.
	Done() <-chan struct{}
	// Output returns the tail of the broker's output (a Go panic, for
	// example), or "" if unknown.
	Output() string
	// Restart replaces a dead or unresponsive broker with a fresh one. It
	// returns ErrNoRestart if the runner does not own the process.
	Restart(ctx context.Context) error
}

// ErrNoRestart is returned by Broker.Restart when the broker cannot be
// restarted by the runner.
var ErrNoRestart = errors.New("conformance: broker cannot be restarted")

// Address is a Broker the runner does not own: an address to connect to.
// The runner can tell that it stopped answering, but cannot restart it.
type Address string

// Addr returns a.
func (a Address) Addr() string { return string(a) }

// Done returns nil: nothing is known about the process.
func (a Address) Done() <-chan struct{} { return nil }

// Output returns "".
func (a Address) Output() string { return "" }

// Restart returns ErrNoRestart.
func (a Address) Restart(context.Context) error { return ErrNoRestart }

// Runner replays catalogue cases against a broker.
type Runner struct {
	Broker Broker
	// Timeout bounds every read and write of a case and of the health
	// check; default 2 s.
	Timeout time.Duration
	// Concurrency is the number of cases run at the same time; default 8.
	Concurrency int
	// Logf, if set, gets a line for every crash and restart.
	Logf func(format string, args ...any)
}

// Run executes cases and returns a report with one result per case, in
// the order given. Cases run concurrently, except that cases that could
// disturb each other run one after the other in catalogue order (see
// newPlan). After every case the runner checks that the broker still
// accepts a normal connection. If it does not, the runner waits for the
// running cases to finish, restarts the broker and re-runs the recent
// cases alone until it knows which of them kill it: those are the crashes.
// If the broker cannot be restarted, the remaining cases are NotRun.
func (r *Runner) Run(ctx context.Context, cases []*Case) *Report {
	start := time.Now()
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	workers := r.Concurrency
	if workers <= 0 {
		workers = 8
	}
	st := &runState{
		r:       r,
		timeout: timeout,
		results: make(map[*Case]Result, len(cases)),
	}
	p := newPlan(cases)
	st.watch()

	// Workers take the runnable case that heads the longest chain of
	// waiting cases; finishing a case may make the cases waiting for it
	// runnable.
	var (
		mu        sync.Mutex
		cond      = sync.NewCond(&mu)
		ready     = &readyQueue{p: p}
		remaining = len(p.cases)
		deps      = append([]int(nil), p.deps...)
	)
	for i, d := range deps {
		if d == 0 {
			heap.Push(ready, i)
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				for ready.Len() == 0 && remaining > 0 {
					cond.Wait()
				}
				if ready.Len() == 0 {
					mu.Unlock()
					return
				}
				i := heap.Pop(ready).(int)
				mu.Unlock()

				st.run(ctx, p.cases[i], w)

				mu.Lock()
				remaining--
				for _, j := range p.next[i] {
					if deps[j]--; deps[j] == 0 {
						heap.Push(ready, j)
					}
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// A broker that dies a moment after the last case ran would escape
	// every health check; give it the settle time, then look once more.
	if !st.aborted.Load() && ctx.Err() == nil {
		st.waitExit(settle)
		if err := st.health(ctx, 0); err != nil {
			st.recover(ctx, err)
		}
	}
	for _, c := range p.final {
		st.run(ctx, c, 0)
	}

	rep := &Report{Elapsed: time.Since(start), Restarts: st.restarts}
	for _, c := range cases {
		rep.Results = append(rep.Results, st.results[c])
	}
	return rep
}

// runState is the shared state of one Run.
type runState struct {
	r       *Runner
	timeout time.Duration
	// gate lets cases run concurrently (read side) and gives crash
	// recovery the broker to itself (write side).
	gate    sync.RWMutex
	aborted atomic.Bool

	mu       sync.Mutex
	results  map[*Case]Result
	history  []finished // every case run concurrently, in completion order
	exitedAt time.Time  // when the current broker process exited; zero while it runs
	restarts int
}

// finished is a case that ran concurrently with others.
type finished struct {
	c        *Case
	end      time.Time
	survived bool // the broker demonstrably outlived the case's input
	isolated bool // re-run alone since
}

// lookback is how long before the broker's death (its process exit, or
// else the failed health check) a case may have finished and still be the
// one that killed it. A Go broker that panics closes the connection in
// deferred calls and keeps accepting, even answering, connections for a
// few milliseconds while the runtime prints the stack, so the health
// check right after the culprit can pass.
const lookback = 500 * time.Millisecond

// settle is how long a case run alone gets to kill the broker after the
// broker closed its connection, for the same reason.
const settle = 250 * time.Millisecond

func (st *runState) logf(format string, args ...any) {
	if st.r.Logf != nil {
		st.r.Logf(format, args...)
	}
}

func (st *runState) record(c *Case, res Result) {
	st.mu.Lock()
	st.results[c] = res
	st.mu.Unlock()
}

// watch records when the current broker process exits.
func (st *runState) watch() {
	done := st.r.Broker.Done()
	if done == nil {
		return
	}
	st.mu.Lock()
	st.exitedAt = time.Time{}
	st.mu.Unlock()
	go func() {
		<-done
		st.mu.Lock()
		st.exitedAt = time.Now()
		st.mu.Unlock()
	}()
}

// run executes one case and the health check after it.
func (st *runState) run(ctx context.Context, c *Case, worker int) {
	if st.aborted.Load() || ctx.Err() != nil {
		st.record(c, Result{Case: c, Outcome: NotRun, Reason: "run stopped before this case"})
		return
	}
	st.gate.RLock()
	res := RunCase(ctx, st.r.Broker.Addr(), c, st.timeout)
	err := st.health(ctx, worker)
	st.mu.Lock()
	st.results[c] = res
	st.history = append(st.history, finished{c: c, end: time.Now(), survived: survived(res)})
	st.mu.Unlock()
	// The case is in history before the gate opens, so recovery, which
	// needs the whole gate, sees every case that ran against the broker.
	st.gate.RUnlock()
	if err != nil && ctx.Err() == nil {
		st.recover(ctx, err)
	}
}

// survived reports whether the broker answered, or kept the connection
// open for a timeout, after the last bytes the case sent: then it
// processed them without dying, and the case cannot be a crash.
func survived(res Result) bool {
	switch res.Class {
	case "":
		return res.Outcome == Pass && !res.Case.ExpectDisconnect
	case ClassNoReply, ClassNotClosed, ClassExtraOpen, ClassPing, ClassHang:
		return true
	}
	return false
}

// recover handles a broker found down. Several cases were running and the
// culprit may have finished a moment before the broker died, so, with the
// broker to itself, it restarts the broker and re-runs alone every case
// that finished within the lookback, was not re-run yet, and could have
// killed it (see isolate).
func (st *runState) recover(ctx context.Context, first error) {
	st.gate.Lock()
	defer st.gate.Unlock()
	if st.aborted.Load() {
		return
	}
	if err := st.health(ctx, 0); err == nil {
		// Someone else recovered it, or it was a blip; either way the
		// cases that ran meanwhile were handled then.
		return
	}
	words := st.lastWords(st.timeout)
	st.mu.Lock()
	anchor := st.exitedAt
	if anchor.IsZero() {
		anchor = time.Now()
	}
	var suspects []*Case
	for i := range st.history {
		h := &st.history[i]
		if !h.isolated && !h.survived && !h.end.Before(anchor.Add(-lookback)) {
			h.isolated = true
			suspects = append(suspects, h.c)
		}
	}
	st.mu.Unlock()
	sort.Slice(suspects, func(i, j int) bool { return suspects[i].Index < suspects[j].Index })
	st.logf("broker down (%v)%s; re-running %d recent cases alone", first, words, len(suspects))
	if !st.restart(ctx) {
		for _, c := range suspects {
			st.record(c, Result{Case: c, Outcome: Crash, Class: ClassCrash,
				Reason: fmt.Sprintf("broker down after this or a concurrent case, and it cannot be restarted: %v%s", first, words)})
		}
		return
	}
	if len(suspects) > 0 {
		st.isolate(ctx, suspects)
	}
}

// isolate runs cases one after another with no other traffic, then gives
// the broker the settle time to die. If it survives, the results stand.
// If it dies, it is restarted and each half of cases is isolated in turn,
// down to the single cases that kill it, which are crashes. Waiting only
// once per group keeps this cheap: the suspects are many, the culprits
// few. It reports whether some case reproduced the crash.
func (st *runState) isolate(ctx context.Context, cases []*Case) bool {
	results := make([]Result, len(cases))
	for i, c := range cases {
		if ctx.Err() != nil {
			return false
		}
		results[i] = RunCase(ctx, st.r.Broker.Addr(), c, st.timeout)
		results[i].Isolated = true
	}
	var err error
	if st.waitExit(settle) {
		err = errors.New("process exited")
	} else {
		err = st.health(ctx, 0)
	}
	if err == nil {
		for i, c := range cases {
			st.record(c, results[i])
		}
		return false
	}
	why := "broker stopped accepting connections"
	if st.exited() {
		why = "broker process exited"
	}
	words := st.lastWords(st.timeout)
	if len(cases) == 1 {
		c := cases[0]
		st.logf("crash: %s: %s%s", c, why, words)
		res := results[0]
		res.Outcome, res.Class = Crash, ClassCrash
		res.Reason = fmt.Sprintf("%s after this case, run alone%s", why, words)
		st.record(c, res)
		st.restart(ctx)
		return true
	}
	if !st.restart(ctx) {
		return true
	}
	mid := len(cases) / 2
	found := st.isolate(ctx, cases[:mid])
	if st.aborted.Load() {
		return found
	}
	if st.isolate(ctx, cases[mid:]) || found {
		return true
	}
	// Together they killed it, apart they do not: report it on the last
	// one, with the others named, rather than lose it.
	c := cases[len(cases)-1]
	st.logf("crash not reproduced by a single case: %d cases up to %s: %s%s", len(cases), c, why, words)
	res := results[len(results)-1]
	res.Outcome, res.Class = Crash, ClassCrash
	res.Reason = fmt.Sprintf("%s while this and %d other cases ran alone one after another (first %s), but no single case reproduces it%s",
		why, len(cases)-1, cases[0], words)
	st.record(c, res)
	return true
}

func (st *runState) exited() bool {
	select {
	case <-st.r.Broker.Done():
		return true
	default:
		return false
	}
}

// waitExit waits up to d for the broker process to exit and reports
// whether it did.
func (st *runState) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-st.r.Broker.Done():
		return true
	case <-t.C:
		return false
	}
}

// lastWords waits up to d for a dying broker process to exit and returns
// its last output, formatted for a reason string.
func (st *runState) lastWords(d time.Duration) string {
	if !st.waitExit(d) {
		return ""
	}
	return lastWords(st.r.Broker.Output())
}

// restart restarts the broker, or aborts the run if that is impossible.
func (st *runState) restart(ctx context.Context) bool {
	if err := st.r.Broker.Restart(ctx); err != nil {
		st.logf("cannot restart broker: %v; stopping the run", err)
		st.aborted.Store(true)
		return false
	}
	st.restarts++
	st.watch()
	if err := st.health(ctx, 0); err != nil {
		st.logf("restarted broker is not healthy: %v; stopping the run", err)
		st.aborted.Store(true)
		return false
	}
	return true
}

// health checks that the broker accepts a normal MQTT 3.1.1 connection.
// One retry absorbs a slow accept on a loaded machine.
func (st *runState) health(ctx context.Context, worker int) error {
	var err error
	for range 2 {
		if st.exited() {
			return errors.New("process exited")
		}
		if err = Ping(ctx, st.r.Broker.Addr(), fmt.Sprintf("conformance-health-%d", worker), st.timeout); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return err
}

// Ping opens a normal MQTT 3.1.1 connection to addr (clean session, the
// given client id), expects CONNACK 0, and disconnects. It is the health
// check the runner uses between cases.
func Ping(ctx context.Context, addr, clientID string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // teardown, as in runCase
	s := &session{ctx: ctx, conn: conn, timeout: timeout}
	s.write(ConnectPacket(4, clientID))
	if err := s.expectConnack("health CONNACK"); err != nil {
		return err
	}
	s.write([]byte{typeDisconnect << 4, 0x00})
	return s.writeErr
}

// lastWords formats the first panic or error line of a broker's output.
func lastWords(out string) string {
	if out == "" {
		return ""
	}
	return "; broker output: " + summarizeOutput(out)
}
