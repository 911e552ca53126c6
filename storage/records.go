package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// Chat records.
//
// A record is stored at m␀<conv>␀<ts:8><seq:8>, so the records of a
// conversation are contiguous and sorted by (TS, Seq); a history page is one
// reverse seek. The conversation cursor q␀<conv> holds the last (Seq, TS)
// handed out; it has no TTL, so sequence numbers never restart when old
// records expire.
//
// Appends go through one committer goroutine (commitLoop). AppendRecord
// assigns Seq and TS under the conversation's mutex and queues the write in
// the same critical section, so the queue holds each conversation's records
// in Seq order. The committer takes everything queued (up to maxBatch) and
// commits it as one Badger transaction: under load, many appends share one
// commit (and with SyncWrites one fsync), which is what makes PUBACK-after-
// store affordable. Each AppendRecord returns once its batch is committed.

const (
	queueLen = 4096 // appends waiting for the committer
	maxBatch = 1024 // appends per commit

	// maxConvStates bounds the in-memory cursors. Idle ones beyond it are
	// dropped and reloaded from q␀<conv> on the next append.
	maxConvStates = 1 << 16
)

// appendReq is one queued write. A request without key is a barrier: it
// only waits for everything queued before it.
type appendReq struct {
	key       []byte
	val       []byte
	expiresAt uint64 // unix seconds, 0: never
	cursor    []byte // q␀<conv>
	cursorVal []byte
	sync      []syncWrite // conversation index and read cursor (conversations.go)
	err       error
	done      chan struct{}
}

// convState is the in-memory cursor of one conversation. mu orders the
// appends of the conversation; refs (guarded by DB.convMu) counts the calls
// using the state, which may only be evicted when it is zero: then every
// append it handed out has finished and q␀<conv> is up to date.
//
// Locks: convState.mu and DB.convMu are never held together. convState.mu
// is held while sending to the queue; the committer takes neither lock.
type convState struct {
	mu     sync.Mutex
	loaded bool
	seq    uint64
	ts     int64
	refs   int
	sync   convSync // conversation index state (conversations.go)
}

// recordValue is the stored form of a record: TS and Seq are in the key and
// the conversation in the prefix, so they are not repeated. It is encoded
// in a small binary format (encode/decodeRecordValue) rather than JSON:
// decoding JSON was half the cost of a history page.
type recordValue struct {
	ID       string
	Speaker  string
	Media    int
	Body     string
	Remark   string
	Recalled bool
	Edited   int64 // ms; 0: never edited
}

// recordFormat is the first byte of an encoded recordValue, so that the
// format can change without rewriting old records. recordFormatChanged
// marks a recalled or edited record: format 1 followed by a flags byte
// and the varint edit time. New records stay format 1, so appends cost
// nothing more.
const (
	recordFormat        = 1
	recordFormatChanged = 2
)

// encodeRecordValue returns 1, varint media, then ID, Speaker, Body and
// Remark, each as uvarint length and bytes; for a changed record the
// format byte is 2 and the flags (1: recalled) and varint Edited follow.
func encodeRecordValue(v recordValue) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+4*2+len(v.ID)+len(v.Speaker)+len(v.Body)+len(v.Remark))
	changed := v.Recalled || v.Edited != 0
	if changed {
		b = append(b, recordFormatChanged)
	} else {
		b = append(b, recordFormat)
	}
	b = binary.AppendVarint(b, int64(v.Media))
	for _, s := range [...]string{v.ID, v.Speaker, v.Body, v.Remark} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	if changed {
		var flags byte
		if v.Recalled {
			flags |= 1
		}
		b = append(b, flags)
		b = binary.AppendVarint(b, v.Edited)
	}
	return b
}

var errBadRecord = errors.New("malformed record value")

// decodeRecordValue decodes b (which it does not retain) into v.
func decodeRecordValue(b []byte, v *recordValue) error {
	if len(b) == 0 || (b[0] != recordFormat && b[0] != recordFormatChanged) {
		return errBadRecord
	}
	changed := b[0] == recordFormatChanged
	b = b[1:]
	media, n := binary.Varint(b)
	if n <= 0 {
		return errBadRecord
	}
	v.Media = int(media)
	b = b[n:]
	for _, dst := range [...]*string{&v.ID, &v.Speaker, &v.Body, &v.Remark} {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return errBadRecord
		}
		*dst = string(b[n : n+int(l)])
		b = b[n+int(l):]
	}
	if changed {
		if len(b) < 2 {
			return errBadRecord
		}
		v.Recalled = b[0]&1 != 0
		edited, n := binary.Varint(b[1:])
		if n <= 0 {
			return errBadRecord
		}
		v.Edited = edited
	}
	return nil
}

// AppendRecord stores rec and sets rec.Seq and rec.TS (raised to one past
// the conversation's latest TS if not newer). The record expires ttl after rec.TS;
// Badger hides it from then on and compaction reclaims it. AppendRecord
// returns once the write is committed (and, with SyncWrites, synced). ctx
// is checked before the record is queued; once queued it is always waited
// for, so an error never hides a stored record.
//
// If a commit fails, the Seq numbers it held are not handed out again while
// the store stays open: Seq is strictly increasing but may have gaps.
func (db *DB) AppendRecord(ctx context.Context, rec *chat.Record, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if badPart(string(rec.Conv)) {
		return chat.Errorf(chat.CodeInvalid, "invalid conversation %q", rec.Conv)
	}
	val := encodeRecordValue(recordValue{
		ID: rec.ID, Speaker: rec.Speaker, Media: rec.Content.Media,
		Body: rec.Content.Body, Remark: rec.Remark,
	})
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()

	st := db.acquire(rec.Conv)
	defer db.release(st)

	st.mu.Lock()
	if err := db.load(st, rec.Conv); err != nil {
		st.mu.Unlock()
		return err
	}
	// TS is strictly increasing, so that a TS cursor pages without loss.
	seq, ts := st.seq+1, rec.TS
	if st.seq > 0 && ts <= st.ts {
		ts = st.ts + 1
	}
	p := recPrefix(rec.Conv)
	exp := expiresAt(ts, ttl)
	r := &appendReq{
		key:       recKey(p, ts, seq),
		val:       val,
		expiresAt: exp,
		cursor:    cursorKey(rec.Conv),
		done:      make(chan struct{}),
	}
	r.cursorVal, r.sync = st.sync.advance(rec, seq, ts, exp)
	db.queue <- r // under st.mu: the queue keeps the conversation's order
	st.seq, st.ts = seq, ts
	st.mu.Unlock()

	<-r.done
	if r.err != nil {
		return r.err
	}
	rec.Seq, rec.TS = seq, ts
	return nil
}

// expiresAt returns Badger's expiry (unix seconds, rounded up) of a record
// written at ts ms that lives ttl; 0 means never.
func expiresAt(ts int64, ttl time.Duration) uint64 {
	if ttl <= 0 {
		return 0
	}
	ms := ts + ttl.Milliseconds()
	if ms <= 0 {
		return 1 // already expired; 0 would mean never
	}
	return uint64((ms + 999) / 1000)
}

// acquire returns the state of conv, creating it, and pins it until release.
func (db *DB) acquire(conv chat.Conv) *convState {
	db.convMu.Lock()
	defer db.convMu.Unlock()
	st := db.convs[conv]
	if st == nil {
		if len(db.convs) >= maxConvStates {
			db.evictLocked()
		}
		st = &convState{}
		db.convs[conv] = st
	}
	st.refs++
	return st
}

func (db *DB) release(st *convState) {
	db.convMu.Lock()
	st.refs--
	db.convMu.Unlock()
}

// evictLocked drops idle states until a quarter of the room is free (or none
// is idle), so the cost of a sweep is spread over many appends.
func (db *DB) evictLocked() {
	for conv, st := range db.convs {
		if len(db.convs) < maxConvStates*3/4 {
			return
		}
		if st.refs == 0 {
			delete(db.convs, conv)
		}
	}
}

// load fills st from the cursor of conv on first use. Without a cursor
// (a store written by a tool) it falls back to the last record key.
func (db *DB) load(st *convState, conv chat.Conv) error {
	if st.loaded {
		return nil
	}
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(cursorKey(conv))
		if err == nil {
			return item.Value(func(b []byte) error {
				var ok bool
				if st.seq, st.ts, ok = decodeCursor(b); !ok {
					return fmt.Errorf("bad cursor of %d bytes", len(b))
				}
				st.sync = decodeConvSync(b)
				return nil
			})
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		// No cursor: a store written by a tool, or a conversation
		// ForgetConversation removed, whose numbering starts again.
		st.seq, st.ts = 0, 0
		st.sync = decodeConvSync(nil)
		p := recPrefix(conv)
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: p})
		defer it.Close()
		it.Seek(recKey(p, maxTS, ^uint64(0)))
		if it.Valid() {
			st.ts, st.seq, _ = parseRecKey(it.Item().Key())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: load cursor of %q: %w", conv, err)
	}
	st.loaded = true
	return nil
}

const maxTS = int64(^uint64(0) >> 1)

// commitLoop is the committer goroutine. It runs until Close closes the
// queue, and commits whatever is queued then before it exits.
func (db *DB) commitLoop() {
	defer close(db.committed)
	batch := make([]*appendReq, 0, maxBatch)
	for r := range db.queue {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-db.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		db.commitBatch(batch)
		clear(batch) // drop references to the answered requests
	}
}

// commitBatch writes batch in as few transactions as Badger's size limit
// allows (usually one) and answers every request.
func (db *DB) commitBatch(batch []*appendReq) {
	txn := db.bdb.NewTransaction(true)
	first := 0 // first request in txn
	commit := func(end int) {
		start := time.Now()
		err := txn.Commit()
		db.metrics.ObserveCommit(metrics.CommitAppend, time.Since(start))
		if err != nil {
			err = fmt.Errorf("storage: commit records: %w", err)
			for _, r := range batch[first:end] {
				if r.err == nil {
					r.err = err
				}
			}
		}
		first = end
	}
	for i, r := range batch {
		if r.key == nil {
			continue // barrier
		}
		err := addAppend(txn, r)
		if errors.Is(err, badger.ErrTxnTooBig) && i > first {
			commit(i)
			txn = db.bdb.NewTransaction(true)
			err = addAppend(txn, r)
		}
		if err != nil {
			r.err = fmt.Errorf("storage: append record: %w", err)
		}
	}
	commit(len(batch))
	for _, r := range batch {
		close(r.done)
	}
}

// addAppend adds the writes of r to txn. The cursor goes first: if the
// record then fails, the only trace is a gap in Seq, never a record whose
// Seq could be handed out again after a restart.
func addAppend(txn *badger.Txn, r *appendReq) error {
	if err := txn.Set(r.cursor, r.cursorVal); err != nil {
		return err
	}
	e := badger.NewEntry(r.key, r.val)
	e.ExpiresAt = r.expiresAt
	if err := txn.SetEntry(e); err != nil {
		return err
	}
	return addSyncWrites(txn, r.sync)
}

// barrier waits until everything queued before it has been committed.
func (db *DB) barrier() {
	r := &appendReq{done: make(chan struct{})}
	db.queue <- r
	<-r.done
}

// Records returns at most limit records of conv with notBefore <= TS <
// before, the latest ones, in ascending (TS, Seq) order.
//
// It is one reverse seek: the iterator is positioned on the key (before, 0),
// the largest possible key below the cutoff since Seq starts at 1, and walks
// back at most limit entries. The Prefix option lets Badger skip every
// table whose key range lies outside the conversation, so the cost does not
// grow with the size of the store or of the conversation. Expired records are
// hidden by Badger.
func (db *DB) Records(ctx context.Context, conv chat.Conv, before, notBefore int64, limit int) ([]chat.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []chat.Record{}
	if limit <= 0 || before <= notBefore || badPart(string(conv)) {
		return out, nil
	}
	txn, err := db.readTxn()
	if err != nil {
		return nil, err
	}
	defer db.endRead(txn)
	if db.metrics != nil {
		defer func(start time.Time) { db.metrics.ObserveHistoryRead(time.Since(start)) }(time.Now())
	}
	p := recPrefix(conv)
	// Values live in the LSM tree next to their keys; PrefetchValues would
	// start a goroutine per entry and read ahead past limit for nothing.
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: p})
	defer it.Close()

	out = slices.Grow(out, min(limit, chat.MaxListLimit))
	for it.Seek(recKey(p, before, 0)); it.Valid() && len(out) < limit; it.Next() {
		item := it.Item()
		if len(item.Key()) != len(p)+recSuffixLen {
			continue // not a record key; cannot happen with this layout
		}
		ts, seq, _ := parseRecKey(item.Key())
		if ts < notBefore {
			break
		}
		rec, err := decodeRecord(item, conv, ts, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	slices.Reverse(out)
	return out, nil
}

// DeleteRecords removes every record of conv and its cursor; the next
// append starts again at Seq 1. Appends to conv wait while it runs.
//
// It deletes key by key in a WriteBatch rather than with DB.DropPrefix:
// DropPrefix blocks every writer of the store while it flushes the
// memtables and rewrites tables, which would stall all other conversations
// to delete one group's history.
func (db *DB) DeleteRecords(ctx context.Context, conv chat.Conv) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if badPart(string(conv)) {
		return nil
	}
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()

	st := db.acquire(conv)
	defer db.release(st)
	st.mu.Lock()
	defer st.mu.Unlock()
	db.barrier() // appends of conv queued earlier are committed now

	// The cursor stays: sequence numbers continue after a wipe, so a client
	// syncing "since seq N" never sees a number reused. The records go with
	// their earlier versions and their seq index.
	if err := db.deletePrefixes(fmt.Sprintf("records of %q", conv), recPrefix(conv), editPrefix(conv), seqIndexPrefix(conv)); err != nil {
		st.loaded = false // some deletes may have been committed: reload the cursor
		return err
	}
	return nil
}

// decodeRecord reads the record stored at item, whose key gave ts and seq:
// every reader of records (history, catch-up, the conversation list, edits)
// goes through it, so none of them loses a field.
func decodeRecord(item *badger.Item, conv chat.Conv, ts int64, seq uint64) (chat.Record, error) {
	var v recordValue
	if err := item.Value(func(b []byte) error { return decodeRecordValue(b, &v) }); err != nil {
		return chat.Record{}, fmt.Errorf("storage: read record %s/%d: %w", conv, seq, err)
	}
	return chat.Record{
		Conv: conv, ID: v.ID, Seq: seq, Speaker: v.Speaker,
		Content: chat.Content{Media: v.Media, Body: v.Body}, Remark: v.Remark, TS: ts,
		Recalled: v.Recalled, Edited: v.Edited,
	}, nil
}
