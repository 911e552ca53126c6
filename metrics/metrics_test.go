package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// scrape serves m over real HTTP and parses the text it returns.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("metrics output does not parse: %v\n%s", err, b)
	}
	return fams
}

// value returns the value of the series of family name with the labels
// given as name=value pairs (all of them must match; unnamed ones are
// free), summed over the series that match.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
next:
	for _, mt := range f.GetMetric() {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			found := false
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case mt.Counter != nil:
			sum += mt.GetCounter().GetValue()
		case mt.Gauge != nil:
			sum += mt.GetGauge().GetValue()
		case mt.Histogram != nil:
			sum += float64(mt.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// A nil *Metrics does nothing, so adapters built without metrics work.
func TestNil_DoesNothing(t *testing.T) {
	var m *metrics.Metrics
	m.Login(metrics.MQTT, metrics.OK)
	m.Say(metrics.KindFriend, metrics.OK)
	m.RateLimited(metrics.MQTT)
	m.Delivered(3)
	m.Push(metrics.PushSent)
	m.ObserveCommit(metrics.CommitAppend, time.Millisecond)
	m.ObserveHistoryRead(time.Millisecond)
	m.HTTP("GET", "/ctx", 200, time.Millisecond)
	m.SetMQTT(metrics.MQTTSource{})
	m.SetSocketIO(func() int { return 1 })
	m.SetUsersOnline(func() int { return 1 })
	m.SetPushQueue(func() int { return 1 }, 1)
	if st, err := m.Stats(); err != nil || st.Version != "" {
		t.Fatalf("nil Stats = %+v, %v", st, err)
	}
	if !m.Started().IsZero() || m.Version() != "" {
		t.Fatal("nil Metrics has a start or a version")
	}
}

// Every counting method lands in its family with bounded labels, the
// scrape-time sources are read, and Stats agrees with the scrape.
func TestCounts_ScrapeAndStats(t *testing.T) {
	m := metrics.New("v1.2.3")
	m.Login(metrics.MQTT, metrics.OK)
	m.Login(metrics.MQTT, metrics.OK)
	m.Login(metrics.MQTT, metrics.Unauthorized)
	m.Login(metrics.SocketIO, "something else") // counts as error
	m.Login("carrier pigeon", metrics.OK)       // unknown protocol: not counted
	m.Say(metrics.KindFriend, metrics.OK)
	m.Say(metrics.KindGroup, metrics.OK)
	m.Say(metrics.KindGroup, metrics.OK)
	m.Say(metrics.KindFriend, metrics.Refused)
	m.Say("say/friend/bob", metrics.OK) // never a raw topic: unknown
	m.RateLimited(metrics.SocketIO)
	m.Delivered(4)
	m.Push(metrics.PushDropped)
	m.ObserveCommit(metrics.CommitAppend, time.Millisecond)
	m.ObserveCommit(metrics.CommitUpdate, time.Millisecond)
	m.ObserveHistoryRead(2 * time.Millisecond)
	m.HTTP("GET", "/ctx/:uid", 200, time.Millisecond)
	m.HTTP("GET", "/ctx/:uid", 200, time.Millisecond)
	m.HTTP("BREW", "/ctx/:uid", 404, time.Millisecond)
	m.SetMQTT(metrics.MQTTSource{
		Delivered:    func() int64 { return 10 },
		QueueFull:    func() int64 { return 2 },
		InflightFull: func() int64 { return 1 },
		Connections: func(add func(string, byte, int)) {
			add("tcp", 4, 3)
			add("tcp", 5, 1)
			add("ws", 4, 0)
		},
	})
	m.SetSocketIO(func() int { return 2 })
	m.SetUsersOnline(func() int { return 4 })
	m.SetPushQueue(func() int { return 7 }, 1024)

	f := scrape(t, m)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mqim_logins_total", []string{"protocol=mqtt", "outcome=ok"}, 2},
		{"mqim_logins_total", []string{"protocol=mqtt", "outcome=unauthorized"}, 1},
		{"mqim_logins_total", []string{"protocol=socketio", "outcome=error"}, 1},
		{"mqim_logins_total", nil, 4},
		{"mqim_says_total", []string{"kind=friend", "outcome=ok"}, 1},
		{"mqim_says_total", []string{"kind=group", "outcome=ok"}, 2},
		{"mqim_says_total", []string{"kind=friend", "outcome=refused"}, 1},
		{"mqim_says_total", []string{"kind=unknown", "outcome=ok"}, 1},
		{"mqim_says_total", nil, 5},
		{"mqim_rate_limited_total", []string{"protocol=socketio"}, 1},
		{"mqim_deliveries_total", []string{"protocol=mqtt"}, 10},
		{"mqim_deliveries_total", []string{"protocol=socketio"}, 4},
		{"mqim_dropped_events_total", []string{"reason=queue_full"}, 2},
		{"mqim_dropped_events_total", []string{"reason=inflight_full"}, 1},
		{"mqim_push_notifications_total", []string{"outcome=dropped"}, 1},
		{"mqim_push_queue_depth", nil, 7},
		{"mqim_push_queue_capacity", nil, 1024},
		{"mqim_store_commit_duration_seconds", []string{"op=append"}, 1},
		{"mqim_store_commit_duration_seconds", []string{"op=update"}, 1},
		{"mqim_history_read_duration_seconds", nil, 1},
		{"mqim_http_requests_total", []string{"method=GET", "route=/ctx/:uid", "status=200"}, 2},
		{"mqim_http_requests_total", []string{"method=other", "route=/ctx/:uid", "status=404"}, 1},
		{"mqim_http_request_duration_seconds", []string{"route=/ctx/:uid"}, 3},
		{"mqim_connections", []string{"listener=tcp", "protocol=mqtt3.1.1"}, 3},
		{"mqim_connections", []string{"listener=tcp", "protocol=mqtt5"}, 1},
		{"mqim_connections", []string{"listener=http", "protocol=socketio"}, 2},
		{"mqim_users_online", nil, 4},
		{"mqim_build_info", []string{"version=v1.2.3"}, 1},
	}
	for _, c := range checks {
		if got := value(f, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if _, ok := f[name]; !ok {
			t.Errorf("runtime metric %s missing", name)
		}
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "v1.2.3" || st.Connections.MQTT != 4 || st.Connections.SocketIO != 2 || st.UsersOnline != 4 ||
		st.Messages.Says != 4 || st.Messages.Refused != 1 || st.Messages.Deliveries != 14 || st.HTTPRequests != 3 {
		t.Errorf("Stats = %+v", st)
	}
	if st.StartedAt != m.Started().UnixMilli() || st.UptimeS <= 0 {
		t.Errorf("Stats start %d uptime %v", st.StartedAt, st.UptimeS)
	}
}

// The outcome and kind helpers map every MaxIM code and receiver type to
// the fixed sets.
func TestSayOutcomeAndKind(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                     metrics.OK,
		chat.Errorf(chat.CodeUnauthorized, "x"): metrics.Refused,
		chat.Errorf(chat.CodeRateLimited, "x"):  metrics.Throttled,
		chat.Errorf(chat.CodeTooLong, "x"):      metrics.Invalid,
		chat.Errorf(chat.CodeNotFound, "x"):     metrics.Invalid,
		chat.Errorf(chat.CodeInternal, "x"):     metrics.Error,
		errors.New("context deadline exceeded"): metrics.Error,
	} {
		if got := metrics.SayOutcome(err); got != want {
			t.Errorf("SayOutcome(%v) = %s, want %s", err, got, want)
		}
	}
	for _, c := range []struct {
		from chat.Kind
		typ  int
		want string
	}{
		{chat.KindUser, chat.TypeFriend, metrics.KindFriend},
		{chat.KindUser, chat.TypeGroup, metrics.KindGroup},
		{chat.KindUser, chat.TypeRoom, metrics.KindRoom},
		{chat.KindUser, chat.TypeStranger, metrics.KindStranger},
		{chat.KindUser, chat.TypePassenger, metrics.KindPassenger},
		{chat.KindPassenger, chat.TypeFriend, metrics.KindPassenger},
		{chat.KindUser, 99, metrics.KindUnknown},
	} {
		if got := metrics.SayKind(c.from, c.typ); got != c.want {
			t.Errorf("SayKind(%v, %d) = %s, want %s", c.from, c.typ, got, c.want)
		}
	}
}

// Counting on the say path allocates nothing.
func TestHotPath_NoAllocs(t *testing.T) {
	m := metrics.New("dev")
	if n := testing.AllocsPerRun(1000, func() {
		m.Say(metrics.KindGroup, metrics.OK)
		m.Login(metrics.MQTT, metrics.OK)
		m.RateLimited(metrics.MQTT)
		m.Delivered(2)
		m.ObserveCommit(metrics.CommitAppend, time.Microsecond)
		m.ObserveHistoryRead(time.Microsecond)
		m.HTTP("GET", "/ctx/:uid", 200, time.Microsecond)
	}); n != 0 {
		t.Errorf("%v allocations per counted event, want 0", n)
	}
}

func BenchmarkSay(b *testing.B) {
	m := metrics.New("dev")
	b.ReportAllocs()
	for b.Loop() {
		m.Say(metrics.KindFriend, metrics.OK)
	}
}
