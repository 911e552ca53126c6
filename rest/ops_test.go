package rest_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
	"github.com/mqim/mqim/rest"
)

// withOps gives the test server metrics and a readiness check that reads
// its real store.
func withOps(m *metrics.Metrics, ts **testServer) func(*rest.Options) {
	return func(o *rest.Options) {
		o.Metrics = m
		o.Version = "v9.9.9"
		o.Ready = func(ctx context.Context) map[string]error {
			err := (*ts).db.View(ctx, func(chat.Tx) error { return nil })
			return map[string]error{"store": err, "http": nil}
		}
	}
}

// /readyz is public: 200 with version, uptime and the checks while the
// store answers, 503 with a MaxIM error naming the store once it is closed,
// and 503 once shutdown began.
func TestReadyz_StoreClosed(t *testing.T) {
	var ts *testServer
	ts = newTestServer(t, withOps(metrics.New("v9.9.9"), &ts))
	ts.callWith("GET", "/readyz", nil, nil).
		expect(200, `{"status":"ready","version":"v9.9.9","uptime_s":"*","checks":{"store":"ok","http":"ok"}}`)

	if err := ts.db.Close(); err != nil {
		t.Fatal(err)
	}
	r := ts.callWith("GET", "/readyz", nil, nil).expectError(503, chat.CodeInternal)
	r.expect(503, `{"status":"unavailable","version":"v9.9.9","uptime_s":"*","checks":{"store":"*","http":"ok"},"errorCode":5002,"errorMessage":"*"}`)
	if !strings.Contains(string(r.Body), "store: storage: database is closed") {
		t.Errorf("readyz body does not name the failing check: %s", r.Body)
	}
}

func TestReadyz_ShuttingDown(t *testing.T) {
	var ts *testServer
	ts = newTestServer(t, withOps(nil, &ts))
	ts.callWith("GET", "/readyz", nil, nil).expect(200, `{"status":"ready","version":"v9.9.9","uptime_s":"*","checks":{"store":"ok","http":"ok"}}`)
	// Shutdown with a request in flight is what a real stop looks like;
	// here the flag is all that matters, so shut down and ask through the
	// app directly (the listener is gone).
	if err := ts.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := ts.srv.App().Test(httptest.NewRequest("GET", "/readyz", nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 {
		t.Fatalf("readyz after shutdown: %d, want 503", res.StatusCode)
	}
	if err := ts.db.Close(); err != nil {
		t.Fatal(err)
	}
	ts.srv = nil // stopped already
}

// GET /metrics needs the master key: none is 401, the client key 403, each
// with a MaxIM code; X-ML-MasterKey (with the app id) or a bearer master
// key (Prometheus' authorization option) get the text format, which
// parses. A bearer master key is a credential on /metrics only.
func TestMetrics_Auth(t *testing.T) {
	var ts *testServer
	ts = newTestServer(t, withOps(metrics.New("v9.9.9"), &ts))
	ts.callWith("GET", "/metrics", nil, nil).expectError(401, chat.CodeUnauthorized)
	ts.callWith("GET", "/metrics", nil, signed()).expectError(403, chat.CodeUnauthorized)
	ts.callWith("GET", "/metrics", nil, bearer(testKey)).expectError(401, chat.CodeUnauthorized)
	ts.callWith("GET", "/stats", nil, signed()).expectError(403, chat.CodeUnauthorized)
	ts.callWith("GET", "/ctx", nil, bearer(testMaster)).expectError(401, chat.CodeUnauthorized)

	for _, hdr := range []map[string]string{
		{"X-ML-AppId": testApp, "X-ML-MasterKey": testMaster},
		bearer(testMaster),
	} {
		r := ts.callWith("GET", "/metrics", nil, hdr).ok(200)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(string(r.Body)))
		if err != nil {
			t.Fatalf("metrics do not parse: %v", err)
		}
		f := fams["mqim_http_requests_total"]
		if f == nil {
			t.Fatal("no mqim_http_requests_total")
		}
		// The refused calls above are counted under their route
		// pattern, never the raw path.
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "route" && !strings.HasPrefix(l.GetValue(), "/") && l.GetValue() != "unmatched" {
					t.Errorf("route label %q", l.GetValue())
				}
			}
		}
	}
}

// Each request is counted under Fiber's route pattern; one that no route
// serves is "unmatched"; /stats has the console's exact shape and agrees
// with the counters.
func TestMetrics_RoutesAndStats(t *testing.T) {
	m := metrics.New("v9.9.9")
	var ts *testServer
	ts = newTestServer(t, withOps(m, &ts))
	ts.call("POST", "/ctx/alice/friends/bob", nil).ok(201)
	ts.call("GET", "/ctx/alice/friends/bob/chats", nil).ok(200)
	ts.call("GET", "/ctx/carol/friends/bob/chats", nil).ok(200)
	ts.call("GET", "/no/such/route", nil).expectError(404, chat.CodeNotFound)
	ts.callWith("POST", "/system/bob", map[string]any{"content": map[string]any{"media": 0, "body": "hello"}},
		map[string]string{"X-ML-AppId": testApp, "X-ML-MasterKey": testMaster}).ok(202)
	ts.callWith("POST", "/system/bob", map[string]any{"content": "not an object"},
		map[string]string{"X-ML-AppId": testApp, "X-ML-MasterKey": testMaster}).expectError(400, chat.CodeInvalid)

	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			var key []string
			for _, l := range mt.GetLabel() {
				key = append(key, l.GetName()+"="+l.GetValue())
			}
			switch f.GetName() {
			case "mqim_http_requests_total", "mqim_says_total":
				got[f.GetName()+"{"+strings.Join(key, ",")+"}"] = mt.GetCounter().GetValue()
			case "mqim_history_read_duration_seconds":
				got[f.GetName()] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	for k, want := range map[string]float64{
		"mqim_http_requests_total{method=POST,route=/ctx/:uid/friends/:fid,status=201}":      1,
		"mqim_http_requests_total{method=GET,route=/ctx/:uid/friends/:fid/chats,status=200}": 2,
		"mqim_http_requests_total{method=GET,route=unmatched,status=404}":                    1,
		"mqim_http_requests_total{method=POST,route=/system/:target,status=202}":             1,
		"mqim_http_requests_total{method=POST,route=/system/:target,status=400}":             1,
		"mqim_says_total{kind=system,outcome=ok}":                                            1,
		"mqim_says_total{kind=system,outcome=invalid}":                                       1,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	var n float64
	for k, v := range got {
		if strings.HasPrefix(k, "mqim_http_requests_total") {
			n += v
		}
	}
	if n != 6 {
		t.Errorf("http requests counted: %v, want 6", n)
	}

	r := ts.callWith("GET", "/stats", nil, map[string]string{"X-ML-AppId": testApp, "X-ML-MasterKey": testMaster}).
		expect(200, `{"version":"v9.9.9","started_at":"*","uptime_s":"*","connections":{"mqtt":0,"socketio":0},"users_online":0,`+
			`"messages":{"says":1,"refused":1,"deliveries":0},"http_requests":6}`)
	var st metrics.Stats
	r.decode(&st)
	if st.StartedAt != m.Started().UnixMilli() {
		t.Errorf("started_at %d, want %d", st.StartedAt, m.Started().UnixMilli())
	}
}

// Without metrics the server still serves /readyz, and /stats is a MaxIM
// error rather than a panic.
func TestStats_NoMetrics(t *testing.T) {
	ts := newTestServer(t)
	ts.callWith("GET", "/stats", nil, map[string]string{"X-ML-AppId": testApp, "X-ML-MasterKey": testMaster}).
		expectError(400, chat.CodeUnsupported)
	ts.callWith("GET", "/readyz", nil, nil).expect(200, `{"status":"ready","version":"","uptime_s":"*","checks":{}}`)
}
