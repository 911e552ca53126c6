package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Ensure an older credentials file, from before tokens, gains a token
// secret on the next start, kept from then on, and that a configured
// secret is used as is.
func TestCredentials_TokenSecretAdded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials.json")
	b, _ := json.Marshal(credentials{AppID: "app", Key: "key", MasterKey: "master"})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(secret string) string {
		m := NewMain()
		m.Config.DataDir = dir
		m.Config.Auth.TokenSecret = secret
		if err := m.loadCredentials(); err != nil {
			t.Fatal(err)
		}
		if m.Config.App.Key != "key" {
			t.Fatalf("key %q, want the file's", m.Config.App.Key)
		}
		return m.Config.Auth.TokenSecret
	}
	first := load("")
	if len(first) < 32 {
		t.Fatalf("generated secret %q", first)
	}
	var saved credentials
	b, _ = os.ReadFile(path)
	if err := json.Unmarshal(b, &saved); err != nil || saved.TokenSecret != first || saved.MasterKey != "master" {
		t.Fatalf("file %s after the start", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi, err)
	}
	if again := load(""); again != first {
		t.Fatalf("secret changed across starts")
	}
	if got := load("configured-secret-0123"); got != "configured-secret-0123" {
		t.Fatalf("configured secret replaced by %q", got)
	}
}
