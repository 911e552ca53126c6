// Command mqim is the mqim server: the MaxIM REST API and the MQTT
// real-time layer over one embedded Badger store, in one binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
	"github.com/mqim/mqim/socketio"
	"github.com/mqim/mqim/storage"
	"github.com/mqim/mqim/token"
	"github.com/mqim/mqim/web/admin"
	"github.com/mqim/mqim/web/demo"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

// Main is the running program: configuration and every component, so that
// tests can start the whole server without flag parsing.
type Main struct {
	Config Config
	Log    zerolog.Logger
	// Out receives the one-time credentials banner (stdout).
	Out io.Writer

	// Store is the store storage.driver chose; DB is the same store when
	// it is Badger (nil on PostgreSQL), for backups.
	Store   chat.Store
	DB      *storage.DB
	Service *chat.Service
	Auth    *chat.Authenticator
	// Throttle counts failed logins per address, over MQTT and REST (nil:
	// auth.max_failures 0).
	Throttle *chat.LoginThrottle
	HTTP     *rest.Server
	// SocketIO is the socket.io endpoint on the REST listener.
	SocketIO *socketio.Server
	front    *front
	mqtt     mqttParts    // owned by mqtt.go
	attach   attachParts  // owned by attach.go
	metrics  metricsParts // owned by metrics.go
	cluster  clusterPart  // owned by cluster.go
}

// NewMain returns a Main with the embedded defaults.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Log: zerolog.New(os.Stderr).With().Timestamp().Logger(), Out: os.Stdout}
}

// Run opens the store and starts every listener. It returns once the server
// is serving; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	c := &m.Config
	m.Log = newLogger(c.Log, m.Log, os.Stderr)
	m.Log.Info().Str("version", version).Int("pid", os.Getpid()).Str("data_dir", c.DataDir).Msg("starting mqim")
	m.startPprof()

	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := m.loadCredentials(); err != nil {
		return err
	}
	mt := m.newMetrics()
	db, err := m.openStore(ctx, mt)
	if err != nil {
		return err
	}

	m.Auth = &chat.Authenticator{
		AppID:     c.App.ID,
		Keys:      []chat.Key{{Value: c.App.Key, Role: chat.RoleClient}, {Value: c.App.MasterKey, Role: chat.RoleMaster}},
		Tolerance: c.App.SignTolerance,
	}
	m.Service = chat.NewService(db, chat.Options{
		AppID:      c.App.ID,
		GroupLimit: c.Chat.GroupLimit,
		RoomLimit:  c.Chat.RoomLimit,
		MaxBodyLen: c.Chat.MaxBodyLen,
		Retention: chat.Retention{
			Friend: c.Chat.Retention.Friend, Group: c.Chat.Retention.Group,
			Stranger: c.Chat.Retention.Stranger, Passenger: c.Chat.Retention.Passenger,
		},
		RecallWindow: chatWindow(c.Chat.RecallWindow),
		EditWindow:   chatWindow(c.Chat.EditWindow),
	})
	codec, err := token.New(c.Auth.TokenSecret)
	if err != nil {
		return fmt.Errorf("auth.token_secret: %w", err)
	}
	m.Service.Tokens, m.Service.TokenTTL = codec, c.Auth.TokenTTL
	if c.Auth.MaxFailures > 0 {
		m.Throttle = chat.NewLoginThrottle(c.Auth.MaxFailures, 0)
	}
	m.Service.Log = slog.New(zerolog.NewSlogHandler(m.Log.With().Str("component", "chat").Logger()))

	if err := m.openAttachments(); err != nil {
		return err
	}
	// The socket.io endpoint exists before the broker starts: the MQTT
	// hooks count its sessions and account control reaches them
	// (startMQTT).
	// mqtt.rate_limit and mqtt.max_connections_per_user hold per
	// identity over both protocols.
	sioAuth := *m.Auth
	sioAuth.Tolerance = c.SocketIO.SignTolerance
	m.mqtt.limiter = chat.NewRateLimiter(c.MQTT.RateLimit, c.MQTT.RateBurst)
	m.SocketIO = socketio.New(socketio.Options{
		Service:               m.Service,
		Auth:                  &sioAuth,
		NoClientKey:           !c.App.ClientKeyLogin,
		Throttle:              m.Throttle,
		Limiter:               m.mqtt.limiter,
		RateLimit:             c.MQTT.RateLimit,
		MaxConnectionsPerUser: c.MQTT.MaxConnectionsPerUser,
		OtherConnections:      m.mqttLive,
		Timeout:               c.MQTT.HookTimeout,
		Metrics:               mt,
		Log:                   m.Log.With().Str("component", "socketio").Logger(),
	})
	if err := m.startMQTT(ctx); err != nil {
		return err
	}
	m.Service.Publisher = m.SocketIO.Publisher(m.Service.Publisher)
	if err := m.startCluster(ctx); err != nil {
		return err
	}

	m.HTTP = rest.New(rest.Options{
		Service:     m.Service,
		Auth:        m.Auth,
		StrictAdmin: c.App.StrictAdmin,
		NoClientKey: !c.App.ClientKeyLogin,
		Throttle:    m.Throttle,
		Attachments: m.attach.store,
		BodyLimit:   c.HTTP.BodyLimit,
		// Multipart overhead on top of the largest attachment.
		UploadLimit:    int(c.Attach.MaxSize) + 1<<20,
		RequestTimeout: c.HTTP.RequestTimeout,
		ReadTimeout:    c.HTTP.ReadTimeout,
		WriteTimeout:   c.HTTP.WriteTimeout,
		IdleTimeout:    c.HTTP.IdleTimeout,
		Log:            m.Log.With().Str("component", "rest").Logger(),
		SocketIO:       m.SocketIO.Handler(),
		Pages:          map[string]fs.FS{"/admin": admin.Files(), "/demo": demo.Files()},
		Backup:         m.backupFunc(),
		Metrics:        mt,
		Ready:          m.ready,
		Version:        version,
	})
	ln, err := net.Listen("tcp", c.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	m.front = newFront(ln, stdHandler(m.SocketIO.Handler(), m.HTTP.HTTPHandler()), m.Log.With().Str("component", "rest").Logger())
	m.HTTP.Serve(m.front.fiber)
	m.Log.Info().Str("addr", m.HTTP.Addr().String()).Msg("rest listening")
	if err := m.startMetrics(); err != nil {
		return err
	}
	m.attachStarted()
	return nil
}

// Close stops the listeners (in-flight HTTP requests finish), then the
// broker, then the store.
func (m *Main) Close() error {
	var errs []error
	m.closeMetrics()
	if m.front != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.HTTP.ShutdownTimeout)
		errs = append(errs, m.front.Close(ctx))
		cancel()
		m.front = nil
	}
	if m.SocketIO != nil {
		m.SocketIO.Close()
	}
	if m.HTTP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.HTTP.ShutdownTimeout)
		errs = append(errs, m.HTTP.Shutdown(ctx))
		cancel()
	}
	errs = append(errs, m.closeMQTT())
	m.closeCluster()
	m.closeAttachments()
	errs = append(errs, m.closeStore())
	return errors.Join(errs...)
}

// newLogger applies log.level and log.pretty to base. Pretty lines go to
// out, coloured only when out is a terminal (a file or a pipe gets no ANSI
// escapes), with RFC 3339 timestamps (seconds and zone kept).
func newLogger(c LogConfig, base zerolog.Logger, out *os.File) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	l := base
	if c.Pretty {
		l = zerolog.New(zerolog.ConsoleWriter{Out: out, NoColor: !isTerminal(out), TimeFormat: time.RFC3339}).With().Timestamp().Logger()
	}
	return l.Level(lvl)
}

// isTerminal reports whether f is a character device (a terminal), not a
// file or a pipe.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// storageLogger is the store's logger: storage.log_level on top of the
// server's level, so that log.level debug does not bring Badger's
// housekeeping along.
func storageLogger(base zerolog.Logger, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.WarnLevel
	}
	return base.With().Str("component", "storage").Logger().Level(max(lvl, base.GetLevel()))
}

// credentials is the file kept in the data directory when the server
// generated the app credentials itself.
type credentials struct {
	AppID       string `json:"app_id"`
	Key         string `json:"key"`
	MasterKey   string `json:"master_key"`
	TokenSecret string `json:"token_secret,omitempty"`
}

// loadCredentials fills missing app credentials: from the data directory if
// an earlier start generated them, else newly generated, stored (0600) and
// printed once. A credentials file that is unreadable or lacks a key is an
// error: starting with an empty key would let anyone in.
func (m *Main) loadCredentials() error {
	c := &m.Config.App
	if c.ID != "" && c.Key != "" && c.MasterKey != "" && m.Config.Auth.TokenSecret != "" {
		return nil
	}
	path := credentialsPath(m.Config.DataDir)
	saved, found, err := readCredentialsFile(path)
	switch {
	case err != nil:
		return err
	case found && saved.TokenSecret == "":
		// A file from before tokens: it gains a secret.
		saved.TokenSecret = chat.RandomHex(32)
		if err := writeCredentials(path, saved); err != nil {
			return err
		}
	case !found:
		saved = credentials{AppID: chat.RandomHex(12), Key: chat.RandomHex(15), MasterKey: chat.RandomHex(15), TokenSecret: chat.RandomHex(32)}
		if err := writeCredentials(path, saved); err != nil {
			return err
		}
		// Stored above; a banner that fails to print is still in the file.
		_, _ = fmt.Fprintf(m.Out, "mqim generated app credentials (kept in %s):\n  app id:     %s\n  key:        %s\n  master key: %s\n",
			path, saved.AppID, saved.Key, saved.MasterKey)
	}
	m.Config.App, m.Config.Auth.TokenSecret = overlayCredentials(m.Config, saved)
	return nil
}

// credentialsPath is the generated credentials file of a data directory.
func credentialsPath(dataDir string) string { return filepath.Join(dataDir, "credentials.json") }

// readCredentialsFile reads a credentials file; found is false when there
// is none. A file that does not parse or lacks app_id, key or master_key
// is an error.
func readCredentialsFile(path string) (c credentials, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, false, fmt.Errorf("credentials %s: %w", path, err)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"app_id", c.AppID}, {"key", c.Key}, {"master_key", c.MasterKey}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return c, false, fmt.Errorf("credentials %s has no %s: restore the file from a backup, or delete it to generate new credentials (clients holding the old ones are then refused)",
			path, strings.Join(missing, ", "))
	}
	return c, true, nil
}

// overlayCredentials fills the app section and the token secret of cfg,
// where empty, from saved.
func overlayCredentials(cfg Config, saved credentials) (AppConfig, string) {
	app, secret := cfg.App, cfg.Auth.TokenSecret
	if app.ID == "" {
		app.ID = saved.AppID
	}
	if app.Key == "" {
		app.Key = saved.Key
	}
	if app.MasterKey == "" {
		app.MasterKey = saved.MasterKey
	}
	if secret == "" {
		secret = saved.TokenSecret
	}
	return app, secret
}

// savedCredentials returns the credentials a server on cfg would use,
// without generating any (check-config, backup): cfg's, else the data
// directory's file. Fields neither has stay empty.
func savedCredentials(cfg Config) (credentials, error) {
	saved, _, err := readCredentialsFile(credentialsPath(cfg.DataDir))
	if err != nil {
		return credentials{}, err
	}
	app, secret := overlayCredentials(cfg, saved)
	return credentials{AppID: app.ID, Key: app.Key, MasterKey: app.MasterKey, TokenSecret: secret}, nil
}

// writeCredentials stores the credentials file (0600), atomically.
func writeCredentials(path string, c credentials) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return nil
}

// stdHandler serves the connections the front hands to net/http:
// /socket.io/ to socket.io, anything else (a REST request on a connection
// that began with socket.io) to the Fiber app.
func stdHandler(sio, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/socket.io" || strings.HasPrefix(r.URL.Path, "/socket.io/") {
			sio.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}
