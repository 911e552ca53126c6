package rest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mqim/mqim/chat"
)

const (
	day  = int64(24 * 60 * 60 * 1000)
	week = 7 * day
)

// Ensure user search filters on the text form of attributes, sorts with
// _sort (ts/id as record fields, "-" descending) and pages with
// _skip/_limit (U1).
func TestUsers_Search(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/ctx/laowang/attributes", `{"name":"隔壁老王","gender":"male","age":46,"city":"shanghai"}`).expect(201, "")
	ts.clock.Add(1)
	ts.call("POST", "/ctx/xiaoli/attributes", `{"name":"小李","age":30,"city":"shanghai","vip":true}`).expect(201, "")
	ts.clock.Add(1)
	ts.call("POST", "/ctx/amy/attributes", `{"age":4.5,"city":"beijing"}`).expect(201, "")
	ts.clock.Add(1)
	ts.call("POST", "/ctx/nobody/attributes", `{"meta":{"city":"shanghai"}}`).expect(201, "")
	ts.online("xiaoli", "s1")

	ts.call("GET", "/ctx?age=46", nil).expect(200, js(`[{"id":"laowang","online":false,"ts":%d,
		"attributes":{"name":"隔壁老王","gender":"male","age":46,"city":"shanghai"}}]`, ts.now()-3))
	ts.call("GET", "/ctx?age=4.5", nil).expect(200, `[{"id":"amy","online":false,"ts":"*","attributes":"*"}]`)
	ts.call("GET", "/ctx?vip=true&city=shanghai", nil).expect(200, `[{"id":"xiaoli","online":true,"ts":"*","attributes":"*"}]`)
	// Unencoded UTF-8 in the query (SDK-JS4 does not encode values).
	ts.call("GET", "/ctx?name=小李", nil).expect(200, `[{"id":"xiaoli","online":true,"ts":"*","attributes":"*"}]`)
	ts.call("GET", "/ctx?name=%E5%B0%8F%E6%9D%8E", nil).expect(200, `[{"id":"xiaoli","online":true,"ts":"*","attributes":"*"}]`)
	// Default order: ts ascending.
	ids := func(r *response) []string {
		var out []struct{ ID string }
		r.decode(&out)
		s := make([]string, len(out))
		for i, u := range out {
			s[i] = u.ID
		}
		return s
	}
	if got := fmt.Sprint(ids(ts.call("GET", "/ctx", nil).expect(200, "[*,*,*,*]"))); got != "[laowang xiaoli amy nobody]" {
		t.Errorf("default order = %s", got)
	}
	// Objects never match, even when their text would.
	ts.call("GET", "/ctx?meta=%7B%22city%22%3A%22shanghai%22%7D", nil).expect(200, `[]`)
	if got := fmt.Sprint(ids(ts.call("GET", "/ctx?city=shanghai&_sort=-age", nil).expect(200, "[*,*]"))); got != "[laowang xiaoli]" {
		t.Errorf("_sort=-age = %s", got)
	}
	// Users without the sort attribute come last in both directions.
	if got := fmt.Sprint(ids(ts.call("GET", "/ctx?_sort=age", nil).expect(200, "[*,*,*,*]"))); got != "[amy xiaoli laowang nobody]" {
		t.Errorf("_sort=age = %s", got)
	}
	if got := fmt.Sprint(ids(ts.call("GET", "/ctx?_sort=-id", nil).expect(200, "[*,*,*,*]"))); got != "[xiaoli nobody laowang amy]" {
		t.Errorf("_sort=-id = %s", got)
	}
	if got := fmt.Sprint(ids(ts.call("GET", "/ctx?_sort=-ts&_skip=1&_limit=2", nil).expect(200, "[*,*]"))); got != "[amy xiaoli]" {
		t.Errorf("_sort=-ts&_skip=1&_limit=2 = %s", got)
	}
	// _limit ≤ 0 takes the default, negative _skip is 0, other _params are reserved.
	ts.call("GET", "/ctx?_limit=0&_skip=-5&_foo=bar", nil).expect(200, "[*,*,*,*]")
	ts.call("GET", "/ctx?city=nowhere", nil).expect(200, `[]`)

	t.Run("BadLimit", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/ctx?_limit=ten", nil).expectError(400, chat.CodeInvalidQuery)
	})
}

// Ensure _limit is clamped to 100.
func TestUsers_SearchLimitClamp(t *testing.T) {
	ts := newTestServer(t)
	for i := 0; i < 105; i++ {
		ts.call("PUT", fmt.Sprintf("/ctx/u%03d/attributes", i), `{"k":1}`).expect(201, "")
	}
	var out []any
	ts.call("GET", "/ctx?k=1&_limit=1000", nil).ok(200).decode(&out)
	if len(out) != 100 {
		t.Fatalf("len = %d, want 100", len(out))
	}
	ts.call("GET", "/ctx?k=1", nil).decode(&out)
	if len(out) != 20 {
		t.Fatalf("default len = %d, want 20", len(out))
	}
}

// Ensure the user detail lists attributes, installs, live sessions,
// friends, groups (owned ones too) and rooms, with no id (U2, U2b).
func TestUsers_Detail(t *testing.T) {
	ts := newTestServer(t)
	created := ts.now()
	ts.call("POST", "/ctx/alice/attributes", `{"key1":"value1"}`).expect(201, "")
	ts.call("POST", "/ctx/alice/friends/bob", nil).expect(201, "*")
	own := ts.call("POST", "/groups", `{"owner":"alice","members":["bob"]}`).expect(201, "*").str()
	member := ts.call("POST", "/groups", `{"owner":"bob","members":["alice"]}`).expect(201, "*").str()
	room := ts.call("POST", "/rooms", `{"members":["alice"]}`).expect(201, "*").str()
	err := ts.db.Update(context.Background(), func(tx chat.Tx) error {
		u, err := tx.User("alice")
		if err != nil {
			return err
		}
		u.Installs = []string{"installid1"}
		return tx.PutUser(u)
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.online("alice", "phone")
	ts.online("alice", "tab")

	var groups []string
	r := ts.call("GET", "/ctx/alice", nil).expect(200, js(`{"attributes":{"key1":"value1"},"installs":["installid1"],"sessions":2,
		"friends":["bob"],"groups":"*","rooms":[%q],"ts":%d}`, room, created))
	var d struct{ Groups []string }
	r.decode(&d)
	groups = d.Groups
	if len(groups) != 2 || !(groups[0] == own || groups[1] == own) || !(groups[0] == member || groups[1] == member) {
		t.Errorf("groups = %v, want %s and %s", groups, own, member)
	}

	// A user created implicitly has empty collections, not null.
	ts.call("GET", "/ctx/carol", nil).expectError(404, chat.CodeNotFound)
	ts.call("POST", "/ctx/carol/attributes", nil).expect(201, "")
	ts.call("GET", "/ctx/carol", nil).expect(200, `{"attributes":{},"installs":[],"sessions":0,"friends":[],"groups":[],"rooms":[],"ts":"*"}`)

	t.Run("PostAlias", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/ctx/carol", "null").expect(200, `{"attributes":{},"installs":[],"sessions":0,"friends":[],"groups":[],"rooms":[],"ts":"*"}`)
		ts.call("POST", "/ctx/carol", nil).expect(200, `{"attributes":{},"installs":[],"sessions":0,"friends":[],"groups":[],"rooms":[],"ts":"*"}`)
		ts.call("POST", "/ctx/nobody", nil).expectError(404, chat.CodeNotFound)
	})
	t.Run("BadID", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/ctx/bad.id", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure attribute merge, replace, read, read one and clear (U3–U7).
func TestUsers_Attributes(t *testing.T) {
	ts := newTestServer(t)
	// U3 creates the user and merges.
	ts.call("POST", "/ctx/u1/attributes", `{"name":"隔壁老王","age":46,"nested":{"a":[1,2]}}`).expect(201, "")
	ts.call("POST", "/ctx/u1/attributes", `{"age":47,"city":"shanghai","gone":null}`).expect(201, "")
	ts.call("GET", "/ctx/u1/attributes", nil).expect(200, `{"name":"隔壁老王","age":47,"nested":{"a":[1,2]},"city":"shanghai","gone":null}`)
	// U6: the raw JSON value; a stored null is 200 null.
	ts.call("GET", "/ctx/u1/attributes/age", nil).expect(200, `47`)
	ts.call("GET", "/ctx/u1/attributes/name", nil).expect(200, `"隔壁老王"`)
	ts.call("GET", "/ctx/u1/attributes/nested", nil).expect(200, `{"a":[1,2]}`)
	ts.call("GET", "/ctx/u1/attributes/gone", nil).expect(200, `null`)
	// U4 replaces everything.
	ts.call("PUT", "/ctx/u1/attributes", `{"only":true}`).expect(201, "")
	ts.call("GET", "/ctx/u1/attributes", nil).expect(200, `{"only":true}`)
	// U7 clears.
	ts.call("DELETE", "/ctx/u1/attributes", nil).expect(204, "")
	ts.call("GET", "/ctx/u1/attributes", nil).expect(200, `{}`)
	// PUT creates an unknown user too.
	ts.call("PUT", "/ctx/u2/attributes", `{"x":1}`).expect(201, "")
	ts.call("GET", "/ctx/u2/attributes/x", nil).expect(200, `1`)

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/ctx/u1/attributes", `[1,2]`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/ctx/u1/attributes", `{"a":`).expectError(400, chat.CodeInvalid)
		ts.call("PUT", "/ctx/u1/attributes", `"text"`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/ctx/bad%20id/attributes", `{}`).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/ctx/ghost/attributes", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/ctx/u1/attributes/missing", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/ctx/ghost/attributes/x", nil).expectError(404, chat.CodeNotFound)
		ts.call("DELETE", "/ctx/ghost/attributes", nil).expectError(404, chat.CodeNotFound)
		ts.call("POST", "/ctx/u1/attributes", js(`{%q:1}`, strings.Repeat("k", 300))).expectError(400, chat.CodeTooLong)
		big := fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 70<<10))
		ts.call("POST", "/ctx/u1/attributes", big).expectError(400, chat.CodeTooLong)
	})
}

// Ensure friendship creation is idempotent and order-insensitive, creates
// unknown users, and reads back with presence (U8, U9).
func TestUsers_Friendship(t *testing.T) {
	ts := newTestServer(t)
	made := ts.now()
	f := ts.call("POST", "/ctx/testuser1/friends/testuser2", nil).
		expect(201, js(`{"id":"*","from":"testuser1","to":"testuser2","ns":%q,"ts":%d}`, testApp, made))
	var fs struct{ ID string }
	f.decode(&fs)
	if len(fs.ID) != 16 {
		t.Errorf("friendship id %q is not 16 hex", fs.ID)
	}
	ts.clock.Add(1000)
	// Repeat and swapped: the original friendship, original initiator.
	ts.call("POST", "/ctx/testuser1/friends/testuser2", nil).expect(201, string(f.Body))
	ts.call("POST", "/ctx/testuser2/friends/testuser1", nil).expect(201, string(f.Body))
	// Both users exist now.
	ts.call("GET", "/ctx/testuser2", nil).expect(200, `{"attributes":{},"installs":[],"sessions":0,"friends":["testuser1"],"groups":[],"rooms":[],"ts":"*"}`)

	// U9: online is the friend's presence.
	ts.call("GET", "/ctx/testuser1/friends/testuser2", nil).
		expect(200, js(`{"id":%q,"from":"testuser1","to":"testuser2","online":false,"ts":%d}`, fs.ID, made))
	ts.online("testuser2", "s")
	ts.call("GET", "/ctx/testuser1/friends/testuser2", nil).
		expect(200, js(`{"id":%q,"from":"testuser1","to":"testuser2","online":true,"ts":%d}`, fs.ID, made))
	ts.call("GET", "/ctx/testuser2/friends/testuser1", nil).
		expect(200, js(`{"id":%q,"from":"testuser1","to":"testuser2","online":false,"ts":%d}`, fs.ID, made))

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/ctx/testuser1/friends/testuser1", nil).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/ctx/testuser1/friends/no$pe", nil).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/ctx/testuser1/friends/stranger", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/ctx/ghost/friends/ghost2", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/ctx/testuser1/friends/bad!", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure unfriend is idempotent and keeps the history (U10).
func TestUsers_Unfriend(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/ctx/a/friends/b", nil).expect(201, "*")
	ts.seed(chat.FriendConv("a", "b"), "a", "hi", ts.now()-1000)
	ts.call("DELETE", "/ctx/b/friends/a", nil).expect(204, "")
	ts.call("DELETE", "/ctx/b/friends/a", nil).expect(204, "")
	ts.call("DELETE", "/ctx/ghost/friends/ghost2", nil).expect(204, "")
	ts.call("GET", "/ctx/a/friends/b", nil).expectError(404, chat.CodeNotFound)
	ts.call("GET", "/ctx/a/friends", nil).expect(200, `[]`)
	ts.call("GET", "/ctx/a/friends/b/chats", nil).expect(200, `[{"speaker":"a","content":{"media":0,"body":"hi"},"ts":*,"seq":1}]`)

	t.Run("BadID", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("DELETE", "/ctx/a/friends/b%2Fc", nil).expectError(400, chat.CodeInvalid)
		ts.call("DELETE", "/ctx/a/friends/a", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure friend history pages backwards with an exclusive ts, takes seconds,
// returns ascending records, clamps limit and hides records past retention
// (U11, docs/maxim.md §7).
func TestUsers_FriendHistory(t *testing.T) {
	ts := newTestServer(t)
	now := ts.now()
	conv := chat.FriendConv("testuser1", "testuser2")
	// Past retention (7 days): stored with no TTL, hidden by the service.
	ts.seed(conv, "testuser1", "too old", now-week-1000)
	base := now - day
	for i := 0; i < 5; i++ {
		ts.seed(conv, []string{"testuser1", "testuser2"}[i%2], fmt.Sprintf("m%d", i), base+int64(i)*1000)
	}
	rec := func(i int) string {
		return js(`{"speaker":%q,"content":{"media":0,"body":"m%d"},"ts":%d,"seq":%d}`, []string{"testuser1", "testuser2"}[i%2], i, base+int64(i)*1000, i+2)
	}
	all := "[" + rec(0) + "," + rec(1) + "," + rec(2) + "," + rec(3) + "," + rec(4) + "]"
	ts.call("GET", "/ctx/testuser1/friends/testuser2/chats", nil).expect(200, all)
	// Both sides see the same records.
	ts.call("GET", "/ctx/testuser2/friends/testuser1/chats", nil).expect(200, all)
	// The latest `limit` before the cutoff, ascending; the cutoff is exclusive.
	ts.call("GET", js("/ctx/testuser1/friends/testuser2/chats?limit=2&ts=%d", base+3000), nil).expect(200, "["+rec(1)+","+rec(2)+"]")
	ts.call("GET", js("/ctx/testuser1/friends/testuser2/chats?limit=2&ts=%d", base+1000), nil).expect(200, "["+rec(0)+"]")
	// Seconds leniency: ts < 1e11 is seconds.
	ts.call("GET", js("/ctx/testuser1/friends/testuser2/chats?ts=%d", (base+2000)/1000+1), nil).expect(200, "["+rec(0)+","+rec(1)+","+rec(2)+"]")
	// limit ≤ 0 is the default, ts ≤ 0 is now.
	ts.call("GET", "/ctx/testuser1/friends/testuser2/chats?limit=0&ts=0", nil).expect(200, all)
	// A record with a remark carries it.
	r := &chat.Record{Conv: conv, Speaker: "testuser2", Content: chat.Content{Media: chat.MediaImage, Body: "http://x/a.png"}, Remark: "http://x/a.sm.png", TS: now - 10}
	if err := ts.db.AppendRecord(context.Background(), r, 0); err != nil {
		t.Fatal(err)
	}
	ts.call("GET", "/ctx/testuser1/friends/testuser2/chats?limit=1", nil).
		expect(200, js(`[{"speaker":"testuser2","content":{"media":1,"body":"http://x/a.png"},"remark":"http://x/a.sm.png","ts":%d,"seq":7}]`, now-10))

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/ctx/testuser1/friends/testuser2/chats?ts=yesterday", nil).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/ctx/testuser1/friends/testuser2/chats?limit=x", nil).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/ctx/testuser1/friends/bad%20id/chats", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure history limit is clamped to 100.
func TestUsers_FriendHistoryLimitClamp(t *testing.T) {
	ts := newTestServer(t)
	conv := chat.FriendConv("a", "b")
	for i := 0; i < 120; i++ {
		ts.seed(conv, "a", "x", ts.now()-200+int64(i))
	}
	var out []any
	ts.call("GET", "/ctx/a/friends/b/chats?limit=500", nil).ok(200).decode(&out)
	if len(out) != 100 {
		t.Fatalf("len = %d, want 100", len(out))
	}
	ts.call("GET", "/ctx/a/friends/b/chats", nil).decode(&out)
	if len(out) != 20 {
		t.Fatalf("default len = %d, want 20", len(out))
	}
}

// Ensure the friend list is ids, or with detail presence and the latest
// record within retention, omitted when none (U12).
func TestUsers_FriendList(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/ctx/testuser1/friends/testuser2", nil).expect(201, "*")
	ts.clock.Add(1)
	ts.call("POST", "/ctx/testuser3/friends/testuser1", nil).expect(201, "*")
	ts.clock.Add(1)
	ts.call("POST", "/ctx/testuser1/friends/old", nil).expect(201, "*")
	ts.seed(chat.FriendConv("testuser1", "testuser2"), "testuser2", "earlier", ts.now()-6)
	last := ts.seed(chat.FriendConv("testuser1", "testuser2"), "testuser1", "Hello!", ts.now()-5)
	ts.seed(chat.FriendConv("testuser1", "old"), "old", "expired", ts.now()-week-1)
	ts.online("testuser3", "s")

	ts.call("GET", "/ctx/testuser1/friends", nil).expect(200, `["testuser2","testuser3","old"]`)
	want := js(`[{"id":"testuser2","online":false,"recent":{"speaker":"testuser1","content":{"media":0,"body":"Hello!"},"ts":%d}},
		{"id":"testuser3","online":true},{"id":"old","online":false}]`, last.TS)
	ts.call("GET", "/ctx/testuser1/friends?detail", nil).expect(200, want)
	ts.call("GET", "/ctx/testuser1/friends?detail=true", nil).expect(200, want)
	ts.call("GET", "/ctx/testuser1/friends?x=1&detail", nil).expect(200, want)
	ts.call("GET", "/ctx/testuser1/friends?detail=false", nil).expect(200, `["testuser2","testuser3","old"]`)
	ts.call("GET", "/ctx/testuser1/friends?detail=0", nil).expect(200, `["testuser2","testuser3","old"]`)
	ts.call("GET", "/ctx/ghost/friends?detail", nil).expect(200, `[]`)

	t.Run("BadID", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/ctx/bad.id/friends", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure a user's groups include owned ones, with detail and recent (U13).
func TestUsers_Groups(t *testing.T) {
	ts := newTestServer(t)
	created := ts.now()
	gid := ts.call("POST", "/groups", `{"owner":"testuser1","members":["testuser2","testuser3"],
		"attributes":{"name":"周杰伦粉丝群","description":"这里是周杰伦粉丝的基地!"}}`).expect(201, "*").str()
	quiet := ts.call("POST", "/groups", `{"owner":"testuser2","members":["testuser1"]}`).expect(201, "*").str()
	rec := ts.seed(chat.GroupConv(gid), "testuser1", "hello everyone.", ts.now()-10)

	var ids []string
	ts.call("GET", "/ctx/testuser1/groups", nil).expect(200, `["*","*"]`).decode(&ids)
	if !(ids[0] == gid && ids[1] == quiet || ids[0] == quiet && ids[1] == gid) {
		t.Fatalf("groups = %v", ids)
	}
	ts.call("GET", "/ctx/testuser3/groups", nil).expect(200, js(`[%q]`, gid))
	item := js(`{"id":%q,"owner":"testuser1","attributes":{"name":"周杰伦粉丝群","description":"这里是周杰伦粉丝的基地!"},
		"members":["testuser2","testuser3"],"ts":%d,
		"recent":{"speaker":"testuser1","content":{"media":0,"body":"hello everyone."},"ts":%d}}`, gid, created, rec.TS)
	ts.call("GET", "/ctx/testuser3/groups?detail", nil).expect(200, "["+item+"]")
	r := ts.call("GET", "/ctx/testuser2/groups?detail", nil).expect(200, "[*,*]")
	var items []map[string]any
	r.decode(&items)
	for _, it := range items {
		if it["id"] == quiet {
			if _, ok := it["recent"]; ok {
				t.Errorf("group without records has recent: %v", it)
			}
		}
	}
	ts.call("GET", "/ctx/ghost/groups?detail", nil).expect(200, `[]`)

	t.Run("BadID", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/ctx/bad%21/groups", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure a user's rooms list ids, or details without recent (U14).
func TestUsers_Rooms(t *testing.T) {
	ts := newTestServer(t)
	created := ts.now()
	rid := ts.call("POST", "/rooms", `{"members":["u1","u2"],"name":"lobby"}`).expect(201, "*").str()
	ts.call("GET", "/ctx/u1/rooms", nil).expect(200, js(`[%q]`, rid))
	ts.call("GET", "/ctx/u2/rooms?detail", nil).expect(200, js(`[{"id":%q,"attributes":{"name":"lobby"},"members":["u1","u2"],"ts":%d}]`, rid, created))
	ts.call("GET", "/ctx/u3/rooms?detail", nil).expect(200, `[]`)

	t.Run("BadID", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/ctx/-%00-/rooms", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure stranger associations page with skip/limit, filter with ids and
// come latest first, with detail (U15); one association (U16); history
// (U17).
func TestUsers_Strangers(t *testing.T) {
	ts := newTestServer(t)
	now := ts.now()
	ts.seedStranger("testuser1", "s1", now-5000, now-4000)
	ts.seedStranger("testuser1", "s2", now-3000, now-1000)
	ts.seedStranger("testuser1", "s3", now-2000, now-2000)
	rec := ts.seed(chat.StrangerConv("testuser1", "s2"), "testuser1", "hello world", now-1000)
	// Stranger history lasts a year: a 30-day-old record is still there.
	old := ts.seed(chat.StrangerConv("testuser1", "s1"), "s1", "a month ago", now-30*day)
	ts.online("s3", "x")

	ts.call("GET", "/ctx/testuser1/strangers", nil).expect(200, `["s2","s3","s1"]`)
	ts.call("GET", "/ctx/testuser1/strangers?skip=1&limit=1", nil).expect(200, `["s3"]`)
	ts.call("GET", "/ctx/testuser1/strangers?ids=s1,s2", nil).expect(200, `["s2","s1"]`)
	ts.call("GET", "/ctx/testuser1/strangers?detail&limit=2", nil).expect(200, js(`[
		{"id":"s2","online":false,"recent":{"speaker":"testuser1","content":{"media":0,"body":"hello world"},"ts":%d}},
		{"id":"s3","online":true}]`, rec.TS))
	ts.call("GET", "/ctx/testuser1/strangers?detail&skip=2", nil).expect(200, js(`[
		{"id":"s1","online":false,"recent":{"speaker":"s1","content":{"media":0,"body":"a month ago"},"ts":%d}}]`, old.TS))
	ts.call("GET", "/ctx/s2/strangers", nil).expect(200, `["testuser1"]`)
	ts.call("GET", "/ctx/ghost/strangers?detail", nil).expect(200, `[]`)

	// U16
	ts.call("GET", "/ctx/testuser1/strangers/s2", nil).expect(200, js(`{"ts":%d,"online":false,
		"recent":{"speaker":"testuser1","content":{"media":0,"body":"hello world"},"ts":%d}}`, now-3000, rec.TS))
	ts.call("GET", "/ctx/testuser1/strangers/s3", nil).expect(200, js(`{"ts":%d,"online":true}`, now-2000))

	// U17
	ts.call("GET", "/ctx/s1/strangers/testuser1/chats", nil).expect(200, js(`[{"speaker":"s1","content":{"media":0,"body":"a month ago"},"ts":%d,"seq":%d}]`, old.TS, old.Seq))
	ts.call("GET", js("/ctx/s1/strangers/testuser1/chats?ts=%d", old.TS), nil).expect(200, `[]`)

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("GET", "/ctx/testuser1/strangers?limit=many", nil).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/ctx/testuser1/strangers/nobody", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/ctx/testuser1/strangers/testuser1/chats", nil).expectError(400, chat.CodeInvalid)
		ts.call("GET", "/ctx/bad.id/strangers", nil).expectError(400, chat.CodeInvalid)
	})
}

// Ensure installs are unbound by list, single id, query or all at once
// (U18, and its POST alias).
func TestUsers_UnbindInstalls(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/ctx/u1/attributes", nil).expect(201, "")
	setInstalls := func(ids ...string) {
		t.Helper()
		err := ts.db.Update(context.Background(), func(tx chat.Tx) error {
			u, err := tx.User("u1")
			if err != nil {
				return err
			}
			u.Installs = ids
			return tx.PutUser(u)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	installs := func() string {
		var d struct{ Installs []string }
		ts.call("GET", "/ctx/u1", nil).expect(200, "*").decode(&d)
		return fmt.Sprint(d.Installs)
	}
	setInstalls("i1", "i2", "i3", "i4", "i5")
	ts.call("DELETE", "/ctx/u1/installs", `{"installs":["i1"]}`).expect(204, "")
	ts.call("DELETE", "/ctx/u1/installs", `{"install":"i2"}`).expect(204, "")
	ts.call("DELETE", "/ctx/u1/installs?install=i3", nil).expect(204, "")
	ts.call("POST", "/ctx/u1/installs", `{"installs":["i4"]}`).expect(204, "")
	if got := installs(); got != "[i5]" {
		t.Fatalf("installs = %s, want [i5]", got)
	}
	setInstalls("a", "b")
	ts.call("DELETE", "/ctx/u1/installs", nil).expect(204, "")
	if got := installs(); got != "[]" {
		t.Fatalf("installs = %s, want []", got)
	}
	ts.call("DELETE", "/ctx/ghost/installs", nil).expect(204, "")

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("DELETE", "/ctx/bad.id/installs", nil).expectError(400, chat.CodeInvalid)
		ts.call("DELETE", "/ctx/u1/installs", `[1]`).expectError(400, chat.CodeInvalid)
	})
}

// Ensure batch friend creation returns the friendships in input order
// (U19).
func TestUsers_BatchFriends(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/ctx/b/friends/a", nil).expect(201, "*")
	ts.clock.Add(1)
	ts.call("POST", "/ctx/a/friends", `["c","b",["d"]]`).expect(201, js(`[
		{"id":"*","from":"a","to":"c","ns":%q,"ts":"*"},
		{"id":"*","from":"b","to":"a","ns":%q,"ts":"*"},
		{"id":"*","from":"a","to":"d","ns":%q,"ts":"*"}]`, testApp, testApp, testApp))
	ts.clock.Add(1)
	ts.call("POST", "/ctx/a/friends", `{"friends":["e"]}`).expect(201, `[{"id":"*","from":"a","to":"e","ns":"*","ts":"*"}]`)
	ts.call("GET", "/ctx/a/friends", nil).expect(200, `["b","*","*","e"]`)

	t.Run("Errors", func(t *testing.T) {
		ts := ts.as(t)
		ts.call("POST", "/ctx/a/friends", `5`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/ctx/a/friends", `["x","a"]`).expectError(400, chat.CodeInvalid)
		ts.call("POST", "/ctx/a/friends", `["ok","bad id"]`).expectError(400, chat.CodeInvalid)
		// Nothing of a refused batch is written.
		ts.call("GET", "/ctx/x", nil).expectError(404, chat.CodeNotFound)
		ts.call("GET", "/ctx/ok", nil).expectError(http.StatusNotFound, chat.CodeNotFound)
	})
}
