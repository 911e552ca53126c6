package chat_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/mqim/mqim/chat"
)

// The membership Say checks is cached; these tests warm the cache with a
// say, change the membership through the Service, and check that the very
// next say sees the change.

func sayTo(e *rtEnv, from string, typ int, to, body string) error {
	_, err := e.svc.Say(context.Background(), chat.User(from), from+"-s", chat.SayTarget{Type: typ, ID: to},
		[]byte(fmt.Sprintf(`{"content":{"body":%q}}`, body)))
	return err
}

func messageTargets(e *rtEnv) []chat.Identity {
	var to []chat.Identity
	for _, d := range find(e.pub.take(), chat.EventMessage) {
		to = append(to, d.To)
	}
	return to
}

// Ensure Unfriend applies to the next say of a cached friendship.
func TestService_MemberCache_Unfriend(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	if _, err := e.svc.AddFriend(ctx, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second say is served by the cache
		if err := sayTo(e, "alice", chat.TypeFriend, "bob", "hi"); err != nil {
			t.Fatalf("say %d: %v", i, err)
		}
	}
	if err := e.svc.Unfriend(ctx, "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	e.pub.take()
	for _, from := range []string{"alice", "bob"} {
		to := map[string]string{"alice": "bob", "bob": "alice"}[from]
		if err := sayTo(e, from, chat.TypeFriend, to, "after"); chat.ErrorCode(err) != chat.CodeUnauthorized {
			t.Fatalf("%s says after unfriend: err = %v, want %d", from, err, chat.CodeUnauthorized)
		}
	}
	if got := messageTargets(e); len(got) != 0 {
		t.Fatalf("delivered after unfriend: %v", got)
	}
	// Friends again: accepted.
	if _, err := e.svc.AddFriend(ctx, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := sayTo(e, "bob", chat.TypeFriend, "alice", "again"); err != nil {
		t.Fatalf("say after refriend: %v", err)
	}
}

// Ensure AddFriend applies to the next say after a refused one.
func TestService_MemberCache_AddFriend(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	e.users(t, "alice", "bob")
	for i := range 2 {
		if err := sayTo(e, "alice", chat.TypeFriend, "bob", "hi"); chat.ErrorCode(err) != chat.CodeUnauthorized {
			t.Fatalf("say %d before friends: err = %v", i, err)
		}
	}
	if _, err := e.svc.AddFriends(ctx, "bob", []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	e.pub.take()
	if err := sayTo(e, "alice", chat.TypeFriend, "bob", "hi"); err != nil {
		t.Fatalf("say after AddFriend: %v", err)
	}
	if got := messageTargets(e); !reflect.DeepEqual(got, []chat.Identity{chat.User("bob")}) {
		t.Fatalf("delivered to %v, want bob", got)
	}
}

// Ensure every change of a cached group applies to the next say: removed
// members get nothing, added members and a new owner get it, a removed
// sender is refused, and a deleted group refuses everyone.
func TestService_MemberCache_Group(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	gid, err := e.svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o", Members: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	e.users(t, "d", "n")
	step := func(name, from string, want []chat.Identity) {
		t.Helper()
		e.pub.take()
		if err := sayTo(e, from, chat.TypeGroup, gid, name); err != nil {
			t.Fatalf("%s: say: %v", name, err)
		}
		if got := messageTargets(e); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: delivered to %v, want %v", name, got, want)
		}
	}
	refused := func(name, from string, code int) {
		t.Helper()
		e.pub.take()
		if err := sayTo(e, from, chat.TypeGroup, gid, name); chat.ErrorCode(err) != code {
			t.Fatalf("%s: err = %v, want %d", name, err, code)
		}
		if got := messageTargets(e); len(got) != 0 {
			t.Fatalf("%s: delivered to %v", name, got)
		}
	}
	u := chat.User
	step("warm", "a", []chat.Identity{u("o"), u("b"), u("c")})
	step("cached", "a", []chat.Identity{u("o"), u("b"), u("c")})
	if err := e.svc.RemoveMembers(ctx, chat.GroupList, gid, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	step("after remove", "a", []chat.Identity{u("o"), u("c")})
	refused("removed sender", "b", chat.CodeUnauthorized)
	if err := e.svc.AddMembers(ctx, chat.GroupList, gid, []string{"d"}); err != nil {
		t.Fatal(err)
	}
	step("after add", "a", []chat.Identity{u("o"), u("c"), u("d")})
	if err := e.svc.UpdateMemberList(ctx, chat.GroupList, gid, chat.MemberListUpdate{Owner: "n", Members: []string{"a", "c"}}); err != nil {
		t.Fatal(err)
	}
	step("after update", "a", []chat.Identity{u("n"), u("c")})
	refused("member replaced", "d", chat.CodeUnauthorized)
	// An attribute write leaves the membership as it is.
	if err := e.svc.MergeAttributes(ctx, chat.AttrGroup, gid, chat.Attributes{"k": []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	step("after attributes", "n", []chat.Identity{u("a"), u("c")})
	if err := e.svc.DeleteMemberList(ctx, chat.GroupList, gid); err != nil {
		t.Fatal(err)
	}
	refused("after delete", "a", chat.CodeNotFound)
	refused("owner after delete", "n", chat.CodeNotFound)
}

// Ensure changes of a cached room apply to the next say.
func TestService_MemberCache_Room(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	rid, err := e.svc.CreateMemberList(ctx, chat.RoomList, chat.NewMemberList{Members: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		e.svc.Presence.Open(chat.User(m), m+"-s", false)
	}
	for range 2 {
		e.pub.take()
		if err := sayTo(e, "a", chat.TypeRoom, rid, "hi"); err != nil {
			t.Fatal(err)
		}
		if got := messageTargets(e); !reflect.DeepEqual(got, []chat.Identity{chat.User("b"), chat.User("c")}) {
			t.Fatalf("delivered to %v, want b, c", got)
		}
	}
	if err := e.svc.RemoveMembers(ctx, chat.RoomList, rid, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if err := sayTo(e, "a", chat.TypeRoom, rid, "hi"); err != nil {
		t.Fatal(err)
	}
	if got := messageTargets(e); !reflect.DeepEqual(got, []chat.Identity{chat.User("b")}) {
		t.Fatalf("after remove: delivered to %v, want b", got)
	}
	if err := sayTo(e, "c", chat.TypeRoom, rid, "hi"); chat.ErrorCode(err) != chat.CodeUnauthorized {
		t.Fatalf("removed member says: err = %v", err)
	}
	if err := e.svc.DeleteMemberList(ctx, chat.RoomList, rid); err != nil {
		t.Fatal(err)
	}
	if err := sayTo(e, "a", chat.TypeRoom, rid, "hi"); chat.ErrorCode(err) != chat.CodeNotFound {
		t.Fatalf("say to deleted room: err = %v", err)
	}
}

// Ensure a member removed while others keep sending gets nothing sent after
// the removal returned (run with -race).
func TestService_MemberCache_ConcurrentRemove(t *testing.T) {
	e := newRTEnv(t)
	ctx := context.Background()
	gid, err := e.svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o", Members: []string{"a", "b", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, from := range []string{"o", "a", "b"} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := sayTo(e, from, chat.TypeGroup, gid, "m"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 50 {
		if err := sayTo(e, "o", chat.TypeGroup, gid, "warm"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.RemoveMembers(ctx, chat.GroupList, gid, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	e.pub.take() // everything up to here may have reached x
	for range 50 {
		if err := sayTo(e, "a", chat.TypeGroup, gid, "after"); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	for _, to := range messageTargets(e) {
		if to == chat.User("x") {
			t.Fatal("x got a message sent after its removal returned")
		}
	}
}
