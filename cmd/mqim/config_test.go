package main

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig_Defaults(t *testing.T) {
	cfg, err := LoadConfig("", env(nil))
	if err != nil {
		t.Fatalf("LoadConfig() error = %v", err)
	}
	if cfg.HTTP.Addr != ":8080" || cfg.MQTT.TCPAddr != ":1883" || cfg.MQTT.WSAddr != ":8083" {
		t.Fatalf("default addrs = %q %q %q", cfg.HTTP.Addr, cfg.MQTT.TCPAddr, cfg.MQTT.WSAddr)
	}
	if cfg.App.SignTolerance != 15*time.Minute {
		t.Fatalf("default sign tolerance = %v, want 15m", cfg.App.SignTolerance)
	}
	if cfg.Chat.GroupLimit != 50 || cfg.Chat.RoomLimit != 1000 {
		t.Fatalf("default limits = %d %d", cfg.Chat.GroupLimit, cfg.Chat.RoomLimit)
	}
}

func TestLoadConfig_FileAndEnv(t *testing.T) {
	cfg, err := LoadConfig("testdata/good.yaml", env(map[string]string{
		"MQIM_HTTP_ADDR":  "127.0.0.1:1234",
		"MQIM_APP_KEY":    "from-env",
		"MQIM_DATA_DIR":   "/tmp/other",
		"MQIM_MQTT_ADDR":  "127.0.0.1:1884",
		"MQIM_WS_ADDR":    "127.0.0.1:8084",
		"MQIM_MASTER_KEY": "mk",
		"MQIM_APP_ID":     "app2",
	}))
	if err != nil {
		t.Fatalf("LoadConfig() error = %v", err)
	}
	checks := []struct{ got, want any }{
		{cfg.HTTP.Addr, "127.0.0.1:1234"},
		{cfg.App.Key, "from-env"},
		{cfg.App.ID, "app2"},
		{cfg.App.MasterKey, "mk"},
		{cfg.DataDir, "/tmp/other"},
		{cfg.MQTT.TCPAddr, "127.0.0.1:1884"},
		{cfg.MQTT.WSAddr, "127.0.0.1:8084"},
		{cfg.App.SignTolerance, 5 * time.Minute},
		{cfg.App.StrictAdmin, true},
		{cfg.Chat.GroupLimit, 10},
		{cfg.Chat.Retention.Friend, 48 * time.Hour},
		{cfg.Chat.Retention.Group, 7 * 24 * time.Hour}, // untouched default
		{cfg.Log.Level, "debug"},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: got %v, want %v", i, c.got, c.want)
		}
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	tests := []struct {
		desc, path string
		env        map[string]string
		want       string
	}{
		{"missing file", "testdata/nope.yaml", nil, "no such file"},
		{"bad syntax", "testdata/bad-syntax.yaml", nil, "bad-syntax.yaml"},
		{"unknown field", "testdata/unknown-field.yaml", nil, "htp"},
		{"bad values", "testdata/bad-values.yaml", nil, "log.level"},
		{"bad env duration", "", map[string]string{"MQIM_SIGN_TOLERANCE": "soon"}, "MQIM_SIGN_TOLERANCE"},
		{"bad env bool", "", map[string]string{"MQIM_STRICT_ADMIN": "maybe"}, "MQIM_STRICT_ADMIN"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := LoadConfig(tt.path, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadConfig() error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// Ensure the documented example file is valid and complete: every key it
// sets is known to Config.
func TestLoadConfig_ExampleFile(t *testing.T) {
	if _, err := LoadConfig("../../configs/mqim.yaml", env(nil)); err != nil {
		t.Fatalf("configs/mqim.yaml: %v", err)
	}
}
