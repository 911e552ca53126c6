package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons of mqim_dropped_events_total.
const (
	DropQueueFull    = "queue_full"
	DropInflightFull = "inflight_full"
)

var (
	descConnections = prometheus.NewDesc("mqim_connections",
		"Live real-time connections by listener (tcp, ws, tls, wss; http for socket.io) and protocol (mqtt3.1.1, mqtt5, socketio).",
		[]string{"listener", "protocol"}, nil)
	descUsersOnline = prometheus.NewDesc("mqim_users_online",
		"Distinct identities (users and passengers) with at least one session.", nil, nil)
	descDeliveries = prometheus.NewDesc("mqim_deliveries_total",
		"Events written to clients: MQTT PUBLISH packets (queued resends included) and socket.io events.",
		[]string{"protocol"}, nil)
	descDropped = prometheus.NewDesc("mqim_dropped_events_total",
		"Events dropped for an MQTT client: queue_full (its outbound queue, mqtt.client_writes_pending) or inflight_full (its unacknowledged events, mqtt.max_inflight).",
		[]string{"reason"}, nil)
	descPushDepth = prometheus.NewDesc("mqim_push_queue_depth",
		"Push notifications waiting for a webhook worker.", nil, nil)
	descPushCap = prometheus.NewDesc("mqim_push_queue_capacity",
		"Size of the push queue (push.queue_size; 0 when push is off).", nil, nil)
)

// scrapeCollector reads the values the adapters keep anyway, at scrape
// time: nothing on the message path pays for them.
type scrapeCollector struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descUsersOnline, descDeliveries, descDropped, descPushDepth, descPushCap} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	src := c.m.sources
	c.m.mu.Unlock()

	if src.mqtt.Connections != nil {
		src.mqtt.Connections(func(listener string, version byte, n int) {
			ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(n), listener, mqttProtocol(version))
		})
	}
	if src.sioSessions != nil {
		ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(src.sioSessions()), "http", SocketIO)
	}
	ch <- prometheus.MustNewConstMetric(descUsersOnline, prometheus.GaugeValue, float64(call(src.usersOnline)))

	ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(call64(src.mqtt.Delivered)), MQTT)
	ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(c.m.sioDelivered.Load()), SocketIO)
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(call64(src.mqtt.QueueFull)), DropQueueFull)
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(call64(src.mqtt.InflightFull)), DropInflightFull)

	ch <- prometheus.MustNewConstMetric(descPushDepth, prometheus.GaugeValue, float64(call(src.pushDepth)))
	ch <- prometheus.MustNewConstMetric(descPushCap, prometheus.GaugeValue, float64(src.pushCap))
}

func mqttProtocol(version byte) string {
	if version == 5 {
		return "mqtt5"
	}
	return "mqtt3.1.1"
}

func call(f func() int) int {
	if f == nil {
		return 0
	}
	return f()
}

func call64(f func() int64) int64 {
	if f == nil {
		return 0
	}
	return f()
}
