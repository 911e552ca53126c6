package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/chat"
)

// Scenarios.
const (
	ScenarioFriend = "friend"
	ScenarioGroup  = "group"
	ScenarioConns  = "conns"
	// ScenarioFriendSIO is friend over socket.io (mqim only): MaxIM says
	// with an ack field, acknowledged by the ack event.
	ScenarioFriendSIO = "friend-sio"
)

// Params describes one load run.
type Params struct {
	Scenario string `json:"scenario"`
	// Pairs of users chatting (friend): both users of a pair send to each other.
	Pairs int `json:"pairs,omitempty"`
	// Groups of GroupSize members (group); member 0 sends, the others receive.
	Groups    int `json:"groups,omitempty"`
	GroupSize int `json:"group_size,omitempty"`
	// Conns idle logged-in clients (conns).
	Conns int `json:"conns,omitempty"`
	// InFlight bounds each sender's unacknowledged QoS 1 publishes.
	InFlight int `json:"in_flight,omitempty"`
	// Rate is the total target send rate in messages/s; 0 sends as fast as
	// acknowledgements allow.
	Rate float64 `json:"rate,omitempty"`
	// Duration of the send phase.
	Duration time.Duration `json:"duration,omitempty"`
	// ConnectWorkers is how many clients connect at once.
	ConnectWorkers int `json:"-"`
}

// Result is what one run measured.
type Result struct {
	Broker string `json:"broker"`
	Params
	Sent      int64         `json:"sent"`
	Acked     int64         `json:"acked"`
	Expected  int64         `json:"expected"`  // deliveries owed for the acked messages
	Delivered int64         `json:"delivered"` // distinct deliveries
	Lost      int64         `json:"lost"`      // acked, never delivered
	Dups      int64         `json:"dups"`
	Elapsed   time.Duration `json:"elapsed"`
	Rate      float64       `json:"deliveries_per_s"`
	SendRate  float64       `json:"sends_per_s"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	P999      time.Duration `json:"p999"`
	Max       time.Duration `json:"max"`
	CPU       time.Duration `json:"cpu"`
	// CPUPerMsg is broker CPU per delivered message (per connection for conns).
	CPUPerMsg  time.Duration `json:"cpu_per_msg"`
	PeakRSS    int64         `json:"peak_rss"`
	RSSBefore  int64         `json:"rss_before,omitempty"`
	RSSAfter   int64         `json:"rss_after,omitempty"`
	PerConnKiB float64       `json:"per_conn_kib,omitempty"`
	// RSSSettled and SettledKiB: after settleTime more of idling.
	RSSSettled  int64         `json:"rss_settled,omitempty"`
	SettledKiB  float64       `json:"settled_kib,omitempty"`
	ConnectTime time.Duration `json:"connect_time"`
	Connected   int           `json:"connected"`
	// Load1 is the machine's 1-minute load average as the run started.
	Load1 float64 `json:"load1"`
	// Cluster mode: the store, the number of mqim nodes, and what the
	// Meter measured over the send phase.
	Store  string   `json:"store,omitempty"`
	Nodes  int      `json:"nodes,omitempty"`
	Shared *Shared  `json:"shared,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// epoch is the generator's clock origin: payloads carry monotonic
// nanoseconds since epoch, and sender and receiver share the process.
var epoch = time.Now()

// client is one MQTT connection of the load generator.
type client struct {
	idx  int
	user string
	c    paho.Client
	sio  *sioConn // friend-sio: the socket.io connection instead of c

	// Sending side, owned by the sender goroutines until the run ends.
	topic string
	sent  int64
	acked bitset
	fail  int64

	// Receiving side, written by paho's router goroutine.
	mu      sync.Mutex
	hist    Hist
	seen    map[int]*bitset // sender idx → sequence numbers seen
	recv    int64           // distinct deliveries
	dups    int64
	other   int64 // other inbox events (presence, ...)
	refused int64 // error events: says refused after their PUBACK
	bad     int64 // message events without a bench body
	lastRcv time.Duration
}

// bodyKey starts the body in a say payload or a MaxIM message event.
var bodyKey = []byte(`"body":"`)

// parseBody reads "sender.seq.sendns" from the content.body of payload.
func parseBody(p []byte) (sender int, seq uint64, sent time.Duration, ok bool) {
	i := bytes.Index(p, bodyKey)
	if i < 0 {
		return 0, 0, 0, false
	}
	p = p[i+len(bodyKey):]
	var f [3]uint64
	k := 0
	for _, c := range p {
		switch {
		case c >= '0' && c <= '9':
			f[k] = f[k]*10 + uint64(c-'0')
		case c == '.' && k < 2:
			k++
		case c == '"' && k == 2:
			return int(f[0]), f[1], time.Duration(f[2]), true
		default:
			return 0, 0, 0, false
		}
	}
	return 0, 0, 0, false
}

// appendSay appends the say payload of message seq from sender, sent now.
func appendSay(b []byte, sender int, seq uint64, now time.Duration) []byte {
	b = append(b, `{"content":{"media":0,"body":"`...)
	b = strconv.AppendInt(b, int64(sender), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(now), 10)
	return append(b, `"}}`...)
}

func (cl *client) onMessage(_ paho.Client, m paho.Message) {
	now := time.Since(epoch)
	topic := m.Topic()
	if !strings.HasSuffix(topic, "/message") {
		cl.mu.Lock()
		if strings.HasSuffix(topic, "/error") {
			cl.refused++ // a say of this client was refused (MQTT 3.1.1 PUBACKs it anyway)
		} else {
			cl.other++
		}
		cl.mu.Unlock()
		return
	}
	cl.deliver(now, m.Payload())
}

// deliver counts a message event received at now.
func (cl *client) deliver(now time.Duration, payload []byte) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	sender, seq, sent, ok := parseBody(payload)
	if !ok {
		cl.bad++
		return
	}
	set := cl.seen[sender]
	if set == nil {
		set = new(bitset)
		cl.seen[sender] = set
	}
	if set.set(seq) {
		cl.dups++
		return
	}
	cl.recv++
	cl.hist.Add(now - sent)
	cl.lastRcv = now
}

func (cl *client) received() int64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.recv
}

// Runner runs scenarios against one broker.
type Runner struct {
	B   *Broker
	Log func(format string, args ...any)
	// OnSendStart, when set, is called as the send phase starts.
	OnSendStart func()
	// OnIdle, when set, is called while the conns scenario holds its
	// connections, after the memory samples.
	OnIdle func()
	// Nodes, when set, are the mqim processes of a cluster (B is the first):
	// client i connects to node i mod len(Nodes), REST calls go to B, and
	// CPU time and memory are the sums over the nodes.
	Nodes []*Broker
	// Meter, when set, measures the parts of a deployment outside the
	// broker processes (NATS, PostgreSQL) over the send phase.
	Meter Meter
}

// Meter measures a deployment's shared parts: Begin as the send phase
// starts, End once every message was delivered (it fills in res).
type Meter interface {
	Begin()
	End(res *Result)
}

// nodes returns the broker processes under test.
func (r *Runner) nodes() []*Broker {
	if len(r.Nodes) > 0 {
		return r.Nodes
	}
	return []*Broker{r.B}
}

// nodeOf returns the broker client cl connects to.
func (r *Runner) nodeOf(cl *client) *Broker {
	ns := r.nodes()
	return ns[cl.idx%len(ns)]
}

// cpuTime returns the CPU time of every node so far.
func (r *Runner) cpuTime() time.Duration {
	var sum time.Duration
	for _, b := range r.nodes() {
		t, _ := CPUTime(b.Pid())
		sum += t
	}
	return sum
}

// memory returns the sums of every node's RSS and peak RSS.
func (r *Runner) memory() (rss, hwm int64) {
	for _, b := range r.nodes() {
		x, y, _ := Memory(b.Pid())
		rss, hwm = rss+x, hwm+y
	}
	return rss, hwm
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		r.Log(format, args...)
	}
}

// connect opens the MQTT connection of cl and subscribes to its inbox and
// to extra topics.
func (r *Runner) connect(cl *client, extra ...string) error {
	o := paho.NewClientOptions().
		AddBroker("tcp://" + r.nodeOf(cl).Addr).
		SetClientID("bench-" + cl.user).
		SetUsername(cl.user).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetProtocolVersion(4).
		SetKeepAlive(5 * time.Minute).
		SetConnectTimeout(60 * time.Second).
		SetWriteTimeout(30 * time.Second).
		SetOrderMatters(true)
	if r.B.MaxIM() {
		o.SetPassword(chat.Sign(r.B.Key, time.Now().UnixMilli()))
	}
	cl.c = paho.NewClient(o)
	if t := cl.c.Connect(); !t.WaitTimeout(90*time.Second) || t.Error() != nil {
		return fmt.Errorf("connect %s: %v", cl.user, tokenErr(t))
	}
	filters := map[string]byte{"users/" + cl.user + "/#": 1}
	for _, f := range extra {
		filters[f] = 1
	}
	if t := cl.c.SubscribeMultiple(filters, cl.onMessage); !t.WaitTimeout(60*time.Second) || t.Error() != nil {
		return fmt.Errorf("subscribe %s: %v", cl.user, tokenErr(t))
	}
	return nil
}

func tokenErr(t paho.Token) error {
	if err := t.Error(); err != nil {
		return err
	}
	return errors.New("timed out")
}

// connectAll connects clients with workers at a time; extra returns the
// extra filters of a client. sioWindow > 0 connects over socket.io
// instead, with that many says in flight per sender.
func (r *Runner) connectAll(clients []*client, workers int, extra func(*client) []string, sioWindow int) (int, error) {
	if workers <= 0 {
		workers = 32
	}
	var next, ok atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(workers, len(clients)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(clients) {
					return
				}
				var ex []string
				if extra != nil {
					ex = extra(clients[i])
				}
				connect := func() error { return r.connect(clients[i], ex...) }
				if sioWindow > 0 {
					connect = func() error { return r.connectSIO(clients[i], sioWindow) }
				}
				if err := connect(); err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(ok.Load()), firstErr
}

// disconnectAll closes every connected client.
func disconnectAll(clients []*client) {
	var wg sync.WaitGroup
	ch := make(chan *client)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cl := range ch {
				if cl.sio != nil {
					cl.sio.close()
				}
				if cl.c != nil && cl.c.IsConnectionOpen() {
					cl.c.Disconnect(0)
				}
			}
		}()
	}
	for _, cl := range clients {
		ch <- cl
	}
	close(ch)
	wg.Wait()
}

func newClients(n int, prefix string) []*client {
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = &client{idx: i, user: fmt.Sprintf("%s%05d", prefix, i), seen: map[int]*bitset{}}
	}
	return cs
}

// Run runs p against the broker.
func (r *Runner) Run(ctx context.Context, p Params) (*Result, error) {
	switch p.Scenario {
	case ScenarioFriend, ScenarioGroup, ScenarioFriendSIO:
		return r.runMessages(ctx, p)
	case ScenarioConns:
		return r.runConns(ctx, p)
	}
	return nil, fmt.Errorf("unknown scenario %q", p.Scenario)
}

// route is a sender and who must receive its messages.
type route struct {
	from *client
	to   []*client
}

func (r *Runner) runMessages(ctx context.Context, p Params) (*Result, error) {
	res := &Result{Broker: r.B.Spec.Kind, Params: p}
	if p.InFlight <= 0 {
		p.InFlight = 16
	}
	var clients []*client
	var routes []route
	extra := func(*client) []string { return nil }
	sioWindow := 0
	switch p.Scenario {
	case ScenarioFriendSIO:
		if !r.B.MaxIM() {
			return res, fmt.Errorf("%s: socket.io is mqim's only", p.Scenario)
		}
		sioWindow = p.InFlight
		fallthrough
	case ScenarioFriend:
		clients = newClients(2*p.Pairs, "f")
		for i := 0; i < len(clients); i += 2 {
			a, b := clients[i], clients[i+1]
			routes = append(routes, route{a, []*client{b}}, route{b, []*client{a}})
		}
	case ScenarioGroup:
		clients = newClients(p.Groups*p.GroupSize, "g")
		for g := range p.Groups {
			members := clients[g*p.GroupSize : (g+1)*p.GroupSize]
			routes = append(routes, route{members[0], members[1:]})
		}
		if !r.B.MaxIM() {
			// A relay fans out one publish to the group's subscribers.
			extra = func(cl *client) []string {
				if cl.idx%p.GroupSize == 0 {
					return nil
				}
				return []string{fmt.Sprintf("groups/g%d/message", cl.idx/p.GroupSize)}
			}
		}
	}
	start := time.Now()
	n, err := r.connectAll(clients, p.ConnectWorkers, extra, sioWindow)
	res.Connected, res.ConnectTime = n, time.Since(start)
	defer disconnectAll(clients)
	if err != nil {
		return res, err
	}

	// Topics, and for mqim the friendships and groups.
	for g, rt := range routes {
		switch {
		case p.Scenario == ScenarioFriend && r.B.MaxIM(), p.Scenario == ScenarioFriendSIO:
			rt.from.topic = "say/friend/" + rt.to[0].user
			if rt.from.idx%2 == 0 {
				if _, err := r.B.rest(ctx, "POST", "/ctx/"+rt.from.user+"/friends/"+rt.to[0].user, ""); err != nil {
					return res, err
				}
			}
		case p.Scenario == ScenarioFriend:
			rt.from.topic = "users/" + rt.to[0].user + "/message"
		case r.B.MaxIM():
			members := make([]string, len(rt.to))
			for i, m := range rt.to {
				members[i] = m.user
			}
			body, _ := json.Marshal(map[string]any{"owner": rt.from.user, "members": members})
			out, err := r.B.rest(ctx, "POST", "/groups", string(body))
			if err != nil {
				return res, err
			}
			var gid string
			if err := json.Unmarshal(out, &gid); err != nil {
				return res, fmt.Errorf("POST /groups: %s", out)
			}
			rt.from.topic = "say/group/" + gid
		default:
			rt.from.topic = fmt.Sprintf("groups/g%d/message", g)
		}
	}

	if r.OnSendStart != nil {
		r.OnSendStart()
	}
	cpu0 := r.cpuTime()
	if r.Meter != nil {
		r.Meter.Begin()
	}
	t0 := time.Since(epoch)
	stop := time.Now().Add(p.Duration)
	perSender := p.Rate / float64(len(routes))
	var wg sync.WaitGroup
	for _, rt := range routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sioWindow > 0 {
				sendSIO(rt.from, rt.to[0].user, perSender, stop)
				return
			}
			send(rt.from, p.InFlight, perSender, stop)
		}()
	}
	wg.Wait()
	sendEnd := time.Since(epoch)

	// Drain: wait for every acked message to reach every recipient, or for
	// deliveries to stop progressing.
	for _, rt := range routes {
		res.Sent += rt.from.sent
		res.Acked += int64(rt.from.acked.count())
		res.Expected += int64(rt.from.acked.count() * len(rt.to))
	}
	var got int64
	last, lastChange := int64(-1), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		got = 0
		for _, cl := range clients {
			got += cl.received()
		}
		if got >= res.Expected {
			break
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > 3*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cpu1 := r.cpuTime()
	_, res.PeakRSS = r.memory()
	if r.Meter != nil {
		r.Meter.End(res)
	}

	var all Hist
	var lastRcv time.Duration
	for _, cl := range clients {
		cl.mu.Lock()
		all.Merge(&cl.hist)
		res.Delivered += cl.recv
		res.Dups += cl.dups
		lastRcv = max(lastRcv, cl.lastRcv)
		if cl.refused > 0 {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %d says refused (error events)", cl.user, cl.refused))
		}
		if cl.bad > 0 {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %d message events without a bench body", cl.user, cl.bad))
		}
		cl.mu.Unlock()
	}
	for _, rt := range routes {
		if rt.from.fail > 0 {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %d publishes not acknowledged", rt.from.user, rt.from.fail))
		}
		for _, to := range rt.to {
			to.mu.Lock()
			seen := to.seen[rt.from.idx]
			for w, word := range rt.from.acked {
				for b := range 64 {
					if word&(1<<b) != 0 && (seen == nil || !seen.has(uint64(w*64+b))) {
						res.Lost++
					}
				}
			}
			to.mu.Unlock()
		}
	}
	res.Elapsed = max(lastRcv, sendEnd) - t0
	res.Rate = float64(res.Delivered) / res.Elapsed.Seconds()
	res.SendRate = float64(res.Acked) / (sendEnd - t0).Seconds()
	res.P50, res.P99, res.P999, res.Max = all.Quantile(0.5), all.Quantile(0.99), all.Quantile(0.999), all.Max()
	res.CPU = cpu1 - cpu0
	if res.Delivered > 0 {
		res.CPUPerMsg = res.CPU / time.Duration(res.Delivered)
	}
	return res, nil
}

// send publishes QoS 1 messages from cl to cl.topic until stop, with at
// most inFlight unacknowledged, at rate messages/s (0: as fast as
// acknowledgements allow).
func send(cl *client, inFlight int, rate float64, stop time.Time) {
	type pending struct {
		tok paho.Token
		seq uint64
	}
	sem := make(chan struct{}, inFlight)
	toks := make(chan pending, inFlight)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range toks {
			if p.tok.WaitTimeout(30*time.Second) && p.tok.Error() == nil {
				cl.acked.set(p.seq)
			} else {
				cl.fail++
			}
			<-sem
		}
	}()
	// Acknowledgements release buffers in publish order, so the buffer of
	// message seq is free again by the time seq+inFlight may be published.
	bufs := make([][]byte, inFlight)
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	begin := time.Now()
	for seq := uint64(0); ; seq++ {
		if interval > 0 {
			if d := time.Until(begin.Add(time.Duration(seq) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		if !time.Now().Before(stop) {
			break
		}
		sem <- struct{}{}
		i := seq % uint64(inFlight)
		bufs[i] = appendSay(bufs[i][:0], cl.idx, seq, time.Since(epoch))
		toks <- pending{cl.c.Publish(cl.topic, 1, false, bufs[i]), seq}
		cl.sent++
	}
	close(toks)
	<-done
}

// settleTime is how long the conns scenario idles before its second
// memory sample.
const settleTime = 5 * time.Second

// runConns holds p.Conns idle logged-in clients (each subscribed to its
// inbox) and measures the broker's memory per connection.
func (r *Runner) runConns(_ context.Context, p Params) (*Result, error) {
	res := &Result{Broker: r.B.Spec.Kind, Params: p}
	time.Sleep(500 * time.Millisecond)
	res.RSSBefore, _ = r.memory()
	cpu0 := r.cpuTime()
	clients := newClients(p.Conns, "c")
	start := time.Now()
	n, err := r.connectAll(clients, p.ConnectWorkers, nil, 0)
	res.Connected, res.ConnectTime = n, time.Since(start)
	defer disconnectAll(clients)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	r.logf("  %d connections in %v", n, res.ConnectTime.Round(time.Millisecond))
	// Let the broker settle, then take the largest of a few samples.
	for i := 0; i < 10; i++ {
		time.Sleep(300 * time.Millisecond)
		rss, _ := r.memory()
		res.RSSAfter = max(res.RSSAfter, rss)
	}
	// Then what the connections still hold once the broker has idled a
	// while (a Go broker gives stack and heap back only after collections).
	time.Sleep(settleTime)
	res.RSSSettled, _ = r.memory()
	cpu1 := r.cpuTime()
	_, res.PeakRSS = r.memory()
	if r.OnIdle != nil {
		r.OnIdle()
	}
	res.CPU = cpu1 - cpu0
	if n > 0 {
		res.PerConnKiB = float64(res.RSSAfter-res.RSSBefore) / 1024 / float64(n)
		res.SettledKiB = float64(res.RSSSettled-res.RSSBefore) / 1024 / float64(n)
		res.CPUPerMsg = res.CPU / time.Duration(n)
	}
	res.Delivered = int64(n)
	res.Elapsed = res.ConnectTime
	if n > 0 {
		res.Rate = float64(n) / res.ConnectTime.Seconds()
	}
	return res, nil
}
