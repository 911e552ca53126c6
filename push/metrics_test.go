package push

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Ensure the pusher reports its outcomes and its queue to the metrics:
// one sent, one dropped on a full queue, one failed (a 400 is not
// retried), and the queue's depth and capacity.
func TestWebhook_Metrics(t *testing.T) {
	m := metrics.New("test")
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	seen := 0
	w, _ := newWebhook(t, func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen++
		n := seen
		mu.Unlock()
		if n == 1 {
			<-release
			return // 200
		}
		rw.WriteHeader(http.StatusBadRequest)
	}, func(o *Options) { o.QueueSize = 1; o.Workers = 1; o.Metrics = m })
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	w.Push(context.Background(), chat.PushNotification{User: "first"})
	waitFor(t, "the first request", func() bool { mu.Lock(); defer mu.Unlock(); return seen == 1 })
	w.Push(context.Background(), chat.PushNotification{User: "queued"})
	w.Push(context.Background(), chat.PushNotification{User: "dropped"})
	st := counts(t, m)
	if st["depth"] != 1 || st["capacity"] != 1 || st["dropped"] != 1 {
		t.Errorf("with one queued and one dropped: %v", st)
	}
	once.Do(func() { close(release) })
	waitFor(t, "both answered", func() bool { st = counts(t, m); return st["sent"] == 1 && st["failed"] == 1 })
	if st["depth"] != 0 || st["dropped"] != 1 {
		t.Errorf("after the queue drained: %v", st)
	}
}

// counts reads the push families of m.
func counts(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			switch f.GetName() {
			case "mqim_push_notifications_total":
				out[mt.GetLabel()[0].GetValue()] = mt.GetCounter().GetValue()
			case "mqim_push_queue_depth":
				out["depth"] = mt.GetGauge().GetValue()
			case "mqim_push_queue_capacity":
				out["capacity"] = mt.GetGauge().GetValue()
			}
		}
	}
	return out
}
