package rest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure DELETE /ctx/{uid}?history=true leaves no trace of the user: not
// in search, friends, group and room members, strangers, conversation
// lists or any store key (the account record that keeps its tokens
// revoked aside), and that it stays so after a restart; the group it
// owned passes to its first member; its old token is refused.
func TestErase_NoTrace(t *testing.T) {
	ts := newTestServer(t)
	m := masterSigned()
	now := ts.now()
	ts.callWith("POST", "/ctx/alice/attributes", `{"age":46}`, m).ok(201)
	ts.callWith("POST", "/ctx/alice/installs", `{"install":"nothing"}`, m).ok(204)
	ts.callWith("POST", "/ctx/alice/friends/bob", nil, m).ok(201)
	ts.callWith("POST", "/ctx/dave/friends/bob", nil, m).ok(201)
	owned := ts.callWith("POST", "/groups", `{"owner":"alice","members":["bob","carol"]}`, m).ok(201).str()
	member := ts.callWith("POST", "/groups", `{"owner":"dave","members":["alice"]}`, m).ok(201).str()
	room := ts.callWith("POST", "/rooms", `{"members":["alice","bob"]}`, m).ok(201).str()
	ts.seedStranger("alice", "carol", now-10, now-5)
	ts.seed(chat.FriendConv("alice", "bob"), "alice", "hi bob", now-4)
	ts.seed(chat.StrangerConv("alice", "carol"), "carol", "hi alice", now-3)
	ts.seed(chat.GroupConv(member), "dave", "hi group", now-2)
	ts.seed(chat.FriendConv("dave", "bob"), "dave", "hi", now-1)
	ts.callWith("POST", "/ctx/alice/conversations/group/"+member+"/read", `{"seq":1}`, m).ok(204)
	old := mint(t, chat.User("alice"), now-100, now+3_600_000)
	convs := func(uid string) string {
		t.Helper()
		var cs []struct{ Kind, ID string }
		ts.callWith("GET", "/ctx/"+uid+"/conversations", nil, m).ok(200).decode(&cs)
		var out []string
		for _, c := range cs {
			out = append(out, c.Kind+":"+c.ID)
		}
		return strings.Join(out, ",")
	}
	list := func(path string) string {
		t.Helper()
		var l struct {
			Owner   string   `json:"owner"`
			Members []string `json:"members"`
		}
		ts.callWith("GET", path, nil, m).ok(200).decode(&l)
		return l.Owner + "|" + strings.Join(l.Members, ",")
	}
	if got := convs("bob"); got != "friend:dave,friend:alice" {
		t.Fatalf("bob's conversations before: %s", got)
	}

	ts.callWith("DELETE", "/ctx/alice", nil, signed()).expectError(403, chat.CodeUnauthorized)
	ts.callWith("DELETE", "/ctx/alice?history=true", nil, m).ok(204)

	check := func() {
		t.Helper()
		ts.callWith("GET", "/ctx/alice", nil, m).expectError(404, chat.CodeNotFound)
		if b := string(ts.callWith("GET", "/ctx", nil, m).ok(200).Body); strings.Contains(b, "alice") {
			t.Errorf("search lists alice: %s", b)
		}
		ts.callWith("GET", "/ctx/bob/friends", nil, m).expect(200, `["dave"]`)
		for path, want := range map[string]string{"/groups/" + owned: "bob|carol", "/groups/" + member: "dave|", "/rooms/" + room: "|bob"} {
			if got := list(path); got != want {
				t.Errorf("%s: %s, want %s", path, got, want)
			}
		}
		ts.callWith("GET", "/ctx/carol/strangers", nil, m).expect(200, `[]`)
		if got := convs("bob"); got != "friend:dave" {
			t.Errorf("bob's conversations: %s", got)
		}
		if got := convs("carol"); got != "" {
			t.Errorf("carol's conversations: %s", got)
		}
		ts.callWith("GET", "/ctx/bob/friends/alice/chats", nil, m).expect(200, `[]`)
		ts.callWith("GET", "/ctx", nil, bearer(old)).expectError(401, chat.CodeUnauthorized)
		var traces []string
		err := ts.db.Keys(context.Background(), func(k string) error {
			if strings.Contains(k, "alice") && k != "a\x00user:alice" {
				traces = append(traces, strings.ReplaceAll(k, "\x00", "␀"))
			}
			return nil
		})
		if err != nil || len(traces) > 0 {
			t.Errorf("keys naming alice after the erasure: %q, %v", traces, err)
		}
	}
	check()
	ts.stop()
	ts.start()
	check()
	// Tokens minted after the erasure work.
	ts.clock.Store(now + 2)
	ts.callWith("GET", "/ctx", nil, bearer(mint(t, chat.User("alice"), now+1, now+3_600_000))).ok(200)
}
