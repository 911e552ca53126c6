package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
	"github.com/mqim/mqim/storage"
	"github.com/mqim/mqim/storage/postgres"
)

// openStore opens the engine storage.driver names and sets m.Store (and
// m.DB for Badger, which backups use).
func (m *Main) openStore(ctx context.Context, mt *metrics.Metrics) (chat.Store, error) {
	c := &m.Config
	log := storageLogger(m.Log, c.Storage.LogLevel)
	if c.Storage.Driver == "postgres" {
		db, err := postgres.Open(ctx, postgres.Options{URL: c.Storage.PostgresURL, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		m.Log.Info().Str("driver", "postgres").Msg("store opened")
		m.Store = db
		return db, nil
	}
	db, err := storage.Open(storage.Options{
		Dir:        filepath.Join(c.DataDir, "db"),
		SyncWrites: c.Storage.SyncWrites,
		Logger:     log,
		Metrics:    mt,
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	m.DB, m.Store = db, db
	return db, nil
}

// sessionStore is where persistent MQTT sessions are kept: the store, when
// it keeps them (both engines do).
func (m *Main) sessionStore() chat.SessionStore {
	ss, _ := m.Store.(chat.SessionStore)
	return ss
}

// errPostgresBackup answers a backup of a server on PostgreSQL: the
// database is backed up with its own tools.
var errPostgresBackup = errors.New("storage.driver is postgres: mqim backup and restore only handle the embedded Badger store; back up and restore the database with pg_dump and pg_restore (and keep the app credentials)")

// backupFunc is rest.Options.Backup: nil when the store has no backup of
// its own (GET /backup then answers that backups are not available).
func (m *Main) backupFunc() func(ctx context.Context, w io.Writer) error {
	if m.DB == nil {
		return nil
	}
	return m.backup
}

// closeStore closes the store.
func (m *Main) closeStore() error {
	if m.Store == nil {
		return nil
	}
	err := m.Store.Close()
	m.Store, m.DB = nil, nil
	return err
}
