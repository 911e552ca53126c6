package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startPprof serves net/http/pprof on debug.pprof_addr (MQIM_PPROF_ADDR)
// when it is set (for profiling under load, docs/benchmarks.md; bind it to
// 127.0.0.1). It is off by default. A failure to listen is logged, not
// fatal.
func (m *Main) startPprof() {
	addr := m.Config.Debug.PprofAddr
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		m.Log.Error().Err(err).Str("addr", addr).Msg("pprof listener")
		return
	}
	m.Log.Info().Str("addr", l.Addr().String()).Msg("pprof listening")
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error().Err(err).Msg("pprof server")
		}
	}()
}
