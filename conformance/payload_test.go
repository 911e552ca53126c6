package conformance

import (
	"bytes"
	"testing"
)

func TestParsePayload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []byte
	}{
		{"HexByte", "82", []byte{0x82}},
		{"HexRun", "746F70", []byte("top")},
		{"HexLowerCase", "e0 0a", []byte{0xE0, 0x0A}},
		{"Empty", "", nil},
		{"DoubleSpace", "82  00", []byte{0x82, 0x00}},
		{"Byte", "i0 i255", []byte{0, 255}},
		{"TwoBytes", "H1 k60 m1234 s5", []byte{0, 1, 0, 60, 0x04, 0xD2, 0, 5}},
		{"TwoBytesMax", "H65535", []byte{0xFF, 0xFF}},
		{"FourBytes", "L1 L4294967295", []byte{0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF}},
		{"Varint0", "v0", []byte{0}},
		{"Varint127", "r127", []byte{0x7F}},
		{"Varint128", "r128", []byte{0x80, 0x01}},
		{"Varint16383", "v16383", []byte{0xFF, 0x7F}},
		{"Varint16384", "v16384", []byte{0x80, 0x80, 0x01}},
		{"VarintMax", "r268435455", []byte{0xFF, 0xFF, 0xFF, 0x7F}},
		// Out of range on purpose: five bytes, as the catalogue wants.
		{"VarintTooLarge", "r268435456", []byte{0x80, 0x80, 0x80, 0x80, 0x01}},
		{"String", "'MQTT'", []byte("MQTT")},
		{"StringEmpty", "''", nil},
		{"StringWithSpace", "'hello world'", []byte("hello world")},
		{"StringWithSpaces", "s11 'a b c d e f'", append([]byte{0, 11}, "a b c d e f"...)},
		{"StringWithDoubleSpace", "'a  b'", []byte("a  b")},
		{"StringLeadingSpace", "' x'", []byte(" x")},
		{"StringInnerQuote", "'it's'", []byte("it's")},
		{"StringUTF8", "'ü'", []byte{0xC3, 0xBC}},
		{
			"MixedConnect", "10 r13 s4 'MQTT' 04 02 k10 s1 'p'",
			[]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10, 0, 1, 'p'},
		},
		{
			"MixedPublish", "32 r19 s5 'topic' m1234 v2 01 i1 'payload'",
			append([]byte{0x32, 19, 0, 5, 't', 'o', 'p', 'i', 'c', 0x04, 0xD2, 2, 1, 1}, "payload"...),
		},
		{"MixedMalformedLength", "10 r268435456 s4 'MQTT'", []byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 4, 'M', 'Q', 'T', 'T'}},
		{"StringThenHex", "'a b' 00", []byte{'a', ' ', 'b', 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePayload(tt.in)
			if err != nil {
				t.Fatalf("ParsePayload(%q) error = %v", tt.in, err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("ParsePayload(%q) = % X, want % X", tt.in, got, tt.want)
			}
		})
	}
}

func TestParsePayload_Errors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"zz",          // not hex
		"8",           // odd hex
		"q1",          // unknown prefix
		"h1",          // prefixes are case-sensitive; "h1" is bad hex
		"i256",        // byte out of range
		"H65536",      // two bytes out of range
		"L4294967296", // four bytes out of range
		"i-1",
		"r",
		"'open",
		"'open ended",
		"'",
	} {
		if got, err := ParsePayload(in); err == nil {
			t.Errorf("ParsePayload(%q) = % X, want an error", in, got)
		}
	}
}
