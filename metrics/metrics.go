// Package metrics holds mqim's Prometheus metrics (docs/metrics.md): one
// registry of its own (never the process-global default) with the Go
// runtime and process collectors, and typed methods that the adapters
// (broker, hooks, socketio, rest, storage, push) call at their event sites.
// It is the only package of mqim that imports the Prometheus client.
//
// A nil *Metrics does nothing: every method checks its receiver, so each
// adapter takes it as an optional Options field and its tests need none.
//
// Every label is bounded: protocols, listeners, outcomes and kinds are
// fixed sets (an unknown value is counted under "unknown" or "error"),
// HTTP routes are the router's patterns, never raw paths, and no metric
// carries a user, client or message id. The counters of the say path are
// resolved once, in New, so counting a say is one atomic add.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mqim/mqim/chat"
)

// Protocols: the real-time layers and REST.
const (
	MQTT     = "mqtt"
	SocketIO = "socketio"
	REST     = "rest"
)

// Outcomes of a login or a say.
const (
	OK           = "ok"
	Unauthorized = "unauthorized" // bad credentials
	Refused      = "refused"      // credentials fine, the request is not allowed (not a friend, will, keepalive, connection cap)
	Banned       = "banned"
	Throttled    = "throttled" // a rate limit or the failed-login throttle
	Invalid      = "invalid"   // malformed, too long, unknown target
	Error        = "error"     // the server failed (store, timeout)
)

// Say kinds: the kind of conversation a say goes to.
const (
	KindFriend    = "friend"
	KindGroup     = "group"
	KindRoom      = "room"
	KindPassenger = "passenger"
	KindStranger  = "stranger"
	KindSystem    = "system"
	KindUnknown   = "unknown"
)

// Push outcomes.
const (
	PushSent    = "sent"    // the webhook accepted it
	PushFailed  = "failed"  // every attempt failed
	PushDropped = "dropped" // the queue was full (or the pusher closed)
)

// Store operations timed by ObserveCommit.
const (
	CommitAppend = "append" // a group commit of message records
	CommitUpdate = "update" // any other read-write transaction
)

var (
	protocols    = []string{MQTT, SocketIO}
	loginResults = []string{OK, Unauthorized, Refused, Banned, Throttled, Error}
	sayKinds     = []string{KindFriend, KindGroup, KindRoom, KindPassenger, KindStranger, KindSystem, KindUnknown}
	sayResults   = []string{OK, Refused, Invalid, Throttled, Error}
	rateProtos   = []string{MQTT, SocketIO}
	pushResults  = []string{PushSent, PushFailed, PushDropped}
	commitOps    = []string{CommitAppend, CommitUpdate}
)

// Metrics is the registry and every mqim metric. Build it with New.
type Metrics struct {
	reg     *prometheus.Registry
	version string
	start   time.Time

	logins      [2][6]prometheus.Counter // protocols × loginResults
	says        [7][5]prometheus.Counter // sayKinds × sayResults
	rateLimited [2]prometheus.Counter    // rateProtos
	push        [3]prometheus.Counter    // pushResults
	commits     [2]prometheus.Observer   // commitOps
	historyRead prometheus.Observer

	httpTotal    *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpChildren sync.Map // httpKey → *httpChild

	sioDelivered atomic.Int64

	mu      sync.Mutex
	sources sources
}

// MQTTSource is what the broker reports at scrape time: counters it keeps
// anyway (mochi's own), read without any cost on the message path.
type MQTTSource struct {
	// Delivered is the number of PUBLISH packets written to MQTT clients
	// (events, resends of a persistent session's queue included).
	Delivered func() int64
	// QueueFull is the number of events dropped because a client's
	// outbound queue was full.
	QueueFull func() int64
	// InflightFull is the number of events dropped because a client's
	// inflight quota (mqtt.max_inflight) was reached.
	InflightFull func() int64
	// Connections calls add once per (listener, protocol version) with the
	// number of live connections; version is 4 (3.1.1) or 5.
	Connections func(add func(listener string, version byte, n int))
}

type sources struct {
	mqtt        MQTTSource
	sioSessions func() int
	usersOnline func() int
	pushDepth   func() int
	pushCap     int
}

// New returns the metrics of a server of the given version, started now.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), version: version, start: time.Now()}
	f := promauto{m.reg}

	logins := f.counterVec("mqim_logins_total", "Logins (MQTT CONNECT, socket.io login) by protocol and outcome.", "protocol", "outcome")
	for i, p := range protocols {
		for j, o := range loginResults {
			m.logins[i][j] = logins.WithLabelValues(p, o)
		}
	}
	says := f.counterVec("mqim_says_total", "Messages sent by clients (say over MQTT and socket.io) and system messages (REST), by conversation kind and outcome.", "kind", "outcome")
	for i, k := range sayKinds {
		for j, o := range sayResults {
			m.says[i][j] = says.WithLabelValues(k, o)
		}
	}
	rl := f.counterVec("mqim_rate_limited_total", "Says, recalls and edits refused by the per-identity rate limit (mqtt.rate_limit), by protocol.", "protocol")
	for i, p := range rateProtos {
		m.rateLimited[i] = rl.WithLabelValues(p)
	}
	push := f.counterVec("mqim_push_notifications_total", "Offline push notifications by outcome: sent, failed (every attempt failed), dropped (queue full).", "outcome")
	for i, o := range pushResults {
		m.push[i] = push.WithLabelValues(o)
	}
	commits := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mqim_store_commit_duration_seconds",
		Help:    "Time of one store commit: op append is a group commit of message records, update any other read-write transaction.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"op"})
	m.reg.MustRegister(commits)
	for i, op := range commitOps {
		m.commits[i] = commits.WithLabelValues(op)
	}
	hr := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mqim_history_read_duration_seconds",
		Help:    "Time of one read of a conversation's records (a history page, a catch-up).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.reg.MustRegister(hr)
	m.historyRead = hr

	m.httpTotal = f.counterVec("mqim_http_requests_total", "HTTP requests by method, route pattern and status.", "method", "route", "status")
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mqim_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by method and route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route"})
	m.reg.MustRegister(m.httpDuration)

	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mqim_build_info",
		Help: "Always 1; the labels name the running version.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(buildInfo)
	startTime := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mqim_start_time_seconds",
		Help: "When the server started, in seconds since the epoch.",
	})
	startTime.Set(float64(m.start.UnixNano()) / 1e9)
	m.reg.MustRegister(startTime)

	m.reg.MustRegister(&scrapeCollector{m: m})
	m.reg.MustRegister(collectors.NewGoCollector())
	m.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type promauto struct{ reg *prometheus.Registry }

func (f promauto) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

// Registry returns the registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or what the
// scraper negotiates).
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Version returns the version New was given.
func (m *Metrics) Version() string {
	if m == nil {
		return ""
	}
	return m.version
}

// Started returns when New was called.
func (m *Metrics) Started() time.Time {
	if m == nil {
		return time.Time{}
	}
	return m.start
}

func index(set []string, v string) int {
	for i, s := range set {
		if s == v {
			return i
		}
	}
	return -1
}

// Login counts a login over protocol (MQTT or SocketIO) with its outcome
// (OK, Unauthorized, Refused, Banned, Throttled, Error; anything else
// counts as Error).
func (m *Metrics) Login(protocol, outcome string) {
	if m == nil {
		return
	}
	p := index(protocols, protocol)
	if p < 0 {
		return
	}
	o := index(loginResults, outcome)
	if o < 0 {
		o = len(loginResults) - 1
	}
	m.logins[p][o].Inc()
}

// Say counts a say to a conversation of kind (KindFriend, ...; anything
// else counts as KindUnknown) with its outcome (see SayOutcome).
func (m *Metrics) Say(kind, outcome string) {
	if m == nil {
		return
	}
	k := sayKindIndex(kind)
	o := index(sayResults, outcome)
	if o < 0 {
		o = len(sayResults) - 1
	}
	m.says[k][o].Inc()
}

func sayKindIndex(kind string) int {
	switch kind {
	case KindFriend:
		return 0
	case KindGroup:
		return 1
	case KindRoom:
		return 2
	case KindPassenger:
		return 3
	case KindStranger:
		return 4
	case KindSystem:
		return 5
	}
	return 6
}

// SayOutcome is the outcome of a say that ended with err: OK for nil,
// Refused for 5003 (not a friend, not a member), Throttled for 5013,
// Invalid for the malformed (5001, 5010, 5009) and unknown targets (5004,
// 5005), Error otherwise.
func SayOutcome(err error) string {
	switch chat.ErrorCode(err) {
	case 0:
		return OK
	case chat.CodeUnauthorized:
		return Refused
	case chat.CodeRateLimited:
		return Throttled
	case chat.CodeInvalid, chat.CodeTooLong, chat.CodeUnsupported, chat.CodeNotFound, chat.CodeConflict:
		return Invalid
	}
	return Error
}

// SayKind is the metrics kind of a MaxIM receiver type (chat.TypeFriend,
// ...) sent to by a sender of kind from: a passenger's conversation is
// always KindPassenger.
func SayKind(from chat.Kind, typ int) string {
	if from == chat.KindPassenger {
		return KindPassenger
	}
	switch typ {
	case chat.TypeFriend:
		return KindFriend
	case chat.TypeGroup:
		return KindGroup
	case chat.TypeRoom:
		return KindRoom
	case chat.TypePassenger:
		return KindPassenger
	case chat.TypeStranger:
		return KindStranger
	}
	return KindUnknown
}

// RateLimited counts a say, recall or edit refused by the rate limit.
func (m *Metrics) RateLimited(protocol string) {
	if m == nil {
		return
	}
	if p := index(rateProtos, protocol); p >= 0 {
		m.rateLimited[p].Inc()
	}
}

// Delivered counts n events written to socket.io sessions. (MQTT
// deliveries come from the broker's own counter, MQTTSource.Delivered.)
func (m *Metrics) Delivered(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sioDelivered.Add(int64(n))
}

// Push counts an offline push notification with its outcome (PushSent,
// PushFailed, PushDropped).
func (m *Metrics) Push(outcome string) {
	if m == nil {
		return
	}
	if o := index(pushResults, outcome); o >= 0 {
		m.push[o].Inc()
	}
}

// ObserveCommit records the time of one store commit of op (CommitAppend
// or CommitUpdate).
func (m *Metrics) ObserveCommit(op string, d time.Duration) {
	if m == nil {
		return
	}
	i := 1
	if op == CommitAppend {
		i = 0
	}
	m.commits[i].Observe(d.Seconds())
}

// ObserveHistoryRead records the time of one read of a conversation's
// records.
func (m *Metrics) ObserveHistoryRead(d time.Duration) {
	if m == nil {
		return
	}
	m.historyRead.Observe(d.Seconds())
}

type httpKey struct {
	method, route string
	status        int
}

type httpChild struct {
	total    prometheus.Counter
	duration prometheus.Observer
}

// HTTP counts one answered request: method, the route pattern that served
// it (never the raw path) and the status, and observes its duration.
func (m *Metrics) HTTP(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	switch method {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH":
	default:
		method = "other"
	}
	k := httpKey{method, route, status}
	c, ok := m.httpChildren.Load(k)
	if !ok {
		c, _ = m.httpChildren.LoadOrStore(k, &httpChild{
			total:    m.httpTotal.WithLabelValues(method, route, strconv.Itoa(status)),
			duration: m.httpDuration.WithLabelValues(method, route),
		})
	}
	ch := c.(*httpChild)
	ch.total.Inc()
	ch.duration.Observe(d.Seconds())
}

// SetMQTT sets the broker's scrape-time source.
func (m *Metrics) SetMQTT(src MQTTSource) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sources.mqtt = src
	m.mu.Unlock()
}

// SetSocketIO sets the count of live socket.io sessions.
func (m *Metrics) SetSocketIO(sessions func() int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sources.sioSessions = sessions
	m.mu.Unlock()
}

// SetUsersOnline sets the count of distinct identities with a session.
func (m *Metrics) SetUsersOnline(n func() int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sources.usersOnline = n
	m.mu.Unlock()
}

// SetPushQueue sets the depth of the push queue and its capacity.
func (m *Metrics) SetPushQueue(depth func() int, capacity int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sources.pushDepth, m.sources.pushCap = depth, capacity
	m.mu.Unlock()
}
