package hooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	pkts "github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/internal/testwait"
	"github.com/mqim/mqim/storage"
	"github.com/mqim/mqim/token"
)

const (
	testApp    = "569d84a0169e7d00012c7afe"
	testKey    = "client-key"
	testMaster = "master-key"
	// wait bounds every wait of these tests.
	wait = 5 * time.Second
)

// env is a broker with the mqim hooks over a Service on a real Badger store
// in a temp dir, listening on 127.0.0.1:0.
type env struct {
	svc  *chat.Service
	db   *storage.DB
	srv  *broker.Server
	addr string
	seq  atomic.Int64
	// pass, when set, is the password of a username (a token); nil: a
	// fresh signature with the client key.
	pass func(username string) string
}

// password returns the password the env's clients log in with.
func (e *env) password(username string) string {
	if e.pass != nil {
		return e.pass(username)
	}
	return sign()
}

// testTokenSecret signs the env's tokens.
const testTokenSecret = "a-token-secret-for-the-tests"

// mint returns a token for username (a user id or passenger:<id>) issued
// at iat and expiring at exp.
func mint(t testing.TB, username string, iat, exp time.Time) string {
	t.Helper()
	codec, err := token.New(testTokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := chat.ParseTokenSubject(username)
	if !ok {
		t.Fatalf("mint: bad username %q", username)
	}
	tok, err := codec.Issue(chat.TokenClaims{Subject: id, IssuedAt: iat, Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokens makes e's clients log in with tokens.
func (e *env) tokens(t testing.TB) {
	e.pass = func(username string) string { return mint(t, username, time.Now(), time.Now().Add(time.Hour)) }
}

// newEnv starts the server; edit adjusts the hook options.
func newEnv(t *testing.T, edit func(*hooks.Options)) *env {
	t.Helper()
	return startEnv(t, envConfig{hooks: edit})
}

// newEnvBroker is newEnv with the broker options adjusted too.
func newEnvBroker(t *testing.T, editBroker func(*broker.Options), edit func(*hooks.Options)) *env {
	t.Helper()
	return startEnv(t, envConfig{broker: editBroker, hooks: edit})
}

// envConfig adjusts an env before its server starts; every field is
// optional.
type envConfig struct {
	db     *storage.DB // the store, closed by its owner; nil: a fresh one in a temp dir
	chat   func(*chat.Options)
	svc    func(*chat.Service) // before the server starts (a test clock)
	broker func(*broker.Options)
	hooks  func(*hooks.Options)
}

// startEnv starts the broker with the mqim hooks over a Service (app
// testApp, bodies up to 1024 bytes, the client and master keys), each
// adjusted by c.
func startEnv(t *testing.T, c envConfig) *env {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	db := c.db
	if db == nil {
		db = openTestDB(t)
	}
	co := chat.Options{AppID: testApp, MaxBodyLen: 1024}
	if c.chat != nil {
		c.chat(&co)
	}
	svc := chat.NewService(db, co)
	codec, err := token.New(testTokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	svc.Tokens = codec
	if c.svc != nil {
		c.svc(svc)
	}
	bo := broker.Options{TCPAddr: "127.0.0.1:0", Logger: log}
	if c.broker != nil {
		c.broker(&bo)
	}
	srv := broker.New(bo)
	svc.Publisher = srv
	opts := hooks.Options{
		Service: svc,
		Auth: &chat.Authenticator{AppID: testApp, Tolerance: 15 * time.Minute,
			Keys: []chat.Key{{Value: testKey, Role: chat.RoleClient}, {Value: testMaster, Role: chat.RoleMaster}}},
		Log: log,
	}
	if c.hooks != nil {
		c.hooks(&opts)
	}
	if err := hooks.Register(srv, opts); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &env{svc: svc, db: db, srv: srv, addr: srv.TCPAddr().String()}
}

// openTestDB opens a store in a temp dir, closed when the test ends, which can
// outlive the envs started on it.
func openTestDB(t *testing.T) *storage.DB {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	db, err := storage.Open(storage.Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// rawV3 connects clientID as user over a bare MQTT 3.1.1 connection (clean
// session), for packets a client library would not write (a DUP
// retransmission); it is closed when the test ends.
func (e *env) rawV3(t *testing.T, clientID, user string) net.Conn {
	t.Helper()
	return e.rawV3Session(t, clientID, user, true)
}

// rawV3Session is rawV3 with the clean session flag given.
func (e *env) rawV3Session(t *testing.T, clientID, user string, clean bool) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(wait))
	cp := pkts.NewControlPacket(pkts.Connect).(*pkts.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.CleanSession, cp.Keepalive = "MQTT", 4, clean, 30
	cp.ClientIdentifier, cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = clientID, true, user, true, []byte(sign())
	if err := cp.Write(conn); err != nil {
		t.Fatal(err)
	}
	if ack, err := pkts.ReadPacket(conn); err != nil || ack.(*pkts.ConnackPacket).ReturnCode != 0 {
		t.Fatalf("CONNACK %v, %v", ack, err)
	}
	return conn
}

// rawPublishQoS1 writes a QoS 1 publish (DUP if dup) on a rawV3 connection and
// expects its PUBACK.
func rawPublishQoS1(t *testing.T, conn net.Conn, id uint16, dup bool, topic, payload string) {
	t.Helper()
	p := pkts.NewControlPacket(pkts.Publish).(*pkts.PublishPacket)
	p.Qos, p.Dup, p.MessageID, p.TopicName = 1, dup, id, topic
	p.Payload = []byte(payload)
	if err := p.Write(conn); err != nil {
		t.Fatal(err)
	}
	ack, err := pkts.ReadPacket(conn)
	if pa, ok := ack.(*pkts.PubackPacket); err != nil || !ok || pa.MessageID != id {
		t.Fatalf("PUBACK for %d: %v, %v", id, ack, err)
	}
}

// sign returns a fresh MaxIM signature with the client key.
func sign() string { return chat.Sign(testKey, time.Now().UnixMilli()) }

// seed writes directly to the store, past the Service and its membership
// cache: it sets up what the Service has not yet looked at.
func (e *env) seed(t *testing.T, fn func(tx chat.Tx) error) {
	t.Helper()
	if err := e.db.Update(context.Background(), fn); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

func (e *env) users(t *testing.T, ids ...string) {
	t.Helper()
	e.seed(t, func(tx chat.Tx) error {
		for _, id := range ids {
			if err := tx.PutUser(&chat.UserRecord{ID: id, Attributes: chat.Attributes{}, Installs: []string{}}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *env) friends(t *testing.T, a, b string) {
	t.Helper()
	e.seed(t, func(tx chat.Tx) error {
		return tx.PutFriendship(&chat.Friendship{ID: chat.NewFriendshipID(), From: a, To: b, NS: testApp})
	})
}

// marker publishes a marker event to id: events delivered to one session
// keep their order, so a session that receives the marker next received
// nothing else before it.
func (e *env) marker(id chat.Identity) string {
	m := fmt.Sprintf(`"marker-%d"`, e.seq.Add(1))
	e.svc.Publisher.Publish(id, "marker", []byte(m), "")
	return m
}

// msg is one received publish.
type msg struct {
	Topic   string
	Payload string
}

// client is a connected test client, MQTT 3.1.1 or 5.
type client interface {
	// Publish publishes at QoS 1 and returns the PUBACK reason code (always
	// 0 on MQTT 3.1.1, which cannot fail a PUBACK).
	Publish(t *testing.T, topic, payload string) byte
	// Subscribe subscribes at QoS 1 and returns the SUBACK code.
	Subscribe(t *testing.T, filter string) byte
	// Next returns the next received message.
	Next(t *testing.T) msg
	Close()
	Version() int
}

func nextMsg(t *testing.T, ch chan msg) msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatal("no message within the wait")
		return msg{}
	}
}

// expect fails unless the next message is on topic with exactly payload.
func expect(t *testing.T, c client, topic, payload string) {
	t.Helper()
	if m := c.Next(t); m.Topic != topic || m.Payload != payload {
		t.Fatalf("got %s %s\nwant %s %s", m.Topic, m.Payload, topic, payload)
	}
}

// expectJSON fails unless the next message is on topic with a payload equal
// to want as JSON, and returns it decoded.
func expectJSON(t *testing.T, c client, topic string, want map[string]any) map[string]any {
	t.Helper()
	m := c.Next(t)
	var got map[string]any
	if err := json.Unmarshal([]byte(m.Payload), &got); err != nil {
		t.Fatalf("%s %s: %v", m.Topic, m.Payload, err)
	}
	want = maps.Clone(want)
	for k := range want {
		if want[k] == anyValue {
			if _, ok := got[k]; ok {
				want[k] = got[k]
			}
		}
	}
	if m.Topic != topic || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %s %s\nwant %s %v", m.Topic, m.Payload, topic, want)
	}
	return got
}

// anyValue in a want map accepts whatever value the field has (present).
const anyValue = "<any>"

// v3 is a paho MQTT 3.1.1 client.
type v3 struct {
	c    paho3.Client
	msgs chan msg
}

// connectV3 connects as username with password; it fails the test unless
// the CONNACK return code is wantRC (0: accepted).
func (e *env) connectV3(t *testing.T, clientID, username, password string, clean bool, wantRC byte, edit func(*paho3.ClientOptions)) *v3 {
	t.Helper()
	c := &v3{msgs: make(chan msg, 100)}
	o := paho3.NewClientOptions().AddBroker("tcp://" + e.addr).SetClientID(clientID).SetUsername(username).SetPassword(password).
		SetProtocolVersion(4).SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { c.msgs <- msg{m.Topic(), string(m.Payload())} })
	if edit != nil {
		edit(o)
	}
	c.c = paho3.NewClient(o)
	tok := c.c.Connect()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("connect %s: no CONNACK", clientID)
	}
	if rc := tok.(*paho3.ConnectToken).ReturnCode(); rc != wantRC {
		t.Fatalf("connect %s: return code %d (%v), want %d", clientID, rc, tok.Error(), wantRC)
	}
	if wantRC != 0 {
		return nil
	}
	t.Cleanup(c.Close)
	return c
}

// userV3 connects user id with a fresh signature and subscribes to its
// inbox.
func (e *env) userV3(t *testing.T, clientID, id string) *v3 {
	t.Helper()
	c := e.connectV3(t, clientID, id, e.password(id), true, 0, nil)
	c.Subscribe(t, "users/"+id+"/#")
	return c
}

func (c *v3) Version() int { return 4 }

func (c *v3) Publish(t *testing.T, topic, payload string) byte {
	t.Helper()
	tok := c.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: no PUBACK (%v)", topic, tok.Error())
	}
	return 0
}

func (c *v3) Subscribe(t *testing.T, filter string) byte {
	t.Helper()
	tok := c.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	// One filter per call; paho keys the result by the filter without a
	// $share/ prefix, so take the only entry.
	for _, rc := range tok.(*paho3.SubscribeToken).Result() {
		return rc
	}
	t.Fatalf("subscribe %s: no result", filter)
	return 0
}

func (c *v3) Next(t *testing.T) msg { t.Helper(); return nextMsg(t, c.msgs) }

func (c *v3) Close() {
	if c.c.IsConnected() {
		c.c.Disconnect(0)
	}
}

// v5 is a paho.golang MQTT 5 client.
type v5 struct {
	c    *paho5.Client
	msgs chan msg
}

// connectV5 connects as username with password; it fails the test unless
// the CONNACK reason code is wantRC (0: accepted). The CONNACK is returned.
func (e *env) connectV5(t *testing.T, clientID, username, password string, wantRC byte, edit func(*paho5.Connect)) (*v5, *paho5.Connack) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	c := &v5{msgs: make(chan msg, 100)}
	c.c = paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			c.msgs <- msg{pr.Packet.Topic, string(pr.Packet.Payload)}
			return true, nil
		}},
	})
	cp := &paho5.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true,
		Username: username, UsernameFlag: true, Password: []byte(password), PasswordFlag: true}
	if edit != nil {
		edit(cp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ca, err := c.c.Connect(ctx, cp)
	if ca == nil {
		t.Fatalf("connect %s: %v", clientID, err)
	}
	if ca.ReasonCode != wantRC {
		t.Fatalf("connect %s: reason %#x (%v), want %#x", clientID, ca.ReasonCode, err, wantRC)
	}
	if wantRC != 0 {
		return nil, ca
	}
	t.Cleanup(c.Close)
	return c, ca
}

// userV5 connects user id with a fresh signature and subscribes to its
// inbox.
func (e *env) userV5(t *testing.T, clientID, id string) *v5 {
	t.Helper()
	c, _ := e.connectV5(t, clientID, id, e.password(id), 0, nil)
	c.Subscribe(t, "users/"+id+"/#")
	return c
}

func (c *v5) Version() int { return 5 }

func (c *v5) Publish(t *testing.T, topic, payload string) byte {
	t.Helper()
	return c.publishQoS(t, topic, payload, 1)
}

func (c *v5) publishQoS(t *testing.T, topic, payload string, qos byte) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	pr, err := c.c.Publish(ctx, &paho5.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)})
	if pr == nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
	return pr.ReasonCode
}

func (c *v5) Subscribe(t *testing.T, filter string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sa, err := c.c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa == nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
	return sa.Reasons[0]
}

func (c *v5) Next(t *testing.T) msg { t.Helper(); return nextMsg(t, c.msgs) }

func (c *v5) Close() { _ = c.c.Disconnect(&paho5.Disconnect{}) }

// connectFn connects user id as a client of one protocol version.
type connectFn func(e *env, t *testing.T, clientID, id string) client

// versions runs f once per protocol version.
func versions(t *testing.T, f func(t *testing.T, connect connectFn)) {
	t.Run("v3", func(t *testing.T) {
		f(t, func(e *env, t *testing.T, clientID, id string) client { return e.userV3(t, clientID, id) })
	})
	t.Run("v5", func(t *testing.T) {
		f(t, func(e *env, t *testing.T, clientID, id string) client { return e.userV5(t, clientID, id) })
	})
}

// waitFor polls cond until it holds, failing after the bounded wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, wait, cond)
}
