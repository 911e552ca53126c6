package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Ensure chat.recall_window and chat.edit_window default to 2m and 24h,
// are read from the file, refuse negative values, and map 0 ("any time")
// to chat.Options' no-limit value.
func TestLoadConfig_ChatWindows(t *testing.T) {
	cfg, err := LoadConfig("", env(nil))
	if err != nil || cfg.Chat.RecallWindow != 2*time.Minute || cfg.Chat.EditWindow != 24*time.Hour {
		t.Fatalf("defaults = %v, %v, %v", cfg.Chat.RecallWindow, cfg.Chat.EditWindow, err)
	}
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err = LoadConfig(write("chat:\n  recall_window: 0s\n  edit_window: 5m\n"), env(nil))
	if err != nil || cfg.Chat.RecallWindow != 0 || cfg.Chat.EditWindow != 5*time.Minute {
		t.Fatalf("from file = %v, %v, %v", cfg.Chat.RecallWindow, cfg.Chat.EditWindow, err)
	}
	if chatWindow(cfg.Chat.RecallWindow) >= 0 || chatWindow(cfg.Chat.EditWindow) != 5*time.Minute {
		t.Errorf("chatWindow: 0 → %v, 5m → %v; want negative, 5m", chatWindow(0), chatWindow(5*time.Minute))
	}
	if _, err := LoadConfig(write("chat:\n  recall_window: -1s\n"), env(nil)); err == nil {
		t.Error("negative recall_window accepted")
	}
}
