package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/attachment"
)

// attachParts holds the attachment store and its sweeper.
type attachParts struct {
	store *attachment.Store
}

// openAttachments opens the attachment store (by default under the data
// directory). The sweeper starts in attachStarted, once serving.
func (m *Main) openAttachments() error {
	c := m.Config.Attach
	dir := c.Dir
	if dir == "" {
		dir = filepath.Join(m.Config.DataDir, "attachments")
	}
	log := m.Log.With().Str("component", "attachment").Logger()
	st, err := attachment.Open(attachment.Options{
		Dir:           dir,
		MaxSize:       c.MaxSize,
		Retention:     c.Retention,
		SweepInterval: c.SweepInterval,
		MaxPixels:     c.MaxPixels,
		PublicURL:     c.PublicURL,
		Logger:        slog.New(zerolog.NewSlogHandler(log)),
	})
	if err != nil {
		return fmt.Errorf("attachments: %w", err)
	}
	m.attach.store = st
	return nil
}

// attachStarted runs once the HTTP listener is bound: the listener's
// address becomes the fallback base of attachment URLs (used only when no
// public_url is set and a request carries no usable Host), and the
// retention sweeper starts.
func (m *Main) attachStarted() {
	st := m.attach.store
	if st == nil {
		return
	}
	if m.HTTP != nil && m.HTTP.Addr() != nil {
		st.SetDefaultURL(listenerURL(m.HTTP.Addr()))
	}
	st.Start()
	base := st.PublicURL()
	if base == "" {
		base = "from the request Host, else " + st.DefaultURL()
	}
	o := st.Options()
	m.Log.Info().Str("dir", o.Dir).Int64("max_size", o.MaxSize).Str("retention", o.Retention.String()).
		Str("public_url", base).Msg("attachments ready")
}

// listenerURL returns http://host:port for a bound address, with a
// wildcard host (0.0.0.0, ::) replaced by the loopback address: it is a
// last resort, reachable at least from the machine itself.
func listenerURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// closeAttachments stops the sweeper and releases the store directory.
func (m *Main) closeAttachments() {
	if m.attach.store == nil {
		return
	}
	if err := m.attach.store.Close(); err != nil {
		m.Log.Error().Err(err).Msg("close attachments")
	}
	m.attach.store = nil
}
