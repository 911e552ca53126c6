package cluster_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/cluster"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/internal/testwait"
	"github.com/mqim/mqim/storage"
)

const (
	testApp = "569d84a0169e7d00012c7afe"
	testKey = "client-key"
	// wait bounds every wait of these tests.
	wait = 10 * time.Second
)

// startNATS runs a NATS server inside the test binary on 127.0.0.1 at a
// random port.
func startNATS(t *testing.T) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(wait) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// openDB opens the one store the test's nodes share.
func openDB(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open(storage.Options{Dir: t.TempDir(), Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// node is one mqim node in the test process: its own Service over the
// shared store, its own broker with the mqim hooks on 127.0.0.1:0, and its
// own cluster.Node.
type node struct {
	svc  *chat.Service
	srv  *broker.Server
	n    *cluster.Node
	addr string
}

// startNode starts node id over db, joined to the NATS server at url, with
// mqtt.max_connections_per_user capPerUser (0: the default); edit adjusts
// the cluster options.
func startNode(t *testing.T, db *storage.DB, url, id string, capPerUser int, edit func(*cluster.Options)) *node {
	t.Helper()
	return startNodeWith(t, db, url, id, nodeOptions{capPerUser: capPerUser, edit: edit})
}

type nodeOptions struct {
	capPerUser int
	edit       func(*cluster.Options)
	// sessions keeps persistent MQTT sessions in db, moving between the
	// nodes as cmd/mqim wires them.
	sessions bool
	// noRateLimit turns the say rate limit off (a sender without pause).
	noRateLimit bool
}

func startNodeWith(t *testing.T, db *storage.DB, url, id string, no nodeOptions) *node {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("node", id).Logger()
	svc := chat.NewService(db, chat.Options{AppID: testApp, MaxBodyLen: 1024})
	srv := broker.New(broker.Options{TCPAddr: "127.0.0.1:0", Logger: log})
	svc.Publisher = srv
	var nd *cluster.Node
	var sessions *hooks.Sessions
	ho := hooks.Options{
		Service: svc,
		Auth:    &chat.Authenticator{AppID: testApp, Tolerance: 15 * time.Minute, Keys: []chat.Key{{Value: testKey, Role: chat.RoleClient}}},
		Log:     log,
		// The connection cap counts the sessions of the other nodes.
		OtherConnections:      func(id chat.Identity) int { return nd.RemoteSessions(id) },
		MaxConnectionsPerUser: no.capPerUser,
	}
	if no.noRateLimit {
		ho.RateLimit = -1
	}
	if no.sessions {
		held := map[chat.Identity]int{} // until the node joins
		ho.Sessions, ho.NodeID = db, func() string { return id }
		ho.Held = func(who chat.Identity, n int) {
			if nd == nil {
				held[who] = n
				return
			}
			nd.SetHeld(who, n)
		}
		ho.Cluster = sessionCluster{&nd}
		ho.OnSessions = func(s *hooks.Sessions) { sessions = s }
		defer func() {
			for who, n := range held {
				nd.SetHeld(who, n)
			}
		}()
	}
	if err := hooks.Register(srv, ho); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	o := cluster.Options{
		URL: url, NodeID: id, App: testApp, Service: svc, Log: log,
		TakeOver:  func(c string) bool { return hooks.TakeOver(srv, c) },
		Heartbeat: 50 * time.Millisecond, LivenessTTL: time.Second, RequestTimeout: 2 * time.Second,
		Linger: 50 * time.Millisecond,
	}
	if sessions != nil {
		o.GiveUp, o.StoreState = sessions.GiveUp, sessions.StoreState
	}
	if no.edit != nil {
		no.edit(&o)
	}
	nd, err := cluster.Join(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	nd.Wire(srv, svc.Connections)
	t.Cleanup(nd.Close)
	return &node{svc: svc, srv: srv, n: nd, addr: srv.TCPAddr().String()}
}

// sessionCluster is a node as hooks.SessionCluster (cmd/mqim has its own).
type sessionCluster struct{ n **cluster.Node }

func (s sessionCluster) TakeSession(ctx context.Context, cid string, id chat.Identity, clean bool) (bool, error) {
	return (*s.n).TakeSession(ctx, cid, id, clean)
}
func (s sessionCluster) RemoteHeld(id chat.Identity) int { return (*s.n).RemoteHeld(id) }
func (s sessionCluster) StoreSession(ctx context.Context, cid string, id chat.Identity) error {
	return (*s.n).StoreSession(ctx, cid, id)
}
func (s sessionCluster) Queued(id chat.Identity, events []chat.QueuedEvent) {
	(*s.n).Queued(id, events)
}

// cluster starts nodes named a, b, c, … over one store and one NATS
// server, and waits until each sees all the others.
func startCluster(t *testing.T, count int, edit func(id string, o *cluster.Options)) (*storage.DB, []*node) {
	t.Helper()
	db, nodes, _ := startClusterURL(t, count, 0, edit)
	return db, nodes
}

// startClusterURL is startCluster with a connection cap per identity
// (0: the default); it also returns the NATS server.
func startClusterURL(t *testing.T, count, capPerUser int, edit func(id string, o *cluster.Options)) (*storage.DB, []*node, *natsserver.Server) {
	t.Helper()
	ns := startNATS(t)
	url := ns.ClientURL()
	db := openDB(t)
	var nodes []*node
	for i := range count {
		id := string(rune('a' + i))
		nodes = append(nodes, startNode(t, db, url, id, capPerUser, func(o *cluster.Options) {
			if edit != nil {
				edit(id, o)
			}
		}))
	}
	for _, nd := range nodes {
		waitUntil(t, "every node sees the others", func() bool { return len(nd.n.Peers()) == count-1 })
	}
	return db, nodes, ns
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, wait, cond)
}

func seed(t *testing.T, db *storage.DB, fn func(tx chat.Tx) error) {
	t.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func users(t *testing.T, db *storage.DB, ids ...string) {
	t.Helper()
	seed(t, db, func(tx chat.Tx) error {
		for _, id := range ids {
			if err := tx.PutUser(&chat.UserRecord{ID: id, Attributes: chat.Attributes{}, Installs: []string{}}); err != nil {
				return err
			}
		}
		return nil
	})
}

func friends(t *testing.T, db *storage.DB, a, b string) {
	t.Helper()
	seed(t, db, func(tx chat.Tx) error {
		return tx.PutFriendship(&chat.Friendship{ID: chat.NewFriendshipID(), From: a, To: b, NS: testApp})
	})
}

// msg is one received publish.
type msg struct {
	Topic   string
	Payload string
}

// client is a paho.golang MQTT 5 client.
type client struct {
	c    *paho5.Client
	msgs chan msg
	// gone is the reason code of the server's DISCONNECT, once one came.
	gone atomic.Int32
}

// connect logs user in on nd with client id cid and subscribes to its
// inbox.
func connect(t *testing.T, nd *node, cid, user string) *client {
	t.Helper()
	c, rc := dial(t, nd, cid, user)
	if rc != 0 {
		t.Fatalf("connect %s as %s: CONNACK %#x", cid, user, rc)
	}
	return c
}

// dial is connect that returns a refusal's CONNACK reason code.
func dial(t *testing.T, nd *node, cid, user string) (*client, byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", nd.addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{msgs: make(chan msg, 10000)}
	c.gone.Store(-1)
	c.c = paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			c.msgs <- msg{pr.Packet.Topic, string(pr.Packet.Payload)}
			return true, nil
		}},
		OnServerDisconnect: func(d *paho5.Disconnect) { c.gone.Store(int32(d.ReasonCode)) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ca, err := c.c.Connect(ctx, &paho5.Connect{ClientID: cid, KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte(chat.Sign(testKey, time.Now().UnixMilli())), PasswordFlag: true})
	if ca == nil {
		t.Fatalf("connect %s as %s: %v", cid, user, err)
	}
	if ca.ReasonCode != 0 {
		return nil, ca.ReasonCode
	}
	t.Cleanup(func() { _ = c.c.Disconnect(&paho5.Disconnect{}) })
	sa, err := c.c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "users/" + user + "/#", QoS: 1}}})
	if sa == nil || sa.Reasons[0] > 2 {
		t.Fatalf("subscribe: %v %v", sa, err)
	}
	return c, 0
}

// publish publishes at QoS 1 and returns the PUBACK reason code.
func (c *client) publish(topic, payload string) (byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	pr, err := c.c.Publish(ctx, &paho5.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
	if pr == nil {
		return 0, err
	}
	return pr.ReasonCode, nil
}

func (c *client) say(t *testing.T, topic, body string) {
	t.Helper()
	if rc, err := c.publish(topic, fmt.Sprintf(`{"content":{"body":%q}}`, body)); rc != 0 || err != nil {
		t.Fatalf("say %s %s: %#x %v", topic, body, rc, err)
	}
}

func (c *client) next(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message within the wait")
		return msg{}
	}
}

// nextOn skips to the next message on a topic ending in suffix.
func (c *client) nextOn(t *testing.T, suffix string) msg {
	t.Helper()
	for {
		if m := c.next(t); strings.HasSuffix(m.Topic, suffix) {
			return m
		}
	}
}

// marker publishes a marker event to id through nd: events from one node
// to one session keep their order, so a session that receives the marker
// has received everything nd handed it before.
var markers atomic.Int64

func marker(nd *node, id chat.Identity) string {
	m := fmt.Sprintf(`"marker-%d"`, markers.Add(1))
	nd.svc.Publisher.Publish(id, "marker", []byte(m), "")
	return m
}

// until returns the messages c receives before the marker m.
func (c *client) until(t *testing.T, m string) []msg {
	t.Helper()
	var out []msg
	for {
		got := c.next(t)
		if strings.HasSuffix(got.Topic, "/marker") && got.Payload == m {
			return out
		}
		out = append(out, got)
	}
}

// close disconnects c normally.
func (c *client) close() { _ = c.c.Disconnect(&paho5.Disconnect{}) }

// lossyPair starts two nodes a and b with friends alice (on a) and bob (on
// b), both connected; b's bus loses the first inbox message whose payload
// holds "lost" (dropped counts the losses).
func lossyPair(t *testing.T) (n []*node, alice, bob *client, dropped *atomic.Int32) {
	t.Helper()
	dropped = new(atomic.Int32)
	db, n := startCluster(t, 2, func(id string, o *cluster.Options) {
		if id == "b" {
			o.Drop = func(_ chat.Identity, event string, payload []byte) bool {
				return event == chat.EventMessage && strings.Contains(string(payload), "lost") && dropped.Add(1) == 1
			}
		}
	})
	users(t, db, "alice", "bob")
	friends(t, db, "alice", "bob")
	alice = connect(t, n[0], "alice-1", "alice")
	bob = connect(t, n[1], "bob-1", "bob")
	waitUntil(t, "a sees bob", func() bool { return n[0].n.RemoteSessions(chat.User("bob")) == 1 })
	return n, alice, bob, dropped
}
