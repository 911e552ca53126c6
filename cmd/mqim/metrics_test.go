package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// scrapeMetrics GETs url with headers and parses the text format; the
// whole output must parse.
func scrapeMetrics(t *testing.T, url string, headers map[string]string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, b)
	}
	return fams
}

// series returns every series of the families named prefix* as
// `name{k=v,...}` → value (histograms: their sample count).
func series(fams map[string]*dto.MetricFamily, prefix string) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, mt := range f.GetMetric() {
			var ls []string
			for _, l := range mt.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(ls)
			k := name + "{" + strings.Join(ls, ",") + "}"
			switch {
			case mt.Counter != nil:
				out[k] = mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				out[k] = mt.GetGauge().GetValue()
			case mt.Histogram != nil:
				out[k] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Ensure the Prometheus metrics count a scripted session exactly, on the
// real binary: 2 good MQTT logins and 1 bad one, 3 friend says, 2 group
// says, 1 say to a non-friend (refused), 1 system message and 1 upload over
// REST, a history read. Every mqim_ counter of those families has exactly
// the expected value (zeros included), deliveries equal what the
// subscriber received, the whole output parses, no label carries a user
// id, /metrics without the master key is a MaxIM error, and /stats agrees
// with /metrics.
func TestMain_Metrics(t *testing.T) {
	singleNodeOnly(t, "exact counters of one process's /metrics")
	p := startMQIM(t, t.TempDir())
	master := map[string]string{"X-ML-AppId": p.AppID, "X-ML-MasterKey": p.Master}
	type httpKey struct {
		method, route string
		status        int
	}
	wantHTTP := map[httpKey]int{}
	call := func(method, route, path string, body any, headers map[string]string) response {
		t.Helper()
		r := p.doWith(method, path, body, headers)
		wantHTTP[httpKey{method, route, r.Status}]++
		return r
	}

	// Refused scrapes first: they are counted too.
	expectError(t, "metrics without credentials", call("GET", "/metrics", "/metrics", nil, nil), 401, chat.CodeUnauthorized)
	expectError(t, "metrics with the client key", call("GET", "/metrics", "/metrics", nil, map[string]string{
		"X-ML-AppId": p.AppID, "X-ML-Request-Sign": chat.Sign(p.Key, time.Now().UnixMilli()),
	}), 403, chat.CodeUnauthorized)
	expectError(t, "stats with the client key", call("GET", "/stats", "/stats", nil, map[string]string{
		"X-ML-AppId": p.AppID, "X-ML-APIKey": p.Key,
	}), 403, chat.CodeUnauthorized)

	expect(t, "befriend", call("POST", "/ctx/:uid/friends/:fid", "/ctx/alice/friends/bob", nil, master), 201)
	r := call("POST", "/groups", "/groups", map[string]any{"owner": "alice", "members": []string{"bob"}}, master)
	expect(t, "create group", r, 201)
	var gid string
	r.JSON(t, &gid)

	// bob listens to his inbox; every PUBLISH he gets is a delivery.
	var mu sync.Mutex
	got := map[string]int{}
	total := 0
	bob := mustConnectV3(t, p, "bob", "bob-phone")
	if bob == nil {
		t.FailNow()
	}
	defer bob.Disconnect(0)
	if tok := bob.Subscribe("users/bob/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		got[m.Topic()[strings.LastIndex(m.Topic(), "/")+1:]]++
		total++
		mu.Unlock()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	alice := mustConnectV3(t, p, "alice", "alice-phone")
	if alice == nil {
		t.FailNow()
	}
	defer alice.Disconnect(0)

	// One bad login: a wrong signature.
	bad := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + p.MQTT).SetClientID("mallory").
		SetUsername("mallory").SetPassword("0123456789abcdef0123456789abcdef,1").SetAutoReconnect(false).SetConnectRetry(false))
	if tok := bad.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		t.Fatal("a bad signature logged in")
	}

	pub := func(topic, body string) {
		t.Helper()
		tok := alice.Publish(topic, 1, false, fmt.Sprintf(`{"content":{"media":0,"body":%q}}`, body))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	for i := range 3 {
		pub("say/friend/bob", fmt.Sprintf("friend %d", i))
	}
	for i := range 2 {
		pub("say/group/"+gid, fmt.Sprintf("group %d", i))
	}
	pub("say/friend/carol", "not a friend") // refused: 5003

	r = call("POST", "/system/:target", "/system/bob", map[string]any{"content": map[string]any{"media": 0, "body": "maintenance"}}, master)
	expect(t, "system message", r, 202)

	// One upload, signed with the client key.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("attachment", "note.txt")
	_, _ = fw.Write([]byte("hello metrics"))
	_ = mw.Close()
	r = call("POST", "/attachment", "/attachment", form.String(), map[string]string{
		"X-ML-AppId": p.AppID, "X-ML-Request-Sign": chat.Sign(p.Key, time.Now().UnixMilli()), "Content-Type": mw.FormDataContentType(),
	})
	expect(t, "upload", r, 201)

	r = call("GET", "/ctx/:uid/friends/:fid/chats", "/ctx/bob/friends/alice/chats", nil, master)
	expect(t, "history", r, 200)
	var hist []map[string]any
	r.JSON(t, &hist)
	if len(hist) != 3 {
		t.Fatalf("history has %d records, want 3", len(hist))
	}

	testwait.Until(t, "bob receives the 3 friend, 2 group and 1 system messages", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got[chat.EventMessage] == 5 && got[chat.EventSys] == 1
	})

	rz := call("GET", "/readyz", "/readyz", nil, nil)
	expect(t, "readyz", rz, 200)
	var ready struct {
		Status  string            `json:"status"`
		Version string            `json:"version"`
		Uptime  float64           `json:"uptime_s"`
		Checks  map[string]string `json:"checks"`
	}
	rz.JSON(t, &ready)
	if ready.Status != "ready" || ready.Version == "" || ready.Uptime <= 0 ||
		ready.Checks["store"] != "ok" || ready.Checks["mqtt"] != "ok" || ready.Checks["http"] != "ok" {
		t.Errorf("readyz = %s", rz.Body)
	}

	fams := scrapeMetrics(t, p.HTTP+"/metrics", master)
	wantHTTP[httpKey{"GET", "/metrics", 200}]++ // counted after it was gathered
	mu.Lock()
	delivered := total
	mu.Unlock()

	want := map[string]float64{
		"mqim_logins_total{outcome=ok,protocol=mqtt}":           2,
		"mqim_logins_total{outcome=unauthorized,protocol=mqtt}": 1,
		"mqim_says_total{kind=friend,outcome=ok}":               3,
		"mqim_says_total{kind=group,outcome=ok}":                2,
		"mqim_says_total{kind=friend,outcome=refused}":          1,
		"mqim_says_total{kind=system,outcome=ok}":               1,
		"mqim_deliveries_total{protocol=mqtt}":                  float64(delivered),
		"mqim_deliveries_total{protocol=socketio}":              0,
		"mqim_dropped_events_total{reason=inflight_full}":       0,
		"mqim_dropped_events_total{reason=queue_full}":          0,
		"mqim_rate_limited_total{protocol=mqtt}":                0,
		"mqim_rate_limited_total{protocol=socketio}":            0,
		"mqim_push_notifications_total{outcome=dropped}":        0,
		"mqim_push_notifications_total{outcome=failed}":         0,
		"mqim_push_notifications_total{outcome=sent}":           0,
	}
	for k, n := range wantHTTP {
		if k.route == "/metrics" && k.status == 200 {
			continue // the scrape itself is not in its own output
		}
		want[fmt.Sprintf("mqim_http_requests_total{method=%s,route=%s,status=%d}", k.method, k.route, k.status)] = float64(n)
		want[fmt.Sprintf("mqim_http_request_duration_seconds{method=%s,route=%s}", k.method, k.route)] += float64(n)
	}
	for _, fam := range []string{"mqim_logins_total", "mqim_says_total", "mqim_deliveries_total", "mqim_dropped_events_total",
		"mqim_rate_limited_total", "mqim_push_notifications_total", "mqim_http_requests_total", "mqim_http_request_duration_seconds"} {
		for k, v := range series(fams, fam) {
			if !strings.HasPrefix(k, fam+"{") {
				continue
			}
			if v != want[k] {
				t.Errorf("%s = %v, want %v", k, v, want[k])
			}
			delete(want, k)
		}
	}
	for k, v := range want {
		if v != 0 {
			t.Errorf("%s missing from the metrics (want %v)", k, v)
		}
	}
	mu.Lock()
	t.Logf("bob received %d events: %v", delivered, got)
	mu.Unlock()
	if delivered < 6 {
		t.Errorf("bob received %d events, want at least 6", delivered)
	}
	gauges := series(fams, "mqim_")
	for k, v := range map[string]float64{
		"mqim_connections{listener=tcp,protocol=mqtt3.1.1}": 2,
		"mqim_connections{listener=tcp,protocol=mqtt5}":     0,
		"mqim_connections{listener=http,protocol=socketio}": 0,
		"mqim_users_online{}":                               2,
		"mqim_push_queue_capacity{}":                        0,
	} {
		if gauges[k] != v {
			t.Errorf("%s = %v, want %v", k, gauges[k], v)
		}
	}
	for _, k := range []string{"mqim_store_commit_duration_seconds{op=append}", "mqim_store_commit_duration_seconds{op=update}", "mqim_history_read_duration_seconds{}"} {
		if gauges[k] < 1 {
			t.Errorf("%s observed %v times, want at least 1", k, gauges[k])
		}
	}
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "process_resident_memory_bytes", "mqim_build_info", "mqim_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	// Bounded labels: no user, client or group id anywhere.
	for name, f := range fams {
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "user", "uid", "client", "client_id", "identity", "session", "path", "id":
					t.Errorf("%s has a per-user label %s", name, l.GetName())
				}
				if v := l.GetValue(); strings.Contains(v, "alice") || strings.Contains(v, "bob") || strings.Contains(v, gid) {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
			}
		}
	}

	// /stats agrees with the scrape: every request up to the scrape, plus
	// the scrape.
	var httpTotal float64
	for _, v := range series(fams, "mqim_http_requests_total") {
		httpTotal += v
	}
	st := p.doWith("GET", "/stats", nil, master)
	expect(t, "stats", st, 200)
	var raw map[string]any
	st.JSON(t, &raw)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if strings.Join(keys, ",") != "connections,http_requests,messages,started_at,uptime_s,users_online,version" {
		t.Errorf("stats keys %v", keys)
	}
	var stats struct {
		Version     string  `json:"version"`
		StartedAt   int64   `json:"started_at"`
		UptimeS     float64 `json:"uptime_s"`
		Connections struct {
			MQTT     int `json:"mqtt"`
			SocketIO int `json:"socketio"`
		} `json:"connections"`
		UsersOnline int `json:"users_online"`
		Messages    struct {
			Says       int64 `json:"says"`
			Refused    int64 `json:"refused"`
			Deliveries int64 `json:"deliveries"`
		} `json:"messages"`
		HTTPRequests int64 `json:"http_requests"`
	}
	st.JSON(t, &stats)
	if stats.Version != ready.Version || stats.UptimeS <= 0 || stats.StartedAt > time.Now().UnixMilli() ||
		stats.StartedAt < time.Now().Add(-time.Hour).UnixMilli() ||
		stats.Connections.MQTT != 2 || stats.Connections.SocketIO != 0 || stats.UsersOnline != 2 ||
		stats.Messages.Says != 6 || stats.Messages.Refused != 1 || stats.Messages.Deliveries != int64(delivered) ||
		stats.HTTPRequests != int64(httpTotal)+1 {
		t.Errorf("stats = %s (metrics: %v http requests, %d deliveries)", st.Body, httpTotal, delivered)
	}
	var startTime float64
	if f := fams["mqim_start_time_seconds"]; f != nil {
		startTime = f.GetMetric()[0].GetGauge().GetValue()
	}
	if d := float64(stats.StartedAt)/1000 - startTime; d > 0.001 || d < -0.001 {
		t.Errorf("stats started_at %d, mqim_start_time_seconds %v", stats.StartedAt, startTime)
	}

	// A bearer master key (Prometheus' authorization option) scrapes too.
	scrapeMetrics(t, p.HTTP+"/metrics", map[string]string{"Authorization": "Bearer " + p.Master})
}

// Ensure metrics.addr serves /metrics without credentials on its own
// listener, and only /metrics.
func TestMain_MetricsAddr(t *testing.T) {
	singleNodeOnly(t, "one process's metrics listener")
	p := startMQIM(t, t.TempDir(), "MQIM_METRICS_ADDR=127.0.0.1:0")
	var addr string
	p.waitLog(t, "metrics listening", func(l map[string]any) bool {
		if l["message"] == "metrics listening" {
			addr, _ = l["addr"].(string)
			return true
		}
		return false
	})
	fams := scrapeMetrics(t, "http://"+addr+"/metrics", nil)
	if fams["mqim_logins_total"] == nil || fams["go_goroutines"] == nil {
		t.Errorf("metrics listener output lacks mqim_logins_total or go_goroutines")
	}
	res, err := http.Get("http://" + addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("GET /stats on the metrics listener: %d, want 404", res.StatusCode)
	}
	// The REST listener still wants the master key.
	expectError(t, "metrics on http.addr without credentials", p.doWith("GET", "/metrics", nil, nil), 401, chat.CodeUnauthorized)
}

// Ensure the readiness checks of cmd/mqim: all pass on a running server;
// once Close has begun every check fails, and /readyz answers 503 with
// MaxIM error 5002 while in-flight requests may still be served.
func TestMain_ReadyChecks(t *testing.T) {
	m := NewMain()
	m.Out = io.Discard
	m.Log = zerolog.New(zerolog.NewTestWriter(t))
	c := &m.Config
	c.DataDir = t.TempDir()
	c.HTTP.Addr = "127.0.0.1:0"
	c.MQTT.TCPAddr, c.MQTT.WSAddr = "127.0.0.1:0", "127.0.0.1:0"
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for name, err := range m.ready(context.Background()) {
		if err != nil {
			t.Errorf("check %s on a running server: %v", name, err)
		}
	}
	base := "http://" + m.HTTP.Addr().String()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("readyz: %d", res.StatusCode)
	}

	// What Close does first; the listeners are still up.
	m.closeMetrics()
	res, err = http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var body struct {
		Status    string            `json:"status"`
		Checks    map[string]string `json:"checks"`
		ErrorCode int               `json:"errorCode"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("readyz body %s: %v", b, err)
	}
	if res.StatusCode != 503 || body.Status != "unavailable" || body.ErrorCode != chat.CodeInternal ||
		body.Checks["store"] != "shutting down" || body.Checks["mqtt"] != "shutting down" || body.Checks["http"] != "shutting down" {
		t.Errorf("readyz while shutting down: %d %s", res.StatusCode, b)
	}

	// A closed store fails its check on its own.
	m.metrics.closing.Store(false)
	if err := m.DB.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.ready(context.Background())["store"]; err == nil {
		t.Error("store check passes on a closed store")
	}
}

// Ensure socket.io is counted like MQTT: the session of TestMain_SocketIO
// (test/js/sio.cjs: a bad login, three good ones, two friend says, a group
// say, a say to a non-friend) gives exactly those logins and says, the
// socket.io deliveries are the events the clients saw, and the
// connections gauge returns to 0 when they close.
func TestMain_MetricsSocketIO(t *testing.T) {
	singleNodeOnly(t, "exact counters of one process's /metrics")
	p := startMQIM(t, t.TempDir())
	expect(t, "friends", p.do("POST", "/ctx/alice/friends/bob", nil), 201)
	r := p.do("POST", "/groups", map[string]any{"owner": "alice", "members": []string{"bob"}})
	expect(t, "group", r, 201)
	var gid string
	r.JSON(t, &gid)
	evs := runSIO(t, p, "sio.cjs", "GID="+gid)
	seen := 0
	for _, ev := range evs {
		switch ev.Event {
		case "message", "yourself", "ack", "sys", "online", "offline":
			seen++
		}
	}
	master := map[string]string{"X-ML-AppId": p.AppID, "X-ML-MasterKey": p.Master}
	var got map[string]float64
	testwait.Until(t, "the socket.io sessions closed", 10*time.Second, func() bool {
		got = series(scrapeMetrics(t, p.HTTP+"/metrics", master), "mqim_")
		return got["mqim_connections{listener=http,protocol=socketio}"] == 0
	})
	for k, v := range map[string]float64{
		"mqim_logins_total{outcome=ok,protocol=socketio}":           3,
		"mqim_logins_total{outcome=unauthorized,protocol=socketio}": 1,
		"mqim_says_total{kind=friend,outcome=ok}":                   2,
		"mqim_says_total{kind=group,outcome=ok}":                    1,
		"mqim_says_total{kind=friend,outcome=refused}":              1,
		"mqim_users_online{}":                                       0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// The script closes a1, a2 and b1 at once: the offline event of the
	// identity whose sessions the server ends first may be written to the
	// other's sessions while they close, unseen (bob's to a1 and a2, or
	// alice's to b1): at most 2.
	if d := got["mqim_deliveries_total{protocol=socketio}"]; seen == 0 || d < float64(seen) || d > float64(seen+2) {
		t.Errorf("socket.io deliveries %v, the clients saw %d events", d, seen)
	}
}
