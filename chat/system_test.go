package chat_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/mqim/mqim/chat"
)

func TestParseSystemMessage(t *testing.T) {
	t.Parallel()
	m, err := chat.ParseSystemMessage([]byte(`{"content":{"body":"hello all!"},"remark":"r","ts":5,"push":{"enable":false}}`), 64)
	if err != nil {
		t.Fatal(err)
	}
	if m.Content != (chat.Content{Body: "hello all!"}) || m.Remark != "r" || m.Push.Enabled() {
		t.Errorf("ParseSystemMessage() = %+v", m)
	}
	for _, bad := range []string{``, `{}`, `{"content":{}}`, `{"content":{"media":1}}`, `[]`, `nope`} {
		if _, err := chat.ParseSystemMessage([]byte(bad), 64); chat.ErrorCode(err) != chat.CodeInvalid {
			t.Errorf("ParseSystemMessage(%q) err = %v, want 5001", bad, err)
		}
	}
}

func sysRecipients(t *testing.T, ds []delivery, payload string) []string {
	t.Helper()
	var out []string
	for _, d := range ds {
		if d.Event != chat.EventSys || d.Payload != payload || d.Except != "" || d.Session != "" {
			t.Errorf("unexpected delivery %+v", d)
		}
		out = append(out, d.To.String())
	}
	sort.Strings(out)
	return out
}

// Ensure system messages reach: everyone online (S1); a user, else a
// passenger (S2); every group member with push for offline members; online
// room members only; and unknown targets are CodeNotFound.
func TestService_System(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	e.seed(t, func(tx chat.Tx) error {
		for _, u := range []*chat.UserRecord{{ID: "a"}, {ID: "b", Installs: []string{"ib"}}, {ID: "c"}} {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		if err := tx.PutPassenger(&chat.PassengerRecord{ID: "p1"}); err != nil {
			return err
		}
		if err := tx.PutGroup(&chat.Group{ID: "g1", Owner: "a", Members: []string{"b"}}); err != nil {
			return err
		}
		return tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"a", "b", "c"}})
	})
	e.svc.Presence.Open(chat.User("a"), "a1", false)
	e.svc.Presence.Open(chat.User("c"), "c1", false)
	e.svc.Presence.Open(chat.Passenger("p1"), "p1", false)
	msg := chat.SystemMessage{Content: chat.Content{Body: "notice"}, Remark: "r"}
	payload := fmt.Sprintf(`{"content":{"media":0,"body":"notice"},"ts":%d,"remark":"r"}`, rtNow)

	if err := e.svc.SystemBroadcast(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if got, want := sysRecipients(t, e.pub.take(), payload), []string{"passenger:p1", "user:a", "user:c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("broadcast to %v, want %v", got, want)
	}
	if ps := e.push.take(); len(ps) != 0 {
		t.Errorf("broadcast pushed %+v", ps)
	}

	if err := e.svc.SystemSend(ctx, chat.SystemToUser, "b", msg); err != nil {
		t.Fatal(err)
	}
	if got := sysRecipients(t, e.pub.take(), payload); !reflect.DeepEqual(got, []string{"user:b"}) {
		t.Errorf("user target: %v", got)
	}
	if ps := e.push.take(); len(ps) != 1 || ps[0].User != "b" || ps[0].Event != chat.EventSys || ps[0].Parrot != payload || ps[0].Alert != "notice" {
		t.Errorf("offline user push = %+v", ps)
	}

	if err := e.svc.SystemSend(ctx, chat.SystemToUser, "p1", msg); err != nil {
		t.Fatal(err)
	}
	if got := sysRecipients(t, e.pub.take(), payload); !reflect.DeepEqual(got, []string{"passenger:p1"}) {
		t.Errorf("passenger target: %v", got)
	}

	if err := e.svc.SystemSend(ctx, chat.SystemToGroup, "g1", msg); err != nil {
		t.Fatal(err)
	}
	if got := sysRecipients(t, e.pub.take(), payload); !reflect.DeepEqual(got, []string{"user:a", "user:b"}) {
		t.Errorf("group target: %v", got)
	}
	if ps := e.push.take(); len(ps) != 1 || ps[0].User != "b" {
		t.Errorf("group push = %+v", ps)
	}
	off := false
	if err := e.svc.SystemSend(ctx, chat.SystemToGroup, "g1", chat.SystemMessage{Content: msg.Content, Push: &chat.PushSettings{Enable: &off}}); err != nil {
		t.Fatal(err)
	}
	e.pub.take()
	if ps := e.push.take(); len(ps) != 0 {
		t.Errorf("push disabled but pushed %+v", ps)
	}

	if err := e.svc.SystemSend(ctx, chat.SystemToRoom, "r1", msg); err != nil {
		t.Fatal(err)
	}
	if got := sysRecipients(t, e.pub.take(), payload); !reflect.DeepEqual(got, []string{"user:a", "user:c"}) {
		t.Errorf("room target: %v", got)
	}
	if ps := e.push.take(); len(ps) != 0 {
		t.Errorf("room pushed %+v", ps)
	}

	for _, tt := range []struct {
		kind   chat.SystemTarget
		target string
		code   int
	}{
		{chat.SystemToUser, "nobody", chat.CodeNotFound},
		{chat.SystemToGroup, "nogroup", chat.CodeNotFound},
		{chat.SystemToRoom, "noroom", chat.CodeNotFound},
		{chat.SystemToGroup, "b", chat.CodeNotFound},
		{chat.SystemToUser, "bad/id", chat.CodeInvalid},
	} {
		if err := e.svc.SystemSend(ctx, tt.kind, tt.target, msg); chat.ErrorCode(err) != tt.code {
			t.Errorf("SystemSend(%d, %q) err = %v, want %d", tt.kind, tt.target, err, tt.code)
		}
	}
	if ds := e.pub.take(); len(ds) != 0 {
		t.Errorf("refused system messages delivered %+v", ds)
	}
}
