package conformance

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/mqim/mqim/internal/mqttwire"
)

// ParsePayload turns the catalogue's payload notation into bytes.
//
// Tokens are separated by spaces:
//   - plain hex bytes ("82", "746F70");
//   - iN: one unsigned byte, decimal N;
//   - HN, kN, mN, sN: two bytes big-endian (general, keepalive, packet id,
//     string length);
//   - LN: four bytes big-endian;
//   - vN, rN: an MQTT variable byte integer of N (general, remaining length);
//     values of 2^28 and above are encoded with five or more bytes on purpose,
//     because the catalogue uses them to test malformed lengths;
//   - 'text': the UTF-8 bytes of text. A quoted string may contain spaces, so
//     tokens are joined with single spaces until one ends with a quote.
//
// Empty tokens (double spaces) are ignored, as in Mosquitto's harness.
func ParsePayload(s string) ([]byte, error) {
	var out []byte
	parts := strings.Split(s, " ")
	for i := 0; i < len(parts); i++ {
		tok := parts[i]
		if tok == "" {
			continue
		}
		switch tok[0] {
		case '\'':
			text := tok[1:]
			// A lone "'" opens a string that starts with a space, so it needs
			// at least one more token before it can close.
			for (text == "" || !strings.HasSuffix(text, "'")) && i+1 < len(parts) {
				i++
				text += " " + parts[i]
			}
			if !strings.HasSuffix(text, "'") {
				return nil, fmt.Errorf("payload %q: unterminated string", s)
			}
			out = append(out, text[:len(text)-1]...)
		case 'i':
			n, err := parseUint(tok, 8)
			if err != nil {
				return nil, fmt.Errorf("payload %q: %w", s, err)
			}
			out = append(out, byte(n))
		case 'H', 'k', 'm', 's':
			n, err := parseUint(tok, 16)
			if err != nil {
				return nil, fmt.Errorf("payload %q: %w", s, err)
			}
			out = binary.BigEndian.AppendUint16(out, uint16(n))
		case 'L':
			n, err := parseUint(tok, 32)
			if err != nil {
				return nil, fmt.Errorf("payload %q: %w", s, err)
			}
			out = binary.BigEndian.AppendUint32(out, uint32(n))
		case 'v', 'r':
			n, err := parseUint(tok, 64)
			if err != nil {
				return nil, fmt.Errorf("payload %q: %w", s, err)
			}
			out = mqttwire.AppendVarint(out, n)
		default:
			b, err := hex.DecodeString(tok)
			if err != nil {
				return nil, fmt.Errorf("payload %q: bad hex token %q", s, tok)
			}
			out = append(out, b...)
		}
	}
	return out, nil
}

// parseUint parses the decimal number after a token's one-letter prefix.
func parseUint(tok string, bits int) (uint64, error) {
	n, err := strconv.ParseUint(tok[1:], 10, bits)
	if err != nil {
		return 0, fmt.Errorf("bad %c token %q: %w", tok[0], tok, err)
	}
	return n, nil
}
