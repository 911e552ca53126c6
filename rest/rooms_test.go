package rest_test

import (
	"fmt"
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure room creation (R1), reading (R3, R3b) and the 1000-member limit.
func TestRooms_CreateGet(t *testing.T) {
	ts := newTestServer(t)
	created := ts.now()
	rid := ts.call("POST", "/rooms", `{"members":["testuser1","testuser2"]}`).expect(201, "*").str()
	if !hex32.MatchString(rid) {
		t.Fatalf("room id %q is not 32 hex", rid)
	}
	want := js(`{"members":["testuser1","testuser2"],"attributes":{},"ts":%d}`, created)
	ts.call("GET", "/rooms/"+rid, nil).expect(200, want)
	ts.call("POST", "/rooms/"+rid, "null").expect(200, want)
	ts.call("GET", "/ctx/testuser2/rooms", nil).expect(200, js(`[%q]`, rid))
	// No body at all, name at top level (DOC-JS addRoom), nested members.
	empty := ts.call("POST", "/rooms", nil).expect(201, "*").str()
	ts.call("GET", "/rooms/"+empty, nil).expect(200, `{"members":[],"attributes":{},"ts":*}`)
	named := ts.call("POST", "/rooms", `{"name":"lobby","members":["a",["b"]],"attributes":{"topic":"go"}}`).expect(201, "*").str()
	ts.call("GET", "/rooms/"+named, nil).expect(200, `{"members":["a","b"],"attributes":{"name":"lobby","topic":"go"},"ts":*}`)
	ts.call("POST", "/rooms", js(`{"members":%s}`, memberList("r", 1000))).expect(201, "*")

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/rooms", js(`{"members":%s}`, memberList("q", 1001))).expectError(400, chat.CodeMemberLimit)
		ts.call("POST", "/rooms", `{"members":["no way"]}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/rooms", `{"attributes":"x"}`).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/rooms/0123456789abcdef0123456789abcdef", nil).expectError(404, chat.CodeNotFound)
		ts.call("POST", "/rooms/0123456789abcdef0123456789abcdef", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/rooms/bad.id", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure room search items are {id, members, attributes, ts} (R2).
func TestRooms_Search(t *testing.T) {
	ts := newTestServer(t)
	a := ts.call("POST", "/rooms", `{"name":"alpha","attributes":{"level":1}}`).expect(201, "*").str()
	ts.clock.Add(1)
	b := ts.call("POST", "/rooms", `{"name":"beta","members":["u"],"attributes":{"level":2}}`).expect(201, "*").str()
	ts.call("GET", "/rooms?name=beta", nil).expect(200, js(`[{"id":%q,"members":["u"],"attributes":{"name":"beta","level":2},"ts":%d}]`, b, ts.now()))
	ts.call("GET", "/rooms?_sort=-level", nil).expect(200, js(`[{"id":%q,"members":*,"attributes":*,"ts":*},{"id":%q,"members":*,"attributes":*,"ts":*}]`, b, a))
	ts.call("GET", "/rooms?_limit=1", nil).expect(200, js(`[{"id":%q,"members":[],"attributes":*,"ts":*}]`, a))
	t.Run("BadLimit", func(t *testing.T) {
		ts.as(t).call("GET", "/rooms?_limit=1.5", nil).expectError(400, chat.CodeInvalidQuery)
	})
}

// Ensure PUT /rooms replaces members (existing users only) and sets the
// name (R4).
func TestRooms_Update(t *testing.T) {
	ts := newTestServer(t)
	rid := ts.call("POST", "/rooms", `{"members":["a","b"],"attributes":{"topic":"go"}}`).expect(201, "*").str()
	ts.call("PUT", "/rooms/"+rid, `{"name":"test_group333","members":["b"]}`).expect(201, "")
	ts.call("GET", "/rooms/"+rid, nil).expect(200, `{"members":["b"],"attributes":{"topic":"go","name":"test_group333"},"ts":*}`)
	ts.call("GET", "/ctx/a/rooms", nil).expect(200, `[]`)
	ts.call("PUT", "/rooms/"+rid, `{"name":"only the name"}`).expect(201, "")
	ts.call("GET", "/rooms/"+rid, nil).expect(200, `{"members":["b"],"attributes":{"topic":"go","name":"only the name"},"ts":*}`)

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("PUT", "/rooms/"+rid, `{"members":["ghost"]}`).expectError(404, chat.CodeNotFound)
		ts.call("PUT", "/rooms/0123456789abcdef0123456789abcdef", `{"name":"x"}`).expectError(404, chat.CodeNotFound)
		ts.call("PUT", "/rooms/"+rid, `[]`).expectError(400, chat.CodeInvalid)
	})
}

// Ensure room deletion is idempotent and clears the member index (R5).
func TestRooms_Delete(t *testing.T) {
	ts := newTestServer(t)
	rid := ts.call("POST", "/rooms", `{"members":["a"]}`).expect(201, "*").str()
	ts.call("DELETE", "/rooms/"+rid, nil).expect(204, "")
	ts.call("GET", "/rooms/"+rid, nil).expectError(404, chat.CodeNotFound)
	ts.call("GET", "/ctx/a/rooms", nil).expect(200, `[]`)
	ts.call("DELETE", "/rooms/"+rid, nil).expect(204, "")
	t.Run("BadID", func(t *testing.T) {
		ts.as(t).call("DELETE", "/rooms/a%2Fb", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure room attributes (R6–R10).
func TestRooms_Attributes(t *testing.T) {
	ts := newTestServer(t)
	rid := ts.call("POST", "/rooms", `{"name":"lobby"}`).expect(201, "*").str()
	p := "/rooms/" + rid + "/attributes"
	ts.call("POST", p, "").expect(201, "")
	ts.call("POST", p, `{"open":true}`).expect(201, "")
	ts.call("GET", p, nil).expect(200, `{"name":"lobby","open":true}`)
	ts.call("GET", p+"/open", nil).expect(200, `true`)
	ts.call("PUT", p, `{"x":[1]}`).expect(201, "")
	ts.call("GET", p, nil).expect(200, `{"x":[1]}`)
	ts.call("DELETE", p, nil).expect(204, "")
	ts.call("GET", p, nil).expect(200, `{}`)
	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		none := "/rooms/0123456789abcdef0123456789abcdef/attributes"
		ts.call("POST", none, `{}`).expectError(404, chat.CodeNotFound)
		ts.call("PUT", none, `{}`).expectError(404, chat.CodeNotFound)
		ts.call("GET", none, nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", p+"/x", nil).expectError(404, chat.CodeNotFound)
		ts.call("DELETE", none, nil).expectError(404, chat.CodeNotFound)
	})
}

// Ensure room member add and remove (R11–R14); rooms have no owner.
func TestRooms_Members(t *testing.T) {
	ts := newTestServer(t)
	rid := ts.call("POST", "/rooms", `{"members":["a"]}`).expect(201, "*").str()
	for _, u := range []string{"b", "c", "d"} {
		ts.call("POST", "/ctx/"+u+"/attributes", nil).expect(201, "")
	}
	m := "/rooms/" + rid + "/members"
	get := func(want string) {
		t.Helper()
		ts.call("GET", "/rooms/"+rid, nil).expect(200, `{"members":`+want+`,"attributes":{},"ts":*}`)
	}
	ts.call("POST", m, `{"members":["b",["c"],"a"]}`).expect(201, "")
	get(`["a","b","c"]`)
	ts.call("DELETE", m, `{"members":["a","zzz"]}`).expect(204, "")
	get(`["b","c"]`)
	ts.call("POST", m+"/d", nil).expect(201, "")
	ts.call("DELETE", m+"/b", nil).expect(204, "")
	get(`["c","d"]`)
	ts.call("GET", "/ctx/d/rooms", nil).expect(200, js(`[%q]`, rid))

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		none := "/rooms/0123456789abcdef0123456789abcdef/members"
		ts.call("POST", m, `{"members":["ghost"]}`).expectError(404, chat.CodeNotFound)
		ts.call("POST", m+"/ghost", nil).expectError(404, chat.CodeNotFound)
		ts.call("POST", none, `{"members":["c"]}`).expectError(404, chat.CodeNotFound)
		ts.call("DELETE", none, `{"members":["c"]}`).expectError(404, chat.CodeNotFound)
		ts.call("DELETE", none+"/c", nil).expectError(404, chat.CodeNotFound)
		ts.call("DELETE", m, nil).expectError(400, chat.CodeInvalid)
		ts.call("DELETE", m+"/bad%20id", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure the room limit applies to member adds.
func TestRooms_MemberLimit(t *testing.T) {
	ts := newTestServer(t)
	rid := ts.call("POST", "/rooms", js(`{"members":%s}`, memberList("r", 1000))).expect(201, "*").str()
	ts.call("POST", "/ctx/extra/attributes", nil).expect(201, "")
	ts.call("POST", fmt.Sprintf("/rooms/%s/members/extra", rid), nil).expectError(400, chat.CodeMemberLimit)
	ts.call("POST", fmt.Sprintf("/rooms/%s/members/r5", rid), nil).expect(201, "")
}
