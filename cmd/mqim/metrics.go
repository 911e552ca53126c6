package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// MetricsConfig is where Prometheus scrapes (docs/metrics.md).
type MetricsConfig struct {
	// Addr, when set, serves GET /metrics without credentials on a
	// listener of its own (bind it to a private interface); empty: only
	// GET /metrics on http.addr, behind the master key.
	Addr string `yaml:"addr"`
}

// metricsParts holds the metrics registry and its own listener.
type metricsParts struct {
	m   *metrics.Metrics
	srv *http.Server
	// closing is set when Close begins: /readyz fails from then on.
	closing atomic.Bool
}

// newMetrics builds the registry; every component gets it in Run.
func (m *Main) newMetrics() *metrics.Metrics {
	m.metrics.m = metrics.New(version)
	return m.metrics.m
}

// startMetrics reports the live identities and, with metrics.addr, starts
// the plain /metrics listener. It needs m.Service.
func (m *Main) startMetrics() error {
	mt := m.metrics.m
	if m.Service != nil && m.Service.Presence != nil {
		mt.SetUsersOnline(m.Service.Presence.OnlineCount)
	}
	addr := m.Config.Metrics.Addr
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.New("metrics listen: " + err.Error())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", mt.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.metrics.srv = srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error().Err(err).Msg("metrics server")
		}
	}()
	m.Log.Info().Str("addr", ln.Addr().String()).Msg("metrics listening")
	return nil
}

// closeMetrics marks the server as shutting down and stops the metrics
// listener.
func (m *Main) closeMetrics() {
	m.metrics.closing.Store(true)
	if m.metrics.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = m.metrics.srv.Shutdown(ctx)
		cancel()
		m.metrics.srv = nil
	}
}

var errShuttingDown = errors.New("shutting down")

// ready runs the checks of GET /readyz: a store read, the MQTT listeners
// bound, the REST listener bound; all fail once Close has begun.
func (m *Main) ready(ctx context.Context) map[string]error {
	out := map[string]error{"store": nil, "mqtt": nil, "http": nil}
	if m.metrics.closing.Load() {
		for k := range out {
			out[k] = errShuttingDown
		}
		return out
	}
	if db := m.Store; db == nil {
		out["store"] = errors.New("store not open")
	} else {
		err := db.View(ctx, func(tx chat.Tx) error {
			_, err := tx.User("readyz")
			if chat.ErrorCode(err) == chat.CodeNotFound {
				return nil
			}
			return err
		})
		if err != nil {
			out["store"] = err
		}
	}
	c := m.Config.MQTT
	for _, l := range []struct{ id, addr string }{{"tcp", c.TCPAddr}, {"ws", c.WSAddr}} {
		if l.addr != "" && m.mqttAddr(l.id) == nil {
			out["mqtt"] = errors.New("mqtt listener " + l.id + " not bound")
		}
	}
	if m.HTTP == nil || m.HTTP.Addr() == nil {
		out["http"] = errors.New("http listener not bound")
	}
	return out
}
