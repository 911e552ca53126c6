package rest_test

import (
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure a restart on the same data directory keeps users, attributes,
// friendships, groups, rooms, passengers, strangers and history.
func TestRestart_KeepsEverything(t *testing.T) {
	ts := newTestServer(t)
	ts.call("POST", "/ctx/alice/attributes", `{"age":46}`).expect(201, "")
	f := ts.call("POST", "/ctx/alice/friends/bob", nil).expect(201, "*")
	gid := ts.call("POST", "/groups", `{"owner":"alice","members":["bob"],"name":"g"}`).expect(201, "*").str()
	rid := ts.call("POST", "/rooms", `{"members":["bob"],"name":"r"}`).expect(201, "*").str()
	ts.call("POST", "/passengers", `{"id":"p1","name":"visitor"}`).expect(201, `"p1"`)
	ts.seedStranger("alice", "carol", ts.now()-10, ts.now()-5)
	fr := ts.seed(chat.FriendConv("alice", "bob"), "bob", "hi alice", ts.now()-3)
	gr := ts.seed(chat.GroupConv(gid), "alice", "hi group", ts.now()-2)

	before := map[string]string{}
	paths := []string{
		"/ctx/alice", "/ctx/bob", "/ctx/alice/attributes", "/ctx?age=46",
		"/ctx/alice/friends?detail", "/ctx/alice/friends/bob/chats",
		"/groups/" + gid, "/groups/" + gid + "/chats", "/ctx/bob/groups?detail",
		"/rooms/" + rid, "/ctx/bob/rooms?detail", "/passengers/p1",
		"/ctx/alice/strangers?detail", "/ctx/carol/strangers/alice",
	}
	for _, p := range paths {
		before[p] = string(ts.call("GET", p, nil).ok(200).Body)
	}

	ts.stop()
	ts.start()

	for _, p := range paths {
		ts.call("GET", p, nil).expect(200, before[p])
	}
	ts.call("GET", "/ctx/bob/friends/alice", nil).ok(200)
	ts.call("POST", "/ctx/bob/friends/alice", nil).expect(201, string(f.Body))
	ts.call("GET", "/ctx/alice/friends/bob/chats", nil).expect(200, js(`[{"speaker":"bob","content":{"media":0,"body":"hi alice"},"ts":%d,"seq":%d}]`, fr.TS, fr.Seq))
	ts.call("GET", "/groups/"+gid+"/chats", nil).expect(200, js(`[{"speaker":"alice","content":{"media":0,"body":"hi group"},"ts":%d,"seq":%d}]`, gr.TS, gr.Seq))
	// Sequence numbers continue after the restart: a new record sorts last.
	nr := ts.seed(chat.GroupConv(gid), "bob", "after restart", ts.now()-1)
	ts.call("GET", "/groups/"+gid+"/chats", nil).expect(200, js(`[*,{"speaker":"bob","content":*,"ts":%d,"seq":%d}]`, nr.TS, gr.Seq+1))
}
