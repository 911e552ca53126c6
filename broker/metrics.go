package broker

import (
	"sync/atomic"

	"github.com/mqim/mqim/metrics"
)

// reportMetrics gives m the broker's scrape-time values: mochi's own
// counters of written and dropped PUBLISH packets (Info.MessagesSent,
// MessagesDropped, InflightDropped; writeTo counts into the last one too)
// and the live connections by listener and protocol version. Nothing on
// the message path pays for them.
func (s *Server) reportMetrics(m *metrics.Metrics) {
	info := s.mqtt.Info
	m.SetMQTT(metrics.MQTTSource{
		Delivered:    func() int64 { return atomic.LoadInt64(&info.MessagesSent) },
		QueueFull:    func() int64 { return atomic.LoadInt64(&info.MessagesDropped) },
		InflightFull: func() int64 { return atomic.LoadInt64(&info.InflightDropped) },
		Connections:  s.connections,
	})
}

// connections counts the live client connections (the inline client and
// persistent sessions without a connection excluded) of every listener,
// both protocol versions, zeros included.
func (s *Server) connections(add func(listener string, version byte, n int)) {
	type key struct {
		listener string
		version  byte
	}
	counts := map[key]int{}
	for _, e := range s.listeners {
		counts[key{e.id, 4}] = 0
		counts[key{e.id, 5}] = 0
	}
	for _, cl := range s.mqtt.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() {
			continue
		}
		v := cl.Properties.ProtocolVersion
		if v != 5 {
			v = 4
		}
		counts[key{cl.Net.Listener, v}]++
	}
	for k, n := range counts {
		add(k.listener, k.version, n)
	}
}
