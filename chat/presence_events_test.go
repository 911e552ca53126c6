package chat_test

import (
	"context"
	"reflect"
	"sort"
	"testing"

	"github.com/mqim/mqim/chat"
)

func presenceEvents(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Event+" "+d.Payload+" → "+d.To.String())
	}
	sort.Strings(out)
	return out
}

// Ensure online/offline go to online friends on the 0→1 and 1→0
// transitions only, online_x/offline_x to every other online identity with
// notifyAll, and passengers cause nothing.
func TestService_SessionEvents(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	e.users(t, "u", "f1", "f2", "x")
	e.friends(t, "u", "f1")
	e.friends(t, "f2", "u")
	// f1 and x are online, f2 is not; a passenger is online.
	e.svc.Presence.Open(chat.User("f1"), "f1", false)
	e.svc.Presence.Open(chat.User("x"), "x", false)
	e.svc.Presence.Open(chat.Passenger("p"), "p", false)

	if first := e.svc.SessionOpened(ctx, chat.User("u"), "u-phone", false); !first {
		t.Fatal("first session not first")
	}
	if got, want := presenceEvents(e.pub.take()), []string{`online "u" → user:f1`}; !reflect.DeepEqual(got, want) {
		t.Errorf("first session: %v, want %v", got, want)
	}
	if first := e.svc.SessionOpened(ctx, chat.User("u"), "u-tab", true); first {
		t.Fatal("second session reported first")
	}
	if ds := e.pub.take(); len(ds) != 0 {
		t.Errorf("second session announced: %v", presenceEvents(ds))
	}
	if last := e.svc.SessionClosed(ctx, chat.User("u"), "u-phone"); last {
		t.Fatal("closing one of two reported last")
	}
	if ds := e.pub.take(); len(ds) != 0 {
		t.Errorf("non-last close announced: %v", presenceEvents(ds))
	}
	// The latest session set notifyAll: the last close tells everyone.
	if last := e.svc.SessionClosed(ctx, chat.User("u"), "u-tab"); !last {
		t.Fatal("last session not last")
	}
	want := []string{`offline "u" → user:f1`, `offline_x "u" → passenger:p`, `offline_x "u" → user:x`}
	if got := presenceEvents(e.pub.take()); !reflect.DeepEqual(got, want) {
		t.Errorf("last close: %v, want %v", got, want)
	}
	if last := e.svc.SessionClosed(ctx, chat.User("u"), "u-tab"); last {
		t.Error("closing an unknown session reported last")
	}

	e.svc.SessionOpened(ctx, chat.User("u"), "u-phone", true)
	want = []string{`online "u" → user:f1`, `online_x "u" → passenger:p`, `online_x "u" → user:x`}
	if got := presenceEvents(e.pub.take()); !reflect.DeepEqual(got, want) {
		t.Errorf("notifyAll open: %v, want %v", got, want)
	}

	e.svc.SessionOpened(ctx, chat.Passenger("p2"), "p2", true)
	e.svc.SessionClosed(ctx, chat.Passenger("p2"), "p2")
	if ds := e.pub.take(); len(ds) != 0 {
		t.Errorf("passenger announced: %v", presenceEvents(ds))
	}
	if !e.svc.Presence.Online(chat.User("u")) || e.svc.Presence.Count(chat.User("u")) != 1 {
		t.Error("presence registry out of step")
	}
}

// Ensure Login creates a missing user, binds installs once, and creates or
// merges a passenger.
func TestService_Login(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	for _, inst := range []string{"i1", "i1", "", "i2"} {
		if err := e.svc.Login(ctx, chat.LoginRequest{Identity: chat.User("neo"), Install: inst}); err != nil {
			t.Fatal(err)
		}
	}
	var u *chat.UserRecord
	var p *chat.PassengerRecord
	read := func() {
		t.Helper()
		err := e.db.View(ctx, func(tx chat.Tx) (err error) {
			if u, err = tx.User("neo"); err != nil {
				return err
			}
			p, err = tx.Passenger("p1")
			if chat.IsNotFound(err) {
				err = nil
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read()
	if !reflect.DeepEqual(u.Installs, []string{"i1", "i2"}) || u.Created != rtNow {
		t.Errorf("user = %+v", u)
	}
	if err := e.svc.Login(ctx, chat.LoginRequest{Identity: chat.Passenger("p1"), Attributes: chat.Attributes{"name": []byte(`"A"`), "id": []byte(`"p1"`)}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Login(ctx, chat.LoginRequest{Identity: chat.Passenger("p1"), Attributes: chat.Attributes{"age": []byte(`3`)}}); err != nil {
		t.Fatal(err)
	}
	read()
	if want := (chat.Attributes{"name": []byte(`"A"`), "age": []byte(`3`)}); !reflect.DeepEqual(p.Attributes, want) {
		t.Errorf("passenger attributes = %s, want %s", p.Attributes, want)
	}
	if err := e.svc.Login(ctx, chat.LoginRequest{Identity: chat.User("bad/id")}); chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("bad id: %v", err)
	}
}
