package chat_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
)

func TestParseSay(t *testing.T) {
	t.Parallel()
	i64 := func(n int64) *int64 { return &n }
	tests := []struct {
		name    string
		payload string
		content chat.Content
		remark  string
		ack     *int64
		code    int
	}{
		{"Text", `{"content":{"media":0,"body":"hi"}}`, chat.Content{Body: "hi"}, "", nil, 0},
		{"MediaDefault", `{"content":{"body":"hi"}}`, chat.Content{Body: "hi"}, "", nil, 0},
		{"Image", `{"content":{"media":1,"body":"http://x/a.png"},"remark":"http://x/a.sm.png"}`, chat.Content{Media: 1, Body: "http://x/a.png"}, "http://x/a.sm.png", nil, 0},
		{"ReservedMedia", `{"content":{"media":7,"body":"x"}}`, chat.Content{Media: 7, Body: "x"}, "", nil, 0},
		{"Ack", `{"content":{"body":"hi"},"ack":17}`, chat.Content{Body: "hi"}, "", i64(17), 0},
		{"AckString", `{"content":{"body":"hi"},"ack":"17"}`, chat.Content{Body: "hi"}, "", i64(17), 0},
		{"JSONString", `"{\"content\":{\"media\":0,\"body\":\"hi\"},\"ack\":3,\"ts\":1}"`, chat.Content{Body: "hi"}, "", i64(3), 0},
		{"ArrayBody", `{"content":{"media":1,"body":["http://x/a.png","http://x/a.sm.png"]}}`, chat.Content{Media: 1, Body: "http://x/a.png"}, "", nil, 0},
		{"NumberBody", `{"content":{"body":42}}`, chat.Content{Body: "42"}, "", nil, 0},
		{"ObjectBody", `{"content":{"body":{"a": [1, 2]}}}`, chat.Content{Body: `{"a":[1,2]}`}, "", nil, 0},
		{"NoBody", `{"content":{"media":0}}`, chat.Content{}, "", nil, chat.CodeInvalid},
		{"NullBody", `{"content":{"body":null},"ack":5}`, chat.Content{}, "", i64(5), chat.CodeInvalid},
		{"EmptyBody", `{"content":{"body":""}}`, chat.Content{}, "", nil, chat.CodeInvalid},
		{"EmptyArrayBody", `{"content":{"body":[]}}`, chat.Content{}, "", nil, chat.CodeInvalid},
		{"NoContent", `{"ack":1}`, chat.Content{}, "", i64(1), chat.CodeInvalid},
		{"BadMedia", `{"content":{"media":"image","body":"x"}}`, chat.Content{}, "", nil, chat.CodeInvalid},
		{"BadAck", `{"content":{"body":"x"},"ack":"soon"}`, chat.Content{}, "", nil, chat.CodeInvalid},
		{"FractionAck", `{"content":{"body":"x"},"ack":1.5}`, chat.Content{}, "", nil, chat.CodeInvalid},
		{"NotJSON", `hello`, chat.Content{}, "", nil, chat.CodeInvalid},
		{"Array", `[1]`, chat.Content{}, "", nil, chat.CodeInvalid},
		{"TooLong", `{"content":{"body":"` + strings.Repeat("x", 65) + `"},"ack":9}`, chat.Content{}, "", i64(9), chat.CodeTooLong},
		{"LongestOK", `{"content":{"body":"` + strings.Repeat("x", 64) + `"}}`, chat.Content{Body: strings.Repeat("x", 64)}, "", nil, 0},
		{"RemarkTooLong", `{"content":{"body":"x"},"remark":"` + strings.Repeat("x", 65) + `"}`, chat.Content{}, "", nil, chat.CodeTooLong},
		{"BadPush", `{"content":{"body":"x"},"push":{"enable":"no"}}`, chat.Content{}, "", nil, chat.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := chat.ParseSay([]byte(tt.payload), 64)
			if code := chat.ErrorCode(err); code != tt.code {
				t.Fatalf("ParseSay() code = %d (%v), want %d", code, err, tt.code)
			}
			if !reflect.DeepEqual(m.Ack, tt.ack) {
				t.Errorf("Ack = %v, want %v", m.Ack, tt.ack)
			}
			if err != nil {
				return
			}
			if m.Content != tt.content || m.Remark != tt.remark {
				t.Errorf("ParseSay() = %+v %q, want %+v %q", m.Content, m.Remark, tt.content, tt.remark)
			}
		})
	}
}

func TestPushAlert(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    chat.Content
		p    *chat.PushSettings
		want string
	}{
		{chat.Content{Body: "hi"}, nil, "hi"},
		{chat.Content{Media: 1, Body: "http://x"}, nil, "[image]"},
		{chat.Content{Media: 2, Body: "http://x"}, nil, "[audio]"},
		{chat.Content{Media: 3, Body: "http://x"}, nil, "[video]"},
		{chat.Content{Body: "hi"}, &chat.PushSettings{Prefix: "[Tom] ", Suffix: "!"}, "[Tom] hi!"},
		{chat.Content{Media: 1, Body: "http://x"}, &chat.PushSettings{Prefix: "Tom: "}, "Tom: [image]"},
		{chat.Content{Body: "secret"}, &chat.PushSettings{Overwrite: "new message"}, "new message"},
	}
	for _, tt := range tests {
		if got := chat.PushAlert(tt.c, tt.p); got != tt.want {
			t.Errorf("PushAlert(%+v, %+v) = %q, want %q", tt.c, tt.p, got, tt.want)
		}
	}
}

// find returns the recorded deliveries of event.
func find(ds []delivery, event string) []delivery {
	var out []delivery
	for _, d := range ds {
		if d.Event == event {
			out = append(out, d)
		}
	}
	return out
}

// Ensure a friend message is stored with a sequence number, delivered to
// the friend with from/to type 0, echoed as yourself to the sender's other
// sessions, and acked to the origin session with the stored ts.
func TestService_Say_Friend(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	res, err := e.svc.Say(ctx, chat.User("alice"), "alice-phone", chat.SayTarget{Type: chat.TypeFriend, ID: "bob"},
		[]byte(`{"content":{"media":0,"body":"hi bob"},"remark":"r","ack":17}`))
	if err != nil {
		t.Fatalf("Say: %v", err)
	}
	if res.Seq != 1 || res.TS != rtNow || res.Conv != chat.FriendConv("alice", "bob") || res.ID == "" {
		t.Fatalf("Say() = %+v", res)
	}
	ds := e.pub.take()
	msgs := find(ds, chat.EventMessage)
	if len(msgs) != 1 || msgs[0].To != chat.User("bob") || msgs[0].Except != "" {
		t.Fatalf("message deliveries = %+v", msgs)
	}
	want := map[string]any{
		"from": map[string]any{"id": "alice", "type": 0.0}, "to": map[string]any{"id": "bob", "type": 0.0},
		"content": map[string]any{"media": 0.0, "body": "hi bob"}, "ts": float64(rtNow), "remark": "r",
		"id": res.ID, "seq": 1.0,
	}
	if got := decode(t, msgs[0].Payload); !reflect.DeepEqual(got, want) {
		t.Errorf("message = %v\nwant      %v", got, want)
	}
	ys := find(ds, chat.EventYourself)
	if len(ys) != 1 || ys[0].To != chat.User("alice") || ys[0].Except != "alice-phone" {
		t.Fatalf("yourself deliveries = %+v", ys)
	}
	y := decode(t, ys[0].Payload)
	if _, ok := y["from"]; ok {
		t.Errorf("yourself carries from: %v", y)
	}
	if !reflect.DeepEqual(y["to"], map[string]any{"id": "bob", "type": 0.0}) || y["ts"] != float64(rtNow) {
		t.Errorf("yourself = %v", y)
	}
	acks := find(ds, chat.EventAck)
	if len(acks) != 1 || acks[0].Session != "alice-phone" || acks[0].Payload != fmt.Sprintf(`{"ack":17,"ts":%d}`, rtNow) {
		t.Fatalf("ack deliveries = %+v", acks)
	}
	recs, err := e.db.Records(ctx, chat.FriendConv("bob", "alice"), rtNow+1, 0, 10)
	if err != nil || len(recs) != 1 || recs[0].Speaker != "alice" || recs[0].Content.Body != "hi bob" || recs[0].Remark != "r" {
		t.Fatalf("Records = %+v, %v", recs, err)
	}
}

// Ensure a refused say is neither stored nor delivered, and the origin
// session gets an error event naming its ack number.
func TestService_Say_Refused(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	e.users(t, "alice", "bob", "carol")
	e.friends(t, "alice", "bob")
	e.seed(t, func(tx chat.Tx) error {
		if err := tx.PutGroup(&chat.Group{ID: "g1", Owner: "bob", Members: []string{"carol"}}); err != nil {
			return err
		}
		if err := tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"bob"}}); err != nil {
			return err
		}
		return tx.PutPassenger(&chat.PassengerRecord{ID: "p1"})
	})
	ok := `{"content":{"body":"x"},"ack":5}`
	tests := []struct {
		name    string
		from    chat.Identity
		target  chat.SayTarget
		payload string
		code    int
	}{
		{"NotFriend", chat.User("alice"), chat.SayTarget{Type: 0, ID: "carol"}, ok, chat.CodeUnauthorized},
		{"FriendSelf", chat.User("alice"), chat.SayTarget{Type: 0, ID: "alice"}, ok, chat.CodeUnauthorized},
		{"NotGroupMember", chat.User("alice"), chat.SayTarget{Type: 1, ID: "g1"}, ok, chat.CodeUnauthorized},
		{"UnknownGroup", chat.User("alice"), chat.SayTarget{Type: 1, ID: "nope"}, ok, chat.CodeNotFound},
		{"NotRoomMember", chat.User("alice"), chat.SayTarget{Type: 2, ID: "r1"}, ok, chat.CodeUnauthorized},
		{"UnknownRoom", chat.User("alice"), chat.SayTarget{Type: 2, ID: "nope"}, ok, chat.CodeNotFound},
		{"UnknownPassenger", chat.User("alice"), chat.SayTarget{Type: 3, ID: "nope"}, ok, chat.CodeNotFound},
		{"UnknownStranger", chat.User("alice"), chat.SayTarget{Type: 4, ID: "nope"}, ok, chat.CodeNotFound},
		{"StrangerSelf", chat.User("alice"), chat.SayTarget{Type: 4, ID: "alice"}, ok, chat.CodeConflict},
		{"PassengerToUnknownUser", chat.Passenger("p1"), chat.SayTarget{Type: 0, ID: "nope"}, ok, chat.CodeNotFound},
		{"PassengerToGroup", chat.Passenger("p1"), chat.SayTarget{Type: 1, ID: "g1"}, ok, chat.CodeUnauthorized},
		{"BadType", chat.User("alice"), chat.SayTarget{Type: 9, ID: "bob"}, ok, chat.CodeInvalid},
		{"ToContradicts", chat.User("alice"), chat.SayTarget{Type: 0, ID: "bob"}, `{"to":{"id":"carol","type":0},"content":{"body":"x"},"ack":5}`, chat.CodeInvalid},
		{"ToTypeContradicts", chat.User("alice"), chat.SayTarget{Type: 0, ID: "bob"}, `{"to":{"id":"bob","type":4},"content":{"body":"x"},"ack":5}`, chat.CodeInvalid},
		{"NoBody", chat.User("alice"), chat.SayTarget{Type: 0, ID: "bob"}, `{"content":{},"ack":5}`, chat.CodeInvalid},
		{"TooLong", chat.User("alice"), chat.SayTarget{Type: 0, ID: "bob"}, `{"content":{"body":"` + strings.Repeat("y", 65) + `"},"ack":5}`, chat.CodeTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Say(ctx, tt.from, "s1", tt.target, []byte(tt.payload))
			if chat.ErrorCode(err) != tt.code {
				t.Fatalf("Say() err = %v, want code %d", err, tt.code)
			}
			ds := e.pub.take()
			if len(ds) != 1 || ds[0].Event != chat.EventError || ds[0].Session != "s1" || ds[0].To != tt.from {
				t.Fatalf("deliveries = %+v, want one error event to s1", ds)
			}
			ev := decode(t, ds[0].Payload)
			if ev["ack"] != 5.0 || ev["errorCode"] != float64(tt.code) || ev["errorMessage"] == "" {
				t.Errorf("error event = %v", ev)
			}
		})
	}
	// Nothing was stored anywhere.
	for _, conv := range []chat.Conv{chat.FriendConv("alice", "bob"), chat.FriendConv("alice", "carol"), chat.GroupConv("g1")} {
		if recs, _ := e.db.Records(ctx, conv, rtNow+1, 0, 10); len(recs) != 0 {
			t.Errorf("%s has records after refusals: %+v", conv, recs)
		}
	}
}

// Ensure a group message reaches every member and the owner except the
// sender, with from.gid, and is stored under the group.
func TestService_Say_Group(t *testing.T) {
	e := newRTEnv(t)
	e.users(t, "o", "a", "b")
	e.seed(t, func(tx chat.Tx) error {
		return tx.PutGroup(&chat.Group{ID: "g1", Owner: "o", Members: []string{"a", "b"}})
	})
	res, err := e.svc.Say(context.Background(), chat.User("a"), "a1", chat.SayTarget{Type: chat.TypeGroup, ID: "g1"}, []byte(`{"content":{"body":"hey"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ds := e.pub.take()
	var to []chat.Identity
	for _, d := range find(ds, chat.EventMessage) {
		to = append(to, d.To)
		m := decode(t, d.Payload)
		if !reflect.DeepEqual(m["from"], map[string]any{"id": "a", "type": 1.0, "gid": "g1"}) ||
			!reflect.DeepEqual(m["to"], map[string]any{"id": "g1", "type": 1.0}) {
			t.Errorf("group message = %v", m)
		}
		if _, ok := m["remark"]; ok {
			t.Errorf("remark present though not set: %v", m)
		}
	}
	if !reflect.DeepEqual(to, []chat.Identity{chat.User("o"), chat.User("b")}) {
		t.Errorf("group recipients = %v, want o, b", to)
	}
	if len(find(ds, chat.EventAck)) != 0 {
		t.Error("ack without an ack number")
	}
	if res.Conv != chat.GroupConv("g1") || res.Seq != 1 {
		t.Errorf("Say() = %+v", res)
	}
	// The owner may send too.
	if _, err := e.svc.Say(context.Background(), chat.User("o"), "o1", chat.SayTarget{Type: chat.TypeGroup, ID: "g1"}, []byte(`{"content":{"body":"2"}}`)); err != nil {
		t.Fatalf("owner Say: %v", err)
	}
}

// Ensure a room message reaches online members only and is not stored.
func TestService_Say_Room(t *testing.T) {
	e := newRTEnv(t)
	e.seed(t, func(tx chat.Tx) error { return tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"a", "b", "c"}}) })
	e.svc.Presence.Open(chat.User("b"), "b1", false)
	res, err := e.svc.Say(context.Background(), chat.User("a"), "a1", chat.SayTarget{Type: chat.TypeRoom, ID: "r1"}, []byte(`{"content":{"body":"hey"}}`))
	if err != nil {
		t.Fatal(err)
	}
	msgs := find(e.pub.take(), chat.EventMessage)
	if len(msgs) != 1 || msgs[0].To != chat.User("b") {
		t.Fatalf("room deliveries = %+v, want b only", msgs)
	}
	m := decode(t, msgs[0].Payload)
	if !reflect.DeepEqual(m["from"], map[string]any{"id": "a", "type": 2.0, "gid": "r1"}) || !reflect.DeepEqual(m["to"], map[string]any{"id": "r1", "type": 2.0}) {
		t.Errorf("room message = %v", m)
	}
	if res.Conv != "" || res.Seq != 0 {
		t.Errorf("room message stored: %+v", res)
	}
}

// Ensure user→passenger shows from.type 0 to the passenger, and
// passenger→user from.type 3, both stored in the same conversation; a
// passenger gets no yourself.
func TestService_Say_Passenger(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	e.users(t, "staff")
	e.seed(t, func(tx chat.Tx) error { return tx.PutPassenger(&chat.PassengerRecord{ID: "p1"}) })
	if _, err := e.svc.Say(ctx, chat.User("staff"), "s1", chat.SayTarget{Type: chat.TypePassenger, ID: "p1"}, []byte(`{"content":{"body":"hello"}}`)); err != nil {
		t.Fatal(err)
	}
	ds := e.pub.take()
	msgs := find(ds, chat.EventMessage)
	if len(msgs) != 1 || msgs[0].To != chat.Passenger("p1") {
		t.Fatalf("deliveries = %+v", msgs)
	}
	m := decode(t, msgs[0].Payload)
	if !reflect.DeepEqual(m["from"], map[string]any{"id": "staff", "type": 0.0}) || !reflect.DeepEqual(m["to"], map[string]any{"id": "p1", "type": 0.0}) {
		t.Errorf("to passenger = %v", m)
	}
	ys := find(ds, chat.EventYourself)
	if len(ys) != 1 || !reflect.DeepEqual(decode(t, ys[0].Payload)["to"], map[string]any{"id": "p1", "type": 3.0}) {
		t.Errorf("yourself = %+v", ys)
	}

	res, err := e.svc.Say(ctx, chat.Passenger("p1"), "p1-tab", chat.SayTarget{Type: chat.TypeFriend, ID: "staff"}, []byte(`{"to":{"id":"staff"},"content":{"body":"help"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ds = e.pub.take()
	if len(find(ds, chat.EventYourself)) != 0 {
		t.Error("a passenger got yourself")
	}
	msgs = find(ds, chat.EventMessage)
	if len(msgs) != 1 || msgs[0].To != chat.User("staff") {
		t.Fatalf("deliveries = %+v", msgs)
	}
	m = decode(t, msgs[0].Payload)
	if !reflect.DeepEqual(m["from"], map[string]any{"id": "p1", "type": 3.0}) || !reflect.DeepEqual(m["to"], map[string]any{"id": "staff", "type": 3.0}) {
		t.Errorf("to user = %v", m)
	}
	if res.Conv != chat.PassengerConv("p1", "staff") || res.Seq != 2 {
		t.Errorf("passenger→user stored as %+v, want seq 2 of %s", res, chat.PassengerConv("p1", "staff"))
	}
}

// Ensure a stranger message upserts the association in both directions,
// with the first contact kept and the latest updated.
func TestService_Say_Stranger(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	e.users(t, "a", "b")
	say := func() {
		t.Helper()
		if _, err := e.svc.Say(ctx, chat.User("a"), "a1", chat.SayTarget{Type: chat.TypeStranger, ID: "b"}, []byte(`{"content":{"body":"hi"}}`)); err != nil {
			t.Fatal(err)
		}
	}
	say()
	msgs := find(e.pub.take(), chat.EventMessage)
	if len(msgs) != 1 || msgs[0].To != chat.User("b") {
		t.Fatalf("deliveries = %+v", msgs)
	}
	if m := decode(t, msgs[0].Payload); !reflect.DeepEqual(m["from"], map[string]any{"id": "a", "type": 4.0}) || !reflect.DeepEqual(m["to"], map[string]any{"id": "b", "type": 4.0}) {
		t.Errorf("stranger message = %v", m)
	}
	e.now = e.now.Add(5 * time.Second)
	say()
	err := e.db.View(ctx, func(tx chat.Tx) error {
		for _, p := range [][2]string{{"a", "b"}, {"b", "a"}} {
			st, err := tx.Stranger(p[0], p[1])
			if err != nil {
				return err
			}
			if st.TS != rtNow || st.Last != rtNow+5000 {
				t.Errorf("stranger %v = %+v, want ts %d last %d", p, st, rtNow, rtNow+5000)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if recs, _ := e.db.Records(ctx, chat.StrangerConv("b", "a"), rtNow+10000, 0, 10); len(recs) != 2 {
		t.Errorf("stranger history = %+v", recs)
	}
}

// Ensure a friend or group message to a recipient with no session and a
// bound install is pushed with the alert and the message as parrot, unless
// push.enable is false or the recipient is online.
func TestService_Say_Push(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	e.seed(t, func(tx chat.Tx) error {
		for _, u := range []*chat.UserRecord{
			{ID: "a", Installs: []string{}},
			{ID: "b", Installs: []string{"ib1", "ib2"}},
			{ID: "c", Installs: []string{"ic"}},
			{ID: "d", Installs: []string{}},
		} {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		if err := tx.PutFriendship(&chat.Friendship{ID: "f1", From: "a", To: "b"}); err != nil {
			return err
		}
		return tx.PutGroup(&chat.Group{ID: "g1", Owner: "a", Members: []string{"b", "c", "d"}})
	})
	friend := chat.SayTarget{Type: chat.TypeFriend, ID: "b"}
	if _, err := e.svc.Say(ctx, chat.User("a"), "a1", friend, []byte(`{"content":{"media":1,"body":"http://x/i.png"},"push":{"prefix":"A: ","sound":"default","badge":3}}`)); err != nil {
		t.Fatal(err)
	}
	ps := e.push.take()
	if len(ps) != 1 {
		t.Fatalf("pushes = %+v, want 1", ps)
	}
	p := ps[0]
	if p.User != "b" || !reflect.DeepEqual(p.Installs, []string{"ib1", "ib2"}) || p.Alert != "A: [image]" || p.Sound != "default" || p.Badge == nil || *p.Badge != 3 || p.Event != chat.EventMessage {
		t.Errorf("push = %+v", p)
	}
	if par := decode(t, p.Parrot); !reflect.DeepEqual(par["from"], map[string]any{"id": "a", "type": 0.0}) {
		t.Errorf("parrot = %v", par)
	}

	if _, err := e.svc.Say(ctx, chat.User("a"), "a1", friend, []byte(`{"content":{"body":"x"},"push":{"enable":false}}`)); err != nil {
		t.Fatal(err)
	}
	if ps := e.push.take(); len(ps) != 0 {
		t.Errorf("push.enable false pushed: %+v", ps)
	}

	e.svc.Presence.Open(chat.User("b"), "b1", false)
	if _, err := e.svc.Say(ctx, chat.User("a"), "a1", chat.SayTarget{Type: chat.TypeGroup, ID: "g1"}, []byte(`{"content":{"body":"all"}}`)); err != nil {
		t.Fatal(err)
	}
	ps = e.push.take()
	if len(ps) != 1 || ps[0].User != "c" || ps[0].Alert != "all" {
		t.Errorf("group pushes = %+v, want c only (b online, d no install)", ps)
	}
}

// Ensure RefuseSay tells the session with the ack number of the payload.
func TestService_RefuseSay(t *testing.T) {
	e := newRTEnv(t)
	e.svc.RefuseSay(chat.User("a"), "a1", []byte(`{"content":{"body":"x"},"ack":12}`), chat.Errorf(chat.CodeInvalid, "bad topic"))
	ds := e.pub.take()
	if len(ds) != 1 || ds[0].Session != "a1" || ds[0].Payload != `{"ack":12,"errorCode":5001,"errorMessage":"bad topic"}` {
		t.Fatalf("deliveries = %+v", ds)
	}
	e.svc.RefuseSay(chat.User("a"), "a1", []byte(`garbage`), chat.Errorf(chat.CodeInvalid, "bad topic"))
	if ds := e.pub.take(); len(ds) != 1 || ds[0].Payload != `{"errorCode":5001,"errorMessage":"bad topic"}` {
		t.Fatalf("deliveries = %+v", ds)
	}
}
