package chat_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
)

// The fuzz targets of the chat parsers. `go test` runs their seed corpora
// as ordinary tests; `go test -run '^$' -fuzz FuzzX -fuzztime 60s ./chat`
// explores further (figures in docs/reliability.md).

// chatCode returns the MaxIM code of err, failing unless err is a
// *chat.Error: parsers never return anything else.
func chatCode(t *testing.T, err error) int {
	t.Helper()
	var e *chat.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *chat.Error", err, err)
	}
	return e.Code
}

// Ensure ParseSay never panics, refuses only with 5001/5010, and what it
// accepts respects the body limit and survives a round trip.
func FuzzParseSay(f *testing.F) {
	for _, s := range []string{
		`{"content":{"media":0,"body":"hello"},"remark":"r","ack":17,"push":{"enable":true}}`,
		`"{\"content\":{\"body\":\"sdk-js0\"}}"`,
		`{"content":{"body":["http://x/a.png"]},"to":{"id":"bob","type":0}}`,
		`{"content":{"body":{"k":[1,2]}},"ack":"42"}`,
		`{"content":{"media":1.0,"body":12.5},"ack":1e3}`,
		`{"content":{"body":""}}`, `{"content":null}`, `{"to":[]}`, `[]`, `"x"`, `{`, ``,
		`{"content":{"body":"\ud800"},"ack":9223372036854775807}`,
		`{"content":{"body":"a","media":"2147483648"}}`,
	} {
		f.Add([]byte(s), 16)
	}
	f.Fuzz(func(t *testing.T, payload []byte, maxLen int) {
		maxLen = 1 + abs(maxLen)%4096
		m, err := chat.ParseSay(payload, maxLen)
		if err != nil {
			if c := chatCode(t, err); c != chat.CodeInvalid && c != chat.CodeTooLong {
				t.Fatalf("code %d", c)
			}
			return
		}
		if m.Content.Body == "" || len(m.Content.Body) > maxLen || len(m.Remark) > maxLen {
			t.Fatalf("accepted body %d bytes, remark %d bytes, limit %d", len(m.Content.Body), len(m.Remark), maxLen)
		}
		// What was accepted, written back as a say, parses to the same.
		b, _ := json.Marshal(map[string]any{"content": m.Content, "remark": m.Remark, "ack": m.Ack})
		m2, err := chat.ParseSay(b, maxLen)
		if err != nil || m2.Content != m.Content || m2.Remark != m.Remark || !eqPtr(m.Ack, m2.Ack) {
			t.Fatalf("round trip of %q: %+v, %v; first %+v", b, m2, err, m)
		}
	})
}

// Ensure VerifySign never panics, accepts exactly the signatures and raw
// keys of the configured keys within the tolerance, and returns their role.
func FuzzVerifySign(f *testing.F) {
	const clientKey, masterKey = "client-key", "master-key"
	now := time.UnixMilli(1_700_000_000_000)
	a := &chat.Authenticator{AppID: "app", Tolerance: 15 * time.Minute, Now: func() time.Time { return now },
		Keys: []chat.Key{{Value: clientKey, Role: chat.RoleClient}, {Value: masterKey, Role: chat.RoleMaster}}}
	for _, s := range []string{
		chat.Sign(clientKey, now.UnixMilli()), chat.Sign(masterKey, now.UnixMilli()-60_000),
		strings.ToUpper(chat.Sign(clientKey, now.UnixMilli())), chat.Sign(clientKey, now.UnixMilli()-16*60_000),
		clientKey, masterKey, "", ",", "x,", ",1", "da1bb6b56200c84995127c784de90445,1461920236060",
		"da1bb6b56200c84995127c784de90445,+1461920236060", "da1bb6b56200c84995127c784de9044,1",
		chat.Sign(clientKey, now.UnixMilli()) + "," + "1", "zz1bb6b56200c84995127c784de90445,1700000000000",
		"da1bb6b56200c84995127c784de90445,99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		role, err := a.VerifySign(value)
		if err != nil {
			if role != chat.RoleNone || chatCode(t, err) != chat.CodeUnauthorized {
				t.Fatalf("refusal with role %v, %v", role, err)
			}
			return
		}
		want := chat.RoleNone
		switch i := strings.LastIndexByte(value, ','); {
		case i < 0 && value == clientKey:
			want = chat.RoleClient
		case i < 0 && value == masterKey:
			want = chat.RoleMaster
		case i >= 0:
			digest, ts := strings.ToLower(value[:i]), value[i+1:]
			for _, k := range a.Keys {
				sum := md5.Sum([]byte(ts + k.Value))
				if digest == hex.EncodeToString(sum[:]) && want == chat.RoleNone {
					want = k.Role
				}
			}
		}
		if role != want {
			t.Fatalf("%q accepted with role %v, want %v", value, role, want)
		}
	})
}

// Ensure a signature made with a key verifies within the tolerance and not
// outside it, whatever the timestamp.
func FuzzSignRoundTrip(f *testing.F) {
	now := time.UnixMilli(1_700_000_000_000)
	a := &chat.Authenticator{AppID: "app", Tolerance: 15 * time.Minute, Now: func() time.Time { return now },
		Keys: []chat.Key{{Value: "k", Role: chat.RoleClient}}}
	f.Add("k", int64(0))
	f.Add("k", int64(15*60_000))
	f.Add("k", int64(-15*60_000-1))
	f.Add("other", int64(1))
	f.Add("", int64(-1<<62))
	f.Fuzz(func(t *testing.T, key string, delta int64) {
		ts := now.UnixMilli() + delta
		if ts < 0 || (delta > 0 && ts < now.UnixMilli()) {
			return // Sign writes a '-'; overflow
		}
		_, err := a.VerifySign(chat.Sign(key, ts))
		fresh := delta >= -15*60_000 && delta <= 15*60_000
		if (err == nil) != (key == "k" && fresh) {
			t.Fatalf("key %q delta %d: %v", key, delta, err)
		}
	})
}

// Ensure ParseSearch never panics, refuses only with 5018 and keeps paging
// within bounds and reserved names out of the filters.
func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{
		"_skip=1&_limit=500&_sort=-ts,name&name=a", "_limit=x", "_skip=-5&_limit=0", "=x&_=y&_future=1&a=",
		"_sort=,,-,--a,%20", "_limit=99999999999999999999", "a=1&a=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		var params [][2]string
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			params = append(params, [2]string{k, v})
		}
		q, err := chat.ParseSearch(params)
		if err != nil {
			if c := chatCode(t, err); c != chat.CodeInvalidQuery {
				t.Fatalf("code %d", c)
			}
			return
		}
		if q.Skip < 0 || q.Limit < 1 || q.Limit > chat.MaxListLimit {
			t.Fatalf("skip %d limit %d", q.Skip, q.Limit)
		}
		for _, flt := range q.Filters {
			if flt.Name == "" || strings.HasPrefix(flt.Name, "_") {
				t.Fatalf("filter on reserved name %q", flt.Name)
			}
		}
		for _, k := range q.Sort {
			if k.Key == "" {
				t.Fatal("empty sort key")
			}
		}
	})
}

// Ensure ParseSort never yields an empty key and a key list written back
// parses to itself.
func FuzzParseSort(f *testing.F) {
	for _, s := range []string{"score,-age", "-", ",,", " - a , b ", "--x", "\x00,-\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys := chat.ParseSort(s)
		var parts []string
		for _, k := range keys {
			if k.Key == "" {
				t.Fatal("empty key")
			}
			if k.Desc {
				parts = append(parts, "-"+k.Key)
			} else {
				parts = append(parts, k.Key)
			}
		}
		again := chat.ParseSort(strings.Join(parts, ","))
		if !slices.Equal(again, keys) && !(len(again) == 0 && len(keys) == 0) {
			// Keys that contain commas or surrounding spaces cannot be
			// written back; skip those.
			for _, k := range keys {
				if strings.ContainsAny(k.Key, ",") || strings.TrimSpace(k.Key) != k.Key || strings.HasPrefix(k.Key, "-") {
					return
				}
			}
			t.Fatalf("%q: %v, written back %v", s, keys, again)
		}
	})
}

// Ensure NormalizeMembers keeps only non-empty strings of the input (one
// level of nesting flattened), without duplicates, in first-seen order.
func FuzzNormalizeMembers(f *testing.F) {
	for _, s := range []string{`["a",[]]`, `["a",["b"]]`, `"a"`, `[1,null,"a","a",{"x":1},[["deep"]]]`, `[]`, `null`, `[""]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return
		}
		out := chat.NormalizeMembers(v)
		if out == nil {
			t.Fatal("nil slice")
		}
		var want []string
		add := func(x any) {
			if s, ok := x.(string); ok && s != "" && !slices.Contains(want, s) {
				want = append(want, s)
			}
		}
		switch x := v.(type) {
		case string:
			add(x)
		case []any:
			for _, e := range x {
				if inner, ok := e.([]any); ok {
					for _, y := range inner {
						add(y)
					}
				} else {
					add(e)
				}
			}
		}
		if !slices.Equal(out, want) && !(len(out) == 0 && len(want) == 0) {
			t.Fatalf("%s: %q, want %q", raw, out, want)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // MinInt
			return 0
		}
		return -n
	}
	return n
}

func eqPtr(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
