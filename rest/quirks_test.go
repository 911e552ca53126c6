package rest_test

import (
	"strings"
	"testing"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
)

// Ensure the client quirks of docs/maxim.md §8 on routes of every shape:
// trailing slashes, Content-Type: application/json on GET and DELETE,
// URL-encoded ids, valueless flags.
func TestQuirks(t *testing.T) {
	ts := newTestServer(t)
	json := map[string]string{"Content-Type": "application/json; charset=utf-8"}
	hdr := func() map[string]string {
		h := signed()
		for k, v := range json {
			h[k] = v
		}
		return h
	}

	t.Run("TrailingSlash", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/ctx/u1/attributes/", `{"a":1}`).expect(201, "")
		ts.call("GET", "/ctx/u1/attributes/", nil).expect(200, `{"a":1}`)
		ts.call("GET", "/ctx/u1/attributes/a/", nil).expect(200, `1`)
		ts.call("GET", "/ctx/u1/", nil).expect(200, "*")
		ts.call("POST", "/ctx/u1/friends/u2/", nil).expect(201, "*")
		ts.call("GET", "/ctx/u1/friends/", nil).expect(200, `["u2"]`)
		ts.call("GET", "/ctx/u1/friends/u2/chats/", nil).expect(200, `[]`)
		gid := ts.call("POST", "/groups/", `{"owner":"u1"}`).expect(201, "*").str()
		ts.call("POST", "/groups/"+gid+"/members/u2/", nil).expect(201, "")
		ts.call("GET", "/groups/"+gid+"/", nil).expect(200, `{"owner":"u1","members":["u2"],"attributes":{},"ts":*}`)
		ts.call("GET", "/groups/?_limit=1", nil).expect(200, `[*]`)
		ts.call("DELETE", "/ctx/u1/attributes/", nil).expect(204, "")
		rid := ts.call("POST", "/rooms/", nil).expect(201, "*").str()
		ts.call("DELETE", "/rooms/"+rid+"/", nil).expect(204, "")
		ts.call("GET", "/ctx/", nil).expect(200, "*")
	})

	t.Run("JSONContentTypeOnGetAndDelete", func(t *testing.T) {
		ts := ts.as(t)
		ts.callWith("GET", "/ctx/u1/friends?detail", nil, hdr()).expect(200, `[{"id":"u2","online":false}]`)
		ts.callWith("GET", "/ctx/u1", nil, hdr()).expect(200, "*")
		ts.callWith("DELETE", "/ctx/u1/friends/u3", nil, hdr()).expect(204, "")
		ts.callWith("DELETE", "/ctx/u1/attributes", nil, hdr()).expect(204, "")
	})

	t.Run("EncodedIDs", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("PUT", "/ctx/test%5Fuser%2D1/attributes", `{"k":"v"}`).expect(201, "")
		ts.call("GET", "/ctx/test_user-1/attributes/k", nil).expect(200, `"v"`)
		ts.call("GET", "/ctx/%74est_user-1/attributes/%6B", nil).expect(200, `"v"`)
		ts.call("GET", "/ctx/test_user-1/attributes/%zz", nil).expectError(400, chat.CodeInvalid)
	})

	t.Run("AttributeNamesWithDots", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/ctx/u9/attributes", `{"a.b":1,"with space":2,"名字":"x"}`).expect(201, "")
		ts.call("GET", "/ctx/u9/attributes/a.b", nil).expect(200, `1`)
		ts.call("GET", "/ctx/u9/attributes/with%20space", nil).expect(200, `2`)
		ts.call("GET", "/ctx/u9/attributes/%E5%90%8D%E5%AD%97", nil).expect(200, `"x"`)
	})

	t.Run("ValuelessFlagFirst", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/ctx/u1/friends?detail&x=y", nil).expect(200, `[{"id":"u2","online":false}]`)
		ts.call("GET", "/ctx/u1/groups?detail=", nil).expect(200, `[{"id":*,"owner":"u1","members":["u2"],"attributes":{},"ts":*}]`)
	})

	t.Run("EmptyAttributeBodies", func(t *testing.T) {
		ts := ts.as(t)
		for _, b := range []any{nil, "", "null", "  \n"} {
			ts.call("POST", "/ctx/u1/attributes", b).expect(201, "")
			ts.call("PUT", "/ctx/u1/attributes", b).expect(201, "")
		}
		ts.call("GET", "/ctx/u1/attributes", nil).expect(200, `{}`)
	})
}

// Ensure a body a handler ignores (POST-as-GET), or refuses as too large,
// does not spill into the next request on the same keep-alive connection.
func TestServer_BodyNotLeftOnConnection(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/ctx/u1/attributes", `{"a":1}`).expect(201, "")
	big := `{"pad":"` + strings.Repeat("x", 200<<10) + `"}`
	for i := 0; i < 3; i++ {
		ts.call("POST", "/ctx/u1", big).expect(200, "*")
		ts.call("GET", "/ctx/u1/attributes/a", nil).expect(200, `1`)
		ts.call("DELETE", "/ctx/u1/friends/u2", big).expect(204, "")
		ts.call("GET", "/ctx/u1/attributes/a", nil).expect(200, `1`)
		// Chunked bodies, read by the handler or not.
		ts.call("POST", "/ctx/u1/attributes", chunked(`{"b":2}`)).expect(201, "")
		ts.call("POST", "/ctx/u1", chunked(big)).expect(200, "*")
		ts.call("GET", "/ctx/u1/attributes/b", nil).expect(200, `2`)
	}
	ts.call("POST", "/ctx/u1/attributes", chunked(`{"c":`+strings.Repeat(" ", 2<<20)+`3}`)).expectError(413, chat.CodeTooLong)
	ts.call("GET", "/ctx/u1/attributes/b", nil).expect(200, `2`)
}

// Ensure an oversized JSON body is refused with 413/5010 and the server
// keeps serving.
func TestServer_BodyTooLarge(t *testing.T) {
	ts := newTestServer(t, func(o *rest.Options) { o.BodyLimit = 4096; o.UploadLimit = 1 << 20 })
	for _, n := range []int{5000, 64 << 10, 2 << 20} {
		ts.call("POST", "/ctx/u1/attributes", `{"a":"`+strings.Repeat("x", n)+`"}`).expectError(413, chat.CodeTooLong)
		ts.call("PUT", "/ctx/u1/attributes", `{"a":1}`).expect(201, "")
	}
}
