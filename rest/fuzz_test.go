package rest_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/rest"
)

// fuzzRoutes are the REST endpoints with a JSON or empty body; {a} and {b}
// are filled with fuzzed ids (path-escaped).
var fuzzRoutes = []struct{ method, path string }{
	{"GET", "/ctx"}, {"GET", "/ctx/{a}"}, {"POST", "/ctx/{a}"},
	{"POST", "/ctx/{a}/attributes"}, {"PUT", "/ctx/{a}/attributes"}, {"GET", "/ctx/{a}/attributes"},
	{"GET", "/ctx/{a}/attributes/{b}"}, {"DELETE", "/ctx/{a}/attributes"},
	{"POST", "/ctx/{a}/friends/{b}"}, {"GET", "/ctx/{a}/friends/{b}"}, {"DELETE", "/ctx/{a}/friends/{b}"},
	{"GET", "/ctx/{a}/friends/{b}/chats"}, {"GET", "/ctx/{a}/friends"}, {"POST", "/ctx/{a}/friends"},
	{"GET", "/ctx/{a}/groups"}, {"GET", "/ctx/{a}/rooms"}, {"GET", "/ctx/{a}/strangers"},
	{"GET", "/ctx/{a}/strangers/{b}"}, {"GET", "/ctx/{a}/strangers/{b}/chats"},
	{"DELETE", "/ctx/{a}/installs"}, {"POST", "/ctx/{a}/installs"},
	{"POST", "/groups"}, {"GET", "/groups"}, {"GET", "/groups/{a}"}, {"PUT", "/groups/{a}"}, {"DELETE", "/groups/{a}"},
	{"POST", "/groups/{a}/attributes"}, {"PUT", "/groups/{a}/attributes"}, {"GET", "/groups/{a}/attributes/{b}"},
	{"POST", "/groups/{a}/members"}, {"DELETE", "/groups/{a}/members"}, {"POST", "/groups/{a}/members/{b}"},
	{"DELETE", "/groups/{a}/members/{b}"}, {"GET", "/groups/{a}/chats"}, {"DELETE", "/groups/{a}/chats"},
	{"POST", "/rooms"}, {"GET", "/rooms"}, {"GET", "/rooms/{a}"}, {"PUT", "/rooms/{a}"}, {"DELETE", "/rooms/{a}"},
	{"POST", "/rooms/{a}/attributes"}, {"POST", "/rooms/{a}/members"}, {"DELETE", "/rooms/{a}/members"},
	{"POST", "/rooms/{a}/members/{b}"}, {"DELETE", "/rooms/{a}/members/{b}"},
	{"POST", "/passengers"}, {"GET", "/passengers/{a}"}, {"GET", "/passengers/{a}/chats/{b}"},
	{"POST", "/system"}, {"POST", "/system/{a}"},
}

// Ensure no request body, query or path id makes a REST endpoint answer
// 5xx or anything but a MaxIM error body on failure, over a real server
// and Badger store (mutations accumulate across inputs, as in production).
//
// `go test` runs the seeds; `go test -run '^$' -fuzz FuzzRequests
// -fuzztime 60s ./rest` explores further.
func FuzzRequests(f *testing.F) {
	bodies := []string{
		``, `null`, `{}`, `[]`, `{"a":1}`, `{"owner":"u1","members":["u2",["u3"],[]]}`, `{"members":"u4"}`,
		`{"owner":"u1","members":["u1"],"remove":["u1"]}`, `{"content":{"media":0,"body":"hi"},"push":{"enable":true}}`,
		`{"id":"p1","name":"x"}`, `{"attributes":{"name":"n"},"name":"m"}`, `{"members":[` + strings.Repeat(`"x",`, 60) + `"y"]}`,
		`{"a":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, `{"a":1e999}`, `{"a":"\ud800"}`, "\xff",
	}
	for i := range fuzzRoutes {
		b := bodies[i%len(bodies)]
		f.Add(uint8(i), "u1", "u2", "detail&limit=5&_sort=-ts", []byte(b))
	}
	f.Add(uint8(0), "", "", "_limit=x", []byte(nil))
	f.Add(uint8(1), "..", "%2f", "ts=1e400", []byte(nil))
	f.Add(uint8(23), strings.Repeat("g", 200), "a b", "", []byte(`{"owner":""}`))
	// The server logs to nothing: a test writer may not log from the fuzz
	// target's goroutines through f.
	ts := newTestServer(f, func(o *rest.Options) { o.Log = zerolog.Nop() })
	ts.call("POST", "/groups", `{"owner":"u1","members":["u2"]}`).ok(201)
	ts.call("POST", "/rooms", `{"members":["u1","u2"]}`).ok(201)
	ts.call("POST", "/ctx/u1/friends/u2", nil).ok(201)
	f.Fuzz(func(t *testing.T, route uint8, a, b, query string, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		if strings.ContainsAny(query, " #\x7f") || strings.IndexFunc(query, func(c rune) bool { return c < 0x20 }) >= 0 {
			return // not a request line a client can send
		}
		path := strings.NewReplacer("{a}", url.PathEscape(a), "{b}", url.PathEscape(b)).Replace(r.path)
		if query != "" {
			path += "?" + query
		}
		var send any
		if body != nil {
			send = body
		}
		res := ts.as(t).call(r.method, path, send)
		if res.Status >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, path, body, res.Status, res.Body)
		}
		if res.Status >= 400 {
			var e struct {
				ErrorCode    *int    `json:"errorCode"`
				ErrorMessage *string `json:"errorMessage"`
			}
			if json.Unmarshal(res.Body, &e) != nil || e.ErrorCode == nil || e.ErrorMessage == nil {
				t.Fatalf("%s %s: %d with a body that is not a MaxIM error: %s", r.method, path, res.Status, res.Body)
			}
		} else if len(res.Body) > 0 && !json.Valid(res.Body) {
			t.Fatalf("%s %s: %d with invalid JSON %q", r.method, path, res.Status, res.Body)
		}
	})
}
