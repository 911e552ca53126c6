// Package storage implements [chat.Store] on Badger v4, an embedded LSM
// key-value store. It is the only package of mqim that imports Badger.
//
// The key layout, encoding, consistency and durability rules are described
// in docs/storage.md. In short: every entity lives under a one- or two-letter
// prefix with NUL-separated parts, values are JSON, chat records are keyed by
// (conversation, TS, Seq) so that a history page is one bounded reverse seek,
// and appends are group-committed by a single committer goroutine.
package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Options configures [Open].
type Options struct {
	// Dir is the data directory for Badger; it is created if missing.
	Dir string
	// InMemory keeps everything in memory (for tools; tests use a temp dir).
	InMemory bool
	// SyncWrites makes every commit fsync its write-ahead log before it
	// returns, so acknowledged writes survive power loss, not only a process
	// crash (docs/storage.md, "Durability").
	SyncWrites bool
	// Logger receives Badger's own log lines at their level (Badger's info
	// lines, table flushes and compactions, are chatty: give this logger
	// its own level, cmd/mqim's storage.log_level). The zero value
	// discards them.
	Logger zerolog.Logger
	// Metrics, when set, times commits and history reads; nil: none.
	Metrics *metrics.Metrics
}

// Tuning for an embedded server on 2 cores or a small edge device. Badger's
// defaults (64 MB memtables ×5, 256 MB block cache, 1 GB value-log files, 4
// compactors, Snappy) are sized for a dedicated database host.
//
// Tables are not compressed and there is no block cache: blocks are then
// read straight from the mmapped table files and the kernel's page cache
// does the caching, without a second copy on the Go heap. With Snappy every
// block-cache miss paid a decompression; on a 1M-record conversation that
// made a random history page 1.6× slower than on a 10k one (1.3× without),
// and compaction spent a large share of its CPU compressing. The cost is
// disk: about 1.5× the space for chat text (docs/storage.md). The index
// cache only serves encrypted tables, which mqim does not use.
const (
	memTableSize     = 16 << 20
	numMemtables     = 3
	blockCacheSize   = 0
	indexCacheSize   = 0
	valueLogFileSize = 64 << 20
	numCompactors    = 2 // Badger's minimum: compactor 0 is reserved for L0
	baseTableSize    = 2 << 20

	// gcInterval is how often the value log is garbage-collected. Chat values
	// are small and live in the LSM tree, so the value log only grows with
	// values above Badger's ValueThreshold; a few minutes is plenty.
	gcInterval = 5 * time.Minute
	// gcDiscardRatio rewrites a value-log file once half of it is garbage.
	gcDiscardRatio = 0.5

	// updateAttempts bounds how often Update re-runs fn after ErrConflict.
	updateAttempts = 8
)

// errClosed is returned by every method called after Close.
var errClosed = errors.New("storage: database is closed")

// DB is a Badger-backed [chat.Store]. It is safe for concurrent use; only
// one process may open a directory at a time.
type DB struct {
	bdb     *badger.DB
	log     zerolog.Logger
	metrics *metrics.Metrics

	gate gate

	// Record appends: see records.go.
	queue     chan *appendReq
	committed chan struct{} // closed when the committer has drained the queue
	convMu    sync.Mutex
	convs     map[chat.Conv]*convState

	gcStop chan struct{}
	gcDone chan struct{}
	// closing is closed when Close begins: a running Backup stops.
	closing chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var _ chat.Store = (*DB)(nil)

// Open opens (or creates) the store described by opts. A directory that is
// missing and cannot be created, is locked by another process or holds a
// damaged database is reported as an error.
func Open(opts Options) (db *DB, err error) {
	bopts := badger.DefaultOptions(opts.Dir).
		WithSyncWrites(opts.SyncWrites).
		WithNumVersionsToKeep(1).
		WithMemTableSize(memTableSize).
		WithNumMemtables(numMemtables).
		WithBaseTableSize(baseTableSize).
		WithBlockCacheSize(blockCacheSize).
		WithIndexCacheSize(indexCacheSize).
		WithValueLogFileSize(valueLogFileSize).
		WithNumCompactors(numCompactors).
		WithNumGoroutines(2). // Badger's Stream (backup) workers
		WithCompression(options.None).
		// Badger's metrics are process-global expvars nothing in mqim reads.
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{opts.Logger})
	if opts.InMemory {
		bopts = bopts.WithDir("").WithValueDir("").WithInMemory(true)
	} else {
		if opts.Dir == "" {
			return nil, errors.New("storage: open: no data directory")
		}
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: open %s: %w", opts.Dir, err)
		}
	}

	// Badger panics on some kinds of damage (badger#1797); the server must
	// report a bad data directory, not crash with a stack trace.
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("storage: open %s: badger panic: %v", opts.Dir, r)
		}
	}()
	bdb, err := badger.Open(bopts)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", opts.Dir, lockError(err))
	}

	db = &DB{
		bdb:       bdb,
		log:       opts.Logger,
		metrics:   opts.Metrics,
		queue:     make(chan *appendReq, queueLen),
		committed: make(chan struct{}),
		convs:     make(map[chat.Conv]*convState),
		gcStop:    make(chan struct{}),
		gcDone:    make(chan struct{}),
		closing:   make(chan struct{}),
	}
	db.gate.init()
	go db.commitLoop()
	if opts.InMemory {
		close(db.gcDone) // in-memory mode has no value log to collect
	} else {
		go db.gcLoop()
	}
	return db, nil
}

// Close stops accepting calls, waits for the ones in progress, commits the
// pending appends, stops the value-log GC and closes Badger, which flushes
// the memtables to disk. Calling Close again returns the first result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closing)
		db.gate.close() // waits for every call in progress, appends included
		close(db.queue)
		<-db.committed
		close(db.gcStop)
		<-db.gcDone
		if err := db.bdb.Close(); err != nil {
			db.closeErr = fmt.Errorf("storage: close: %w", err)
		}
	})
	return db.closeErr
}

// readTxn enters the gate (errClosed once Close has begun) and opens a
// read-only snapshot; endRead discards it and leaves the gate.
func (db *DB) readTxn() (*badger.Txn, error) {
	if !db.gate.enter() {
		return nil, errClosed
	}
	return db.bdb.NewTransaction(false), nil
}

func (db *DB) endRead(txn *badger.Txn) {
	txn.Discard()
	db.gate.leave()
}

// View runs fn in a read-only snapshot. Puts inside fn fail.
func (db *DB) View(ctx context.Context, fn func(chat.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	txn, err := db.readTxn()
	if err != nil {
		return err
	}
	defer db.endRead(txn)
	return fn(&tx{txn: txn})
}

// Update runs fn in a read-write transaction and commits it. When the commit
// loses a conflict with a concurrent transaction (Badger's serializable
// snapshot isolation), fn is run again on a fresh snapshot, a few times,
// with a short random pause so that two retrying writers drift apart. An
// error returned by fn aborts the transaction and is returned unchanged.
func (db *DB) Update(ctx context.Context, fn func(chat.Tx) error) error {
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()

	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := db.updateOnce(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt == updateAttempts {
			return fmt.Errorf("storage: update: gave up after %d attempts: %w", attempt, err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(attempt) * int64(200*time.Microsecond))))
	}
}

// updateOnce runs fn in one fresh transaction. The conflict is returned as
// the bare badger.ErrConflict so that Update can tell it apart.
func (db *DB) updateOnce(fn func(chat.Tx) error) error {
	txn := db.bdb.NewTransaction(true)
	defer txn.Discard()
	if err := fn(&tx{txn: txn}); err != nil {
		return err
	}
	start := time.Now()
	err := txn.Commit()
	db.metrics.ObserveCommit(metrics.CommitUpdate, time.Since(start))
	if err != nil {
		if errors.Is(err, badger.ErrConflict) {
			return badger.ErrConflict
		}
		return fmt.Errorf("storage: commit: %w", err)
	}
	return nil
}

// gcLoop runs value-log GC every gcInterval until Close. One RunValueLogGC
// call rewrites at most one file, so it is repeated until there is nothing
// left worth rewriting.
func (db *DB) gcLoop() {
	defer close(db.gcDone)
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	for {
		select {
		case <-db.gcStop:
			return
		case <-t.C:
		}
		for {
			err := db.bdb.RunValueLogGC(gcDiscardRatio)
			if err == nil {
				select {
				case <-db.gcStop:
					return
				default:
					continue
				}
			}
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				db.log.Warn().Err(err).Msg("value log gc failed")
			}
			break
		}
	}
}

// gate lets calls in while the store is open and lets Close wait for the
// ones in progress. Unlike a sync.RWMutex it never deadlocks on a call made
// from inside another call (say AppendRecord inside an Update fn) while
// Close waits: the inner call is refused instead.
type gate struct {
	mu     sync.Mutex
	idle   sync.Cond
	n      int
	closed bool
}

func (g *gate) init() { g.idle.L = &g.mu }

// enter registers a call; false means the store is closed.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

// leave ends a call registered by enter.
func (g *gate) leave() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.closed {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
}

// close refuses new calls and waits until the registered ones have left.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	for g.n > 0 {
		g.idle.Wait()
	}
	g.mu.Unlock()
}
