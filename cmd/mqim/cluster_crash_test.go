package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// crashNodes is the cluster harness (startNodes) with a table of the
// live nodes by slot, for tests that kill nodes while clients run.
type crashNodes struct {
	t     *testing.T
	tc    *testCluster
	mu    sync.Mutex
	nodes []*proc // by slot; nil while a slot is dead
}

func startCrashNodes(t *testing.T, n int) *crashNodes {
	t.Helper()
	tc := startNodes(t, n, t.TempDir())
	return &crashNodes{t: t, tc: tc, nodes: tc.nodes()}
}

// start runs a new node in slot i (same node id, same database).
func (c *crashNodes) start(i int) *proc {
	p := c.tc.StartNode(c.t, i)
	c.mu.Lock()
	c.nodes[i] = p
	c.mu.Unlock()
	return p
}

// kill SIGKILLs slot i's node and waits for it to exit.
func (c *crashNodes) kill(i int) {
	c.mu.Lock()
	p := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// node returns slot i's node, or nil while it is dead.
func (c *crashNodes) node(i int) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 {
		return nil
	}
	return c.nodes[i]
}

// pick returns a random live node other than slot not, and its slot.
func (c *crashNodes) pick(not int) (*proc, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var slots []int
	for i, p := range c.nodes {
		if p != nil && i != not {
			slots = append(slots, i)
		}
	}
	if len(slots) == 0 {
		return nil, -1
	}
	s := slots[rand.IntN(len(slots))]
	return c.nodes[s], s
}

// call sends a REST request signed with the client key; unlike proc.do it
// returns errors (it runs on goroutines, and nodes die under it).
func call(p *proc, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, p.HTTP+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-ML-AppId", p.AppID)
	req.Header.Set("X-ML-Request-Sign", chat.Sign(p.Key, time.Now().UnixMilli()))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// connectTo logs uid in on p over MQTT 3.1.1 (clean session), calling lost
// when the connection dies; nil if p went away meanwhile.
func connectTo(p *proc, uid, clientID string, lost func()) paho.Client {
	opts := paho.NewClientOptions().
		AddBroker("tcp://" + p.MQTT).
		SetClientID(clientID).
		SetUsername(uid).
		SetPassword(chat.Sign(p.Key, time.Now().UnixMilli())).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(paho.Client, error) {
			if lost != nil {
				lost()
			}
		})
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil
	}
	return c
}

// record is one history record as REST returns it.
type record struct {
	Speaker string `json:"speaker"`
	Content struct {
		Body string `json:"body"`
	} `json:"content"`
	Seq uint64 `json:"seq"`
}

// readAfter pages a conversation's records with seq > after, oldest first,
// through path (a history endpoint), as a client catches up (§6.1).
func readAfter(p *proc, path string, after uint64) ([]record, error) {
	var all []record
	for {
		st, b, err := call(p, "GET", fmt.Sprintf("%s?after=%d&limit=100", path, after), nil)
		if err != nil {
			return all, err
		}
		if st != 200 {
			return all, fmt.Errorf("GET %s: %d %s", path, st, b)
		}
		var page []record
		if err := json.Unmarshal(b, &page); err != nil {
			return all, err
		}
		all = append(all, page...)
		if len(page) < 100 {
			return all, nil
		}
		after = page[len(page)-1].Seq
	}
}

// clusterKills is the number of SIGKILLs of TestCluster_CrashSafety: 20
// (the figure), 4 with -short; MQIM_CLUSTER_KILLS overrides.
func clusterKills() int {
	if n, err := strconv.Atoi(os.Getenv("MQIM_CLUSTER_KILLS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 4
	}
	return 20
}

// crashReceiver is a client that listens to its inbox and, when its node
// dies, logs in on another node, subscribes again and catches up with
// after=<the last seq it holds> per conversation.
type crashReceiver struct {
	uid                      string
	convs                    map[string]string // conversation key -> history path
	mu                       sync.Mutex
	slot                     int
	conn                     int               // connections so far
	live                     map[string]int    // "conn/conv/seq" -> deliveries on that connection
	held                     map[string]uint64 // conv -> the greatest seq held
	seen                     map[string]bool   // "conv/seq" held (live or caught up)
	bodies                   map[string]bool   // bodies held
	liveN, caughtUp, overlap int
	c                        paho.Client
	lost                     chan struct{}
	connected                bool
	trace                    []string          // logins, catch-ups and live gaps, for a failure
	lastLive                 map[string]uint64 // "conn/conv" -> last live seq
}

// convKey names a message event's conversation from the receiver's side.
func convKey(e chat.MessageEvent) string {
	if e.From.GID != "" {
		return "g:" + e.From.GID
	}
	return "f:" + e.From.ID
}

func (r *crashReceiver) onMessage(conn int) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		var e chat.MessageEvent
		if json.Unmarshal(m.Payload(), &e) != nil || e.Seq == 0 {
			return
		}
		k := convKey(e)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.liveN++
		r.live[fmt.Sprintf("%d/%s/%d", conn, k, e.Seq)]++
		ck := fmt.Sprintf("%d/%s", conn, k)
		if prev := r.lastLive[ck]; prev == 0 || e.Seq != prev+1 {
			r.trace = append(r.trace, fmt.Sprintf("conn %d %s: live %d after live %d", conn, k, e.Seq, prev))
		}
		r.lastLive[ck] = e.Seq
		r.hold(k, e.Seq, e.Content.Body, false)
	}
}

// hold records a message held by the client; caught tells a catch-up.
func (r *crashReceiver) hold(conv string, seq uint64, body string, caught bool) {
	key := fmt.Sprintf("%s/%d", conv, seq)
	if r.seen[key] {
		if caught {
			r.overlap++
		}
		return
	}
	r.seen[key] = true
	r.bodies[body] = true
	r.held[conv] = max(r.held[conv], seq)
	if caught {
		r.caughtUp++
	}
}

// connect logs in on c's node in slot (or another live one), subscribes,
// then catches up on every conversation.
func (r *crashReceiver) connect(cl *crashNodes, slot int) error {
	var p *proc
	if slot >= 0 {
		p = cl.node(slot)
	}
	if p == nil {
		if p, slot = cl.pick(-1); p == nil {
			return fmt.Errorf("%s: no live node", r.uid)
		}
	}
	r.mu.Lock()
	// The catch-up starts from what the client held before this login:
	// live messages may raise it before the catch-up runs.
	before := maps.Clone(r.held)
	r.conn++
	conn := r.conn
	lost := make(chan struct{})
	r.lost = lost
	r.mu.Unlock()
	var once sync.Once
	c := connectTo(p, r.uid, fmt.Sprintf("%s-%d", r.uid, conn), func() {
		once.Do(func() {
			r.mu.Lock()
			r.connected = false
			r.mu.Unlock()
			close(lost)
		})
	})
	if c == nil {
		return fmt.Errorf("%s: connect to slot %d failed", r.uid, slot)
	}
	if tok := c.Subscribe("users/"+r.uid+"/message", 1, r.onMessage(conn)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("%s: subscribe: %v", r.uid, tok.Error())
	}
	r.mu.Lock()
	r.c, r.slot = c, slot
	r.mu.Unlock()
	if conn > 1 {
		if err := r.catchUp(p, before); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.connected = true
	r.mu.Unlock()
	return nil
}

// catchUp reads each conversation's records after the greatest seq held.
func (r *crashReceiver) catchUp(p *proc, before map[string]uint64) error {
	for conv, path := range r.convs {
		after := before[conv]
		recs, err := readAfter(p, path, after)
		if err != nil {
			return fmt.Errorf("%s: catch up %s: %v", r.uid, path, err)
		}
		r.mu.Lock()
		top := after
		if len(recs) > 0 {
			top = recs[len(recs)-1].Seq
		}
		r.trace = append(r.trace, fmt.Sprintf("conn %d %s: caught up %d..%d", r.conn, conv, after, top))
		for _, rec := range recs {
			r.hold(conv, rec.Seq, rec.Content.Body, true)
		}
		r.mu.Unlock()
	}
	return nil
}

// crashSender publishes QoS 1 messages with unique bodies to one
// conversation, a window in flight, and moves to another node when its
// node dies.
type crashSender struct {
	uid, topic, conv string
	mu               sync.Mutex
	attempted        int
	acked, refused   map[int]bool
	ackedN           int
	moves            int
}

// Ensure SIGKILLing one of three nodes under QoS 1 load, twenty times,
// loses and duplicates no acknowledged message: receivers on the
// surviving nodes get every acknowledged message addressed to them once
// per connection; clients of the killed node log in on another node and
// catch up with after=<seq> without loss; the store holds every
// acknowledged message once, seq gap-free per conversation.
//
// Senders and receivers are spread over the nodes (friend pairs whose
// ends are on different nodes, and one group with receivers and senders
// on every node). Each round the kill comes after a random number of
// acknowledgements, the load keeps going, the killed node's clients move
// to a random live node, and a replacement node (a new node id) starts on
// the same database. Duplicated is measured as: one (conversation, seq)
// delivered twice as a live message event on one connection (a receiver
// on a surviving node); a catch-up that returns what a client already
// holds is an overlap, deduplicated by seq as a client does, and counted.
func TestCluster_CrashSafety(t *testing.T) {
	if clusterSize() > 0 {
		t.Skip("starts its own three nodes: it runs in the one-process pass (make test)")
	}
	began := time.Now()
	const (
		nodes      = 3
		pairs      = 6 // friend pairs, sender on slot i%3, receiver on (i+1)%3
		groupPeers = 3 // group senders and receivers, one of each per node
		window     = 4
	)
	kills := clusterKills()
	cl := startCrashNodes(t, nodes)
	p0 := cl.node(0)

	var receivers []*crashReceiver
	var senders []*crashSender
	newReceiver := func(uid string, slot int) *crashReceiver {
		r := &crashReceiver{uid: uid, convs: map[string]string{}, slot: slot, live: map[string]int{},
			held: map[string]uint64{}, lastLive: map[string]uint64{}, seen: map[string]bool{}, bodies: map[string]bool{}}
		receivers = append(receivers, r)
		return r
	}
	senderSlot := map[*crashSender]int{}
	for i := range pairs {
		a, b := fmt.Sprintf("ca%d", i), fmt.Sprintf("cb%d", i)
		expect(t, "friends", p0.do("POST", "/ctx/"+a+"/friends/"+b, nil), 201)
		r := newReceiver(b, (i+1)%nodes)
		r.convs["f:"+a] = "/ctx/" + b + "/friends/" + a + "/chats"
		s := &crashSender{uid: a, topic: "say/friend/" + b, conv: "f:" + a, acked: map[int]bool{}, refused: map[int]bool{}}
		senders = append(senders, s)
		senderSlot[s] = i % nodes
	}
	var members []string
	for i := range groupPeers {
		members = append(members, fmt.Sprintf("gs%d", i), fmt.Sprintf("gr%d", i))
	}
	res := p0.do("POST", "/groups", map[string]any{"owner": "gowner", "members": members})
	expect(t, "group", res, 201)
	var gid string
	res.JSON(t, &gid)
	for i := range groupPeers {
		r := newReceiver(fmt.Sprintf("gr%d", i), i)
		r.convs["g:"+gid] = "/groups/" + gid + "/chats"
		s := &crashSender{uid: fmt.Sprintf("gs%d", i), topic: "say/group/" + gid, conv: "g:" + gid, acked: map[int]bool{}, refused: map[int]bool{}}
		senders = append(senders, s)
		senderSlot[s] = (i + 1) % nodes
	}
	// addressed: the receivers of each sender's messages.
	addressed := map[*crashSender][]*crashReceiver{}
	for _, s := range senders {
		for _, r := range receivers {
			if _, ok := r.convs[s.conv]; ok {
				addressed[s] = append(addressed[s], r)
			}
		}
	}
	for _, r := range receivers {
		if err := r.connect(cl, r.slot); err != nil {
			t.Fatal(err)
		}
	}

	// Receivers whose node dies move; the main loop waits for them.
	var failures sync.Map
	moved := atomic.Int64{}
	done := make(chan struct{})
	defer close(done)
	watch := func(r *crashReceiver) {
		for {
			r.mu.Lock()
			lost := r.lost
			r.mu.Unlock()
			select {
			case <-lost:
			case <-done:
				return
			}
			for attempt := 0; ; attempt++ {
				err := r.connect(cl, -1)
				if err == nil {
					break
				}
				if attempt == 20 {
					failures.Store(r.uid, err)
					return
				}
				time.Sleep(100 * time.Millisecond) // a moment for a node to be picked again
			}
			moved.Add(1)
		}
	}
	for _, r := range receivers {
		go watch(r)
	}

	var ackedTotal atomic.Int64
	stop := make(chan struct{})
	var sendWG sync.WaitGroup
	send := func(s *crashSender) {
		defer sendWG.Done()
		slot := senderSlot[s]
		for conn := 1; ; conn++ {
			select {
			case <-stop:
				return
			default:
			}
			p := cl.node(slot)
			if p == nil {
				if p, slot = cl.pick(-1); p == nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			c := connectTo(p, s.uid, fmt.Sprintf("%s-%d", s.uid, conn), nil)
			if c == nil {
				slot = -1
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if conn > 1 {
				s.mu.Lock()
				s.moves++
				s.mu.Unlock()
			}
			tok := c.Subscribe("users/"+s.uid+"/error", 1, func(_ paho.Client, m paho.Message) {
				var e chat.ErrorEvent
				if json.Unmarshal(m.Payload(), &e) == nil && e.Ack != nil {
					s.mu.Lock()
					s.refused[int(*e.Ack)] = true
					s.mu.Unlock()
				}
			})
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				c.Disconnect(0)
				slot = -1
				continue
			}
			type inflight struct {
				n   int
				tok paho.Token
			}
			var q []inflight
			settle := func(f inflight) bool {
				if !f.tok.WaitTimeout(10*time.Second) || f.tok.Error() != nil {
					return false
				}
				s.mu.Lock()
				if !s.refused[f.n] {
					s.acked[f.n] = true
					s.ackedN++
					ackedTotal.Add(1)
				}
				s.mu.Unlock()
				return true
			}
			ok := true
			for ok {
				select {
				case <-stop:
					for _, f := range q {
						if !settle(f) {
							break
						}
					}
					c.Disconnect(100)
					return
				default:
				}
				s.mu.Lock()
				n := s.attempted
				s.attempted++
				s.mu.Unlock()
				payload, _ := json.Marshal(map[string]any{"content": map[string]any{"media": 0, "body": fmt.Sprintf("%s-%d", s.uid, n)}, "ack": n})
				q = append(q, inflight{n, c.Publish(s.topic, 1, false, payload)})
				if len(q) == window {
					ok = settle(q[0])
					q = q[1:]
				}
			}
			// The node died: what is still in flight is in doubt.
			c.Disconnect(0)
			slot = -1
		}
	}
	for _, s := range senders {
		sendWG.Add(1)
		go send(s)
	}

	var restarts []time.Duration
	for round := range kills {
		target := ackedTotal.Load() + int64(100+rand.IntN(300))
		testwait.Until(t, fmt.Sprintf("round %d: acknowledgements before the kill", round), 60*time.Second, func() bool {
			return ackedTotal.Load() >= target
		})
		slot := round % nodes
		onSlot := map[*crashReceiver]int{}
		for _, r := range receivers {
			r.mu.Lock()
			if r.slot == slot {
				onSlot[r] = r.conn
			}
			r.mu.Unlock()
		}
		cl.kill(slot)
		// The load goes on while the replacement starts.
		start := time.Now()
		cl.start(slot)
		restarts = append(restarts, time.Since(start))
		testwait.Until(t, fmt.Sprintf("round %d: receivers of the killed node back", round), 60*time.Second, func() bool {
			for _, r := range receivers {
				r.mu.Lock()
				ok := r.connected
				if old, was := onSlot[r]; was && r.conn == old {
					ok = false
				}
				r.mu.Unlock()
				if !ok {
					return false
				}
			}
			return true
		})
		failures.Range(func(k, v any) bool { t.Fatalf("round %d: %v", round, v); return false })
	}
	close(stop)
	sendWG.Wait()

	// One closing message per sender on a live node: a bus message lost
	// with the last kill is filled from the store at the next message of
	// its conversation (docs/scaleout.md, Seq gaps).
	for _, s := range senders {
		p, _ := cl.pick(-1)
		c := connectTo(p, s.uid, s.uid+"-closing", nil)
		if c == nil {
			t.Fatalf("%s: closing connect failed", s.uid)
		}
		s.mu.Lock()
		n := s.attempted
		s.attempted++
		s.mu.Unlock()
		payload, _ := json.Marshal(map[string]any{"content": map[string]any{"media": 0, "body": fmt.Sprintf("%s-%d", s.uid, n)}, "ack": n})
		if tok := c.Publish(s.topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: closing message: %v", s.uid, tok.Error())
		}
		s.mu.Lock()
		s.acked[n] = true
		s.ackedN++
		s.mu.Unlock()
		c.Disconnect(100)
	}

	// Quiet: every receiver holds every acknowledged message addressed to
	// it (the wait only bounds a hang; what is missing is reported below).
	missing := func(r *crashReceiver) []string {
		var out []string
		for _, s := range senders {
			if !slices.Contains(addressed[s], r) {
				continue
			}
			s.mu.Lock()
			for n := range s.acked {
				body := fmt.Sprintf("%s-%d", s.uid, n)
				r.mu.Lock()
				if !r.bodies[body] {
					out = append(out, body)
				}
				r.mu.Unlock()
			}
			s.mu.Unlock()
		}
		return out
	}
	// Not testwait.Until: what is missing is reported below.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		all := true
		for _, r := range receivers {
			if len(missing(r)) > 0 {
				all = false
			}
		}
		if all {
			break
		}
	}

	// The store: every conversation gap-free, every acknowledged message
	// once, nothing that was never sent.
	p, _ := cl.pick(-1)
	var stored, inDoubt, inDoubtStored, refused, acked, attempted int
	byConv := map[string][]record{}
	for _, r := range receivers {
		for conv, path := range r.convs {
			if _, ok := byConv[conv]; ok {
				continue
			}
			recs, err := readAfter(p, path, 0)
			if err != nil {
				t.Fatal(err)
			}
			byConv[conv] = recs
			for i, rec := range recs {
				if rec.Seq != uint64(i+1) {
					t.Errorf("%s: record %d has seq %d: a gap or a repeat", conv, i, rec.Seq)
					break
				}
			}
			stored += len(recs)
		}
	}
	for _, s := range senders {
		count := map[int]int{}
		for _, rec := range byConv[s.conv] {
			if rec.Speaker != s.uid {
				continue
			}
			n, err := strconv.Atoi(strings.TrimPrefix(rec.Content.Body, s.uid+"-"))
			if err != nil || n >= s.attempted {
				t.Errorf("%s: stored %q was never sent", s.conv, rec.Content.Body)
				continue
			}
			count[n]++
		}
		attempted += s.attempted
		for n := 0; n < s.attempted; n++ {
			switch {
			case count[n] > 1:
				t.Errorf("%s: %s-%d stored %d times", s.conv, s.uid, n, count[n])
			case s.acked[n] && count[n] == 0:
				t.Errorf("%s: acknowledged %s-%d not stored", s.conv, s.uid, n)
			case s.acked[n]:
				acked++
			case s.refused[n]:
				refused++
			default:
				inDoubt++
				inDoubtStored += count[n]
			}
		}
	}

	// The receivers: nothing acknowledged missing, nothing delivered twice
	// on one connection.
	var liveN, caught, overlap, dup, receivedAcked int
	for _, r := range receivers {
		if m := missing(r); len(m) > 0 {
			slices.Sort(m)
			t.Errorf("%s (%d logins): %d acknowledged messages never received, e.g. %v", r.uid, r.conn, len(m), m[:min(5, len(m))])
			for conv := range r.convs {
				for _, rec := range byConv[conv] {
					if slices.Contains(m, rec.Content.Body) {
						t.Logf("%s: %s is %s seq %d", r.uid, rec.Content.Body, conv, rec.Seq)
					}
				}
			}
			r.mu.Lock()
			t.Logf("%s trace:\n%s", r.uid, strings.Join(r.trace, "\n"))
			r.mu.Unlock()
		}
		r.mu.Lock()
		for k, n := range r.live {
			if n > 1 {
				dup++
				t.Errorf("%s: %s delivered %d times on one connection", r.uid, k, n)
			}
		}
		liveN += r.liveN
		caught += r.caughtUp
		overlap += r.overlap
		r.mu.Unlock()
		for _, s := range senders {
			if slices.Contains(addressed[s], r) {
				receivedAcked += s.ackedN
			}
		}
	}
	senderMoves := 0
	for _, s := range senders {
		senderMoves += s.moves
	}
	for _, r := range receivers {
		r.mu.Lock()
		c := r.c
		r.mu.Unlock()
		c.Disconnect(0)
	}
	t.Logf("kills=%d attempted=%d acknowledged=%d in_doubt=%d in_doubt_stored=%d refused=%d stored=%d; "+
		"deliveries owed=%d live=%d caught_up=%d catch_up_overlap=%d duplicated=%d; receiver_moves=%d sender_moves=%d; max_restart=%v runtime=%v",
		kills, attempted, acked, inDoubt, inDoubtStored, refused, stored,
		receivedAcked, liveN, caught, overlap, dup, moved.Load(), senderMoves, slices.Max(restarts).Round(time.Millisecond), time.Since(began).Round(time.Second))
	if acked == 0 || inDoubt == 0 || moved.Load() == 0 {
		t.Errorf("acknowledged %d, in doubt %d, receivers moved %d: the kills did not land under traffic", acked, inDoubt, moved.Load())
	}
}
