package chat_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/storage"
)

// newWindowEnv is newRTEnv with the recall and edit windows set.
func newWindowEnv(t *testing.T, recall, edit time.Duration) *rtEnv {
	t.Helper()
	db, err := storage.Open(storage.Options{Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e := &rtEnv{db: db, pub: &recordingPublisher{}, push: &recordingPusher{}, now: time.UnixMilli(rtNow)}
	e.svc = chat.NewService(db, chat.Options{AppID: "app", MaxBodyLen: 64, RecallWindow: recall, EditWindow: edit})
	e.svc.Publisher, e.svc.Pusher = e.pub, e.push
	e.svc.Now = func() time.Time { return e.now }
	return e
}

// Ensure the windows: zero options take the defaults (2 minutes, 24
// hours, to the millisecond), negative ones allow any age; recall and edit
// events go to every session of both parties (no session excepted) and
// nothing is pushed, even to an offline party with an install.
func TestRecallEdit_Windows(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name         string
		recall, edit time.Duration
		late         bool // allowed a month later
	}{{"defaults", 0, 0, false}, {"no limit", -1, -1, true}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newWindowEnv(t, tt.recall, tt.edit)
			e.users(t, "alice", "bob")
			e.friends(t, "alice", "bob")
			e.seed(t, func(tx chat.Tx) error {
				return tx.PutUser(&chat.UserRecord{ID: "bob", Attributes: chat.Attributes{}, Installs: []string{"i1"}})
			})
			say := func() uint64 {
				res, err := e.svc.Say(ctx, chat.User("alice"), "a1", chat.SayTarget{Type: chat.TypeFriend, ID: "bob"}, []byte(`{"content":{"body":"x"}}`))
				if err != nil {
					t.Fatal(err)
				}
				e.pub.take()
				e.push.take()
				return res.Seq
			}
			bob := chat.ConvRef{Kind: chat.ConvFriend, ID: "bob"}
			alice := chat.User("alice")

			s1, s2 := say(), say()
			e.now = e.now.Add(chat.DefaultRecallWindow)
			if _, err := e.svc.Recall(ctx, alice, false, bob, s1); err != nil {
				t.Fatalf("recall at the window's end: %v", err)
			}
			got := e.pub.take()
			if len(got) != 2 || got[0].To != alice || got[1].To != chat.User("bob") || got[0].Except != "" || got[1].Except != "" ||
				got[0].Event != chat.EventRecall || decode(t, got[1].Payload)["id"] != "alice" {
				t.Errorf("recall deliveries = %+v", got)
			}
			// s2 was stamped a millisecond after s1 (ts strictly increases
			// within a conversation): its window ends a millisecond later.
			e.now = e.now.Add(2 * time.Millisecond)
			_, err := e.svc.Recall(ctx, alice, false, bob, s2)
			if allowed := err == nil; allowed != tt.late || (err != nil && chat.ErrorCode(err) != chat.CodeUnauthorized) {
				t.Errorf("recall a millisecond late: %v", err)
			}

			s3 := say()
			e.now = e.now.Add(chat.DefaultEditWindow)
			if _, err := e.svc.Edit(ctx, alice, bob, s3, chat.Content{Body: "y"}); err != nil {
				t.Fatalf("edit at the window's end: %v", err)
			}
			e.pub.take()
			e.now = e.now.Add(30 * 24 * time.Hour)
			_, err = e.svc.Edit(ctx, alice, bob, s3, chat.Content{Body: "z"})
			if allowed := err == nil; allowed != tt.late || (err != nil && chat.ErrorCode(err) != chat.CodeUnauthorized) {
				t.Errorf("edit a month late: %v", err)
			}
			if p := e.push.take(); len(p) != 0 {
				t.Errorf("pushed %+v", p)
			}
		})
	}
}

// Ensure typing goes to online parties only and is never stored or pushed.
func TestTyping_OnlineOnly(t *testing.T) {
	ctx := context.Background()
	e := newWindowEnv(t, 0, 0)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	bob := chat.ConvRef{Kind: chat.ConvFriend, ID: "bob"}
	if fwd, err := e.svc.Typing(ctx, chat.User("alice"), bob); err != nil || !fwd {
		t.Fatalf("typing: %v, %v", fwd, err)
	}
	if got := e.pub.take(); len(got) != 0 {
		t.Errorf("typing to offline bob delivered %+v", got)
	}
	e.svc.Presence.Open(chat.User("bob"), "b1", false)
	e.now = e.now.Add(time.Second)
	if _, err := e.svc.Typing(ctx, chat.User("alice"), bob); err != nil {
		t.Fatal(err)
	}
	if got := e.pub.take(); len(got) != 1 || got[0].To != chat.User("bob") || got[0].Event != chat.EventTyping {
		t.Errorf("typing deliveries = %+v", got)
	}
	recs, _ := e.svc.FriendHistory(ctx, "alice", "bob", 0, 10)
	if len(recs) != 0 || len(e.push.take()) != 0 {
		t.Errorf("typing stored %+v or pushed", recs)
	}
}
