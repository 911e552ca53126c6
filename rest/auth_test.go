package rest_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
)

// Ensure every credential form of docs/maxim.md §2 authenticates, and
// everything else is 401/5003.
func TestAuth(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/ctx/u1/attributes", `{"a":1}`).expect(201, "")
	now := time.Now().UnixMilli()
	app := func(h map[string]string) map[string]string { h["X-ML-AppId"] = testApp; return h }

	ok := []struct {
		name string
		hdr  map[string]string
	}{
		{"SignedClientKey", app(map[string]string{"X-ML-Request-Sign": chat.Sign(testKey, now)})},
		{"SignedMasterKey", app(map[string]string{"X-ML-Request-Sign": chat.Sign(testMaster, now)})},
		{"UppercaseDigest", app(map[string]string{"X-ML-Request-Sign": strings.ToUpper(chat.Sign(testKey, now))})},
		{"RawKeyInSign", app(map[string]string{"X-ML-Request-Sign": testKey})},
		{"APIKey", app(map[string]string{"X-ML-APIKey": testKey})},
		{"APIKeyLowercaseHeader", app(map[string]string{"x-ml-apikey": testKey})},
		{"MasterKey", app(map[string]string{"X-ML-MasterKey": testMaster})},
		{"AnyValidates", app(map[string]string{"X-ML-Request-Sign": "bad", "X-ML-APIKey": testKey})},
		{"ParrotVersionIgnored", app(map[string]string{"X-ML-APIKey": testKey, "X-Parrot-Version": "2", "X-ML-Session-Token": "x"})},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			ts.as(t).callWith("GET", "/ctx/u1/attributes", nil, c.hdr).expect(200, `{"a":1}`)
		})
	}

	bad := []struct {
		name string
		hdr  map[string]string
	}{
		{"None", map[string]string{}},
		{"AppOnly", app(map[string]string{})},
		{"NoApp", map[string]string{"X-ML-Request-Sign": chat.Sign(testKey, now)}},
		{"UnknownApp", map[string]string{"X-ML-AppId": "000000000000000000000000", "X-ML-Request-Sign": chat.Sign(testKey, now)}},
		{"BadSign", app(map[string]string{"X-ML-Request-Sign": "da1bb6b56200c84995127c784de90445," + itoa(now)})},
		{"WrongKey", app(map[string]string{"X-ML-Request-Sign": chat.Sign("other-key", now)})},
		{"StaleSign", app(map[string]string{"X-ML-Request-Sign": chat.Sign(testKey, now-16*60*1000)})},
		{"FutureSign", app(map[string]string{"X-ML-Request-Sign": chat.Sign(testKey, now+16*60*1000)})},
		{"MalformedTS", app(map[string]string{"X-ML-Request-Sign": "da1bb6b56200c84995127c784de90445,12a"})},
		{"BadRawKey", app(map[string]string{"X-ML-Request-Sign": "not-a-key"})},
		{"BadAPIKey", app(map[string]string{"X-ML-APIKey": "not-a-key"})},
		{"SignedAsAPIKey", app(map[string]string{"X-ML-APIKey": chat.Sign(testKey, now)})},
		{"ClientKeyAsMasterKey", app(map[string]string{"X-ML-MasterKey": testKey})},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			ts.as(t).callWith("GET", "/ctx/u1/attributes", nil, c.hdr).expectError(401, chat.CodeUnauthorized)
		})
	}

	// The golden vector of docs/maxim.md §2.1, with the freshness check off.
	t.Run("GoldenVector", func(t *testing.T) {
		ts := newTestServer(t, func(o *rest.Options) { o.Auth.Tolerance = 0 })
		ts.callWith("GET", "/ctx", nil, map[string]string{
			"X-ML-AppId":        "569d84a0169e7d00012c7afe",
			"X-ML-Request-Sign": "da1bb6b56200c84995127c784de90445,1461920236060",
		}).expect(200, `[]`)
	})
}

func itoa(n int64) string { return js("%d", n) }

// Ensure strict admin mode: client keys get 403/5003 on the admin
// endpoints, the master key (raw or signed) passes, and other endpoints are
// unaffected; with strict mode off every key passes (docs/maxim.md §2.3).
func TestAuth_StrictAdmin(t *testing.T) {
	admin := func(ts *testServer) []struct{ method, path, body string } {
		gid := ts.call("POST", "/groups", `{"owner":"o","members":["m"]}`).expect(201, "*").str()
		rid := ts.call("POST", "/rooms", `{"members":["m"]}`).expect(201, "*").str()
		return []struct{ method, path, body string }{
			{"PUT", "/groups/" + gid, `{"owner":"m"}`},
			{"DELETE", "/groups/" + gid + "/chats", ""},
			{"DELETE", "/groups/" + gid, ""},
			{"DELETE", "/rooms/" + rid, ""},
		}
	}
	wantOK := map[string]int{"PUT": 201, "DELETE": 204}

	t.Run("On", func(t *testing.T) {
		ts := newTestServer(t, func(o *rest.Options) { o.StrictAdmin = true })
		eps := admin(ts)
		for _, ep := range eps {
			var body any
			if ep.body != "" {
				body = ep.body
			}
			ts.call(ep.method, ep.path, body).expectError(403, chat.CodeUnauthorized)
			ts.callWith(ep.method, ep.path, body, map[string]string{"X-ML-AppId": testApp, "X-ML-APIKey": testKey}).expectError(403, chat.CodeUnauthorized)
		}
		// Non-admin endpoints still take the client key.
		ts.call("POST", "/groups", `{"owner":"o"}`).expect(201, "*")
		ts.call("GET", "/ctx", nil).expect(200, "*")
		// The master key, as a raw header or a signature, passes.
		ts.callWith(eps[0].method, eps[0].path, eps[0].body, map[string]string{"X-ML-AppId": testApp, "X-ML-MasterKey": testMaster}).expect(201, "")
		for _, ep := range eps[1:] {
			ts.callWith(ep.method, ep.path, nil, masterSigned()).expect(wantOK[ep.method], "")
		}
		// A bad master key does not fall back to a client key's role.
		ts.callWith("DELETE", "/groups/0123456789abcdef0123456789abcdef", nil,
			map[string]string{"X-ML-AppId": testApp, "X-ML-APIKey": testKey, "X-ML-MasterKey": "wrong"}).expectError(403, chat.CodeUnauthorized)
	})
	t.Run("Off", func(t *testing.T) {
		ts := newTestServer(t)
		for _, ep := range admin(ts) {
			var body any
			if ep.body != "" {
				body = ep.body
			}
			ts.call(ep.method, ep.path, body).expect(wantOK[ep.method], "")
		}
	})
}

// Ensure CORS preflights are answered without credentials and every
// response carries Access-Control-Allow-Origin: * (docs/maxim.md §3.0).
func TestCORS(t *testing.T) {
	ts := newTestServer(t)
	r := ts.callWith("OPTIONS", "/ctx/u1/attributes", nil, map[string]string{
		"Origin":                         "http://example.com",
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "content-type,x-ml-appid,x-ml-apikey",
	}).expect(204, "")
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Allow-Origin = %q", got)
	}
	if got := r.Header.Get("Access-Control-Allow-Methods"); got != "GET, POST, PUT, DELETE, OPTIONS" {
		t.Errorf("Allow-Methods = %q", got)
	}
	h := r.Header.Get("Access-Control-Allow-Headers")
	for _, want := range []string{"content-type", "x-ml-appid", "x-ml-apikey", "x-ml-request-sign", "x-ml-masterkey", "x-parrot-version", "x-ml-session-token"} {
		if !strings.Contains(h, want) {
			t.Errorf("Allow-Headers %q lacks %s", h, want)
		}
	}
	// Preflight of a path with no OPTIONS route, and of an unknown path.
	ts.callWith("OPTIONS", "/groups/abc/members/x/", nil, map[string]string{"Origin": "http://x"}).expect(204, "")
	// Plain and error responses carry the origin header too.
	if got := ts.call("GET", "/ctx", nil).expect(200, "[]").Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("GET Allow-Origin = %q", got)
	}
	if got := ts.callWith("GET", "/ctx", nil, nil).expectError(401, chat.CodeUnauthorized).Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("401 Allow-Origin = %q", got)
	}
}

// Ensure /healthz needs no credentials, and the Fiber-level errors (unknown
// route, wrong method, body too large) use the MaxIM error body.
func TestServer_Operations(t *testing.T) {
	ts := newTestServer(t, func(o *rest.Options) { o.BodyLimit = 1024 })
	ts.callWith("GET", "/healthz", nil, nil).expect(200, `{"status":"ok"}`)
	ts.call("GET", "/nothing/here", nil).expectError(404, chat.CodeNotFound)
	ts.call("PATCH", "/ctx/u1/attributes", `{}`).expectError(405, chat.CodeUnsupported)
	ts.call("POST", "/ctx/u1/attributes", `{"a":"`+strings.Repeat("x", 2000)+`"}`).expectError(413, chat.CodeTooLong)
	if id := ts.call("GET", "/ctx", nil).Header.Get("X-Request-Id"); len(id) != 16 {
		t.Errorf("X-Request-Id = %q", id)
	}
	// Paths are case sensitive.
	ts.call("GET", "/CTX", nil).expectError(404, chat.CodeNotFound)
}

// Ensure no panic or internal error reaches a client: 500/5002 "internal
// error", with the cause only in the log.
func TestServer_InternalErrors(t *testing.T) {
	ts := newTestServerRoutes(t, func(s *rest.Server) {
		s.App().Get("/test/panic", func(*fiber.Ctx) error { panic("boom: secret detail") })
		s.App().Get("/test/error", func(*fiber.Ctx) error { return errors.New("disk on fire: secret detail") })
	})
	for _, p := range []string{"/test/panic", "/test/error"} {
		r := ts.call("GET", p, nil).expectError(500, chat.CodeDatabase)
		if strings.Contains(string(r.Body), "secret") || !strings.Contains(string(r.Body), "internal error") {
			t.Errorf("%s: body %s leaks the cause or lacks \"internal error\"", p, r.Body)
		}
	}
	// The server still serves.
	ts.callWith("GET", "/healthz", nil, nil).expect(200, `{"status":"ok"}`)
}

// Ensure a body past the upload limit is refused by Fiber itself with the
// MaxIM body.
func TestServer_UploadLimit(t *testing.T) {
	ts := newTestServer(t, func(o *rest.Options) { o.BodyLimit = 512; o.UploadLimit = 1024 })
	ts.call("POST", "/ctx/u1/attributes", `{"a":"`+strings.Repeat("x", 4000)+`"}`).expectError(413, chat.CodeTooLong)
}

// Ensure a path no route serves is 404/5004 for every caller, before the
// credentials are looked at: without credentials, with wrong ones (which
// then do not count against the address in the login throttle) and with
// good ones alike; a known path without credentials stays 401, whatever
// the method, and the public paths stay public.
func TestServer_UnknownPathBeforeCredentials(t *testing.T) {
	th := chat.NewLoginThrottle(3, 0)
	ts := newTestServer(t, func(o *rest.Options) { o.Throttle = th })
	wrong := map[string]string{"X-ML-AppId": testApp, "X-ML-APIKey": "wrong"}
	unknown := []string{"/nothing/here", "/", "/ctxx", "/v1/ctx", "/CTX", "/ctx/alice/nope", "/groups/g/members/u/extra", "/rooms/r/chats"}
	for _, p := range unknown {
		for _, m := range []string{"GET", "POST", "DELETE"} {
			want := ts.call(m, p, nil).expectError(404, chat.CodeNotFound).Body
			for name, hdr := range map[string]map[string]string{"none": nil, "wrong": wrong} {
				if got := ts.callWith(m, p, nil, hdr).expectError(404, chat.CodeNotFound).Body; !bytes.Equal(got, want) {
					t.Errorf("%s %s with %s credentials: body %s, want %s (as with good ones)", m, p, name, got, want)
				}
			}
		}
	}
	// 48 wrong attempts above, none counted: the address is not throttled.
	ts.call("GET", "/ctx", nil).ok(200)

	ts = newTestServer(t) // no throttle: the 401s below count as failures
	for _, k := range []struct{ method, path string }{
		{"GET", "/ctx"}, {"GET", "/ctx/alice/friends/"}, {"POST", "/groups"}, {"PUT", "/rooms/r"},
		{"DELETE", "/groups/g/chats"}, {"POST", "/attachment"}, {"POST", "/tokens"},
		{"PATCH", "/ctx/u1/attributes"}, {"PUT", "/ctx/alice"}, // known paths, methods they lack
	} {
		ts.callWith(k.method, k.path, nil, nil).expectError(401, chat.CodeUnauthorized)
	}
	ts.callWith("GET", "/healthz", nil, nil).expect(200, `{"status":"ok"}`)
	// With credentials, a known path's missing method is still 405.
	ts.call("PATCH", "/ctx/u1/attributes", `{}`).expectError(405, chat.CodeUnsupported)
}

// Ensure a signature with a seconds timestamp is refused with the hint to
// use milliseconds, in X-ML-Request-Sign with either key; an old
// millisecond one is refused without it.
func TestAuth_SecondsHint(t *testing.T) {
	ts := newTestServer(t)
	for _, key := range []string{testKey, testMaster} {
		r := ts.callWith("GET", "/ctx", nil, map[string]string{"X-ML-AppId": testApp, "X-ML-Request-Sign": chat.Sign(key, time.Now().Unix())}).
			expectError(401, chat.CodeUnauthorized)
		if !strings.Contains(string(r.Body), "timestamp looks like seconds; MaxIM signatures use milliseconds") {
			t.Errorf("seconds signature: body %s lacks the hint", r.Body)
		}
	}
	r := ts.callWith("GET", "/ctx", nil, map[string]string{"X-ML-AppId": testApp, "X-ML-Request-Sign": chat.Sign(testKey, time.Now().Add(-time.Hour).UnixMilli())}).
		expectError(401, chat.CodeUnauthorized)
	if strings.Contains(string(r.Body), "seconds") {
		t.Errorf("old millisecond signature: body %s has the seconds hint", r.Body)
	}
}
