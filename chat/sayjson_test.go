package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sayCases are say payloads for the differential tests: fast reports
// whether parseSayFast must handle it (the shapes clients send), or leave it
// to parseSaySlow (everything where encoding/json's quirks show).
var sayCases = []struct {
	name    string
	payload string
	fast    bool
}{
	// The common shapes.
	{"Plain", `{"content":{"media":0,"body":"3.1234.987654321012"}}`, true},
	{"Ack", `{"content":{"media":0,"body":"hi"},"ack":17}`, true},
	{"AckFirst", `{"ack":17,"content":{"body":"hi","media":1}}`, true},
	{"To", `{"to":{"id":"bob","type":0},"content":{"media":0,"body":"hi"},"remark":"r","ack":1}`, true},
	{"ToOtherType", `{"to":{"id":"bob","type":4},"content":{"body":"hi"}}`, true},
	{"Full", `{"content":{"media":0,"body":"see you"},"remark":"r","ack":17,"push":{"enable":true,"prefix":"A: "}}`, true},
	{"PushAll", `{"content":{"body":"x"},"push":{"enable":false,"sound":"s","prefix":"p","suffix":"x","overwrite":"o","badge":-3,"contentAvailable":true}}`, true},
	{"PushEmpty", `{"content":{"body":"x"},"push":{}}`, true},
	{"PushNulls", `{"content":{"body":"x"},"push":{"enable":null,"sound":null,"badge":null,"contentAvailable":null}}`, true},
	{"PushUnknown", `{"content":{"body":"x"},"push":{"title":"t"}}`, true},
	{"ClientTS", `{"content":{"body":"x"},"ts":1700000000000}`, true},
	{"UnknownScalars", `{"content":{"body":"x","w":1.5e-3},"a":true,"b":false,"c":null,"d":"s\n","e":-0,"":0}`, true},
	{"Nulls", `{"to":null,"content":{"media":null,"body":"x"},"remark":null,"ack":null,"push":null}`, true},
	{"ToNulls", `{"to":{"id":null,"type":null},"content":{"body":"x"}}`, true},
	{"ToEmpty", `{"to":{},"content":{"body":"x"}}`, true},
	{"Whitespace", " \t\r\n{ \"content\" : { \"media\" : 2 , \"body\" : \"x\" } , \"ack\" : 3 }\n\t ", true},
	{"StringInts", `{"to":{"id":"b","type":"4"},"content":{"media":"-1","body":"x"},"ack":"+042"}`, true},
	{"StringIntEscaped", `{"content":{"body":"x"},"ack":"\u0034\u0032"}`, true},
	{"NegativeZero", `{"content":{"media":-0,"body":"x"},"ack":-0}`, true},
	{"Int18Digits", `{"content":{"body":"x"},"ack":-999999999999999999}`, true},
	{"MediaInt32", `{"content":{"media":-2147483648,"body":"x"},"to":{"type":2147483647}}`, true},
	{"Escapes", `{"content":{"body":"a\"b\\c\/d\be\ff\ng\rh\ti\u0000j\u00e9\u20AC"},"remark":"\u2028"}`, true},
	{"Surrogates", `{"content":{"body":"\ud83d\ude00 \uD83D\uDE00"}}`, true},
	{"LoneSurrogates", `{"content":{"body":"\ud800 \udc00 \ud800\u0041 \udc00\ud800 \ud800\ud800\udc00 \ud800\\u0041 \ud800"}}`, true},
	{"UTF8", `{"content":{"body":"héllo wörld 你好 😀"},"remark":"ü"}`, true},
	{"InvalidUTF8", "{\"content\":{\"body\":\"a\xffb\xc3\x28c\xed\xa0\x80d\xf0\x9f\x98\"}}", true},
	{"InvalidUTF8Escaped", "{\"content\":{\"body\":\"\\n\xff\xfe\"},\"remark\":\"\x80\"}", true},
	{"ReplacementChar", `{"content":{"body":"\ufffd` + "\uFFFD" + `"}}`, true},
	{"HTMLChars", `{"content":{"body":"<a href='x'>&amp;</a>"}}`, true},
	{"Del", "{\"content\":{\"body\":\"\x7f\"}}", true},
	{"LongestBody", `{"content":{"body":"` + strings.Repeat("x", 64) + `"},"remark":"` + strings.Repeat("y", 64) + `"}`, true},
	{"EscapedLongestBody", `{"content":{"body":"` + strings.Repeat(`\n`, 64) + `"}}`, true},

	// Left to the slow path: successes.
	{"JSONString", `"{\"content\":{\"media\":0,\"body\":\"hi\"},\"ack\":3,\"ts\":1}"`, false},
	{"UpperKey", `{"Content":{"body":"x"},"ACK":1}`, false},
	{"UpperInnerKey", `{"content":{"BODY":"x","Media":1}}`, false},
	{"UpperToKey", `{"content":{"body":"x"},"to":{"ID":"b","Type":0}}`, false},
	{"UpperPushKey", `{"content":{"body":"x"},"push":{"Enable":false,"contentavailable":true}}`, false},
	{"EscapedKey", `{"con\u0074ent":{"body":"x"}}`, false},
	{"KelvinKey", `{"content":{"body":"x"},"ac` + "\u212a" + `":5}`, false},
	{"LongSKey", `{"content":{"body":"x"},"pu` + "\u017f" + `h":{"enable":false}}`, false},
	{"DuplicateContent", `{"content":{"body":"x"},"content":{"body":"y"}}`, false},
	{"DuplicateAck", `{"content":{"body":"x"},"ack":1,"ack":2}`, false},
	{"DuplicateFold", `{"content":{"body":"x"},"Ack":1,"ack":2}`, false},
	{"DuplicateBody", `{"content":{"body":"x","body":"y"}}`, false},
	{"DuplicateToID", `{"content":{"body":"x"},"to":{"id":"a","id":"b"}}`, false},
	{"DuplicatePush", `{"content":{"body":"x"},"push":{"sound":"a","sound":"b"}}`, false},
	{"DuplicateNull", `{"content":{"body":"x"},"ack":1,"ack":null}`, false},
	{"ArrayBody", `{"content":{"media":1,"body":["http://x/a.png","b"]}}`, false},
	{"NumberBody", `{"content":{"body":42}}`, false},
	{"ObjectBody", `{"content":{"body":{"a": [1, 2]}}}`, false},
	{"FloatMedia", `{"content":{"media":1.0,"body":"x"},"ack":1e3}`, false},
	{"ExponentAck", `{"content":{"body":"x"},"ack":1E+2}`, false},
	{"Ack19Digits", `{"content":{"body":"x"},"ack":9223372036854775807}`, false},
	{"AckMinInt64", `{"content":{"body":"x"},"ack":-9223372036854775809}`, false},
	{"NestedUnknown", `{"content":{"body":"x","meta":{"a":[1,{"b":null}]}},"extra":[[]]}`, false},
	{"DeepUnknown", `{"content":{"body":"x"},"d":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, false},
	{"VerticalTab", "\v{\"content\":{\"body\":\"x\"}}\f", false},
	{"NBSP", "{\"content\":{\"body\":\"x\"}}\u00a0", false},
	{"NumberRemark", `{"content":{"body":"x"},"remark":12}`, false},

	// Left to the slow path: errors.
	{"TooDeep", `{"content":{"body":"x"},"d":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, false},
	{"TrailingGarbage", `{"content":{"body":"x"}}x`, false},
	{"TrailingObject", `{"content":{"body":"x"}}{}`, false},
	{"TrailingComma", `{"content":{"body":"x"},}`, false},
	{"LeadingComma", `{,"content":{"body":"x"}}`, false},
	{"MissingColon", `{"content" {"body":"x"}}`, false},
	{"Unterminated", `{"content":{"body":"x"}`, false},
	{"UnterminatedString", `{"content":{"body":"x`, false},
	{"ControlChar", "{\"content\":{\"body\":\"a\nb\"}}", false},
	{"BadEscape", `{"content":{"body":"\x41"}}`, false},
	{"ShortUnicode", `{"content":{"body":"\u12"}}`, false},
	{"BadUnicode", `{"content":{"body":"\u12G4"},"ack":2}`, false},
	{"SingleQuoteEscape", `{"content":{"body":"\'"}}`, false},
	{"LeadingZero", `{"content":{"body":"x"},"ack":01}`, false},
	{"LeadingZeroUnknown", `{"content":{"body":"x"},"ts":00}`, false},
	{"PlusNumber", `{"content":{"body":"x"},"ack":+1}`, false},
	{"BareMinus", `{"content":{"body":"x"},"ts":-}`, false},
	{"BareDot", `{"content":{"body":"x"},"ts":1.}`, false},
	{"BareExponent", `{"content":{"body":"x"},"ts":1e}`, false},
	{"TrueX", `{"content":{"body":"x"},"a":truex}`, false},
	{"Nul", `{"content":{"body":"x"},"a":nul}`, false},
	{"FractionAck", `{"content":{"body":"x"},"ack":1.5}`, false},
	{"BadAck", `{"content":{"body":"x"},"ack":"soon"}`, false},
	{"AckTrue", `{"content":{"body":"x"},"ack":true}`, false},
	{"MediaOverflow", `{"content":{"media":2147483648,"body":"x"},"ack":4}`, false},
	{"MediaStringOverflow", `{"content":{"body":"a","media":"2147483648"}}`, false},
	{"ToTypeOverflow", `{"content":{"body":"x"},"to":{"type":-2147483649}}`, false},
	{"ToNotObject", `{"content":{"body":"x"},"to":"bob","ack":5}`, false},
	{"ToIDNumber", `{"content":{"body":"x"},"to":{"id":7}}`, false},
	{"NoContent", `{"ack":1}`, false},
	{"NullContent", `{"content":null,"ack":1}`, false},
	{"ContentString", `{"content":"x"}`, false},
	{"NoBody", `{"content":{"media":0}}`, false},
	{"NullBody", `{"content":{"body":null},"ack":5}`, false},
	{"EmptyBody", `{"content":{"body":""}}`, false},
	{"TooLong", `{"content":{"body":"` + strings.Repeat("x", 65) + `"},"ack":9}`, false},
	{"EscapeTooLong", `{"content":{"body":"` + strings.Repeat(`\u00e9`, 33) + `"},"ack":9}`, false},
	{"InvalidUTF8TooLong", `{"content":{"body":"` + strings.Repeat("\xff", 22) + `"},"ack":9}`, false},
	{"RemarkTooLong", `{"content":{"body":"x"},"remark":"` + strings.Repeat("x", 65) + `"}`, false},
	{"BadPush", `{"content":{"body":"x"},"push":{"enable":"no"}}`, false},
	{"PushBadgeFloat", `{"content":{"body":"x"},"push":{"badge":1.0}}`, false},
	{"PushBadgeString", `{"content":{"body":"x"},"push":{"badge":"1"}}`, false},
	{"PushSoundNumber", `{"content":{"body":"x"},"push":{"sound":1}}`, false},
	{"PushArray", `{"content":{"body":"x"},"push":[]}`, false},
	{"Array", `[1]`, false},
	{"Empty", ``, false},
	{"EmptyObject", `{}`, false},
	{"NotJSON", `hello`, false},
	{"Null", `null`, false},
	{"BOM", "\ufeff{\"content\":{\"body\":\"x\"}}", false},
}

// checkSame fails unless ParseSay and the reference parseSaySlow agree on
// payload to the byte: message, error code and error message.
func checkSame(t *testing.T, payload []byte, maxLen int) {
	t.Helper()
	got, gotErr := ParseSay(payload, maxLen)
	want, wantErr := parseSaySlow(payload, maxLen)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseSay(%q) = %s, want %s", payload, dumpSay(got), dumpSay(want))
	}
	if (gotErr == nil) != (wantErr == nil) || ErrorCode(gotErr) != ErrorCode(wantErr) || ErrorMessage(gotErr) != ErrorMessage(wantErr) {
		t.Fatalf("ParseSay(%q) error = %v, want %v", payload, gotErr, wantErr)
	}
	if gotErr != nil {
		var e *Error
		if !errors.As(gotErr, &e) {
			t.Fatalf("ParseSay(%q) error %v (%T) is not an *Error", payload, gotErr, gotErr)
		}
	}
}

func dumpSay(m SayMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// Ensure ParseSay equals the encoding/json reference on each case, and the
// fast path takes exactly the shapes it is meant for.
func TestParseSayFast(t *testing.T) {
	t.Parallel()
	for _, tt := range sayCases {
		t.Run(tt.name, func(t *testing.T) {
			for _, maxLen := range []int{64, 1, 0} {
				checkSame(t, []byte(tt.payload), maxLen)
			}
			if _, ok := parseSayFast([]byte(tt.payload), 64); ok != tt.fast {
				_, err := parseSaySlow([]byte(tt.payload), 64)
				t.Fatalf("parseSayFast() handled = %v, want %v (slow path: %v)", ok, tt.fast, err)
			}
		})
	}
}

// Ensure ParseSay equals the encoding/json reference on any input.
func FuzzParseSayDifferential(f *testing.F) {
	for _, c := range sayCases {
		if len(c.payload) < 4096 {
			f.Add([]byte(c.payload), 64)
			f.Add([]byte(c.payload), 3)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte, maxLen int) {
		checkSame(t, payload, maxLen%8192)
	})
}

// Ensure ParseSay equals the reference on payloads of the common shape
// with fuzzed text in the strings and numbers: these mostly stay on the
// fast path, which FuzzParseSayDifferential's mutations soon leave.
func FuzzParseSayFields(f *testing.F) {
	f.Add("hi", "r", "bob", "17", "0", "1700000000000")
	f.Add(`a\"b\ud83d\ude00\n`, "\xff\u2028", `\u00e9`, `"42"`, `"-1"`, `1.5e3`)
	f.Fuzz(func(t *testing.T, body, remark, to, ack, media, ts string) {
		p := `{"to":{"id":"` + to + `","type":0},"content":{"media":` + media + `,"body":"` + body +
			`"},"remark":"` + remark + `","ack":` + ack + `,"ts":` + ts + `}`
		checkSame(t, []byte(p), 64)
	})
}

// eventStrings are strings for the encoder tests: everything
// encoding/json escapes or replaces.
var eventStrings = []string{
	"", "plain", "3.1234.987654321012", `quote " backslash \ slash /`, "<a href='x'>&amp;</a>",
	"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f \x7f", "héllo 你好 😀", "\u2028\u2029\u2027\u202a",
	"\xff", "a\xc3\x28b", "\xed\xa0\x80", "\xf0\x9f\x98", "\ufffd", "end\xe2\x80",
}

func checkEvents(t *testing.T, from, to Peer, c Content, ts int64, remark, id string, seq uint64) {
	t.Helper()
	m := MessageEvent{From: from, To: to, Content: c, TS: ts, Remark: remark, ID: id, Seq: seq}
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendMessageEvent([]byte("x"), &m); !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Fatalf("appendMessageEvent(%+v)\n got %s\nwant %s", m, got[1:], want)
	}
	y := YourselfEvent{To: to, Content: c, TS: ts, Remark: remark, ID: id, Seq: seq}
	want, _ = json.Marshal(y)
	if got := appendYourselfEvent(nil, &y); !bytes.Equal(got, want) {
		t.Fatalf("appendYourselfEvent(%+v)\n got %s\nwant %s", y, got, want)
	}
	a := AckEvent{Ack: ts, TS: int64(seq)}
	want, _ = json.Marshal(a)
	if got := appendAckEvent(nil, &a); !bytes.Equal(got, want) {
		t.Fatalf("appendAckEvent(%+v) = %s, want %s", a, got, want)
	}
}

// Ensure the event encoders write what json.Marshal writes.
func TestAppendEvents(t *testing.T) {
	t.Parallel()
	for _, s := range eventStrings {
		checkEvents(t, Peer{ID: s, Type: TypeGroup, GID: s}, Peer{ID: s, Type: -1}, Content{Media: 7, Body: s}, -1, s, s, 1)
		checkEvents(t, Peer{ID: "a"}, Peer{ID: "b", GID: s}, Content{Body: s}, 1700000000000, "", "", 0)
	}
	checkEvents(t, Peer{Type: -1 << 31}, Peer{Type: 1<<31 - 1}, Content{Media: -1 << 63}, -1<<63, "", "", 1<<64-1)
	checkEvents(t, Peer{}, Peer{}, Content{Media: 1<<63 - 1}, 1<<63-1, "r", "i", 0)
}

// Ensure the event encoders write what json.Marshal writes on any input.
func FuzzAppendEvents(f *testing.F) {
	for i, s := range eventStrings {
		f.Add(s, s, "", s, int64(i), uint64(i), i-3)
	}
	f.Fuzz(func(t *testing.T, id, gid, body, remark string, ts int64, seq uint64, n int) {
		checkEvents(t, Peer{ID: id, Type: n, GID: gid}, Peer{ID: remark, Type: -n, GID: body}, Content{Media: n, Body: body}, ts, remark, id, seq)
	})
}

// BenchmarkParseSayPaths is what the fast path saves: ParseSay against
// the encoding/json reference it falls back to, on the payloads of
// BenchmarkParseSay.
//
//	go test -run '^$' -bench ParseSayPaths -benchmem ./chat/
func BenchmarkParseSayPaths(b *testing.B) {
	says := map[string][]byte{
		"plain": []byte(`{"content":{"media":0,"body":"3.1234.987654321012"}}`),
		"full":  []byte(`{"content":{"media":0,"body":"see you at the station at six, bring the tickets"},"remark":"r","ack":17,"push":{"enable":true,"prefix":"A: "}}`),
	}
	for _, name := range []string{"plain", "full"} {
		for _, p := range []struct {
			path  string
			parse func([]byte, int) (SayMessage, error)
		}{{"fast", ParseSay}, {"reference", parseSaySlow}} {
			b.Run(name+"/"+p.path, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.parse(says[name], 65536); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkEventEncoders is what the append encoders save: the message,
// yourself and ack events of one say, appended against json.Marshal.
//
//	go test -run '^$' -bench EventEncoders -benchmem ./chat/
func BenchmarkEventEncoders(b *testing.B) {
	m := MessageEvent{From: Peer{ID: "u042", Type: TypeGroup, GID: "g7"}, To: Peer{ID: "g7", Type: TypeGroup},
		Content: Content{Body: "see you at the station at six, bring the tickets"}, TS: 1700000000000, ID: "0123456789abcdef01234567", Seq: 4242}
	y := YourselfEvent{To: m.To, Content: m.Content, TS: m.TS, ID: m.ID, Seq: m.Seq}
	a := AckEvent{Ack: 17, TS: m.TS}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf := appendMessageEvent(make([]byte, 0, 512), &m)
			_ = appendYourselfEvent(buf[len(buf):], &y)
			_ = appendAckEvent(make([]byte, 0, 48), &a)
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&m)
			_, _ = json.Marshal(&y)
			_, _ = json.Marshal(&a)
		}
	})
}
