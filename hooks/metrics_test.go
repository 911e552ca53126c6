package hooks_test

import (
	"context"
	"strings"
	"testing"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/hooks"
	"github.com/mqim/mqim/metrics"
)

// Ensure the MQTT hooks count every login outcome, every say by kind and
// outcome, and rate-limit refusals, and the broker reports live
// connections by listener and protocol version.
func TestMetrics_LoginsSaysConnections(t *testing.T) {
	m := metrics.New("test")
	th := chat.NewLoginThrottle(2, 0)
	e := newEnvBroker(t, func(o *broker.Options) { o.Metrics = m }, func(o *hooks.Options) {
		o.Metrics = m
		o.Throttle = th
		o.RateLimit, o.RateBurst = 0.001, 4 // 4 says, then refused
	})
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")

	alice := e.userV3(t, "m-alice", "alice") // ok
	bob, _ := e.connectV5(t, "m-bob", "bob", sign(), 0, nil)
	_ = bob // ok
	e.connectV3(t, "m-will", "alice", sign(), true, 5, func(o *paho3.ClientOptions) { o.SetWill("say/friend/bob", "x", 1, false) })
	if _, err := e.svc.BanIdentity(context.Background(), chat.User("carol"), 0, "spam"); err != nil {
		t.Fatal(err)
	}
	e.connectV3(t, "m-carol", "carol", sign(), true, 5, nil)     // banned
	e.connectV3(t, "m-bad1", "mallory", "wrong,1", true, 4, nil) // unauthorized
	e.connectV3(t, "m-bad2", "mallory", "wrong,2", true, 4, nil) // unauthorized
	e.connectV3(t, "m-bad3", "mallory", "wrong,3", true, 4, nil) // unauthorized: the limit is reached
	e.connectV3(t, "m-bad4", "mallory", "wrong,4", true, 3, nil) // throttled

	body := `{"content":{"media":0,"body":"hi"}}`
	alice.Publish(t, "say/friend/bob", body)   // ok
	alice.Publish(t, "say/stranger/bob", body) // ok
	alice.Publish(t, "say/friend/dave", body)  // refused: not a friend
	alice.Publish(t, "say/nothing/bob", body)  // invalid, kind unknown
	alice.Publish(t, "say/friend/bob", body)   // rate limited

	want := map[string]float64{
		"mqim_logins_total{outcome=ok,protocol=mqtt}":           2,
		"mqim_logins_total{outcome=refused,protocol=mqtt}":      1,
		"mqim_logins_total{outcome=banned,protocol=mqtt}":       1,
		"mqim_logins_total{outcome=unauthorized,protocol=mqtt}": 3,
		"mqim_logins_total{outcome=throttled,protocol=mqtt}":    1,
		"mqim_says_total{kind=friend,outcome=ok}":               1,
		"mqim_says_total{kind=stranger,outcome=ok}":             1,
		"mqim_says_total{kind=friend,outcome=refused}":          1,
		"mqim_says_total{kind=unknown,outcome=invalid}":         1,
		"mqim_says_total{kind=friend,outcome=throttled}":        1,
		"mqim_rate_limited_total{protocol=mqtt}":                1,
		"mqim_connections{listener=tcp,protocol=mqtt3.1.1}":     1,
		"mqim_connections{listener=tcp,protocol=mqtt5}":         1,
	}
	var got map[string]float64
	waitFor(t, "every say counted", func() bool {
		got = gather(t, m)
		return got["mqim_says_total{kind=friend,outcome=throttled}"] == 1
	})
	for k, v := range got {
		if strings.HasPrefix(k, "mqim_logins_total") || strings.HasPrefix(k, "mqim_says_total") ||
			strings.HasPrefix(k, "mqim_rate_limited_total") || strings.HasPrefix(k, "mqim_connections") {
			if v != want[k] {
				t.Errorf("%s = %v, want %v", k, v, want[k])
			}
			delete(want, k)
		}
	}
	for k := range want {
		t.Errorf("%s missing", k)
	}

	alice.Close()
	waitFor(t, "alice's connection gone from the gauge", func() bool {
		return gather(t, m)["mqim_connections{listener=tcp,protocol=mqtt3.1.1}"] == 0
	})
}

// gather returns every series of m as name{labels} → value.
func gather(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			var ls []string
			for _, l := range mt.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			k := f.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch {
			case mt.Counter != nil:
				out[k] = mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				out[k] = mt.GetGauge().GetValue()
			}
		}
	}
	return out
}
