package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/storage"
)

// Ensure the command line: unknown commands, flags and arguments are usage
// errors (exit 2, usage on stderr), help and version answer on stdout, and
// the old --version and --check-config flags still work.
func TestCLI_Usage(t *testing.T) {
	data := []string{"MQIM_DATA_DIR=" + t.TempDir()}
	for _, args := range [][]string{
		{"frobnicate"},
		{"--bogus"},
		{"serve", "--bogus"},
		{"serve", "extra"},
		{"--config"},
		{"version", "--config", "x"},
		{"backup"},
		{"backup", "--out"},
		{"restore"},
		{"restore", "--in", "f", "more"},
		{"health", "--nope"},
		{"check-config", "stray"},
		{"--version", "--config", "x"},
	} {
		code, stdout, stderr := runBin(t, data, args...)
		if code != 2 || !strings.Contains(stderr, "usage: mqim") || stdout != "" {
			t.Errorf("mqim %q: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", args, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, _ := runBin(t, data, args...)
		if code != 0 || !strings.HasPrefix(stdout, "mqim ") {
			t.Errorf("mqim %q: exit %d, %q", args, code, stdout)
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"backup", "--help"}, {"serve", "-h"}} {
		code, stdout, _ := runBin(t, data, args...)
		if code != 0 || !strings.Contains(stdout, "check-config") || !strings.Contains(stdout, "restore") {
			t.Errorf("mqim %q: exit %d, %q", args, code, stdout)
		}
	}
	for _, args := range [][]string{
		{"check-config", "--config", exampleConfig},
		{"--config", exampleConfig, "--check-config"},
		{"--check-config"},
	} {
		code, stdout, stderr := runBin(t, data, args...)
		if code != 0 || strings.TrimSpace(stdout) != "config ok" {
			t.Errorf("mqim %q: exit %d, %q %q", args, code, stdout, stderr)
		}
	}
}

// Ensure check-config catches what used to pass it and fail only at start
// (or never): unparseable listener addresses, an unwritable data
// directory, an MQTT packet limit below the longest message, a broken
// credentials file.
func TestCLI_CheckConfigRoughEdges(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	braceDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(braceDir, "credentials.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"HTTPAddrNoPort", "http:\n  addr: localhost\n", nil, "http.addr"},
		{"HTTPAddrBadPort", "http:\n  addr: \":80800\"\n", nil, "http.addr"},
		{"MQTTAddr", "mqtt:\n  tcp_addr: \"1883\"\n", nil, "mqtt.tcp_addr"},
		{"WSAddr", "mqtt:\n  ws_addr: \"host:port:extra\"\n", nil, "mqtt.ws_addr"},
		{"TLSAddr", "mqtt:\n  tls_addr: \":notaservice\"\n", nil, "mqtt.tls_addr"},
		{"PprofAddr", "", []string{"MQIM_PPROF_ADDR=6060"}, "debug.pprof_addr"},
		{"DataDirUnderFile", "data_dir: " + filepath.Join(file, "data") + "\n", nil, "not a directory"},
		{"PacketBelowBody", "mqtt:\n  max_packet_size: 65536\nchat:\n  max_body_len: 65536\n", nil, "chat.max_body_len + 1024"},
		{"StorageLogLevel", "storage:\n  log_level: loud\n", nil, "storage.log_level"},
		{"ClusterNeedsSharedStore", "", []string{"MQIM_NATS_URL=nats://127.0.0.1:4222"}, "storage.driver: postgres"},
		{"ClusterNodeID", "cluster:\n  node_id: \"a b\"\n", nil, "cluster.node_id"},
		{"CredentialsBraces", "data_dir: " + braceDir + "\n", nil, "has no app_id, key, master_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			env := append([]string{"MQIM_DATA_DIR="}, tc.env...) // the file's data_dir, else ./data
			if !strings.Contains(tc.yaml, "data_dir") {
				env[0] = "MQIM_DATA_DIR=" + t.TempDir()
			}
			code, stdout, stderr := runBin(t, env, "check-config", "--config", path)
			if code != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(stdout, "ok") {
				t.Fatalf("check-config: exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, tc.want)
			}
		})
	}
	// The limit is exactly max_body_len + 1024.
	path := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(path, []byte("mqtt:\n  max_packet_size: 66560\nchat:\n  max_body_len: 65536\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runBin(t, []string{"MQIM_DATA_DIR=" + t.TempDir()}, "check-config", "--config", path); code != 0 {
		t.Fatalf("max_packet_size = max_body_len + 1024: exit %d %s %s", code, stdout, stderr)
	}
}

// Ensure a credentials file that parses but lacks a key stops the server
// at start, with one JSON log line at level fatal naming the file and the
// missing keys, instead of serving with an empty app id or key.
func TestMain_IncompleteCredentialsRefused(t *testing.T) {
	for name, content := range map[string]string{
		"Braces":    `{}`,
		"NoMaster":  `{"app_id":"app","key":"key"}`,
		"BlankKey":  `{"app_id":"app","key":" ","master_key":"m"}`,
		"NotJSON":   `app_id=1`,
		"EmptyFile": ``,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "credentials.json"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runBin(t, []string{"MQIM_DATA_DIR=" + dir, "MQIM_HTTP_ADDR=127.0.0.1:0",
				"MQIM_MQTT_ADDR=127.0.0.1:0", "MQIM_WS_ADDR=127.0.0.1:0"})
			if code != 1 {
				t.Fatalf("started with credentials %q: exit %d\n%s%s", content, code, stdout, stderr)
			}
			fatal := fatalLine(t, stderr)
			if e, _ := fatal["error"].(string); !strings.Contains(e, "credentials") {
				t.Fatalf("fatal line %v does not name the credentials", fatal)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "credentials.json")); string(b) != content {
				t.Fatalf("the server rewrote the broken file: %q", b)
			}
		})
	}
}

// fatalLine checks that every line of a JSON log parses and returns the
// one at level fatal.
func fatalLine(t *testing.T, log string) map[string]any {
	t.Helper()
	var fatal map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON; log:\n%s", l, log)
		}
		if m["level"] == "fatal" {
			fatal = m
		}
	}
	if fatal == nil {
		t.Fatalf("no fatal line in:\n%s", log)
	}
	return fatal
}

// Ensure start-up failures (a port in use, a bad config file) are one JSON
// log line at level fatal when the log is JSON, and plain text with
// log.pretty.
func TestMain_FatalStartupIsJSON(t *testing.T) {
	dir := t.TempDir()
	p := startMQIM(t, dir)
	busy := strings.TrimPrefix(p.HTTP, "http://")
	code, _, stderr := runBin(t, []string{"MQIM_DATA_DIR=" + t.TempDir(), "MQIM_HTTP_ADDR=" + busy,
		"MQIM_MQTT_ADDR=127.0.0.1:0", "MQIM_WS_ADDR=127.0.0.1:0"})
	if code != 1 {
		t.Fatalf("second server on %s: exit %d", busy, code)
	}
	if e, _ := fatalLine(t, stderr)["error"].(string); !strings.Contains(e, "listen") {
		t.Fatalf("fatal line does not say what failed: %s", stderr)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("http: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runBin(t, []string{"MQIM_DATA_DIR=" + t.TempDir()}, "--config", bad)
	if e, _ := fatalLine(t, stderr)["error"].(string); code != 1 || !strings.Contains(e, "bad.yaml") {
		t.Fatalf("bad config: exit %d, %s", code, stderr)
	}

	pretty := filepath.Join(t.TempDir(), "pretty.yaml")
	if err := os.WriteFile(pretty, []byte("log:\n  pretty: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runBin(t, []string{"MQIM_DATA_DIR=" + t.TempDir(), "MQIM_HTTP_ADDR=" + busy,
		"MQIM_MQTT_ADDR=127.0.0.1:0", "MQIM_WS_ADDR=127.0.0.1:0"}, "serve", "--config", pretty)
	if code != 1 || !strings.Contains(stderr, "FTL") || strings.Contains(stderr, `"level"`) || strings.Contains(stderr, "\x1b[") {
		t.Fatalf("pretty start-up failure: exit %d, %q; want a plain FTL line without colours", code, stderr)
	}
}

// Ensure log.pretty writes no ANSI colours to a file (or pipe) and keeps
// the seconds of its timestamps.
func TestLog_PrettyToFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := newLogger(LogConfig{Level: "info", Pretty: true}, zerolog.Nop(), f)
	l.Info().Str("k", "v").Msg("hello")
	l.Debug().Msg("hidden")
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	line := string(b)
	if strings.Contains(line, "\x1b[") {
		t.Errorf("colours in a file: %q", line)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) INF hello k=v\n$`).MatchString(line) {
		t.Errorf("pretty line %q: want an RFC 3339 time with seconds, the level and the message", line)
	}
}

// Ensure storage.log_level holds Badger's housekeeping back even at
// log.level debug, and lets it through when lowered.
func TestLog_StorageLevel(t *testing.T) {
	open := func(level string) string {
		var buf bytes.Buffer
		base := zerolog.New(&buf).Level(zerolog.DebugLevel)
		db, err := storage.Open(storage.Options{Dir: t.TempDir(), Logger: storageLogger(base, level)})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	if out := open("warn"); strings.Contains(out, `"engine":"badger"`) {
		t.Errorf("log.level debug, storage.log_level warn: Badger logged %s", out)
	}
	if out := open("debug"); !strings.Contains(out, `"engine":"badger"`) || !strings.Contains(out, `"component":"storage"`) {
		t.Errorf("storage.log_level debug: no Badger lines in %q", out)
	}
	// log.level above storage.log_level wins.
	var buf bytes.Buffer
	l := storageLogger(zerolog.New(&buf).Level(zerolog.ErrorLevel), "debug")
	l.Warn().Msg("x")
	if buf.Len() != 0 {
		t.Errorf("storage warning logged at log.level error: %s", buf.String())
	}
}

// Ensure every MQIM_* variable the command reads is an option with a
// config key (and so a row in the README table): no knob hides in the
// environment only, as MQIM_PPROF_ADDR once did.
func TestConfig_NoEnvOnlyKnobs(t *testing.T) {
	known := map[string]bool{}
	for _, e := range envVars {
		known[e.name] = true
	}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	seen := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			for _, v := range regexp.MustCompile(`\bMQIM_[A-Z0-9_]+\b`).FindAllString(s, -1) {
				seen++
				if !known[v] {
					t.Errorf("%s reads %s, which is not in envVars (give it a config key in configs/mqim.yaml)", fset.Position(lit.Pos()), v)
				}
			}
			return true
		})
	}
	if seen < len(envVars) {
		t.Fatalf("found %d MQIM_ strings, fewer than envVars' %d: the scan is broken", seen, len(envVars))
	}
}

// Ensure `mqim health` exits 0 while the server answers /readyz and 1
// once it is gone; a listener on every interface is asked on 127.0.0.1.
func TestCLI_Health(t *testing.T) {
	p := startMQIM(t, t.TempDir())
	_, port, _ := strings.Cut(strings.TrimPrefix(p.HTTP, "http://"), ":")
	for _, env := range [][]string{
		{"MQIM_HTTP_ADDR=127.0.0.1:" + port},
		{"MQIM_HTTP_ADDR=:" + port},
		{"MQIM_HTTP_ADDR=0.0.0.0:" + port},
	} {
		if code, stdout, stderr := runBin(t, env, "health"); code != 0 || strings.TrimSpace(stdout) != "ok" {
			t.Errorf("health with %v: exit %d %q %q", env, code, stdout, stderr)
		}
	}
	if code, _, stderr := runBin(t, nil, "health", "--url", p.HTTP); code != 0 {
		t.Errorf("health --url: exit %d %s", code, stderr)
	}
	p.stop()
	if code, _, stderr := runBin(t, []string{"MQIM_HTTP_ADDR=127.0.0.1:" + port}, "health"); code != 1 || stderr == "" {
		t.Errorf("health of a stopped server: exit %d %q", code, stderr)
	}
}
