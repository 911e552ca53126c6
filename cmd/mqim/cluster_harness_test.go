package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/mqim/mqim/internal/testwait"
	"github.com/mqim/mqim/storage/postgres/pgtest"
)

// The cluster harness: n real mqim binaries on one PostgreSQL database and
// one NATS server (run inside the test binary), sharing one data dir, and
// a front that sends each new TCP connection (REST, MQTT, MQTT over
// WebSocket) to a random live node. With MQIM_TEST_CLUSTER=n (make
// test-cluster) startMQIM and friends return such a front, so the
// end-to-end suites run with every client and every REST call on a random
// node.

// clusterSize returns MQIM_TEST_CLUSTER (0: one process per startMQIM).
func clusterSize() int {
	n, _ := strconv.Atoi(os.Getenv("MQIM_TEST_CLUSTER"))
	return n
}

// singleNodeOnly skips t in cluster mode: the test is about one process.
func singleNodeOnly(t testing.TB, why string) {
	t.Helper()
	if clusterSize() > 0 {
		t.Skipf("single node only: %s", why)
	}
}

// testCluster is n mqim nodes on one database, one NATS server, one data dir.
type testCluster struct {
	t       testing.TB
	DB      string             // the PostgreSQL URL the nodes share
	NATS    *natsserver.Server // stop it with NATS.Shutdown()
	NATSURL string
	Dir     string // the shared data dir
	args    []string
	env     []string // for every node

	// frontAddr holds the addresses the front must listen on, by
	// variable (MQIM_HTTP_ADDR, MQIM_MQTT_ADDR, MQIM_WS_ADDR given to
	// startNodes: a test restarting "on the same ports").
	frontAddr map[string]string

	mu        sync.Mutex
	Nodes     []*proc // read through nodes() while proxies run
	front     *proc
	hits      []int // connections the front sent to each node
	listeners []net.Listener
}

// Hits returns how many connections the front sent to each node.
func (c *testCluster) Hits() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.hits...)
}

// clusterDBs keeps the database of a data dir, so that a test that stops
// its server and starts a new one on the same data dir (a restart) finds
// its data again in cluster mode.
var clusterDBs sync.Map // dataDir → URL

// startNodes starts n nodes on a fresh database sharing dataDir: node 0
// first (it writes credentials.json), then the others in parallel.
func startNodes(t testing.TB, n int, dataDir string, extraEnv ...string) *testCluster {
	t.Helper()
	return startNodesArgs(t, n, dataDir, nil, extraEnv...)
}

// startNodesArgs is startNodes with command-line arguments for every node.
func startNodesArgs(t testing.TB, n int, dataDir string, args []string, extraEnv ...string) *testCluster {
	t.Helper()
	url, ok := clusterDBs.Load(dataDir)
	if !ok {
		url = pgtest.URL(t)
		clusterDBs.Store(dataDir, url)
		t.Cleanup(func() { clusterDBs.Delete(dataDir) })
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(ns.Shutdown)
	c := &testCluster{t: t, DB: url.(string), NATS: ns, NATSURL: ns.ClientURL(), Dir: dataDir, args: args,
		frontAddr: map[string]string{}, Nodes: make([]*proc, n), hits: make([]int, n)}
	// The listen addresses are the front's: the nodes keep port 0.
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "MQIM_HTTP_ADDR", "MQIM_MQTT_ADDR", "MQIM_WS_ADDR":
			c.frontAddr[k] = v
		default:
			c.env = append(c.env, kv)
		}
	}
	c.Nodes[0] = c.startNode(t, 0)
	var wg sync.WaitGroup
	fails := make([]string, n)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// startProc calls t.Fatal, which must run on the test's
			// goroutine: a sub-recorder reports the failure back.
			r := &startRecorder{TB: t}
			func() {
				defer func() {
					if v := recover(); v != nil && v != errStartFailed {
						panic(v)
					}
				}()
				p := c.startNode(r, i)
				c.mu.Lock()
				c.Nodes[i] = p
				c.mu.Unlock()
			}()
			fails[i] = r.failure
		}()
	}
	wg.Wait()
	for i, f := range fails {
		if f != "" {
			t.Fatalf("node %d: %s", i, f)
		}
	}
	return c
}

// startRecorder turns the Fatal of a node start on another goroutine into
// a message.
type startRecorder struct {
	testing.TB
	failure string
}

var errStartFailed = fmt.Errorf("node start failed")

func (r *startRecorder) Fatal(args ...any) { r.failure = fmt.Sprint(args...); panic(errStartFailed) }
func (r *startRecorder) Fatalf(f string, args ...any) {
	r.failure = fmt.Sprintf(f, args...)
	panic(errStartFailed)
}
func (r *startRecorder) FailNow() { r.failure = "failed"; panic(errStartFailed) }

// startNode runs node i of the cluster.
func (c *testCluster) startNode(t testing.TB, i int) *proc {
	t.Helper()
	env := append([]string{
		"MQIM_STORAGE_DRIVER=postgres",
		"MQIM_POSTGRES_URL=" + c.DB,
		"MQIM_NATS_URL=" + c.NATSURL,
		"MQIM_NODE_ID=node" + strconv.Itoa(i),
	}, c.env...)
	p := startProc(t, c.Dir, c.args, env...)
	p.t = c.t
	return p
}

// StartNode starts a new node i (the old one must have ended) on the same
// database, NATS server and data dir; the front sends connections to it.
func (c *testCluster) StartNode(t testing.TB, i int) *proc {
	t.Helper()
	p := c.startNode(t, i)
	c.mu.Lock()
	c.Nodes[i] = p
	c.mu.Unlock()
	return p
}

// nodes returns the current nodes.
func (c *testCluster) nodes() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*proc(nil), c.Nodes...)
}

// live returns the indexes of the nodes that run.
func (c *testCluster) live() []int {
	var out []int
	for i, n := range c.nodes() {
		if n == nil {
			continue
		}
		select {
		case <-n.exited:
		default:
			out = append(out, i)
		}
	}
	return out
}

// Front returns the cluster's balancer: a proc whose HTTP, MQTT and WS
// addresses send each new connection to a random live node, with the
// app's credentials; its REST calls open one connection each (so each
// lands on a random node). stop, kill, waitLog and logText on it act on
// every node.
func (c *testCluster) Front() *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.front != nil {
		return c.front
	}
	n0 := c.Nodes[0]
	f := &proc{t: c.t, stdout: n0.stdout, exited: make(chan struct{}), cluster: c,
		AppID: n0.AppID, Key: n0.Key, Master: n0.Master,
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	f.HTTP = "http://" + c.proxy(c.frontAddr["MQIM_HTTP_ADDR"], func(p *proc) string { return strings.TrimPrefix(p.HTTP, "http://") })
	f.MQTT = c.proxy(c.frontAddr["MQIM_MQTT_ADDR"], func(p *proc) string { return p.MQTT })
	f.WS = c.proxy(c.frontAddr["MQIM_WS_ADDR"], func(p *proc) string { return p.WS })
	c.front = f
	return f
}

// proxy listens on listen (127.0.0.1:0 if empty) and sends each
// connection to addr of a random live node (another one if a dial fails);
// it returns its address. It is called with c.mu held.
func (c *testCluster) proxy(listen string, addr func(*proc) string) string {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		c.t.Fatal(err)
	}
	c.listeners = append(c.listeners, l)
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(cn net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			conns[cn] = true
		} else {
			delete(conns, cn)
		}
	}
	c.t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for cn := range conns {
			_ = cn.Close()
		}
	})
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				var out net.Conn
				nodes := c.live()
				rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
				all := c.nodes()
				for _, i := range nodes {
					if out, err = net.DialTimeout("tcp", addr(all[i]), 5*time.Second); err == nil {
						c.mu.Lock()
						c.hits[i]++
						c.mu.Unlock()
						break
					}
					out = nil
				}
				if out == nil {
					_ = in.Close()
					return
				}
				track(in, true)
				track(out, true)
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					_, _ = io.Copy(dst, src)
					// Half-close so the other direction can finish.
					if tc, ok := dst.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
					done <- struct{}{}
				}
				go pipe(out, in)
				go pipe(in, out)
				<-done
				<-done
				_ = in.Close()
				_ = out.Close()
				track(in, false)
				track(out, false)
			}()
		}
	}()
	return l.Addr().String()
}

// stop stops every node with SIGTERM, in parallel.
func (c *testCluster) stop() {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]string, len(c.nodes()))
	for i, n := range c.nodes() {
		if n == nil {
			continue
		}
		select {
		case <-n.exited:
			continue // ended before (killed by the test)
		default:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.exited:
				if n.exitErr != nil {
					errs[i] = fmt.Sprintf("node %d exit: %v", i, n.exitErr)
				}
			case <-time.After(30 * time.Second):
				errs[i] = fmt.Sprintf("node %d did not stop within 30s after SIGTERM", i)
			}
		}()
	}
	wg.Wait()
	c.closeFront()
	for _, e := range errs {
		if e != "" {
			c.t.Fatalf("%s; logs: %s", e, c.logText())
		}
	}
}

// kill kills every node.
func (c *testCluster) kill() {
	for _, n := range c.nodes() {
		if n != nil {
			n.kill()
		}
	}
	c.closeFront()
}

func (c *testCluster) closeFront() {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The front's ports are free again, for a restart on the same ports.
	for _, l := range c.listeners {
		_ = l.Close()
	}
	if c.front != nil {
		select {
		case <-c.front.exited:
		default:
			close(c.front.exited)
		}
	}
}

// logText is every node's log, each line prefixed with its node.
func (c *testCluster) logText() string {
	var b strings.Builder
	for i, n := range c.nodes() {
		if n == nil {
			continue
		}
		for _, line := range strings.SplitAfter(n.logText(), "\n") {
			if line != "" {
				fmt.Fprintf(&b, "node%d %s", i, line)
			}
		}
	}
	return b.String()
}

// startClusterFront is startMQIMArgs in cluster mode.
func startClusterFront(t testing.TB, n int, dataDir string, args []string, extraEnv ...string) *proc {
	t.Helper()
	return startNodesArgs(t, n, dataDir, args, extraEnv...).Front()
}

// Ensure the cluster harness works: REST calls through the front land on
// every node and see one store; with a node
// killed the front still answers, and a replacement node gets connections.
func TestCluster_Harness(t *testing.T) {
	c := startNodes(t, 3, t.TempDir())
	f := c.Front()
	for i := range 30 {
		expect(t, "friends", f.do("POST", fmt.Sprintf("/ctx/alice/friends/u%d", i), nil), 201)
	}
	r := f.do("GET", "/ctx/alice/friends", nil)
	expect(t, "friends list", r, 200)
	var friends []any
	r.JSON(t, &friends)
	if len(friends) != 30 {
		t.Fatalf("alice has %d friends through the front, want 30: %s", len(friends), r.Body)
	}
	// Each call is a new connection to a random node: calls keep landing
	// on every node (30 calls miss one with probability 3·(2/3)^30).
	testwait.Until(t, "REST calls on every node", 30*time.Second, func() bool {
		expect(t, "friends list", f.do("GET", "/ctx/alice/friends", nil), 200)
		return !slices.Contains(c.Hits(), 0)
	})

	c.Nodes[1].kill()
	for i := range 10 {
		expect(t, "friends with node 1 down", f.do("POST", fmt.Sprintf("/ctx/bob/friends/v%d", i), nil), 201)
	}
	before := c.Hits()[1]
	c.StartNode(t, 1)
	testwait.Until(t, "a connection on the replacement node", 30*time.Second, func() bool {
		expect(t, "friends list", f.do("GET", "/ctx/bob/friends", nil), 200)
		return c.Hits()[1] > before
	})
}
