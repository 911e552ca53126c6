package rest_test

import (
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure passengers are created with a generated or given id, updated by
// merging, and read back as bare attributes (P1, P2, P2b).
func TestPassengers_SaveGet(t *testing.T) {
	ts := newTestServer(t)
	pid := ts.call("POST", "/passengers", `{"name":"王尼玛","qq":88888888,"age":28}`).expect(201, "*").str()
	if !hex32.MatchString(pid) {
		t.Fatalf("passenger id %q is not 32 hex", pid)
	}
	ts.call("GET", "/passengers/"+pid, nil).expect(200, `{"name":"王尼玛","qq":88888888,"age":28}`)
	ts.call("POST", "/passengers/"+pid, "null").expect(200, `{"name":"王尼玛","qq":88888888,"age":28}`)
	// Same id: merge; id is not an attribute.
	ts.call("POST", "/passengers", js(`{"id":%q,"age":29,"city":"sz"}`, pid)).expect(201, js(`%q`, pid))
	ts.call("GET", "/passengers/"+pid, nil).expect(200, `{"name":"王尼玛","qq":88888888,"age":29,"city":"sz"}`)
	// Unknown id: created with it. Trailing slash (SDK-JS0).
	ts.call("POST", "/passengers/", `{"id":"visitor-1"}`).expect(201, `"visitor-1"`)
	ts.call("GET", "/passengers/visitor-1", nil).expect(200, `{}`)
	// Passengers are not users.
	ts.call("GET", "/ctx/visitor-1", nil).expectError(404, chat.CodeNotFound)
	ts.call("GET", "/ctx?city=sz", nil).expect(200, `[]`)

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/passengers", `{"id":"bad id"}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/passengers", `{"id":42}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/passengers", `[]`).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/passengers/nobody", nil).expectError(404, chat.CodeNotFound)
		ts.call("POST", "/passengers/nobody", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/passengers/no.body", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure passenger-user history is kept for a year (P3).
func TestPassengers_History(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/passengers", `{"id":"p1"}`).expect(201, `"p1"`)
	now := ts.now()
	conv := chat.PassengerConv("p1", "staff")
	ts.seed(conv, "p1", "over a year", now-366*day)
	r1 := ts.seed(conv, "p1", "hello", now-100*day)
	r2 := ts.seed(conv, "staff", "hi, how can I help?", now-1)
	ts.call("GET", "/passengers/p1/chats/staff", nil).expect(200, js(`[
		{"speaker":"p1","content":{"media":0,"body":"hello"},"ts":%d,"seq":2},
		{"speaker":"staff","content":{"media":0,"body":"hi, how can I help?"},"ts":%d,"seq":3}]`, r1.TS, r2.TS))
	ts.call("GET", "/passengers/p1/chats/staff?limit=1", nil).expect(200, js(`[{"speaker":"staff","content":*,"ts":%d,"seq":3}]`, r2.TS))
	ts.call("GET", "/passengers/p1/chats/other", nil).expect(200, `[]`)

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/passengers/ghost/chats/staff", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/passengers/p1/chats/bad.id", nil).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/passengers/p1/chats/staff?ts=-", nil).expectError(400, chat.CodeInvalid)
	})
}
