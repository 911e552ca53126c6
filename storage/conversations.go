package storage

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

// Conversation index, read cursors and the sparse seq index (chat.SyncStore;
// docs/storage.md, "Conversations and read cursors").
//
//   - ca␀<uid>␀<-ts:8><conv>: one entry per user party of a friend,
//     stranger or passenger conversation, at the TS of its latest record
//     (negated, so a forward scan is newest first). Each append moves the
//     entries of both parties: a delete at the old TS and a set at the new,
//     in the append's own commit, with the record's expiry (a conversation
//     whose last record expired leaves the list with it).
//   - Groups have no per-member entry: fanning out every message to 50
//     members would cost 100 writes. The list reads the user's groups from
//     ug␀<uid>␀ and the latest (Seq, TS) of each from its cursor q␀g:<gid>,
//     and merges them with the ca␀ entries.
//   - cr␀<reader>␀<conv>: the reader's read cursor. The append sets the
//     speaker's to the new Seq; MarkRead moves it forward.
//   - n␀<conv>␀<seq/64:8>: the TS of every 64th record, so that "Seq >
//     after" is a seek to at most 63 records before the first one wanted.

const seqBlock = 64

// syncWrite is one extra write of an append.
type syncWrite struct {
	key       []byte
	val       []byte
	expiresAt uint64
	del       bool
}

// activityPrefix returns "ca␀<uid>␀".
func activityPrefix(uid string) []byte { return prefix(tagActivity, uid) }

// activityKey returns the ca␀ entry of conv for uid at ts.
func activityKey(uid string, ts int64, conv chat.Conv) []byte {
	p := activityPrefix(uid)
	b := make([]byte, len(p)+8+len(conv))
	copy(b, p)
	putTS(b[len(p):], -ts)
	copy(b[len(p)+8:], conv)
	return b
}

func readCursorKey(reader string, conv chat.Conv) []byte {
	return key(tagReadCursor, reader, string(conv))
}

func seqIndexPrefix(conv chat.Conv) []byte { return prefix(tagSeqIndex, string(conv)) }

func seqIndexKey(conv chat.Conv, block uint64) []byte {
	b := binary.BigEndian.AppendUint64(seqIndexPrefix(conv), block)
	return b
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

func decodeUint64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// appendSyncWrites returns the index writes of the record (seq, ts) of
// rec.Conv; prevTS is the TS of the conversation's previous record, if
// hadPrev.
func appendSyncWrites(rec *chat.Record, seq uint64, ts, prevTS int64, hadPrev bool, exp uint64) []syncWrite {
	out := make([]syncWrite, 0, 6)
	if rec.Speaker != "" && !badPart(rec.Speaker) {
		reader := rec.Speaker
		if rec.SpeakerKind == chat.KindPassenger {
			reader = chat.ReaderKey(chat.Passenger(rec.Speaker))
		}
		out = append(out, syncWrite{key: readCursorKey(reader, rec.Conv), val: encodeUint64(seq)})
	}
	if a, b, ok := rec.Conv.Sides(); ok {
		for _, uid := range [2]string{a, b} {
			if strings.HasPrefix(uid, "passenger:") || badPart(uid) {
				continue // passengers have no conversation list
			}
			if hadPrev {
				out = append(out, syncWrite{key: activityKey(uid, prevTS, rec.Conv), del: true})
			}
			out = append(out, syncWrite{key: activityKey(uid, ts, rec.Conv), expiresAt: exp})
		}
	}
	if seq%seqBlock == 0 {
		var v [8]byte
		putTS(v[:], ts)
		out = append(out, syncWrite{key: seqIndexKey(rec.Conv, seq/seqBlock), val: v[:], expiresAt: exp})
	}
	return out
}

// addSyncWrites adds ws to txn.
func addSyncWrites(txn *badger.Txn, ws []syncWrite) error {
	for _, w := range ws {
		var err error
		if w.del {
			err = txn.Delete(w.key)
		} else {
			e := badger.NewEntry(w.key, w.val)
			e.ExpiresAt = w.expiresAt
			err = txn.SetEntry(e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteSeqIndex adds the deletion of conv's seq index to wb.
func deleteSeqIndex(txn *badger.Txn, wb *badger.WriteBatch, conv chat.Conv) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: seqIndexPrefix(conv)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
			return err
		}
	}
	return nil
}

// RecordsAfter returns at most limit records of conv with Seq > after and
// TS >= notBefore, oldest first.
//
// TS grows with Seq, so the record after+1 lies at or after the TS the
// seq index holds for its block: the scan starts there (or at notBefore,
// whichever is later) and skips fewer than 64 records. Without an index
// entry (a block whose records expired, or the first 63 records) it starts
// at notBefore.
func (db *DB) RecordsAfter(ctx context.Context, conv chat.Conv, after uint64, notBefore int64, limit int) ([]chat.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []chat.Record{}
	if limit <= 0 || after == ^uint64(0) || badPart(string(conv)) {
		return out, nil
	}
	if !db.gate.enter() {
		return nil, errClosed
	}
	defer db.gate.leave()

	txn := db.bdb.NewTransaction(false)
	defer txn.Discard()
	start := notBefore
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: seqIndexPrefix(conv)})
	it.Seek(seqIndexKey(conv, (after+1)/seqBlock))
	if it.Valid() {
		if err := it.Item().Value(func(b []byte) error {
			if len(b) == 8 {
				start = max(start, getTS(b))
			}
			return nil
		}); err != nil {
			it.Close()
			return nil, fmt.Errorf("storage: read seq index of %q: %w", conv, err)
		}
	}
	it.Close()

	p := recPrefix(conv)
	it = txn.NewIterator(badger.IteratorOptions{Prefix: p})
	defer it.Close()
	out = slices.Grow(out, min(limit, chat.MaxListLimit))
	for it.Seek(recKey(p, start, 0)); it.Valid() && len(out) < limit; it.Next() {
		item := it.Item()
		if len(item.Key()) != len(p)+recSuffixLen {
			continue
		}
		ts, seq, _ := parseRecKey(item.Key())
		if seq <= after || ts < notBefore {
			continue
		}
		rec, err := decodeRecord(item, conv, ts, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func decodeRecord(item *badger.Item, conv chat.Conv, ts int64, seq uint64) (chat.Record, error) {
	var v recordValue
	if err := item.Value(func(b []byte) error { return decodeRecordValue(b, &v) }); err != nil {
		return chat.Record{}, fmt.Errorf("storage: read record %s/%d: %w", conv, seq, err)
	}
	return chat.Record{
		Conv: conv, ID: v.ID, Seq: seq, Speaker: v.Speaker,
		Content: chat.Content{Media: v.Media, Body: v.Body}, Remark: v.Remark, TS: ts,
	}, nil
}

// getCursor reads q␀<conv>: the latest committed (Seq, TS), or zeros.
func getCursor(txn *badger.Txn, conv chat.Conv) (seq uint64, ts int64, err error) {
	item, err := txn.Get(cursorKey(conv))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	err = item.Value(func(b []byte) error {
		var ok bool
		if seq, ts, ok = decodeCursor(b); !ok {
			return fmt.Errorf("bad cursor of %d bytes", len(b))
		}
		return nil
	})
	return seq, ts, err
}

// getUint64 reads an 8-byte value; a missing key is 0.
func getUint64(txn *badger.Txn, k []byte) (uint64, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		var ok bool
		if v, ok = decodeUint64(b); !ok {
			return fmt.Errorf("bad value of %d bytes", len(b))
		}
		return nil
	})
	return v, err
}

// LatestSeq returns the latest committed (Seq, TS) of conv.
func (db *DB) LatestSeq(ctx context.Context, conv chat.Conv) (uint64, int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if badPart(string(conv)) {
		return 0, 0, nil
	}
	if !db.gate.enter() {
		return 0, 0, errClosed
	}
	defer db.gate.leave()
	txn := db.bdb.NewTransaction(false)
	defer txn.Discard()
	seq, ts, err := getCursor(txn, conv)
	if err != nil {
		return 0, 0, fmt.Errorf("storage: read cursor of %q: %w", conv, err)
	}
	return seq, ts, nil
}

// MarkRead moves reader's cursor in conv forward to min(seq, latest Seq).
// It runs as an Update, so a concurrent append that sets the same cursor
// (the speaker's) makes it retry instead of moving the cursor back.
func (db *DB) MarkRead(ctx context.Context, reader string, conv chat.Conv, seq uint64) (cur uint64, moved bool, err error) {
	if badPart(reader) || badPart(string(conv)) {
		return 0, false, chat.Errorf(chat.CodeInvalid, "invalid reader or conversation")
	}
	err = db.Update(ctx, func(t chat.Tx) error {
		txn := t.(*tx).txn
		moved = false
		latest, _, err := getCursor(txn, conv)
		if err != nil {
			return err
		}
		k := readCursorKey(reader, conv)
		if cur, err = getUint64(txn, k); err != nil {
			return err
		}
		target := min(seq, latest)
		if target <= cur {
			return nil
		}
		cur, moved = target, true
		return txn.Set(k, encodeUint64(target))
	})
	if err != nil {
		return 0, false, fmt.Errorf("storage: mark read: %w", err)
	}
	return cur, moved, nil
}

// ReadCursors returns the read cursor of each reader in conv.
func (db *DB) ReadCursors(ctx context.Context, conv chat.Conv, readers []string) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !db.gate.enter() {
		return nil, errClosed
	}
	defer db.gate.leave()
	txn := db.bdb.NewTransaction(false)
	defer txn.Discard()
	out := make([]uint64, len(readers))
	for i, r := range readers {
		if badPart(r) {
			continue
		}
		v, err := getUint64(txn, readCursorKey(r, conv))
		if err != nil {
			return nil, fmt.Errorf("storage: read cursor of %s in %q: %w", r, conv, err)
		}
		out[i] = v
	}
	return out, nil
}

// convHead is a candidate entry of a conversation list.
type convHead struct {
	conv chat.Conv
	seq  uint64
	ts   int64
}

// Conversations returns the conversations of uid whose latest record is
// older than before, newest first, at most limit. It reads at most limit
// ca␀ entries, one cursor per group of uid, and then three keys per
// returned conversation (cursor, read cursor, last record).
func (db *DB) Conversations(ctx context.Context, uid string, before int64, limit int) ([]chat.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []chat.Conversation{}
	if limit <= 0 || badPart(uid) {
		return out, nil
	}
	if !db.gate.enter() {
		return nil, errClosed
	}
	defer db.gate.leave()
	txn := db.bdb.NewTransaction(false)
	defer txn.Discard()

	heads, err := pairHeads(txn, uid, before, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: conversations of %s: %w", uid, err)
	}
	groups, err := groupHeads(txn, uid, before)
	if err != nil {
		return nil, fmt.Errorf("storage: conversations of %s: %w", uid, err)
	}
	heads = append(heads, groups...)
	slices.SortFunc(heads, func(a, b convHead) int {
		if c := cmp.Compare(b.ts, a.ts); c != 0 {
			return c
		}
		return cmp.Compare(a.conv, b.conv)
	})
	for _, h := range heads {
		if len(out) == limit {
			break
		}
		item, err := txn.Get(recKey(recPrefix(h.conv), h.ts, h.seq))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue // expired or cleared: not listed
		}
		if err != nil {
			return nil, fmt.Errorf("storage: conversations of %s: %w", uid, err)
		}
		last, err := decodeRecord(item, h.conv, h.ts, h.seq)
		if err != nil {
			return nil, err
		}
		read, err := getUint64(txn, readCursorKey(uid, h.conv))
		if err != nil {
			return nil, fmt.Errorf("storage: conversations of %s: %w", uid, err)
		}
		out = append(out, chat.Conversation{Conv: h.conv, Seq: h.seq, Read: read, TS: h.ts, Last: &last})
	}
	return out, nil
}

// pairHeads returns up to limit friend, stranger and passenger
// conversations of uid from its ca␀ entries, newest first.
func pairHeads(txn *badger.Txn, uid string, before int64, limit int) ([]convHead, error) {
	p := activityPrefix(uid)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
	defer it.Close()
	var out []convHead
	for it.Seek(activityKey(uid, before-1, "")); it.Valid() && len(out) < limit; it.Next() {
		k := it.Item().Key()
		if len(k) <= len(p)+8 {
			continue
		}
		conv := chat.Conv(k[len(p)+8:])
		seq, ts, err := getCursor(txn, conv)
		if err != nil {
			return nil, err
		}
		// An entry not at the cursor's TS is stale: left by an append
		// whose commit failed after the in-memory cursor had moved on.
		if seq == 0 || ts >= before || ts != -getTS(k[len(p):len(p)+8]) {
			continue
		}
		out = append(out, convHead{conv: conv, seq: seq, ts: ts})
	}
	return out, nil
}

// groupHeads returns the groups of uid that have a record older than
// before: one cursor read per group.
func groupHeads(txn *badger.Txn, uid string, before int64) ([]convHead, error) {
	gids, err := (&tx{txn: txn}).GroupIDsOf(uid)
	if err != nil {
		return nil, err
	}
	var out []convHead
	for _, gid := range gids {
		conv := chat.GroupConv(gid)
		seq, ts, err := getCursor(txn, conv)
		if err != nil {
			return nil, err
		}
		if seq > 0 && ts < before {
			out = append(out, convHead{conv: conv, seq: seq, ts: ts})
		}
	}
	return out, nil
}
