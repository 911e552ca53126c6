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
// docs/storage.md, "Conversations and read cursors"). Each extra Badger
// entry in the append's commit costs the say path several microseconds
// (WAL, memtable, compaction), so the design keeps them rare:
//
//   - The cursor q␀<conv>, rewritten by every append anyway, also holds
//     the TS of the conversation's activity entries and, for a friend,
//     stranger or passenger conversation, each party's last own Seq: one's
//     own messages are read without a write of one's read cursor.
//   - ca␀<uid>␀<-ts:8><conv>: one entry per user party of a friend,
//     stranger or passenger conversation (negated TS: a forward scan is
//     newest first). It lags: an append moves it (delete and set, for both
//     parties) only when its TS is activityLag past the entry's, so the
//     true latest TS lies in [entry, entry+activityLag) and the list reads
//     the cursor to sort exactly. A burst moves them once per activityLag.
//   - Groups have no per-member entry (a message to 50 members would cost
//     100 writes): the list reads the user's groups from ug␀<uid>␀ and each
//     group's cursor. The speaker's read cursor is one entry per message.
//   - cr␀<reader>␀<conv>: a read cursor moved by MarkRead (and by a group
//     message of the reader).
//   - n␀<conv>␀<seq/64:8>: the TS of every 64th record, so that "Seq >
//     after" is a seek to at most 63 records before the first one wanted.

const (
	seqBlock    = 64
	activityLag = 100 // ms

	// cursorFormat starts a q␀<conv> value written with convSync: uvarint
	// Seq, varint TS, then uvarint TS−activity TS+1 and Seq−own+1 of each
	// party (0: none), about 12 bytes. The older 16-byte value starts with
	// the high byte of Seq, 0.
	cursorFormat = 1
	noIndex      = -1 << 63
)

// convSync is the conversation index state kept with the cursor.
type convSync struct {
	idxTS int64     // TS of the ca␀ entries; noIndex when none
	own   [2]uint64 // last own Seq of the parties (Conv.Sides order)
}

func decodeConvSync(b []byte) convSync {
	_, _, cs, ok := decodeCursorSync(b)
	if !ok {
		return convSync{idxTS: noIndex}
	}
	return cs
}

// encodeCursorSync returns the q␀<conv> value of (seq, ts) and cs.
func encodeCursorSync(seq uint64, ts int64, cs convSync) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64)
	b = append(b, cursorFormat)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendVarint(b, ts)
	var d uint64 // 0: no index
	if cs.idxTS != noIndex {
		d = uint64(ts-cs.idxTS) + 1
	}
	b = binary.AppendUvarint(b, d)
	for _, own := range cs.own {
		var d uint64 // 0: no own message
		if own > 0 {
			d = seq - own + 1
		}
		b = binary.AppendUvarint(b, d)
	}
	return b
}

// decodeCursorSync decodes a value of encodeCursorSync.
func decodeCursorSync(b []byte) (seq uint64, ts int64, cs convSync, ok bool) {
	cs.idxTS = noIndex
	if len(b) == 0 || b[0] != cursorFormat {
		return 0, 0, cs, false
	}
	b = b[1:]
	var v [5]uint64
	for i := range v {
		var n int
		if i == 1 {
			var x int64
			x, n = binary.Varint(b)
			v[i] = uint64(x)
		} else {
			v[i], n = binary.Uvarint(b)
		}
		if n <= 0 {
			return 0, 0, convSync{idxTS: noIndex}, false
		}
		b = b[n:]
	}
	seq, ts = v[0], int64(v[1])
	if v[2] > 0 {
		cs.idxTS = ts - int64(v[2]-1)
	}
	for i := range cs.own {
		if v[3+i] > 0 {
			cs.own[i] = seq - (v[3+i] - 1)
		}
	}
	return seq, ts, cs, true
}

// syncWrite is one extra write of an append.
type syncWrite struct {
	key       []byte
	val       []byte
	expiresAt uint64
	del       bool
}

// advance updates cs for the record (seq, ts) of rec.Conv and returns the
// new cursor value and the extra writes. The caller holds the
// conversation's mutex.
func (cs *convSync) advance(rec *chat.Record, seq uint64, ts int64, exp uint64) ([]byte, []syncWrite) {
	var ws []syncWrite
	speaker := rec.Speaker
	if rec.SpeakerKind == chat.KindPassenger {
		speaker = chat.ReaderKey(chat.Passenger(rec.Speaker))
	}
	if a, b, ok := rec.Conv.Sides(); ok {
		switch speaker {
		case a:
			cs.own[0] = seq
		case b:
			cs.own[1] = seq
		}
		if cs.idxTS == noIndex || ts >= cs.idxTS+activityLag {
			for _, uid := range [2]string{a, b} {
				if strings.HasPrefix(uid, "passenger:") || badPart(uid) {
					continue // passengers have no conversation list
				}
				if cs.idxTS != noIndex {
					ws = append(ws, syncWrite{key: activityKey(uid, cs.idxTS, rec.Conv), del: true})
				}
				ws = append(ws, syncWrite{key: activityKey(uid, ts, rec.Conv), expiresAt: exp})
			}
			cs.idxTS = ts
		}
	} else if speaker != "" && !badPart(speaker) {
		ws = append(ws, syncWrite{key: readCursorKey(speaker, rec.Conv), val: encodeUint64(seq)})
	}
	if seq%seqBlock == 0 {
		var v [8]byte
		putTS(v[:], ts)
		ws = append(ws, syncWrite{key: seqIndexKey(rec.Conv, seq/seqBlock), val: v[:], expiresAt: exp})
	}
	return encodeCursorSync(seq, ts, *cs), ws
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
	txn, err := db.readTxn()
	if err != nil {
		return nil, err
	}
	defer db.endRead(txn)
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

// getCursor reads q␀<conv>: the latest committed (Seq, TS), or zeros.
func getCursor(txn *badger.Txn, conv chat.Conv) (seq uint64, ts int64, err error) {
	seq, ts, _, err = getCursorSync(txn, conv)
	return seq, ts, err
}

// getCursorSync is getCursor with the index state.
func getCursorSync(txn *badger.Txn, conv chat.Conv) (seq uint64, ts int64, cs convSync, err error) {
	cs = decodeConvSync(nil)
	item, err := txn.Get(cursorKey(conv))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, 0, cs, nil
	}
	if err != nil {
		return 0, 0, cs, err
	}
	err = item.Value(func(b []byte) error {
		var ok bool
		if seq, ts, ok = decodeCursor(b); !ok {
			return fmt.Errorf("bad cursor of %d bytes", len(b))
		}
		cs = decodeConvSync(b)
		return nil
	})
	return seq, ts, cs, err
}

// ownSeq returns the last own Seq of reader in a two-party conv (0 for
// groups or a non-party).
func ownSeq(conv chat.Conv, cs convSync, reader string) uint64 {
	a, b, ok := conv.Sides()
	switch {
	case !ok:
		return 0
	case reader == a:
		return cs.own[0]
	case reader == b:
		return cs.own[1]
	}
	return 0
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
	txn, err := db.readTxn()
	if err != nil {
		return 0, 0, err
	}
	defer db.endRead(txn)
	seq, ts, err := getCursor(txn, conv)
	if err != nil {
		return 0, 0, fmt.Errorf("storage: read cursor of %q: %w", conv, err)
	}
	return seq, ts, nil
}

// MarkRead moves reader's cursor in conv forward to min(seq, latest Seq).
// The cursor is the larger of cr␀ and, in a two-party conversation, the
// reader's last own Seq. It runs as an Update that reads the keys an
// append writes, so a concurrent append makes it retry instead of moving
// the cursor back.
func (db *DB) MarkRead(ctx context.Context, reader string, conv chat.Conv, seq uint64) (cur uint64, moved bool, err error) {
	if badPart(reader) || badPart(string(conv)) {
		return 0, false, chat.Errorf(chat.CodeInvalid, "invalid reader or conversation")
	}
	err = db.Update(ctx, func(t chat.Tx) error {
		txn := t.(*tx).txn
		moved = false
		latest, _, cs, err := getCursorSync(txn, conv)
		if err != nil {
			return err
		}
		k := readCursorKey(reader, conv)
		if cur, err = getUint64(txn, k); err != nil {
			return err
		}
		cur = max(cur, ownSeq(conv, cs, reader))
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

// ReadCursors returns the read cursor of each reader in conv: its cr␀
// entry or, in a two-party conversation, its last own Seq if later.
func (db *DB) ReadCursors(ctx context.Context, conv chat.Conv, readers []string) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	txn, err := db.readTxn()
	if err != nil {
		return nil, err
	}
	defer db.endRead(txn)
	out := make([]uint64, len(readers))
	if badPart(string(conv)) {
		return out, nil
	}
	_, _, cs, err := getCursorSync(txn, conv)
	if err != nil {
		return nil, fmt.Errorf("storage: read cursor of %q: %w", conv, err)
	}
	for i, r := range readers {
		if badPart(r) {
			continue
		}
		v, err := getUint64(txn, readCursorKey(r, conv))
		if err != nil {
			return nil, fmt.Errorf("storage: read cursor of %s in %q: %w", r, conv, err)
		}
		out[i] = max(v, ownSeq(conv, cs, r))
	}
	return out, nil
}

// convHead is a candidate entry of a conversation list.
type convHead struct {
	conv chat.Conv
	seq  uint64
	ts   int64
	own  uint64 // the user's last own Seq (two-party conversations)
}

// Conversations returns the conversations of uid whose latest record is
// older than before, newest first, at most limit. It reads the ca␀
// entries down to activityLag below the limit-th conversation (one cursor
// each), one cursor per group of uid, and two more keys per returned
// conversation (read cursor, last record).
func (db *DB) Conversations(ctx context.Context, uid string, before int64, limit int) ([]chat.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []chat.Conversation{}
	if limit <= 0 || badPart(uid) {
		return out, nil
	}
	txn, err := db.readTxn()
	if err != nil {
		return nil, err
	}
	defer db.endRead(txn)

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
		out = append(out, chat.Conversation{Conv: h.conv, Seq: h.seq, Read: max(read, h.own), TS: h.ts, Last: &last})
	}
	return out, nil
}

// pairHeads returns the friend, stranger and passenger conversations of
// uid from its ca␀ entries, at least the limit newest ones. An entry lags
// its conversation by less than activityLag, so the scan goes on until
// limit conversations are newer than any entry not yet read could be.
func pairHeads(txn *badger.Txn, uid string, before int64, limit int) ([]convHead, error) {
	p := activityPrefix(uid)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
	defer it.Close()
	var out []convHead
	for it.Seek(activityKey(uid, before-1, "")); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) <= len(p)+8 {
			continue
		}
		e := -getTS(k[len(p) : len(p)+8])
		if len(out) >= limit && countFrom(out, e+activityLag) >= limit {
			break
		}
		conv := chat.Conv(k[len(p)+8:])
		seq, ts, cs, err := getCursorSync(txn, conv)
		if err != nil {
			return nil, err
		}
		// An entry not at the cursor's index TS is stale (an append whose
		// commit failed had moved the in-memory state on).
		if seq == 0 || ts >= before || cs.idxTS != e {
			continue
		}
		out = append(out, convHead{conv: conv, seq: seq, ts: ts, own: ownSeq(conv, cs, uid)})
	}
	return out, nil
}

// countFrom counts the heads with TS >= ts.
func countFrom(hs []convHead, ts int64) int {
	n := 0
	for _, h := range hs {
		if h.ts >= ts {
			n++
		}
	}
	return n
}

// groupHeads returns the groups of uid that have a record older than
// before: one cursor read per group.
func groupHeads(txn *badger.Txn, uid string, before int64) ([]convHead, error) {
	gids, err := (&tx{txn: txn}).MemberListIDsOf(chat.GroupList, uid)
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
