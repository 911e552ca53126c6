package mqttcheck

import "unicode/utf8"

// validUTF8 reports whether b is well-formed UTF-8 without U+0000
// [MQTT-1.5.4-1] [MQTT-1.5.4-2].
func validUTF8(b []byte) bool {
	for i, c := range b {
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return validRunes(b[i:], false)
		}
	}
	return true
}

// validUTF8Strict is validUTF8 that also refuses the control characters
// U+0001–U+001F and U+007F–U+009F and the Unicode non-characters, which
// MQTT says SHOULD NOT appear and a receiver MAY refuse [MQTT-1.5.4-3]
// (Mosquitto does, for topics, client ids and user names).
func validUTF8Strict(b []byte) bool {
	for i, c := range b {
		if c < 0x20 || c == 0x7F {
			return false
		}
		if c >= utf8.RuneSelf {
			return validRunes(b[i:], true)
		}
	}
	return true
}

func validRunes(b []byte, strict bool) bool {
	for len(b) > 0 {
		c, size := utf8.DecodeRune(b)
		switch {
		case c == utf8.RuneError && size <= 1, c == 0:
			return false
		case strict && (c < 0x20 || (c >= 0x7F && c <= 0x9F) ||
			(c >= 0xFDD0 && c <= 0xFDEF) || c&0xFFFE == 0xFFFE):
			return false
		}
		b = b[size:]
	}
	return true
}

// validTopicName reports whether t is a topic name a client may publish
// to: not empty, no wildcards [MQTT-3.3.2-2], UTF-8 as validUTF8Strict.
// It is on the PUBLISH path: one table lookup per ASCII byte.
func validTopicName(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	for i, c := range t {
		switch topicByte[c] {
		case tbBad:
			return false
		case tbMulti:
			return validRunes(t[i:], true)
		}
	}
	return true
}

// Classes of a topic name's bytes.
const (
	tbOK    = 0
	tbBad   = 1 // control character or wildcard
	tbMulti = 2 // start or continuation of a multi-byte sequence
)

var topicByte = func() (t [256]byte) {
	for c := range t {
		switch {
		case c < 0x20 || c == 0x7F || c == '+' || c == '#':
			t[c] = tbBad
		case c >= utf8.RuneSelf:
			t[c] = tbMulti
		}
	}
	return t
}()

// validFilter reports whether f is a valid topic filter (MQTT 5 §4.7):
// not empty, wildcards only as whole levels and # last, a shared
// subscription with a share name and a filter.
func validFilter(f []byte) bool {
	if len(f) == 0 || !validUTF8Strict(f) {
		return false
	}
	for i, c := range f {
		switch c {
		case '+':
			if (i > 0 && f[i-1] != '/') || (i+1 < len(f) && f[i+1] != '/') {
				return false
			}
		case '#':
			if (i > 0 && f[i-1] != '/') || i != len(f)-1 {
				return false
			}
		}
	}
	if isShared(f) {
		rest := f[len(sharePrefix):]
		j := 0
		for j < len(rest) && rest[j] != '/' {
			if rest[j] == '+' || rest[j] == '#' {
				return false
			}
			j++
		}
		if j == 0 || j >= len(rest)-1 { // no share name, or no filter
			return false
		}
	}
	return true
}

const sharePrefix = "$share/"

func isShared(f []byte) bool {
	return len(f) >= len(sharePrefix) && string(f[:len(sharePrefix)]) == sharePrefix
}
