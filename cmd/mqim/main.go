// Command mqim is the mqim server: the MaxIM REST API and the MQTT
// real-time layer over one embedded Badger store, in one binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:], os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mqim:", err)
		os.Exit(2)
	}
	if m.checkOnly {
		fmt.Println("config ok")
		return
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mqim:", err)
		_ = m.Close() // exiting on the Run error already printed
		os.Exit(1)
	}
	<-ctx.Done()
	m.Log.Info().Msg("shutting down")
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "mqim: close:", err)
		os.Exit(1)
	}
}

// Main is the running program: configuration and every component, so that
// tests can start the whole server without flag parsing.
type Main struct {
	Config Config
	Log    zerolog.Logger
	// Out receives the one-time credentials banner (stdout).
	Out io.Writer

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

	checkOnly bool
}

// NewMain returns a Main with the embedded defaults.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Log: zerolog.New(os.Stderr).With().Timestamp().Logger(), Out: os.Stdout}
}

// ParseFlags reads --config and the environment into m.Config.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("mqim", flag.ContinueOnError)
	path := fs.String("config", "", "path to a YAML config file (see configs/mqim.yaml)")
	fs.BoolVar(&m.checkOnly, "check-config", false, "validate the configuration and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println("mqim", version)
		return flag.ErrHelp
	}
	cfg, err := LoadConfig(*path, getenv)
	if err != nil {
		return err
	}
	m.Config = cfg
	return nil
}

// Run opens the store and starts every listener. It returns once the server
// is serving; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	c := &m.Config
	m.Log = newLogger(c.Log, m.Log)
	m.Log.Info().Str("version", version).Int("pid", os.Getpid()).Str("data_dir", c.DataDir).Msg("starting mqim")
	m.startPprof()

	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := m.loadCredentials(); err != nil {
		return err
	}
	mt := m.newMetrics()
	db, err := storage.Open(storage.Options{
		Dir:        filepath.Join(c.DataDir, "db"),
		SyncWrites: c.Storage.SyncWrites,
		Logger:     m.Log.With().Str("component", "storage").Logger(),
		Metrics:    mt,
	})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	m.DB = db

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
	m.closeAttachments()
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
		m.DB = nil
	}
	return errors.Join(errs...)
}

func newLogger(c LogConfig, base zerolog.Logger) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	l := base
	if c.Pretty {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	}
	return l.Level(lvl)
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
// printed once.
func (m *Main) loadCredentials() error {
	c := &m.Config.App
	if c.ID != "" && c.Key != "" && c.MasterKey != "" && m.Config.Auth.TokenSecret != "" {
		return nil
	}
	path := filepath.Join(m.Config.DataDir, "credentials.json")
	var saved credentials
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &saved); err != nil {
			return fmt.Errorf("credentials %s: %w", path, err)
		}
		if saved.TokenSecret == "" {
			// A file from before tokens: it gains a secret.
			saved.TokenSecret = chat.RandomHex(32)
			if err := writeCredentials(path, saved); err != nil {
				return err
			}
		}
	case errors.Is(err, os.ErrNotExist):
		saved = credentials{AppID: chat.RandomHex(12), Key: chat.RandomHex(15), MasterKey: chat.RandomHex(15), TokenSecret: chat.RandomHex(32)}
		if err := writeCredentials(path, saved); err != nil {
			return err
		}
		// Stored above; a banner that fails to print is still in the file.
		_, _ = fmt.Fprintf(m.Out, "mqim generated app credentials (kept in %s):\n  app id:     %s\n  key:        %s\n  master key: %s\n",
			path, saved.AppID, saved.Key, saved.MasterKey)
	default:
		return fmt.Errorf("credentials: %w", err)
	}
	if c.ID == "" {
		c.ID = saved.AppID
	}
	if c.Key == "" {
		c.Key = saved.Key
	}
	if c.MasterKey == "" {
		c.MasterKey = saved.MasterKey
	}
	if m.Config.Auth.TokenSecret == "" {
		m.Config.Auth.TokenSecret = saved.TokenSecret
	}
	return nil
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
