package chat

import (
	"context"
	"fmt"
	"slices"
)

// EraseUser removes user uid (docs/maxim.md §2.8): it ends its sessions
// and removes its persistent MQTT sessions with their queued events, then
// removes its context (attributes, installs), its friendships (both
// sides), its group and room memberships, its stranger associations (both
// directions), its read cursors and conversation-list entries, and
// revokes its tokens. With history, its friend and stranger conversations
// go too, for both parties. A group it owns passes to its first member,
// or is deleted when it has none. Erasing an unknown user is no error.
func (s *Service) EraseUser(ctx context.Context, uid string, history bool) error {
	if err := CheckID("user", uid); err != nil {
		return err
	}
	id := User(uid)
	s.disconnect(id, KickErased, 0)
	now := s.nowMillis()
	if err := s.updateAccount(ctx, id, func(a *Account) { a.NotBefore = now }); err != nil {
		return err
	}
	// Memberships, one list at a time under its lock (as member changes).
	for _, kind := range []ListKind{GroupList, RoomList} {
		var ids []string
		err := s.store.View(ctx, func(tx Tx) error {
			var err error
			ids, err = tx.MemberListIDsOf(kind, uid)
			return err
		})
		if err != nil {
			return err
		}
		for _, lid := range ids {
			if err := s.updateLocked(ctx, kind.lockKey(lid), func(tx Tx) error { return leaveList(tx, kind, lid, uid) }); err != nil {
				return fmt.Errorf("erase %s from %s %s: %w", uid, kind, lid, err)
			}
		}
	}
	// Friendships, each under its conversation's lock.
	var friends []string
	var strangers []*Stranger
	err := s.store.View(ctx, func(tx Tx) error {
		fs, err := tx.Friendships(uid)
		if err != nil {
			return err
		}
		for _, f := range fs {
			friends = append(friends, f.Other(uid))
		}
		strangers, err = tx.Strangers(uid)
		return err
	})
	if err != nil {
		return err
	}
	for _, fid := range friends {
		if err := s.updateLocked(ctx, string(FriendConv(uid, fid)), func(tx Tx) error { return tx.DeleteFriendship(uid, fid) }); err != nil {
			return err
		}
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		for _, st := range strangers {
			if err := tx.DeleteStranger(uid, st.Other); err != nil {
				return err
			}
			if err := tx.DeleteStranger(st.Other, uid); err != nil {
				return err
			}
		}
		return tx.DeleteUser(uid)
	})
	if err != nil {
		return err
	}
	if history {
		for _, fid := range friends {
			if err := s.store.ForgetConversation(ctx, FriendConv(uid, fid)); err != nil {
				return err
			}
		}
		for _, st := range strangers {
			if err := s.store.ForgetConversation(ctx, StrangerConv(uid, st.Other)); err != nil {
				return err
			}
		}
	}
	return s.store.ForgetReader(ctx, ReaderKey(id))
}

// leaveList removes uid from list lid; an owner hands the list to its
// first member, or deletes it when there is none.
func leaveList(tx Tx, kind ListKind, lid, uid string) error {
	l, err := tx.MemberList(kind, lid)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	l.Members = slices.DeleteFunc(l.Members, func(m string) bool { return m == uid })
	if l.Owner == uid {
		if len(l.Members) == 0 {
			return tx.DeleteMemberList(kind, lid)
		}
		l.Owner, l.Members = l.Members[0], l.Members[1:]
	}
	return tx.PutMemberList(l)
}
