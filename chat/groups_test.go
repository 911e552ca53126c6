package chat_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mqim/mqim/chat"
)

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// Ensure the group limit counts owner ∪ members: the owner listed among the
// members counts once, and a refused create writes nothing.
func TestService_GroupLimit(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if _, err := svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "m0", Members: ids("m", 50)}); err != nil {
		t.Fatalf("50 with owner among members: %v", err)
	}
	_, err := svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "owner", Members: ids("x", 50)})
	if chat.ErrorCode(err) != chat.CodeMemberLimit {
		t.Fatalf("51 users: err = %v, want 5008", err)
	}
	if _, err := svc.User(ctx, "owner"); !chat.IsNotFound(err) {
		t.Fatalf("refused create made its owner: %v", err)
	}
	// Duplicates and empty ids do not count.
	if _, err := svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o", Members: append(ids("d", 49), "d0", "", "d1")}); err != nil {
		t.Fatalf("49 + duplicates: %v", err)
	}
}

// Ensure removing the owner is a conflict that changes nothing, even with
// other ids in the same call.
func TestService_RemoveOwner(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	gid, err := svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o", Members: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RemoveMembers(ctx, chat.GroupList, gid, []string{"a", "o"}); chat.ErrorCode(err) != chat.CodeConflict {
		t.Fatalf("err = %v, want 5005", err)
	}
	g, err := svc.MemberList(ctx, chat.GroupList, gid)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.Members) != "[a b]" {
		t.Fatalf("members = %v, want [a b]", g.Members)
	}
	// After an owner change the old owner is an ordinary (removable) member.
	if err := svc.UpdateMemberList(ctx, chat.GroupList, gid, chat.MemberListUpdate{Owner: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.RemoveMembers(ctx, chat.GroupList, gid, []string{"o"}); err != nil {
		t.Fatalf("remove former owner: %v", err)
	}
	if got, _ := svc.MemberListIDsOf(ctx, chat.GroupList, "o"); len(got) != 0 {
		t.Fatalf("former owner still indexed in %v", got)
	}
}

// Ensure deleting a group deletes its history, and a group created later
// starts empty.
func TestService_DeleteGroupHistory(t *testing.T) {
	svc, now := newService(t)
	ctx := context.Background()
	gid, err := svc.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &chat.Record{Conv: chat.GroupConv(gid), Speaker: "o", Content: chat.Content{Body: "x"}, TS: *now - 1}
	if err := chat.StoreOf(svc).AppendRecord(ctx, rec, 0); err != nil {
		t.Fatal(err)
	}
	if recs, _ := svc.GroupHistory(ctx, gid, 0, 0); len(recs) != 1 {
		t.Fatalf("history = %v", recs)
	}
	if err := svc.DeleteMemberList(ctx, chat.GroupList, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GroupHistory(ctx, gid, 0, 0); !chat.IsNotFound(err) {
		t.Fatalf("history of deleted group: err = %v, want 5004", err)
	}
	recs, err := chat.StoreOf(svc).Records(ctx, chat.GroupConv(gid), *now+1, 0, 10)
	if err != nil || len(recs) != 0 {
		t.Fatalf("stored records after delete = %v, %v", recs, err)
	}
}

// Ensure a batch of friends is all or nothing, and repeats are idempotent.
func TestService_AddFriends(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if _, err := svc.AddFriends(ctx, "a", []string{"b", "a"}); chat.ErrorCode(err) != chat.CodeInvalid {
		t.Fatalf("self in batch: err = %v", err)
	}
	if _, err := svc.User(ctx, "b"); !chat.IsNotFound(err) {
		t.Fatalf("refused batch created b: %v", err)
	}
	fs, err := svc.AddFriends(ctx, "a", []string{"b", "c", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 3 || fs[0].ID != fs[2].ID || fs[0].ID == fs[1].ID {
		t.Fatalf("friendships = %+v", fs)
	}
	again, err := svc.AddFriend(ctx, "c", "a")
	if err != nil || again.ID != fs[1].ID || again.From != "a" {
		t.Fatalf("repeat swapped = %+v, %v; want %+v", again, err, fs[1])
	}
	if err := svc.Unfriend(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Unfriend(ctx, "c", "a"); err != nil {
		t.Fatalf("second unfriend: %v", err)
	}
	got, _ := svc.FriendIDs(ctx, "a")
	if fmt.Sprint(got) != "[b]" {
		t.Fatalf("friends = %v", got)
	}
}
