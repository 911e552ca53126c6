package storage

import (
	"encoding/binary"
	"strings"

	"github.com/mqim/mqim/chat"
)

// Key layout (docs/storage.md has the full table). A key is a short tag, NUL,
// then the parts of the key separated by NUL. Ids are [A-Za-z0-9_-] and
// conversations add ':' and '|', so NUL never occurs inside a part and a
// prefix "tag␀part␀" matches exactly one value of part: "g:ab" never matches
// the keys of "g:abc". Put methods refuse parts that contain NUL.
const (
	tagUser       = "u"  // u␀<uid>                      → UserRecord
	tagFriend     = "f"  // f␀<uid>␀<other>              → Friendship (both directions)
	tagGroup      = "g"  // g␀<gid>                      → Group
	tagUserGroup  = "ug" // ug␀<uid>␀<gid>               → empty (owner ∪ members)
	tagRoom       = "r"  // r␀<rid>                      → Room
	tagUserRoom   = "ur" // ur␀<uid>␀<rid>               → empty
	tagPassenger  = "p"  // p␀<pid>                      → PassengerRecord
	tagStranger   = "s"  // s␀<uid>␀<other>              → Stranger
	tagRecord     = "m"  // m␀<conv>␀<ts:8><seq:8>       → recordValue
	tagConvCursor = "q"  // q␀<conv>                     → 1, varints (conversations.go); older: <seq:8><ts:8>
	tagActivity   = "ca" // ca␀<uid>␀<-ts:8><conv>       → empty (conversations.go)
	tagReadCursor = "cr" // cr␀<reader>␀<conv>           → <seq:8>
	tagSeqIndex   = "n"  // n␀<conv>␀<seq/64:8>          → <ts:8>
	tagEdit       = "mv" // mv␀<conv>␀<seq:8><ts:8>      → editValue (earlier version)
	tagAccount    = "a"  // a␀<kind>:<id>                → Account (token revocation, ban)
)

// listTags are the tags of each kind of member list: its objects and its
// user index. Groups and rooms share all code but keep their own keys.
var listTags = map[chat.ListKind]struct{ list, index string }{
	chat.GroupList: {tagGroup, tagUserGroup},
	chat.RoomList:  {tagRoom, tagUserRoom},
}

const sep = '\x00'

// key joins a tag and parts with NUL.
func key(tag string, parts ...string) []byte {
	n := len(tag)
	for _, p := range parts {
		n += 1 + len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, tag...)
	for _, p := range parts {
		b = append(b, sep)
		b = append(b, p...)
	}
	return b
}

// prefix returns key(tag, parts...) followed by NUL: the prefix of every key
// whose leading parts are exactly parts.
func prefix(tag string, parts ...string) []byte {
	return append(key(tag, parts...), sep)
}

// lastPart returns what follows the last NUL of k (the trailing id of an
// index key).
func lastPart(k []byte) string {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == sep {
			return string(k[i+1:])
		}
	}
	return string(k)
}

// badPart reports whether s cannot be a key part: empty, or containing NUL.
func badPart(s string) bool { return s == "" || strings.IndexByte(s, sep) >= 0 }

// checkParts returns a CodeInvalid error when one of the named parts cannot
// be stored. Domain validation (chat.ValidID) is stricter; this check only
// protects the key layout from a caller that skipped it.
func checkParts(what string, parts ...string) error {
	for _, p := range parts {
		if badPart(p) {
			return chat.Errorf(chat.CodeInvalid, "invalid %s id %q", what, p)
		}
	}
	return nil
}

// Record keys.

const recSuffixLen = 16 // ts:8 seq:8

// recPrefix returns "m␀<conv>␀", the prefix of every record of conv.
func recPrefix(conv chat.Conv) []byte { return prefix(tagRecord, string(conv)) }

// recKey returns the key of the record (ts, seq) of the conversation whose
// record prefix is p.
func recKey(p []byte, ts int64, seq uint64) []byte {
	b := make([]byte, len(p)+recSuffixLen)
	copy(b, p)
	putTS(b[len(p):], ts)
	binary.BigEndian.PutUint64(b[len(p)+8:], seq)
	return b
}

// parseRecKey returns the TS and Seq at the end of a record key.
func parseRecKey(k []byte) (ts int64, seq uint64, ok bool) {
	if len(k) < recSuffixLen {
		return 0, 0, false
	}
	s := k[len(k)-recSuffixLen:]
	return getTS(s), binary.BigEndian.Uint64(s[8:]), true
}

// putTS writes ts big-endian with the sign bit flipped, so that byte order
// equals numeric order for negative values too.
func putTS(b []byte, ts int64) { binary.BigEndian.PutUint64(b, uint64(ts)^(1<<63)) }

func getTS(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// cursorKey returns "q␀<conv>", the key of the conversation's last (Seq, TS).
func cursorKey(conv chat.Conv) []byte { return key(tagConvCursor, string(conv)) }

func encodeCursor(seq uint64, ts int64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, seq)
	binary.BigEndian.PutUint64(b[8:], uint64(ts))
	return b
}

// decodeCursor reads a cursor value: 16 bytes, or what the append writes
// now (conversations.go, encodeCursorSync).
func decodeCursor(b []byte) (seq uint64, ts int64, ok bool) {
	if len(b) > 0 && b[0] == cursorFormat {
		seq, ts, _, ok = decodeCursorSync(b)
		return seq, ts, ok
	}
	if len(b) != 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:])), true
}
