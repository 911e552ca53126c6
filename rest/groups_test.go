package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/mqim/mqim/chat"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// memberList returns n ids "<prefix>0".."<prefix>n-1" as a JSON array.
func memberList(prefix string, n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("%s%d", prefix, i))
	}
	return "[" + strings.Join(ids, ",") + "]"
}

// Ensure group creation returns the id as a JSON string with 201, maps
// name to attributes.name, creates unknown users and enforces the 50-user
// limit on owner ∪ members (G1, G3).
func TestGroups_Create(t *testing.T) {
	ts := newTestServer(t)
	created := ts.now()
	gid := ts.call("POST", "/groups", `{"owner":"testuser1","members":["testuser2"]}`).expect(201, "*").str()
	if !hex32.MatchString(gid) {
		t.Fatalf("group id %q is not 32 hex", gid)
	}
	ts.call("GET", "/groups/"+gid, nil).expect(200, js(`{"owner":"testuser1","members":["testuser2"],"attributes":{},"ts":%d}`, created))
	ts.call("GET", "/ctx/testuser2", nil).expect(200, js(`{"attributes":{},"installs":[],"sessions":0,"friends":[],"groups":[%q],"rooms":[],"ts":*}`, gid))

	// SDK-JS0: top-level name; attributes merged; nested members (SDK-JS4).
	g2 := ts.call("POST", "/groups", `{"owner":"o","members":["a",["b"],[],"a",7,""],"name":"我的测试群","attributes":{"company":"maxleap","name":"ignored"}}`).expect(201, "*").str()
	ts.call("GET", "/groups/"+g2, nil).expect(200, `{"owner":"o","members":["a","b"],"attributes":{"name":"我的测试群","company":"maxleap"},"ts":*}`)

	// The owner listed among the members counts once: 50 users exactly.
	ts.call("POST", "/groups", js(`{"owner":"m0","members":%s}`, memberList("m", 50))).expect(201, "*")

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/groups", `{"members":["a"]}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/groups", nil).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/groups", `{"owner":5}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/groups", `{"owner":"ok","members":["bad id"]}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/groups", `{"owner":"ok","attributes":[1]}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/groups", `["owner"]`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/groups", js(`{"owner":"x","members":%s}`, memberList("m", 50))).expectError(400, chat.CodeMemberLimit)
		// A refused group creates no users.
		ts.call("GET", "/ctx/x", nil).expectError(404, chat.CodeNotFound)
	})
}

// Ensure group search returns {id, owner, members, attributes, ts} items
// (G2).
func TestGroups_Search(t *testing.T) {
	ts := newTestServer(t)
	a := ts.call("POST", "/groups", `{"owner":"o","attributes":{"name":"a","size":3}}`).expect(201, "*").str()
	ts.clock.Add(1)
	b := ts.call("POST", "/groups", `{"owner":"o","members":["m"],"attributes":{"name":"b","size":10}}`).expect(201, "*").str()
	ts.clock.Add(1)
	ts.call("POST", "/groups", `{"owner":"o","attributes":{"name":"c"}}`).expect(201, "*")
	ts.call("GET", "/groups?size=10", nil).expect(200, js(`[{"id":%q,"owner":"o","members":["m"],"attributes":{"name":"b","size":10},"ts":%d}]`, b, ts.now()-1))
	ts.call("GET", "/groups?_sort=-size&_limit=2", nil).expect(200, js(`[{"id":%q,"owner":*,"members":*,"attributes":*,"ts":*},{"id":%q,"owner":*,"members":*,"attributes":*,"ts":*}]`, b, a))
	ts.call("GET", "/groups?_skip=2", nil).expect(200, `[{"id":*,"owner":"o","members":[],"attributes":{"name":"c"},"ts":*}]`)
	ts.call("GET", "/groups?owner=o", nil).expect(200, `[]`) // filters apply to attributes only

	t.Run("BadSkip", func(t *testing.T) {
		ts.as(t).call("GET", "/groups?_skip=x", nil).expectError(400, chat.CodeInvalidQuery)
	})
}

// Ensure the load alias and the read errors (G3, G3b).
func TestGroups_Get(t *testing.T) {
	ts := newTestServer(t)
	gid := ts.call("POST", "/groups", `{"owner":"o","members":["m"]}`).expect(201, "*").str()
	want := `{"owner":"o","members":["m"],"attributes":{},"ts":*}`
	ts.call("POST", "/groups/"+gid, "null").expect(200, want)
	ts.call("POST", "/groups/"+gid, nil).expect(200, want)
	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/groups/0123456789abcdef0123456789abcdef", nil).expectError(404, chat.CodeNotFound)
		ts.call("POST", "/groups/0123456789abcdef0123456789abcdef", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/groups/not.an.id", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure PUT /groups changes the owner, replaces the members with existing
// users only, sets the name and keeps the limit (G4).
func TestGroups_Update(t *testing.T) {
	ts := newTestServer(t)
	gid := ts.call("POST", "/groups", `{"owner":"testuser1","members":["testuser2","testuser3"],"name":"n"}`).expect(201, "*").str()
	ts.call("PUT", "/groups/"+gid, `{"owner":"testuser2","name":"m"}`).expect(201, "")
	ts.call("GET", "/groups/"+gid, nil).expect(200, `{"owner":"testuser2","members":["testuser2","testuser3"],"attributes":{"name":"m"},"ts":*}`)
	ts.call("PUT", "/groups/"+gid, `{"name":"n"}`).expect(201, "")
	ts.call("PUT", "/groups/"+gid, `{"members":["testuser1",["testuser3"]]}`).expect(201, "")
	ts.call("GET", "/groups/"+gid, nil).expect(200, `{"owner":"testuser2","members":["testuser1","testuser3"],"attributes":{"name":"n"},"ts":*}`)
	// The owner stays a member implicitly: an empty list leaves only the owner.
	ts.call("PUT", "/groups/"+gid, `{"members":[]}`).expect(201, "")
	ts.call("GET", "/ctx/testuser2/groups", nil).expect(200, js(`[%q]`, gid))
	ts.call("GET", "/ctx/testuser3/groups", nil).expect(200, `[]`)
	ts.call("PUT", "/groups/"+gid, nil).expect(201, "")

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("PUT", "/groups/"+gid, `{"members":["testuser1","ghost"]}`).expectError(404, chat.CodeNotFound)
		ts.call("PUT", "/groups/"+gid, `{"owner":"ghost"}`).expectError(404, chat.CodeNotFound)
		ts.call("PUT", "/groups/"+gid, `{"owner":""}`).expectError(400, chat.CodeInvalid)
		ts.call("PUT", "/groups/"+gid, `{"owner":["a"]}`).expectError(400, chat.CodeInvalid)
		ts.call("PUT", "/groups/0123456789abcdef0123456789abcdef", `{"owner":"testuser1"}`).expectError(404, chat.CodeNotFound)
		for i := 0; i < 50; i++ {
			ts.call("POST", fmt.Sprintf("/ctx/m%d/attributes", i), nil).expect(201, "")
		}
		ts.call("PUT", "/groups/"+gid, js(`{"members":%s}`, memberList("m", 50))).expectError(400, chat.CodeMemberLimit)
		// Nothing changed.
		ts.call("GET", "/groups/"+gid, nil).expect(200, `{"owner":"testuser2","members":[],"attributes":{"name":"n"},"ts":*}`)
	})
}

// Ensure PUT {"name":"renamed"} renames a group and a room the way their
// creation stores a name, as attributes.name (docs/maxim.md §11 A4): the
// other attributes, the owner and the members stay, and a search by name
// finds the new one.
func TestLists_UpdateName(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct{ path, create, before, after string }{
		{"/groups", `{"owner":"o","members":["a"],"name":"old","attributes":{"topic":"go"}}`,
			`{"owner":"o","members":["a"],"attributes":{"name":"old","topic":"go"},"ts":*}`,
			`{"owner":"o","members":["a"],"attributes":{"name":"renamed","topic":"go"},"ts":*}`},
		{"/rooms", `{"members":["a"],"name":"old","attributes":{"topic":"go"}}`,
			`{"members":["a"],"attributes":{"name":"old","topic":"go"},"ts":*}`,
			`{"members":["a"],"attributes":{"name":"renamed","topic":"go"},"ts":*}`},
	} {
		t.Run(tc.path[1:], func(t *testing.T) {
			ts := ts.as(t)
			id := ts.call("POST", tc.path, tc.create).expect(201, "*").str()
			ts.call("GET", tc.path+"/"+id, nil).expect(200, tc.before)
			ts.call("PUT", tc.path+"/"+id, `{"name":"renamed"}`).expect(201, "")
			ts.call("GET", tc.path+"/"+id, nil).expect(200, tc.after)
			ts.call("GET", tc.path+"/"+id+"/attributes/name", nil).expect(200, `"renamed"`)
			hits := ts.call("GET", tc.path+"?name=renamed", nil).expect(200, "*")
			var found []struct{ ID string }
			if err := json.Unmarshal(hits.Body, &found); err != nil || len(found) != 1 || found[0].ID != id {
				t.Fatalf("search by the new name = %s, want %s", hits.Body, id)
			}
			ts.call("GET", tc.path+"?name=old", nil).expect(200, `[]`)
			// A null name changes nothing, like an absent one.
			ts.call("PUT", tc.path+"/"+id, `{"name":null}`).expect(201, "")
			ts.call("GET", tc.path+"/"+id, nil).expect(200, tc.after)
		})
	}
}

// Ensure deleting a group removes it, its index entries and its history,
// and is idempotent (G5).
func TestGroups_Delete(t *testing.T) {
	ts := newTestServer(t)
	gid := ts.call("POST", "/groups", `{"owner":"o","members":["m"]}`).expect(201, "*").str()
	ts.seed(chat.GroupConv(gid), "o", "hello", ts.now()-1)
	ts.call("GET", "/groups/"+gid+"/chats", nil).expect(200, `[*]`)
	ts.call("DELETE", "/groups/"+gid, nil).expect(204, "")
	ts.call("GET", "/groups/"+gid, nil).expectError(404, chat.CodeNotFound)
	ts.call("GET", "/ctx/m/groups", nil).expect(200, `[]`)
	ts.call("GET", "/ctx/o/groups", nil).expect(200, `[]`)
	recs, err := ts.db.Records(context.Background(), chat.GroupConv(gid), ts.now()+1, 0, 100)
	if err != nil || len(recs) != 0 {
		t.Fatalf("records after delete = %v, %v; want none", recs, err)
	}
	ts.call("DELETE", "/groups/"+gid, nil).expect(204, "")

	t.Run("BadID", func(t *testing.T) {
		ts.as(t).call("DELETE", "/groups/bad%20id", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure group attributes (G6–G10).
func TestGroups_Attributes(t *testing.T) {
	ts := newTestServer(t)
	gid := ts.call("POST", "/groups", `{"owner":"o","name":"周杰伦粉丝群"}`).expect(201, "*").str()
	p := "/groups/" + gid + "/attributes"
	// SDK-JS4 follows a create with an attributes POST without a body.
	ts.call("POST", p, nil).expect(201, "")
	ts.call("POST", p, `{"description":"...","score":5}`).expect(201, "")
	ts.call("GET", p, nil).expect(200, `{"name":"周杰伦粉丝群","description":"...","score":5}`)
	ts.call("GET", p+"/name", nil).expect(200, `"周杰伦粉丝群"`)
	ts.call("GET", p+"/score", nil).expect(200, `5`)
	ts.call("PUT", p, `{"name":"new"}`).expect(201, "")
	ts.call("GET", p, nil).expect(200, `{"name":"new"}`)
	ts.call("DELETE", p, nil).expect(204, "")
	ts.call("GET", p, nil).expect(200, `{}`)
	ts.call("GET", "/groups/"+gid, nil).expect(200, `{"owner":"o","members":[],"attributes":{},"ts":*}`)

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		none := "/groups/0123456789abcdef0123456789abcdef/attributes"
		ts.call("POST", none, `{"a":1}`).expectError(404, chat.CodeNotFound)
		ts.call("PUT", none, `{"a":1}`).expectError(404, chat.CodeNotFound)
		ts.call("GET", none, nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", none+"/a", nil).expectError(404, chat.CodeNotFound)
		ts.call("DELETE", none, nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", p+"/missing", nil).expectError(404, chat.CodeNotFound)
		ts.call("POST", p, `[]`).expectError(400, chat.CodeInvalid)
	})
}

// Ensure member add and remove, in bulk (DELETE with a JSON body) and one
// at a time, with existing users only, the limit, and the owner guard
// (G11–G14).
func TestGroups_Members(t *testing.T) {
	ts := newTestServer(t)
	gid := ts.call("POST", "/groups", `{"owner":"testuser1","members":["testuser2"]}`).expect(201, "*").str()
	for _, u := range []string{"testuser3", "testuser4", "testuser5"} {
		ts.call("POST", "/ctx/"+u+"/attributes", nil).expect(201, "")
	}
	m := "/groups/" + gid + "/members"
	get := func(want string) {
		t.Helper()
		ts.call("GET", "/groups/"+gid, nil).expect(200, `{"owner":"testuser1","members":`+want+`,"attributes":{},"ts":*}`)
	}
	// G11: SDK-JS4 appendMembers sends ["a",[]] and ["a",["b"]].
	ts.call("POST", m, `{"members":["testuser3",[]]}`).expect(201, "")
	ts.call("POST", m, `{"members":["testuser2",["testuser4"],"testuser1"]}`).expect(201, "")
	get(`["testuser2","testuser3","testuser4"]`)
	// G12: DELETE with a JSON body; non-members are ignored.
	ts.call("DELETE", m, `{"members":["testuser3","nobody"]}`).expect(204, "")
	get(`["testuser2","testuser4"]`)
	// G13/G14: one member in the path.
	ts.call("POST", m+"/testuser5", nil).expect(201, "")
	get(`["testuser2","testuser4","testuser5"]`)
	ts.call("DELETE", m+"/testuser2", nil).expect(204, "")
	ts.call("DELETE", m+"/testuser2", nil).expect(204, "")
	get(`["testuser4","testuser5"]`)
	ts.call("GET", "/ctx/testuser2/groups", nil).expect(200, `[]`)

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		none := "/groups/0123456789abcdef0123456789abcdef/members"
		ts.call("POST", m, `{"members":["testuser3","ghost"]}`).expectError(404, chat.CodeNotFound)
		ts.call("POST", m+"/ghost", nil).expectError(404, chat.CodeNotFound)
		ts.call("POST", none, `{"members":["testuser3"]}`).expectError(404, chat.CodeNotFound)
		ts.call("DELETE", none, `{"members":["testuser3"]}`).expectError(404, chat.CodeNotFound)
		ts.call("POST", m, `{"members":[]}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", m, `{"members":["bad id"]}`).expectError(400, chat.CodeInvalid)
		ts.call("POST", m, `"testuser3"`).expectError(400, chat.CodeInvalid)
		// The owner cannot be removed, alone or among others.
		ts.call("DELETE", m, `{"members":["testuser4","testuser1"]}`).expectError(409, chat.CodeConflict)
		ts.call("DELETE", m+"/testuser1", nil).expectError(409, chat.CodeConflict)
		get(`["testuser4","testuser5"]`)
		// 50 users in all: owner + 2 + 47 fit, one more does not.
		for i := 0; i < 48; i++ {
			ts.call("POST", fmt.Sprintf("/ctx/x%d/attributes", i), nil).expect(201, "")
		}
		ts.call("POST", m, js(`{"members":%s}`, memberList("x", 47))).expect(201, "")
		ts.call("POST", m+"/x47", nil).expectError(400, chat.CodeMemberLimit)
		ts.call("POST", m+"/testuser4", nil).expect(201, "") // already in: no change, no limit error
	})
}

// Ensure group history is the 7-day window, ascending, exclusive ts, and
// that DELETE /groups/{id}/chats wipes it (G15, G16).
func TestGroups_History(t *testing.T) {
	ts := newTestServer(t)
	gid := ts.call("POST", "/groups", `{"owner":"o","members":["m"]}`).expect(201, "*").str()
	now := ts.now()
	conv := chat.GroupConv(gid)
	ts.seed(conv, "o", "expired", now-week-1)
	r1 := ts.seed(conv, "m", "one", now-2000)
	r2 := ts.seed(conv, "o", "two", now-1000)
	c := "/groups/" + gid + "/chats"
	ts.call("GET", c, nil).expect(200, js(`[{"speaker":"m","content":{"media":0,"body":"one"},"ts":%d,"seq":2},
		{"speaker":"o","content":{"media":0,"body":"two"},"ts":%d,"seq":3}]`, r1.TS, r2.TS))
	ts.call("GET", js("%s?ts=%d&limit=5", c, r2.TS), nil).expect(200, js(`[{"speaker":"m","content":{"media":0,"body":"one"},"ts":%d,"seq":2}]`, r1.TS))
	ts.call("GET", "/ctx/o/groups?detail", nil).expect(200, js(`[{"id":%q,"owner":"o","members":["m"],"attributes":{},"ts":*,
		"recent":{"speaker":"o","content":{"media":0,"body":"two"},"ts":%d}}]`, gid, r2.TS))
	ts.call("DELETE", c, nil).expect(204, "")
	ts.call("GET", c, nil).expect(200, `[]`)
	ts.call("GET", "/ctx/o/groups?detail", nil).expect(200, js(`[{"id":%q,"owner":"o","members":["m"],"attributes":{},"ts":*}]`, gid))

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		none := "/groups/0123456789abcdef0123456789abcdef/chats"
		ts.call("GET", none, nil).expectError(404, chat.CodeNotFound)
		ts.call("DELETE", none, nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", c+"?ts=x", nil).expectError(400, chat.CodeInvalid)
	})
}
