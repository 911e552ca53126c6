// Package pgtest gives tests a fresh PostgreSQL database.
//
// The server is MQIM_TEST_POSTGRES_URL when set (.ci/run sets it), else
// the local cluster as role postgres: password "postgres" over TCP on
// 127.0.0.1:5432, then the unix socket in /var/run/postgresql. Each call
// of [URL] creates a database mqim_test_<random> and drops it when the test
// ends. Without a reachable server the test is skipped with a message, or
// fails under CI=true.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at a server; its
// database is only used to create and drop the test databases.
const EnvURL = "MQIM_TEST_POSTGRES_URL"

var (
	findOnce sync.Once
	server   string // admin URL of the server found, "" if none
	tried    []string
)

func candidates() []string {
	if u := os.Getenv(EnvURL); u != "" {
		return []string{u}
	}
	return []string{
		"postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"host=/var/run/postgresql user=postgres dbname=postgres",
	}
}

func find() {
	for _, u := range candidates() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		conn, err := pgx.Connect(ctx, u)
		cancel()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", redact(u), err))
			continue
		}
		_ = conn.Close(context.Background())
		server = u
		return
	}
}

// redact hides the password of a URL for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}

// URL returns the connection string of a new, empty database, dropped
// when tb and its subtests end.
func URL(tb testing.TB) string {
	tb.Helper()
	findOnce.Do(find)
	if server == "" {
		msg := fmt.Sprintf("no PostgreSQL server reachable (set %s; tried %s)", EnvURL, strings.Join(tried, "; "))
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "mqim_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Fatalf("pgtest: connect %s: %v", redact(server), err)
	}
	defer func() { _ = admin.Close(ctx) }()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			tb.Errorf("pgtest: connect to drop %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(server, name)
}

// withDatabase returns the connection string u with its database set to
// name, in URL or keyword/value form.
func withDatabase(u, name string) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		p, err := url.Parse(u)
		if err == nil {
			p.Path = "/" + name
			return p.String()
		}
	}
	return u + " dbname=" + name // a later keyword wins
}
