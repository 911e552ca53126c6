package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

// Changing stored records: recall and edit.
//
// A record is found by seq without an index: within a conversation TS
// never decreases as Seq grows (AppendRecord raises TS to the latest), so
// key order (TS, Seq) is Seq order and a binary search over TS finds the
// record in about log2(TS span) seeks, some 30 for a week of history. An
// index key per record would cost every append a second write for the
// sake of a rare call.
//
// Earlier versions of an edited record live at mv␀<conv>␀<seq:8><ts:8>
// (ts: when that version was replaced, the record's Edited at the time),
// with the record's own expiry, so a prefix scan lists them oldest first
// and they expire with the record.

// editPrefix returns "mv␀<conv>␀", the prefix of every earlier version of
// every record of conv.
func editPrefix(conv chat.Conv) []byte { return prefix(tagEdit, string(conv)) }

// editSeqPrefix returns the prefix of the earlier versions of record seq.
func editSeqPrefix(conv chat.Conv, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(editPrefix(conv), seq)
}

func editKey(conv chat.Conv, seq uint64, ts int64) []byte {
	k := editSeqPrefix(conv, seq)
	k = append(k, make([]byte, 8)...)
	putTS(k[len(k)-8:], ts)
	return k
}

// encodeEdit returns varint media then the body.
func encodeEdit(c chat.Content) []byte {
	return append(binary.AppendVarint(make([]byte, 0, binary.MaxVarintLen64+len(c.Body)), int64(c.Media)), c.Body...)
}

func decodeEdit(b []byte, c *chat.Content) error {
	media, n := binary.Varint(b)
	if n <= 0 {
		return errBadRecord
	}
	c.Media, c.Body = int(media), string(b[n:])
	return nil
}

// findRecordKey returns the key of record seq in the records under p, or
// nil when there is none. It uses one iterator at a time, as a read-write
// transaction requires.
func findRecordKey(txn *badger.Txn, p []byte, seq uint64) []byte {
	rit := txn.NewIterator(badger.IteratorOptions{Prefix: p, Reverse: true})
	rit.Seek(recKey(p, maxTS, ^uint64(0)))
	if !rit.Valid() {
		rit.Close()
		return nil
	}
	lastTS, lastSeq, _ := parseRecKey(rit.Item().Key())
	rit.Close()
	if seq > lastSeq || seq == 0 {
		return nil
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
	defer it.Close()
	// firstSeq is the Seq of the first record with TS >= ts, ok false when
	// there is none; it grows with ts.
	firstSeq := func(ts int64) (uint64, bool) {
		it.Seek(recKey(p, ts, 0))
		if !it.Valid() {
			return 0, false
		}
		_, s, _ := parseRecKey(it.Item().Key())
		return s, true
	}
	it.Rewind()
	if !it.Valid() {
		return nil
	}
	lo, s0, _ := parseRecKey(it.Item().Key())
	if seq < s0 {
		return nil // expired or deleted
	}
	if lastTS == maxTS {
		return recKey(p, lo, seq) // cannot happen with real clocks
	}
	// Invariant: firstSeq(lo) <= seq < firstSeq(hi), none counting as
	// infinite. At the end every record with TS > lo has a larger Seq and
	// the first with TS >= lo a smaller or equal one: seq, if stored, has
	// TS lo.
	hi := lastTS + 1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if s, ok := firstSeq(mid); ok && s <= seq {
			lo = mid
		} else {
			hi = mid
		}
	}
	return recKey(p, lo, seq)
}

// getRecord reads record seq of conv in txn, with its expiry; CodeNotFound
// when it is not stored (or expired).
func getRecord(txn *badger.Txn, conv chat.Conv, seq uint64) (chat.Record, []byte, uint64, error) {
	notFound := chat.Errorf(chat.CodeNotFound, "message %d does not exist", seq)
	key := findRecordKey(txn, recPrefix(conv), seq)
	if key == nil {
		return chat.Record{}, nil, 0, notFound
	}
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return chat.Record{}, nil, 0, notFound
	}
	if err != nil {
		return chat.Record{}, nil, 0, err
	}
	ts, _, _ := parseRecKey(key)
	rec, err := decodeRecord(item, conv, ts, seq)
	if err != nil {
		return chat.Record{}, nil, 0, err
	}
	return rec, key, item.ExpiresAt(), nil
}

// UpdateRecord implements chat.Store. It holds the conversation's mutex,
// so it never interleaves with DeleteRecords (it cannot bring back a
// deleted record), and retries on write conflicts (two edits of one
// record) like Update.
func (db *DB) UpdateRecord(ctx context.Context, conv chat.Conv, seq uint64, fn func(*chat.Record) (*chat.Edit, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if badPart(string(conv)) {
		return chat.Errorf(chat.CodeNotFound, "message %d does not exist", seq)
	}
	if !db.gate.enter() {
		return errClosed
	}
	defer db.gate.leave()
	st := db.acquire(conv)
	defer db.release(st)
	st.mu.Lock()
	defer st.mu.Unlock()

	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := db.updateRecordOnce(conv, seq, fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt == updateAttempts {
			return fmt.Errorf("storage: update record: gave up after %d attempts: %w", attempt, err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(attempt) * int64(200*time.Microsecond))))
	}
}

func (db *DB) updateRecordOnce(conv chat.Conv, seq uint64, fn func(*chat.Record) (*chat.Edit, error)) error {
	txn := db.bdb.NewTransaction(true)
	defer txn.Discard()
	rec, key, exp, err := getRecord(txn, conv, seq)
	if err != nil {
		return err
	}
	prior, err := fn(&rec)
	if err != nil {
		return err
	}
	if rec.Recalled {
		// Nothing of a recalled message's content stays readable.
		rec.Content, rec.Remark, prior = chat.Content{}, "", nil
		if err := deleteEditsOf(txn, conv, seq); err != nil {
			return err
		}
	}
	e := badger.NewEntry(key, encodeRecordValue(recordValue{
		ID: rec.ID, Speaker: rec.Speaker, Media: rec.Content.Media, Body: rec.Content.Body,
		Remark: rec.Remark, Recalled: rec.Recalled, Edited: rec.Edited,
	}))
	e.ExpiresAt = exp
	if err := txn.SetEntry(e); err != nil {
		return fmt.Errorf("storage: update record: %w", err)
	}
	if prior != nil {
		pe := badger.NewEntry(editKey(conv, seq, prior.TS), encodeEdit(prior.Content))
		pe.ExpiresAt = exp
		if err := txn.SetEntry(pe); err != nil {
			return fmt.Errorf("storage: update record: %w", err)
		}
	}
	if err := txn.Commit(); err != nil {
		if errors.Is(err, badger.ErrConflict) {
			return badger.ErrConflict
		}
		return fmt.Errorf("storage: commit record update: %w", err)
	}
	return nil
}

// deleteEditsOf deletes the earlier versions of record seq in txn.
func deleteEditsOf(txn *badger.Txn, conv chat.Conv, seq uint64) error {
	if err := deletePrefix(txn, editSeqPrefix(conv, seq)); err != nil {
		return fmt.Errorf("storage: delete edits: %w", err)
	}
	return nil
}

// deletePrefix deletes every key with prefix p in txn, collecting the keys
// before the first delete (as both its callers did).
func deletePrefix(txn *badger.Txn, p []byte) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// RecordEdits implements chat.Store.
func (db *DB) RecordEdits(ctx context.Context, conv chat.Conv, seq uint64) ([]chat.Edit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if badPart(string(conv)) {
		return nil, chat.Errorf(chat.CodeNotFound, "message %d does not exist", seq)
	}
	if !db.gate.enter() {
		return nil, errClosed
	}
	defer db.gate.leave()
	out := []chat.Edit{}
	err := db.bdb.View(func(txn *badger.Txn) error {
		if _, _, _, err := getRecord(txn, conv, seq); err != nil {
			return err
		}
		p := editSeqPrefix(conv, seq)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(p)+8 {
				continue
			}
			e := chat.Edit{TS: getTS(k[len(p):])}
			if err := it.Item().Value(func(b []byte) error { return decodeEdit(b, &e.Content) }); err != nil {
				return fmt.Errorf("storage: read edit %s/%d: %w", conv, seq, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
