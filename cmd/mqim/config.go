package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of mqim. configs/mqim.yaml documents
// every field. Precedence: defaults < --config file < MQIM_* environment.
type Config struct {
	// DataDir holds the Badger store, the generated credentials and the
	// attachments.
	DataDir string        `yaml:"data_dir"`
	Log     LogConfig     `yaml:"log"`
	App     AppConfig     `yaml:"app"`
	Auth    AuthConfig    `yaml:"auth"`
	HTTP    HTTPConfig    `yaml:"http"`
	MQTT    MQTTConfig    `yaml:"mqtt"`
	Storage StorageConfig `yaml:"storage"`
	// Cluster joins other nodes over NATS (docs/scaleout.md).
	Cluster ClusterConfig `yaml:"cluster"`
	Chat    ChatConfig    `yaml:"chat"`
	Push    PushConfig    `yaml:"push"`
	Attach  AttachConfig  `yaml:"attachments"`
	// SocketIO is the socket.io endpoint of the MaxIM SDKs, on http.addr.
	SocketIO SocketIOConfig `yaml:"socketio"`
	// Metrics is the Prometheus endpoint (cmd/mqim/metrics.go).
	Metrics MetricsConfig `yaml:"metrics"`
	Debug   DebugConfig   `yaml:"debug"`
}

// DebugConfig holds diagnostics, all off by default.
type DebugConfig struct {
	// PprofAddr serves net/http/pprof (bind it to 127.0.0.1); empty: off.
	PprofAddr string `yaml:"pprof_addr"`
}

// SocketIOConfig configures the socket.io endpoint (/socket.io/ on the REST
// listener).
type SocketIOConfig struct {
	// SignTolerance replaces app.sign_tolerance for socket.io logins: the
	// SDKs sign once and reuse the signature on every reconnect. 0: any
	// signature timestamp.
	SignTolerance time.Duration `yaml:"sign_tolerance"`
}

// LogConfig sets the zerolog output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Pretty bool   `yaml:"pretty"` // human-readable console output instead of JSON
}

// AppConfig is the one app this server hosts.
type AppConfig struct {
	ID            string        `yaml:"id"`
	Key           string        `yaml:"key"`        // client key (any SDK key)
	MasterKey     string        `yaml:"master_key"` // admin key
	SignTolerance time.Duration `yaml:"sign_tolerance"`
	StrictAdmin   bool          `yaml:"strict_admin"`
	// ClientKeyLogin: the client key (signature or raw) authenticates
	// logins and REST calls; false: users need tokens, admins the master
	// key.
	ClientKeyLogin bool `yaml:"client_key_login"`
}

// AuthConfig holds the tokens and the login throttle.
type AuthConfig struct {
	// TokenSecret signs the JWTs of POST /tokens; empty: generated into the
	// credentials file.
	TokenSecret string        `yaml:"token_secret"`
	TokenTTL    time.Duration `yaml:"token_ttl"`
	// MaxFailures is how many failed logins one IP may make in a minute
	// before it is refused for a minute; 0 turns throttling off.
	MaxFailures int `yaml:"max_failures"`
}

// HTTPConfig is the REST listener.
type HTTPConfig struct {
	Addr         string        `yaml:"addr"`
	BodyLimit    int           `yaml:"body_limit"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	IdleTimeout  time.Duration `yaml:"idle_timeout"`
	// RequestTimeout bounds the store work of one request.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ShutdownTimeout bounds how long in-flight requests may run on stop.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// StorageConfig chooses the store engine and tunes it.
type StorageConfig struct {
	// Driver is the engine: "badger" (embedded, the default) or
	// "postgres" (a shared database, for several nodes).
	Driver string `yaml:"driver"`
	// PostgresURL is the database of the postgres driver.
	PostgresURL string `yaml:"postgres_url"`
	SyncWrites  bool   `yaml:"sync_writes"`
	// LogLevel is the level of Badger's own log lines, on top of
	// log.level: log.level debug alone does not flood the log with table
	// flushes and compactions.
	LogLevel string `yaml:"log_level"`
}

// ClusterConfig makes this process one node of several that share one
// store and one NATS server (docs/scaleout.md).
type ClusterConfig struct {
	// NATSURL is the NATS server; empty: this process is the whole server.
	NATSURL string `yaml:"nats_url"`
	// NodeID is unique in the cluster; empty: host name + ":" + the MQTT
	// port.
	NodeID string `yaml:"node_id"`
}

// ChatConfig holds the MaxIM limits and retention periods.
type ChatConfig struct {
	GroupLimit int             `yaml:"group_limit"`
	RoomLimit  int             `yaml:"room_limit"`
	MaxBodyLen int             `yaml:"max_body_len"`
	Retention  RetentionConfig `yaml:"retention"`
	// RecallWindow and EditWindow are how long a speaker may recall or
	// edit its message; 0 means any time.
	RecallWindow time.Duration `yaml:"recall_window"`
	EditWindow   time.Duration `yaml:"edit_window"`
}

// chatWindow turns a configured window into chat.Options' convention,
// where 0 is the default and a negative value no limit.
func chatWindow(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// RetentionConfig is how long each kind of history is kept.
type RetentionConfig struct {
	Friend    time.Duration `yaml:"friend"`
	Group     time.Duration `yaml:"group"`
	Stranger  time.Duration `yaml:"stranger"`
	Passenger time.Duration `yaml:"passenger"`
}

// DefaultConfig returns the embedded defaults: everything runs with no file.
func DefaultConfig() Config {
	return Config{
		DataDir: "./data",
		Log:     LogConfig{Level: "info"},
		App:     AppConfig{SignTolerance: 15 * time.Minute, ClientKeyLogin: true},
		Auth:    AuthConfig{TokenTTL: 720 * time.Hour, MaxFailures: 10},
		HTTP: HTTPConfig{
			Addr:            ":8080",
			BodyLimit:       1 << 20,
			ReadTimeout:     30 * time.Second,
			WriteTimeout:    30 * time.Second,
			IdleTimeout:     120 * time.Second,
			RequestTimeout:  30 * time.Second,
			ShutdownTimeout: 10 * time.Second,
		},
		MQTT:     DefaultMQTTConfig(),
		Storage:  StorageConfig{Driver: "badger", LogLevel: "warn"},
		Chat:     ChatConfig{GroupLimit: 50, RoomLimit: 1000, MaxBodyLen: 64 << 10, Retention: RetentionConfig{Friend: 7 * 24 * time.Hour, Group: 7 * 24 * time.Hour, Stranger: 365 * 24 * time.Hour, Passenger: 365 * 24 * time.Hour}, RecallWindow: 2 * time.Minute, EditWindow: 24 * time.Hour},
		Push:     DefaultPushConfig(),
		Attach:   DefaultAttachConfig(),
		SocketIO: SocketIOConfig{SignTolerance: 24 * time.Hour},
	}
}

// LoadConfig returns the defaults overlaid with the file at path (if not
// empty) and then with the environment. A file that cannot be read or parsed
// is an error naming the file and the problem.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// envVars lists the environment overrides, documented in README.md.
var envVars = []struct {
	name  string
	apply func(c *Config, v string) error
}{
	{"MQIM_DATA_DIR", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"MQIM_HTTP_ADDR", func(c *Config, v string) error { c.HTTP.Addr = v; return nil }},
	{"MQIM_MQTT_ADDR", func(c *Config, v string) error { c.MQTT.TCPAddr = v; return nil }},
	{"MQIM_WS_ADDR", func(c *Config, v string) error { c.MQTT.WSAddr = v; return nil }},
	{"MQIM_TLS_ADDR", func(c *Config, v string) error { c.MQTT.TLSAddr = v; return nil }},
	{"MQIM_APP_ID", func(c *Config, v string) error { c.App.ID = v; return nil }},
	{"MQIM_APP_KEY", func(c *Config, v string) error { c.App.Key = v; return nil }},
	{"MQIM_MASTER_KEY", func(c *Config, v string) error { c.App.MasterKey = v; return nil }},
	{"MQIM_SIGN_TOLERANCE", func(c *Config, v string) error { return setDuration(&c.App.SignTolerance, v) }},
	{"MQIM_STRICT_ADMIN", func(c *Config, v string) error { return setBool(&c.App.StrictAdmin, v) }},
	{"MQIM_CLIENT_KEY_LOGIN", func(c *Config, v string) error { return setBool(&c.App.ClientKeyLogin, v) }},
	{"MQIM_TOKEN_SECRET", func(c *Config, v string) error { c.Auth.TokenSecret = v; return nil }},
	{"MQIM_STORAGE_DRIVER", func(c *Config, v string) error { c.Storage.Driver = v; return nil }},
	{"MQIM_POSTGRES_URL", func(c *Config, v string) error { c.Storage.PostgresURL = v; return nil }},
	{"MQIM_SYNC_WRITES", func(c *Config, v string) error { return setBool(&c.Storage.SyncWrites, v) }},
	{"MQIM_LOG_LEVEL", func(c *Config, v string) error { c.Log.Level = v; return nil }},
	{"MQIM_PUBLIC_URL", func(c *Config, v string) error { c.Attach.PublicURL = v; return nil }},
	{"MQIM_PUSH_WEBHOOK_URL", func(c *Config, v string) error { c.Push.WebhookURL = v; return nil }},
	{"MQIM_PUSH_AUTH_HEADER", func(c *Config, v string) error { c.Push.AuthHeader = v; return nil }},
	{"MQIM_TLS_CERT", func(c *Config, v string) error { c.MQTT.TLSCert = v; return nil }},
	{"MQIM_TLS_KEY", func(c *Config, v string) error { c.MQTT.TLSKey = v; return nil }},
	{"MQIM_PPROF_ADDR", func(c *Config, v string) error { c.Debug.PprofAddr = v; return nil }},
	{"MQIM_METRICS_ADDR", func(c *Config, v string) error { c.Metrics.Addr = v; return nil }},
	{"MQIM_NATS_URL", func(c *Config, v string) error { c.Cluster.NATSURL = v; return nil }},
	{"MQIM_NODE_ID", func(c *Config, v string) error { c.Cluster.NodeID = v; return nil }},
}

func (c *Config) applyEnv(getenv func(string) string) error {
	var errs []error
	for _, e := range envVars {
		if v := getenv(e.name); v != "" {
			if err := e.apply(c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func setDuration(d *time.Duration, v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	*d = x
	return nil
}

func setBool(b *bool, v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*b = x
	return nil
}

// Validate collects every problem of the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir must not be empty"))
	}
	for _, l := range []struct{ key, level string }{{"log.level", c.Log.Level}, {"storage.log_level", c.Storage.LogLevel}} {
		switch l.level {
		case "debug", "info", "warn", "error":
		default:
			errs = append(errs, fmt.Errorf("%s %q: want debug, info, warn or error", l.key, l.level))
		}
	}
	switch c.Storage.Driver {
	case "badger":
	case "postgres":
		if c.Storage.PostgresURL == "" {
			errs = append(errs, errors.New("storage.postgres_url must be set with storage.driver postgres"))
		}
	default:
		errs = append(errs, fmt.Errorf("storage.driver %q: want badger or postgres", c.Storage.Driver))
	}
	if c.App.SignTolerance < 0 {
		errs = append(errs, errors.New("app.sign_tolerance must not be negative"))
	}
	if c.SocketIO.SignTolerance < 0 {
		errs = append(errs, errors.New("socketio.sign_tolerance must not be negative"))
	}
	if c.Auth.TokenTTL <= 0 {
		errs = append(errs, errors.New("auth.token_ttl must be positive"))
	}
	if c.Auth.TokenSecret != "" && len(c.Auth.TokenSecret) < 16 {
		errs = append(errs, errors.New("auth.token_secret must be at least 16 bytes"))
	}
	if c.Auth.MaxFailures < 0 {
		errs = append(errs, errors.New("auth.max_failures must not be negative (0: off)"))
	}
	if c.HTTP.Addr == "" {
		errs = append(errs, errors.New("http.addr must not be empty"))
	}
	for _, a := range []struct{ key, addr string }{
		{"http.addr", c.HTTP.Addr}, {"mqtt.tcp_addr", c.MQTT.TCPAddr}, {"mqtt.ws_addr", c.MQTT.WSAddr},
		{"mqtt.tls_addr", c.MQTT.TLSAddr}, {"mqtt.wss_addr", c.MQTT.WSSAddr}, {"debug.pprof_addr", c.Debug.PprofAddr},
	} {
		if err := checkAddr(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.key, a.addr, err))
		}
	}
	if c.Chat.MaxBodyLen > 0 && c.MQTT.MaxPacketSize < c.Chat.MaxBodyLen+1024 {
		errs = append(errs, fmt.Errorf("mqtt.max_packet_size %d is below chat.max_body_len + 1024 (%d): a say with the longest body would be cut off",
			c.MQTT.MaxPacketSize, c.Chat.MaxBodyLen+1024))
	}
	if c.HTTP.BodyLimit <= 0 {
		errs = append(errs, errors.New("http.body_limit must be positive"))
	}
	if c.Chat.GroupLimit <= 0 || c.Chat.RoomLimit <= 0 || c.Chat.MaxBodyLen <= 0 {
		errs = append(errs, errors.New("chat limits must be positive"))
	}
	if c.Chat.RecallWindow < 0 || c.Chat.EditWindow < 0 {
		errs = append(errs, errors.New("chat.recall_window and chat.edit_window must not be negative (0: any time)"))
	}
	errs = append(errs, c.MQTT.validate()...)
	errs = append(errs, c.Cluster.validate(c.Storage.Driver)...)
	errs = append(errs, c.Push.validate()...)
	errs = append(errs, c.Attach.validate()...)
	return errors.Join(errs...)
}

// checkAddr accepts a listener address, host:port with a port number (or
// service name) and any host, or "" (checked by the callers that need
// one).
func checkAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, e.g. :8080 or 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Errorf("port %d out of range", n)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q: not a number or a known service", port)
	}
	return nil
}

// checkDataDir reports whether the server could create and write its data
// directory: the directory itself if it exists, else its nearest existing
// parent, must take a new file.
func checkDataDir(dir string) error {
	at := dir
	for {
		fi, err := os.Stat(at)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("data_dir %s: %s is not a directory", dir, at)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("data_dir %s: %w", dir, err)
		}
		parent := filepath.Dir(at)
		if parent == at {
			return fmt.Errorf("data_dir %s: no existing parent", dir)
		}
		at = parent
	}
	f, err := os.CreateTemp(at, ".mqim-check-*")
	if err != nil {
		return fmt.Errorf("data_dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}
