package chat

import (
	"context"
	"encoding/json"
)

// listRules is what MaxIM sets apart between groups and rooms; everything
// else about a member list follows one code path.
type listRules struct {
	name string // in error messages
	// key prefixes the id in the key of the list's membership lock and
	// cache entry (Service.lockKey, memberCache).
	key string
	// owned: an owner is required, counts as a member and cannot be removed.
	owned bool
	limit func(Options) int
	// tooMany is the CodeMemberLimit message, given the limit and the size.
	tooMany string
	// conv is the conversation that keeps the list's history. nil: nothing
	// is stored, messages reach online members only and are never pushed.
	conv func(id string) Conv
}

var listKinds = map[ListKind]*listRules{
	GroupList: {
		name: "group", key: "g:", owned: true, conv: GroupConv,
		limit:   func(o Options) int { return o.GroupLimit },
		tooMany: "a group holds at most %d users (owner included), not %d",
	},
	RoomList: {
		name: "room", key: "r:",
		limit:   func(o Options) int { return o.RoomLimit },
		tooMany: "a room holds at most %d members, not %d",
	},
}

// String returns "group" or "room".
func (k ListKind) String() string {
	if r := listKinds[k]; r != nil {
		return r.name
	}
	return "member list"
}

// Owned reports whether lists of kind k have an owner (groups do).
func (k ListKind) Owned() bool { return listKinds[k] != nil && listKinds[k].owned }

// onlineOnly reports whether a message to a list of kind k reaches only
// the members online and is neither stored nor pushed (rooms).
func (k ListKind) onlineOnly() bool { return listKinds[k].conv == nil }

// lockKey returns the key of the membership lock and cache entry of list
// id: "g:<gid>" or "r:<rid>".
func (k ListKind) lockKey(id string) string { return listKinds[k].key + id }

// NewMemberList is what creating a group (G1) or a room (R1) takes. The
// REST layer maps a top-level "name" to Attributes["name"].
type NewMemberList struct {
	Owner      string // groups only, required
	Members    []string
	Attributes Attributes
}

// MemberListUpdate is what G4 and R4 change. An empty Owner keeps the owner
// (groups only); a nil Members keeps the members, a non-nil one (even
// empty) replaces them; a non-empty Name sets attributes.name.
type MemberListUpdate struct {
	Owner   string
	Members []string
	Name    json.RawMessage
}

// MemberListItem is one entry of a detailed list (U13, U14). Recent is the
// latest record within retention, nil when there is none (always for rooms,
// which keep no history).
type MemberListItem struct {
	MemberList
	Recent *Record
}

// rulesOf returns the rules of kind; an unknown kind is CodeInvalid.
func rulesOf(kind ListKind) (*listRules, error) {
	if r := listKinds[kind]; r != nil {
		return r, nil
	}
	return nil, Errorf(CodeInvalid, "unknown member list kind %d", kind)
}

// listArgs checks the kind and the id of the list a call names.
func listArgs(kind ListKind, id string) (*listRules, error) {
	r, err := rulesOf(kind)
	if err != nil {
		return nil, err
	}
	return r, CheckID(r.name, id)
}

// checkOwner validates the owner a create or update names.
func (r *listRules) checkOwner(owner string) error {
	if owner == "" {
		return nil
	}
	if !r.owned {
		return Errorf(CodeInvalid, "a %s has no owner", r.name)
	}
	return CheckID("owner", owner)
}

// CreateMemberList creates a group (G1) or room (R1) and returns its new
// 32-hex id. Members are stored as given (deduplicated); a group's owner is
// an implicit member. Unknown owner and member ids are created as users
// (docs/maxim.md §1.2). Returns CodeInvalid for a missing or bad owner or a
// bad member id, CodeMemberLimit when owner ∪ members exceeds the limit,
// CodeTooLong for oversized attributes.
func (s *Service) CreateMemberList(ctx context.Context, kind ListKind, nl NewMemberList) (string, error) {
	r, err := rulesOf(kind)
	if err != nil {
		return "", err
	}
	if r.owned && nl.Owner == "" {
		return "", Errorf(CodeInvalid, "owner is required")
	}
	if err := r.checkOwner(nl.Owner); err != nil {
		return "", err
	}
	members := uniqueIDs(nl.Members)
	if err := checkIDList("member", members); err != nil {
		return "", err
	}
	attrs, err := cleanAttrs(nl.Attributes)
	if err != nil {
		return "", err
	}
	now := s.nowMillis()
	l := &MemberList{Kind: kind, ID: NewGroupID(), Owner: nl.Owner, Members: members, Attributes: attrs, TS: now}
	if err := s.checkSize(r, l); err != nil {
		return "", err
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		for _, id := range l.Everyone() {
			if err := createUserIfMissing(tx, id, now); err != nil {
				return err
			}
		}
		return tx.PutMemberList(l)
	})
	if err != nil {
		return "", err
	}
	return l.ID, nil
}

// MemberList returns group or room id (G3, R3). Returns CodeNotFound for
// an unknown one.
func (s *Service) MemberList(ctx context.Context, kind ListKind, id string) (*MemberList, error) {
	if _, err := listArgs(kind, id); err != nil {
		return nil, err
	}
	var l *MemberList
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		l, err = tx.MemberList(kind, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return tidyList(l), nil
}

// UpdateMemberList changes the owner, replaces the members and/or sets the
// name of group or room id (G4, R4). The new owner and every member must
// be existing users (CodeNotFound otherwise); the size limit applies
// (CodeMemberLimit). It holds the list's write lock: once it returns, a
// removed member gets no further message of the list.
func (s *Service) UpdateMemberList(ctx context.Context, kind ListKind, id string, u MemberListUpdate) error {
	r, err := listArgs(kind, id)
	if err != nil {
		return err
	}
	if err := r.checkOwner(u.Owner); err != nil {
		return err
	}
	members := u.Members
	if members != nil {
		members = uniqueIDs(members)
		if err := checkIDList("member", members); err != nil {
			return err
		}
	}
	var name Attributes
	if len(u.Name) > 0 {
		if name, err = cleanAttrs(Attributes{"name": u.Name}); err != nil {
			return err
		}
	}
	return s.updateLocked(ctx, kind.lockKey(id), func(tx Tx) error {
		l, err := tx.MemberList(kind, id)
		if err != nil {
			return err
		}
		if u.Owner != "" {
			if err := mustBeUsers(tx, []string{u.Owner}); err != nil {
				return err
			}
			l.Owner = u.Owner
		}
		if members != nil {
			if err := mustBeUsers(tx, members); err != nil {
				return err
			}
			l.Members = members
		}
		if name != nil {
			attrs := emptyAttrsIfNil(l.Attributes).Clone()
			attrs["name"] = name["name"]
			if l.Attributes, err = sizedAttrs(attrs); err != nil {
				return err
			}
		}
		if err := s.checkSize(r, l); err != nil {
			return err
		}
		return tx.PutMemberList(l)
	})
}

// DeleteMemberList deletes group or room id with its attributes and a
// group's history (G5, R5). It is idempotent: an unknown id is no error.
// It holds the list's write lock, so no message being sent concurrently is
// delivered after it returns.
func (s *Service) DeleteMemberList(ctx context.Context, kind ListKind, id string) error {
	r, err := listArgs(kind, id)
	if err != nil {
		return err
	}
	if err := s.updateLocked(ctx, kind.lockKey(id), func(tx Tx) error { return tx.DeleteMemberList(kind, id) }); err != nil {
		return err
	}
	if r.conv == nil {
		return nil
	}
	// After the group is gone: a crash in between leaves records that
	// nothing can read and that expire with their TTL.
	return s.store.DeleteRecords(ctx, r.conv(id))
}

// AddMembers adds existing users to group or room id (G11, G13, R11, R13).
// Ids already in it (a group's owner included) are ignored. Returns
// CodeNotFound for an unknown list or user, CodeMemberLimit past the limit,
// CodeInvalid for an empty list or a bad id.
func (s *Service) AddMembers(ctx context.Context, kind ListKind, id string, ids []string) error {
	return s.changeMembers(ctx, kind, id, ids, func(tx Tx, r *listRules, l *MemberList, ids []string) (bool, error) {
		if err := mustBeUsers(tx, ids); err != nil {
			return false, err
		}
		var changed bool
		if l.Members, changed = appendNew(l.Members, ids, l.HasMember); !changed {
			return false, nil
		}
		return true, s.checkSize(r, l)
	})
}

// RemoveMembers removes users from group or room id (G12, G14, R12, R14).
// Ids that are not members are ignored. A group's owner cannot be removed:
// a list naming the owner returns CodeConflict and changes nothing. It
// holds the list's write lock (see UpdateMemberList).
func (s *Service) RemoveMembers(ctx context.Context, kind ListKind, id string, ids []string) error {
	return s.changeMembers(ctx, kind, id, ids, func(_ Tx, r *listRules, l *MemberList, ids []string) (bool, error) {
		if l.Owner != "" && contains(ids, l.Owner) {
			return false, Errorf(CodeConflict, "the owner %q cannot be removed from the %s", l.Owner, r.name)
		}
		var changed bool
		l.Members, changed = without(l.Members, ids)
		return changed, nil
	})
}

// changeMembers validates a member add or remove, then, under the list's
// write lock, applies change to the stored list and stores it if change
// reports a change.
func (s *Service) changeMembers(ctx context.Context, kind ListKind, id string, ids []string,
	change func(tx Tx, r *listRules, l *MemberList, ids []string) (bool, error)) error {
	r, err := listArgs(kind, id)
	if err != nil {
		return err
	}
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return Errorf(CodeInvalid, "members is required")
	}
	if err := checkIDList("member", ids); err != nil {
		return err
	}
	return s.updateLocked(ctx, kind.lockKey(id), func(tx Tx) error {
		l, err := tx.MemberList(kind, id)
		if err != nil {
			return err
		}
		if changed, err := change(tx, r, l, ids); err != nil || !changed {
			return err
		}
		return tx.PutMemberList(l)
	})
}

// MemberListIDsOf returns the ids of the groups uid owns or is a member of
// (U13), or of the rooms uid is a member of (U14).
func (s *Service) MemberListIDsOf(ctx context.Context, kind ListKind, uid string) ([]string, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	var ids []string
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		ids, err = tx.MemberListIDsOf(kind, uid)
		return err
	})
	return emptyIfNil(ids), err
}

// MemberListDetailsOf returns the lists of MemberListIDsOf, in its order,
// each with its latest record (U13 ?detail; U14 ?detail has none).
func (s *Service) MemberListDetailsOf(ctx context.Context, kind ListKind, uid string) ([]MemberListItem, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	r, err := rulesOf(kind)
	if err != nil {
		return nil, err
	}
	var lists []*MemberList
	err = s.store.View(ctx, func(tx Tx) error {
		ids, err := tx.MemberListIDsOf(kind, uid)
		if err != nil {
			return err
		}
		for _, id := range ids {
			l, err := tx.MemberList(kind, id)
			if IsNotFound(err) {
				continue // index ahead of a concurrent delete
			}
			if err != nil {
				return err
			}
			lists = append(lists, l)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	now := s.nowMillis()
	out := make([]MemberListItem, 0, len(lists))
	for _, l := range lists {
		var rec *Record
		if r.conv != nil {
			if rec, err = s.latestRecord(ctx, r.conv(l.ID), now); err != nil {
				return nil, err
			}
		}
		out = append(out, MemberListItem{MemberList: *tidyList(l), Recent: rec})
	}
	return out, nil
}

// SearchMemberLists returns the groups (G2) or rooms (R2) whose attributes
// match q.
func (s *Service) SearchMemberLists(ctx context.Context, kind ListKind, q SearchQuery) ([]*MemberList, error) {
	var hits []*MemberList
	err := s.store.View(ctx, func(tx Tx) error {
		return tx.MemberLists(kind, func(l *MemberList) error {
			if q.matches(l.Attributes) {
				hits = append(hits, tidyList(l))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return pageSorted(hits, q, func(l *MemberList) searchable { return searchable{l.ID, l.TS, l.Attributes} }), nil
}

func (s *Service) checkSize(r *listRules, l *MemberList) error {
	if n, limit := len(l.Everyone()), r.limit(s.opts); n > limit {
		return Errorf(CodeMemberLimit, r.tooMany, limit, n)
	}
	return nil
}

// tidyList makes empty collections [] and {} rather than null.
func tidyList(l *MemberList) *MemberList {
	l.Members = emptyIfNil(l.Members)
	l.Attributes = emptyAttrsIfNil(l.Attributes)
	return l
}

// uniqueIDs drops empty and repeated ids, keeping the first occurrence.
// The result is never nil.
func uniqueIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// without returns list minus the ids in drop, and whether anything went.
func without(list, drop []string) ([]string, bool) {
	kept := make([]string, 0, len(list))
	for _, m := range list {
		if !contains(drop, m) {
			kept = append(kept, m)
		}
	}
	return kept, len(kept) != len(list)
}

// appendNew appends to members the ids for which has is false; changed
// tells whether any was added.
func appendNew(members, ids []string, has func(string) bool) (out []string, changed bool) {
	for _, id := range ids {
		if !has(id) {
			members = append(members, id)
			changed = true
		}
	}
	return members, changed
}
