package metrics

import (
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Stats is the summary of GET /stats (the admin console's dashboard). It
// is computed from one gathering of the registry, so it always agrees with
// what /metrics serves.
type Stats struct {
	Version     string  `json:"version"`
	StartedAt   int64   `json:"started_at"` // ms since the epoch
	UptimeS     float64 `json:"uptime_s"`
	Connections struct {
		MQTT     int `json:"mqtt"`
		SocketIO int `json:"socketio"`
	} `json:"connections"`
	UsersOnline int `json:"users_online"`
	Messages    struct {
		Says       int64 `json:"says"`       // accepted says (outcome ok) since start
		Refused    int64 `json:"refused"`    // every other outcome
		Deliveries int64 `json:"deliveries"` // MQTT and socket.io
	} `json:"messages"`
	HTTPRequests int64 `json:"http_requests"`
}

// Stats gathers the registry once and sums the families of the summary.
func (m *Metrics) Stats() (Stats, error) {
	var s Stats
	if m == nil {
		return s, nil
	}
	s.Version = m.version
	s.StartedAt = m.start.UnixMilli()
	s.UptimeS = time.Since(m.start).Seconds()
	fams, err := m.reg.Gather()
	if err != nil {
		return s, err
	}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			switch f.GetName() {
			case "mqim_connections":
				n := int(mt.GetGauge().GetValue())
				if p := label(mt, "protocol"); p == SocketIO {
					s.Connections.SocketIO += n
				} else if strings.HasPrefix(p, MQTT) {
					s.Connections.MQTT += n
				}
			case "mqim_users_online":
				s.UsersOnline = int(mt.GetGauge().GetValue())
			case "mqim_says_total":
				n := int64(mt.GetCounter().GetValue())
				if label(mt, "outcome") == OK {
					s.Messages.Says += n
				} else {
					s.Messages.Refused += n
				}
			case "mqim_deliveries_total":
				s.Messages.Deliveries += int64(mt.GetCounter().GetValue())
			case "mqim_http_requests_total":
				s.HTTPRequests += int64(mt.GetCounter().GetValue())
			}
		}
	}
	return s, nil
}

func label(mt *dto.Metric, name string) string {
	for _, l := range mt.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
