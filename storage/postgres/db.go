// Package postgres implements [chat.Store] and [chat.SessionStore] on
// PostgreSQL (pgx v5), for running mqim as several nodes that share one
// database. It is the only package of mqim that imports pgx.
//
// docs/storage.md, "PostgreSQL", describes the schema, the migrations, how
// sequence numbers are assigned and how retention works.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
)

// Options configures [Open].
type Options struct {
	// URL is the PostgreSQL connection string, e.g.
	// postgres://mqim@127.0.0.1:5432/mqim (any form pgx accepts).
	URL string
	// Logger receives the store's own lines (migrations, retention).
	Logger zerolog.Logger
	// RetentionInterval is how often expired history is deleted; 0 is one
	// minute, negative turns the loop off (reads hide expired records
	// either way).
	RetentionInterval time.Duration
	// RetentionBatch is how many rows one delete statement removes at most;
	// 0 is 1000.
	RetentionBatch int
	// MaxConns bounds the connection pool; 0 is 16.
	MaxConns int32
}

const (
	defaultRetentionInterval = time.Minute
	defaultRetentionBatch    = 1000
	defaultMaxConns          = 16

	// updateAttempts bounds how often Update re-runs fn after a
	// serialization failure or deadlock. With retryPause's backoff the
	// last attempt starts about 6 s after the first: a login storm of
	// hundreds of new users (each a read that finds nothing then an
	// insert, conflicting on the index pages their predicate locks
	// cover) commits whole instead of refusing logins.
	updateAttempts = 40

	// migrationLock is the advisory lock key held while migrating, so
	// that nodes starting together apply each migration once.
	migrationLock = 0x6d71696d // "mqim"
)

// errClosed is returned by every method called after Close.
var errClosed = errors.New("postgres: store is closed")

// DB is a PostgreSQL-backed [chat.Store]. It is safe for concurrent use,
// and any number of processes may open the same database.
type DB struct {
	pool *pgxpool.Pool
	log  zerolog.Logger

	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// Appends: the committer (records.go).
	appends      chan *appendReq
	committed    chan struct{} // closed when the committer has drained the queue
	appendMu     sync.Mutex
	appendClosed bool
	appending    sync.WaitGroup // appends being queued

	retentionBatch int
	// now is the clock expiry is measured against (tests move it).
	now func() int64
}

var (
	_ chat.Store        = (*DB)(nil)
	_ chat.SessionStore = (*DB)(nil)
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Open connects to the database, applies the migrations it lacks and
// starts the retention loop.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.URL == "" {
		return nil, errors.New("postgres: open: no URL (storage.postgres_url)")
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	cfg.MaxConns = defaultMaxConns
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s@%s/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	db := &DB{
		pool:           pool,
		log:            opts.Logger,
		stop:           make(chan struct{}),
		done:           make(chan struct{}),
		retentionBatch: opts.RetentionBatch,
		appends:        make(chan *appendReq, 4096),
		committed:      make(chan struct{}),
		now:            func() int64 { return time.Now().UnixMilli() },
	}
	if db.retentionBatch <= 0 {
		db.retentionBatch = defaultRetentionBatch
	}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	go db.commitLoop()
	interval := opts.RetentionInterval
	if interval == 0 {
		interval = defaultRetentionInterval
	}
	if interval > 0 {
		go db.retentionLoop(interval)
	} else {
		close(db.done)
	}
	return db, nil
}

// Close refuses new calls, commits the appends already queued, stops the
// retention loop and closes the pool, waiting for the connections in use.
// Calling Close again is a no-op.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		// Every append queued is committed before the pool closes.
		db.appendMu.Lock()
		db.appendClosed = true
		db.appendMu.Unlock()
		db.appending.Wait()
		close(db.appends)
		<-db.committed
		close(db.stop)
		<-db.done
		db.pool.Close()
	})
	return nil
}

// migration is one step of the schema; version is its place in the list.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. A file is
// named NNNN_what.sql; versions start at 1 and have no holes.
func migrations() ([]migration, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for i, e := range entries { // ReadDir sorts by name
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%04d_", &v); err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", e.Name(), i+1)
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	return out, nil
}

// migrate applies the migrations newer than the version table's latest,
// each in its own transaction, under an advisory lock: nodes started at
// once wait for the first and then find nothing left to do. A database
// whose version is newer than this binary knows is refused.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must go even if ctx is done.
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS mqim_schema (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: migrate: version table: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM mqim_schema`).Scan(&have); err != nil {
		return fmt.Errorf("postgres: migrate: read version: %w", err)
	}
	if have > len(ms) {
		return fmt.Errorf("postgres: database schema is version %d, this mqim knows up to %d: run a newer mqim", have, len(ms))
	}
	for _, m := range ms[have:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO mqim_schema (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", m.name, err)
		}
		db.log.Info().Int("version", m.version).Str("migration", m.name).Msg("database schema migrated")
	}
	return nil
}

// SchemaVersion returns the latest migration applied to the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM mqim_schema`).Scan(&v)
	return v, err
}

// retentionLoop deletes expired records every interval until Close.
func (db *DB) retentionLoop(interval time.Duration) {
	defer close(db.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		n, err := db.DeleteExpired(context.Background())
		if err != nil {
			db.log.Warn().Err(err).Msg("history retention failed")
		} else if n > 0 {
			db.log.Debug().Int64("records", n).Msg("expired history deleted")
		}
	}
}

// DeleteExpired deletes the records whose expiry has passed, in
// statements of at most Options.RetentionBatch rows (each its own
// transaction, so no lock is held long), until none is left or Close
// begins. It returns how many it deleted. Earlier versions of the records
// go with them.
func (db *DB) DeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		select {
		case <-db.stop:
			return total, nil
		default:
		}
		tag, err := db.pool.Exec(ctx, `DELETE FROM records WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM records WHERE expires_at <= $1 LIMIT $2))`, db.now(), db.retentionBatch)
		if err != nil {
			return total, fmt.Errorf("postgres: delete expired records: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(db.retentionBatch) {
			return total, nil
		}
	}
}

// enter refuses calls after Close with errClosed and canceled contexts
// with their error.
func (db *DB) enter(ctx context.Context) error {
	if db.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// View runs fn in a read-only REPEATABLE READ transaction: one consistent
// snapshot. Puts inside fn fail.
func (db *DB) View(ctx context.Context, fn func(chat.Tx) error) error {
	if err := db.enter(ctx); err != nil {
		return err
	}
	ptx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer func() { _ = ptx.Rollback(context.Background()) }()
	return fn(&tx{ctx: ctx, tx: ptx})
}

// Update runs fn in a SERIALIZABLE transaction and commits it. PostgreSQL's
// serializable snapshot isolation plays the part of Badger's conflict
// detection: when the transaction would not be serializable with a
// concurrent one (or deadlocks), fn is run again on a fresh snapshot after a
// short random pause. An error returned by fn rolls back and is returned
// unchanged.
func (db *DB) Update(ctx context.Context, fn func(chat.Tx) error) error {
	return db.retry(ctx, "update", func() error {
		ptx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
		if err != nil {
			return fmt.Errorf("postgres: begin: %w", err)
		}
		defer func() { _ = ptx.Rollback(context.Background()) }()
		if err := fn(&tx{ctx: ctx, tx: ptx}); err != nil {
			return err
		}
		if err := ptx.Commit(ctx); err != nil {
			return fmt.Errorf("postgres: commit: %w", err)
		}
		return nil
	})
}

// retry runs once until it returns something other than a serialization
// failure or deadlock, at most updateAttempts times.
func (db *DB) retry(ctx context.Context, what string, once func() error) error {
	for attempt := 1; ; attempt++ {
		if err := db.enter(ctx); err != nil {
			return err
		}
		err := once()
		if !retryable(err) {
			return err
		}
		if attempt == updateAttempts {
			return fmt.Errorf("postgres: %s: gave up after %d attempts: %w", what, attempt, err)
		}
		if err := retryPause(ctx, attempt); err != nil {
			return err
		}
	}
}

// retryPause waits before attempt+1: a random pause up to an exponential
// bound (1 ms, 2 ms, 4 ms, … capped at 200 ms), so that transactions that
// conflicted do not meet again at once. It returns early with ctx's error.
func retryPause(ctx context.Context, attempt int) error {
	bound := min(time.Millisecond<<min(attempt-1, 16), 200*time.Millisecond)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(bound)) + 1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable reports whether err is a serialization failure or a deadlock:
// the transaction can succeed if run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40001" || pe.Code == "40P01"
}

// badPart reports whether s cannot be an id: empty, or containing NUL
// (which PostgreSQL text cannot hold; the Badger store refuses it too).
func badPart(s string) bool { return s == "" || strings.IndexByte(s, 0) >= 0 }

// checkParts returns a CodeInvalid error when one of the named ids cannot
// be stored.
func checkParts(what string, parts ...string) error {
	for _, p := range parts {
		if badPart(p) {
			return chat.Errorf(chat.CodeInvalid, "invalid %s id %q", what, p)
		}
	}
	return nil
}
