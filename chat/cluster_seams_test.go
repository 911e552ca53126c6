package chat_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure the seams a cluster uses keep two Services over one store exact:
// the key MembershipChanged reports, given to the other Service's
// InvalidateMembership, drops its cached membership; with the cache off a
// Service reads every change; MembershipChanged's error reaches the caller
// of a committed change.
func TestService_ClusterMembershipSeams(t *testing.T) {
	e := newRTEnv(t) // node 1
	ctx := context.Background()
	other := chat.NewService(e.db, chat.Options{AppID: "app", MaxBodyLen: 64}) // node 2, same store
	var keys []string
	other.MembershipChanged = func(_ context.Context, key string) error { keys = append(keys, key); return nil }

	gid, err := other.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o", Members: []string{"a", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	reachesX := func() bool {
		t.Helper()
		if err := sayTo(e, "a", chat.TypeGroup, gid, "m"); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(messageTargets(e), chat.User("x"))
	}
	if !reachesX() { // node 1 caches the membership
		t.Fatal("x is a member")
	}
	if err := other.RemoveMembers(ctx, chat.GroupList, gid, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("MembershipChanged keys %v, want one", keys)
	}
	if !reachesX() {
		t.Fatal("node 1 should still use its cached membership before the invalidation")
	}
	e.svc.InvalidateMembership(keys[0])
	if reachesX() {
		t.Fatal("x got a message after node 1 dropped the cached membership")
	}

	// Cache off: node 1 reads node 2's change at once.
	e.svc.SetMembershipCache(false)
	if err := other.AddMembers(ctx, chat.GroupList, gid, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if !reachesX() {
		t.Fatal("x was added back")
	}
	if err := other.RemoveMembers(ctx, chat.GroupList, gid, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if reachesX() {
		t.Fatal("with the cache off node 1 must read the removal")
	}
	e.svc.SetMembershipCache(true)

	// A failing MembershipChanged fails the committed call; a change
	// that fails in the store does not call it.
	boom := errors.New("node z did not confirm")
	other.MembershipChanged = func(context.Context, string) error { return boom }
	if err := other.AddMembers(ctx, chat.GroupList, gid, []string{"x"}); !errors.Is(err, boom) {
		t.Fatalf("AddMembers = %v, want the hook's error", err)
	}
	called := false
	other.MembershipChanged = func(context.Context, string) error { called = true; return nil }
	if err := other.RemoveMembers(ctx, chat.GroupList, "nosuchgroup", []string{"x"}); chat.ErrorCode(err) != chat.CodeNotFound || called {
		t.Fatalf("RemoveMembers of an unknown group = %v, hook called %v", err, called)
	}
}
