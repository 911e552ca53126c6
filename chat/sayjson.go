package chat

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The say hot path without reflection: parseSayFast reads a say payload in
// one pass, and the append encoders write the events of a say.
//
// parseSayFast accepts only a strict subset of JSON: member names exactly
// as tagged, plain ASCII and unescaped, each at most once; unknown members
// only with a scalar value; a string body. Anything else, and every error,
// goes to parseSaySlow, so that encoding/json's quirks (member names
// matched case-insensitively, the last duplicate wins, string-wrapped
// payloads) and every error message stay exactly as they were.
// sayjson_test.go fuzzes the two against each other.
//
// A typed decode cannot replace the scanner as it is: decoded into
// structs, a repeated "content", "to" or "push" merges into the first
// where parseSaySlow keeps the last one whole, and a null leaves a plain
// field as it was, so the objects must be taken raw and decoded again
// and every field must be a pointer. Done that way (issue #10: medians of
// 6 interleaved runs on 2 shared cores, BenchmarkParseSay plain/full),
// this scanner takes 0.44/1.03 µs and 1/5 allocations, encoding/json
// 6.7/7.5 µs and 15/25, github.com/segmentio/encoding v0.5.4 1.18/1.75
// µs and 5/10. The latter is within noise of the scanner over
// BenchmarkServiceSay, but it also needs a guard for encoding/json's
// nesting limit, which it lacks, and would bring assembly and unsafe
// code into chat, which imports only the standard library.

// parseSayFast returns the message of payload and true when payload is in
// the subset and valid; false otherwise, with no error of its own.
func parseSayFast(payload []byte, maxBodyLen int) (m SayMessage, ok bool) {
	s := sayScanner{b: payload}
	s.ws()
	var seen uint8
	ok = s.object(func(name []byte) (ok bool) {
		switch string(name) {
		case "content":
			ok = once(&seen, 1) && s.content(&m.Content, maxBodyLen)
		case "ack":
			ok = once(&seen, 2)
			if ok && !s.null() {
				var n int64
				n, ok = s.jsonInt()
				m.Ack = &n
			}
		case "remark":
			ok = once(&seen, 4)
			if ok && !s.null() {
				m.Remark, ok = s.str()
				ok = ok && len(m.Remark) <= maxBodyLen
			}
		case "to":
			ok = once(&seen, 8) && (s.null() || s.to(&m))
		case "push":
			ok = once(&seen, 16) && (s.null() || s.push(&m.Push))
		default:
			ok = s.unknown(name, "content", "ack", "remark", "to", "push")
		}
		return ok
	})
	s.ws()
	return m, ok && seen&1 != 0 && s.i == len(s.b)
}

// content reads the content object: media an integer, body a string that
// is not empty and at most maxBodyLen bytes.
func (s *sayScanner) content(c *Content, maxBodyLen int) bool {
	var seen uint8
	ok := s.object(func(name []byte) (ok bool) {
		switch string(name) {
		case "media":
			ok = once(&seen, 1)
			if ok && !s.null() {
				var n int64
				n, ok = s.jsonInt()
				ok = ok && n >= math.MinInt32 && n <= math.MaxInt32
				c.Media = int(n)
			}
		case "body":
			ok = once(&seen, 2)
			if ok {
				c.Body, ok = s.str()
			}
		default:
			ok = s.unknown(name, "media", "body")
		}
		return ok
	})
	return ok && c.Body != "" && len(c.Body) <= maxBodyLen
}

// to reads the to object into m.ToID and m.ToType.
func (s *sayScanner) to(m *SayMessage) bool {
	var seen uint8
	return s.object(func(name []byte) (ok bool) {
		switch string(name) {
		case "id":
			ok = once(&seen, 1)
			if ok && !s.null() {
				var id string
				id, ok = s.str()
				m.ToID = &id
			}
		case "type":
			ok = once(&seen, 2)
			if ok && !s.null() {
				var n int64
				n, ok = s.jsonInt()
				ok = ok && n >= math.MinInt32 && n <= math.MaxInt32
				t := int(n)
				m.ToType = &t
			}
		default:
			ok = s.unknown(name, "id", "type")
		}
		return ok
	})
}

// push reads a push object as json.Unmarshal into PushSettings would:
// null leaves a field as it is.
func (s *sayScanner) push(pp **PushSettings) bool {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	p := new(PushSettings)
	*pp = p
	var seen uint8
	return s.object(func(name []byte) (ok bool) {
		var dst *string
		switch string(name) {
		case "enable":
			ok = once(&seen, 1)
			if ok && !s.null() {
				var v bool
				v, ok = s.bool()
				p.Enable = &v
			}
		case "sound":
			ok, dst = once(&seen, 2), &p.Sound
		case "prefix":
			ok, dst = once(&seen, 4), &p.Prefix
		case "suffix":
			ok, dst = once(&seen, 8), &p.Suffix
		case "overwrite":
			ok, dst = once(&seen, 16), &p.Overwrite
		case "badge":
			ok = once(&seen, 32)
			if ok && !s.null() {
				var n int64
				n, ok = s.int()
				v := int(n)
				ok = ok && int64(v) == n
				p.Badge = &v
			}
		case "contentAvailable":
			ok = once(&seen, 64)
			if ok && !s.null() {
				p.ContentAvailable, ok = s.bool()
			}
		default:
			ok = s.unknown(name, "enable", "sound", "prefix", "suffix", "overwrite", "badge", "contentAvailable")
		}
		if ok && dst != nil && !s.null() {
			*dst, ok = s.str()
		}
		return ok
	})
}

// object reads an object, calling member with each member's name and the
// scanner on its value; member reports whether it read a valid value.
func (s *sayScanner) object(member func(name []byte) bool) bool {
	if !s.open() {
		return false
	}
	for first := true; ; first = false {
		name, done, ok := s.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		if !member(name) {
			return false
		}
	}
}

// once reports whether bit is not yet in *seen, and adds it: a duplicate
// member is left to encoding/json (the last one wins).
func once(seen *uint8, bit uint8) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// sayScanner reads JSON from b at i. Its methods return false for input
// outside the subset as well as for invalid input; they never say why.
type sayScanner struct {
	b []byte
	i int
}

// ws skips JSON white space (not bytes.TrimSpace's: \v, \f and U+0085 are
// left to the slow path).
func (s *sayScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// open reads the '{' of an object.
func (s *sayScanner) open() bool {
	if s.i < len(s.b) && s.b[s.i] == '{' {
		s.i++
		return true
	}
	return false
}

// member reads up to the value of the next member of an object and returns
// its name; done is true at the closing '}'. first tells whether a member
// has been read yet (a ',' must come before any other). Names are plain
// ASCII without escapes, so that they match a tag only when they are equal
// to it.
func (s *sayScanner) member(first bool) (name []byte, done, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return nil, false, false
	}
	switch c := s.b[s.i]; {
	case c == '}':
		s.i++
		return nil, true, true
	case !first:
		if c != ',' {
			return nil, false, false
		}
		s.i++
		s.ws()
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			name = s.b[start:j]
			s.i = j + 1
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return nil, false, false
			}
			s.i++
			s.ws()
			return name, false, s.i < len(s.b)
		case c < ' ' || c == '\\' || c >= utf8.RuneSelf:
			return nil, false, false
		}
	}
	return nil, false, false
}

// unknown skips the scalar value of a member that is none of known.
// encoding/json matches names case-insensitively: a name equal to a known
// one but for case is not unknown to it, and is left to the slow path.
func (s *sayScanner) unknown(name []byte, known ...string) bool {
	for _, k := range known {
		if asciiEqualFold(name, k) {
			return false
		}
	}
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, _, ok := s.strRaw()
		return ok
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return false
}

func asciiEqualFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// lit reads the literal word.
func (s *sayScanner) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// null reads a null, if there is one.
func (s *sayScanner) null() bool { return s.lit("null") }

func (s *sayScanner) bool() (v, ok bool) {
	if s.lit("true") {
		return true, true
	}
	return false, s.lit("false")
}

// number reads a JSON number.
func (s *sayScanner) number() bool {
	b, j := s.b, s.i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && '1' <= b[j] && b[j] <= '9':
		j = skipDigits(b, j)
	default:
		return false
	}
	if j < len(b) && b[j] == '.' {
		k := skipDigits(b, j+1)
		if k == j+1 {
			return false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := skipDigits(b, j)
		if k == j {
			return false
		}
		j = k
	}
	s.i = j
	return true
}

func skipDigits(b []byte, j int) int {
	for j < len(b) && '0' <= b[j] && b[j] <= '9' {
		j++
	}
	return j
}

// int reads an integer literal of at most 18 digits, which cannot
// overflow. Fractions, exponents and longer numbers, which jsonInt reads
// through float64, are left to the slow path.
func (s *sayScanner) int() (int64, bool) {
	b, j := s.b, s.i
	neg := j < len(b) && b[j] == '-'
	if neg {
		j++
	}
	start := j
	var n int64
	for ; j < len(b) && '0' <= b[j] && b[j] <= '9'; j++ {
		n = n*10 + int64(b[j]-'0')
	}
	if d := j - start; d == 0 || d > 18 || d > 1 && b[start] == '0' {
		return 0, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, false
	}
	s.i = j
	if neg {
		n = -n
	}
	return n, true
}

// jsonInt reads an integer as jsonInt does: an integer literal, or a
// string that strconv.ParseInt reads.
func (s *sayScanner) jsonInt() (int64, bool) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, ok := s.str()
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return s.int()
}

// str reads a string and decodes it as json.Unmarshal does.
func (s *sayScanner) str() (string, bool) {
	raw, esc, high, ok := s.strRaw()
	if !ok {
		return "", false
	}
	if !esc && (!high || utf8.Valid(raw)) {
		return string(raw), true
	}
	return unquote(raw), true
}

// strRaw reads a string and returns the bytes between its quotes, whether
// they hold escapes and whether they hold bytes above ASCII. Escapes are
// checked as the encoding/json scanner does.
func (s *sayScanner) strRaw() (raw []byte, esc, high, ok bool) {
	b := s.b
	if s.i >= len(b) || b[s.i] != '"' {
		return nil, false, false, false
	}
	start := s.i + 1
	for j := start; j < len(b); {
		switch c := b[j]; {
		case c == '"':
			s.i = j + 1
			return b[start:j], esc, high, true
		case c < ' ':
			return nil, false, false, false
		case c == '\\':
			esc = true
			if j+1 >= len(b) {
				return nil, false, false, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if hex4(b[j+2:]) < 0 {
					return nil, false, false, false
				}
				j += 6
			default:
				return nil, false, false, false
			}
		case c >= utf8.RuneSelf:
			high = true
			j++
		default:
			j++
		}
	}
	return nil, false, false, false
}

// hex4 returns the value of the 4 hex digits at the start of b, or -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquote decodes the checked bytes of a string as encoding/json does: an
// invalid byte or a lone surrogate becomes U+FFFD.
func unquote(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw))
	for r := 0; r < len(raw); {
		switch c := raw[r]; {
		case c == '\\':
			switch e := raw[r+1]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				rr := hex4(raw[r+2:])
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := rune(-1)
					if bytes.HasPrefix(raw[r:], []byte(`\u`)) {
						rr1 = hex4(raw[r+2:])
					}
					if dec := utf16.DecodeRune(rr, rr1); dec != utf8.RuneError {
						r += 6
						b.WriteRune(dec)
						continue
					}
					rr = utf8.RuneError
				}
				b.WriteRune(rr)
				continue
			default: // '"', '\\', '/'
				b.WriteByte(e)
			}
			r += 2
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			r++
		default:
			rr, size := utf8.DecodeRune(raw[r:])
			b.WriteRune(rr)
			r += size
		}
	}
	return b.String()
}

// appendMessageEvent appends json.Marshal(e) to dst.
func appendMessageEvent(dst []byte, e *MessageEvent) []byte {
	dst = append(dst, `{"from":`...)
	dst = appendPeer(dst, &e.From)
	dst = append(dst, `,"to":`...)
	dst = appendPeer(dst, &e.To)
	return appendEventTail(dst, &e.Content, e.TS, e.Remark, e.ID, e.Seq)
}

// appendYourselfEvent appends json.Marshal(e) to dst.
func appendYourselfEvent(dst []byte, e *YourselfEvent) []byte {
	dst = append(dst, `{"to":`...)
	dst = appendPeer(dst, &e.To)
	return appendEventTail(dst, &e.Content, e.TS, e.Remark, e.ID, e.Seq)
}

// appendAckEvent appends json.Marshal(e) to dst.
func appendAckEvent(dst []byte, e *AckEvent) []byte {
	dst = append(dst, `{"ack":`...)
	dst = strconv.AppendInt(dst, e.Ack, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, e.TS, 10)
	return append(dst, '}')
}

// appendEventTail appends the members that follow the peers in
// MessageEvent and YourselfEvent, and the closing '}'.
func appendEventTail(dst []byte, c *Content, ts int64, remark, id string, seq uint64) []byte {
	dst = append(dst, `,"content":{"media":`...)
	dst = strconv.AppendInt(dst, int64(c.Media), 10)
	dst = append(dst, `,"body":`...)
	dst = appendJSONString(dst, c.Body)
	dst = append(dst, `},"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	if remark != "" {
		dst = append(dst, `,"remark":`...)
		dst = appendJSONString(dst, remark)
	}
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = appendJSONString(dst, id)
	}
	if seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, seq, 10)
	}
	return append(dst, '}')
}

func appendPeer(dst []byte, p *Peer) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, p.ID)
	dst = append(dst, `,"type":`...)
	dst = strconv.AppendInt(dst, int64(p.Type), 10)
	if p.GID != "" {
		dst = append(dst, `,"gid":`...)
		dst = appendJSONString(dst, p.GID)
	}
	return append(dst, '}')
}

// jsonSafe tells the ASCII bytes json.Marshal writes as they are: not
// control characters, '"', '\\', nor (HTML escaping) '<', '>' and '&'.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune("\"\\<>&", c)
	}
	return t
}()

// appendJSONString appends s quoted as json.Marshal does (encoding/json's
// appendString with HTML escaping): invalid UTF-8 becomes \ufffd, and
// U+2028 and U+2029 are escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
