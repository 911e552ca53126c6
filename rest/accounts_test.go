package rest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
)

// Ensure POST /tokens mints a token for a user or a passenger with the
// default or given ttl, that the token calls the API as its subject, and
// that bad bodies are 400/5001.
func TestTokens_MintAndUse(t *testing.T) {
	ts := newTestServer(t)
	var tok struct {
		Token   string `json:"token"`
		Expires int64  `json:"expires"`
	}
	ts.callWith("POST", "/tokens", map[string]any{"user": "alice"}, masterSigned()).ok(201).decode(&tok)
	if want := ts.now() + (720 * time.Hour).Milliseconds(); tok.Expires != want {
		t.Errorf("expires %d, want %d (720h)", tok.Expires, want)
	}
	ts.callWith("POST", "/ctx/alice/attributes", map[string]any{"color": "red"}, bearer(tok.Token)).ok(201)
	ts.callWith("GET", "/ctx/alice/attributes", nil, bearer(tok.Token)).expect(200, `{"color":"red"}`)
	ts.callWith("GET", "/ctx/bob/attributes", nil, bearer(tok.Token)).expectError(403, chat.CodeUnauthorized)

	ts.callWith("POST", "/tokens", map[string]any{"passenger": "p1", "ttl": "1h"}, masterSigned()).ok(201).decode(&tok)
	if want := ts.now() + time.Hour.Milliseconds(); tok.Expires != want {
		t.Errorf("expires %d, want %d (1h)", tok.Expires, want)
	}
	ts.callWith("GET", "/passengers/p1", nil, bearer(tok.Token)).expectError(404, chat.CodeNotFound) // in scope, not created yet
	ts.callWith("GET", "/passengers/p2", nil, bearer(tok.Token)).expectError(403, chat.CodeUnauthorized)

	for _, body := range []any{
		map[string]any{}, map[string]any{"user": "a", "passenger": "b"}, map[string]any{"user": "a b"},
		map[string]any{"user": "a", "ttl": "soon"}, map[string]any{"user": "a", "ttl": "-1h"}, map[string]any{"user": 5}, "[1]",
	} {
		ts.callWith("POST", "/tokens", body, masterSigned()).expectError(400, chat.CodeInvalid)
	}
	ts.callWith("POST", "/tokens", map[string]any{"user": "alice"}, signed()).expectError(403, chat.CodeUnauthorized)
}

// Ensure revocation, ban and its lifting over REST: the user's own token
// revokes itself; a ban shows in GET /ctx/{uid} and refuses its tokens
// with 403 until lifted.
func TestAccounts_RevokeBan(t *testing.T) {
	ts := newTestServer(t)
	now := ts.now()
	ts.callWith("POST", "/ctx/alice/attributes", map[string]any{"k": 1}, masterSigned()).ok(201)
	old := mint(t, chat.User("alice"), now-1000, now+3_600_000)
	ts.callWith("GET", "/ctx", nil, bearer(old)).ok(200)
	ts.clock.Store(now - 500)
	ts.callWith("DELETE", "/ctx/bob/tokens", nil, bearer(old)).expectError(403, chat.CodeUnauthorized)
	ts.callWith("DELETE", "/ctx/alice/tokens", nil, bearer(old)).expect(200, `{"disconnected":0}`)
	ts.clock.Store(now)
	ts.callWith("GET", "/ctx", nil, bearer(old)).expectError(401, chat.CodeUnauthorized)
	fresh := mint(t, chat.User("alice"), now, now+3_600_000)
	ts.callWith("GET", "/ctx", nil, bearer(fresh)).ok(200)

	ts.callWith("PUT", "/ctx/alice/ban", map[string]any{"until": now + 60_000, "reason": "spam"}, masterSigned()).
		expect(200, fmt.Sprintf(`{"until":%d,"reason":"spam","ts":%d}`, now+60_000, now))
	ts.callWith("GET", "/ctx", nil, bearer(fresh)).expectError(403, chat.CodeUnauthorized)
	var d struct {
		Banned *struct {
			Until  int64  `json:"until"`
			Reason string `json:"reason"`
		} `json:"banned"`
	}
	ts.callWith("GET", "/ctx/alice", nil, masterSigned()).ok(200).decode(&d)
	if d.Banned == nil || d.Banned.Until != now+60_000 || d.Banned.Reason != "spam" {
		t.Fatalf("banned = %+v", d.Banned)
	}
	ts.clock.Store(now + 60_000) // the ban ran out
	ts.callWith("GET", "/ctx", nil, bearer(fresh)).ok(200)
	ts.clock.Store(now)
	ts.callWith("PUT", "/ctx/alice/ban", map[string]any{"until": -1}, masterSigned()).expectError(400, chat.CodeInvalid)
	ts.callWith("PUT", "/ctx/alice/ban", `{"until":"x"}`, masterSigned()).expectError(400, chat.CodeInvalid)
	ts.callWith("PUT", "/ctx/alice/ban", nil, masterSigned()).ok(200) // for ever
	ts.callWith("GET", "/ctx", nil, bearer(fresh)).expectError(403, chat.CodeUnauthorized)
	ts.callWith("DELETE", "/ctx/alice/ban", nil, masterSigned()).ok(204)
	ts.callWith("GET", "/ctx", nil, bearer(fresh)).ok(200)
	d.Banned = nil
	ts.callWith("GET", "/ctx/alice", nil, masterSigned()).ok(200).decode(&d)
	if d.Banned != nil {
		t.Errorf("banned after the lift: %+v", d.Banned)
	}
	ts.callWith("POST", "/ctx/alice/kick", nil, masterSigned()).expect(200, `{"kicked":0}`)
}

// Ensure the policy table covers every route the server registers, so a
// new route cannot be reached by tokens by accident (or refused by
// mistake): it also lists the public routes.
func TestPolicy_EveryRoute(t *testing.T) {
	ts := newTestServer(t)
	routes := rest.PolicyRoutes()
	for _, r := range ts.srv.App().GetRoutes(true) {
		switch r.Method {
		case "HEAD", "OPTIONS", "CONNECT", "TRACE", "PATCH":
			continue
		}
		switch r.Path {
		case "/healthz", "/readyz", "/openapi.json", "/attachments/:dir/:file", "/attachments/*":
			continue
		}
		if !routes[r.Method+" "+r.Path] {
			t.Errorf("route %s %s has no rule in the policy", r.Method, r.Path)
		}
	}
}

// Ensure the login throttle over REST: past max failures from one address
// within a minute, even good credentials are 429/5013 for a minute.
func TestThrottle_REST(t *testing.T) {
	th := chat.NewLoginThrottle(10, 0)
	clock := time.Unix(1_700_000_000, 0)
	th.Now = func() time.Time { return clock }
	ts := newTestServer(t, func(o *rest.Options) { o.Throttle = th })
	bad := map[string]string{"X-ML-AppId": testApp, "X-ML-APIKey": "wrong"}
	for i := 0; i < 11; i++ {
		ts.callWith("GET", "/ctx", nil, bad).expectError(401, chat.CodeUnauthorized)
	}
	ts.callWith("GET", "/ctx", nil, signed()).expectError(429, chat.CodeRateLimited)
	ts.callWith("GET", "/ctx", nil, bearer("not.a.token")).expectError(429, chat.CodeRateLimited)
	clock = clock.Add(time.Minute)
	ts.callWith("GET", "/ctx", nil, signed()).ok(200)
}
