package chat

import "context"

// NewGroup is what creating a group takes (G1). The REST layer maps a
// top-level "name" to Attributes["name"].
type NewGroup struct {
	Owner      string
	Members    []string
	Attributes Attributes
}

// GroupUpdate is what G4 changes. An empty Owner keeps the owner; a nil
// Members keeps the members, a non-nil one (even empty) replaces them.
type GroupUpdate struct {
	Owner   string
	Members []string
}

// GroupItem is one entry of a detailed group list (U13). Recent is the
// latest group record within retention, nil when there is none.
type GroupItem struct {
	Group
	Recent *Record
}

// CreateGroup creates a group and returns its new 32-hex id (G1). Members
// are stored as given (deduplicated); the owner is an implicit member.
// Unknown owner and member ids are created as users (maxim-spec.md §1.2).
// Returns CodeInvalid for a missing or bad owner or a bad member id,
// CodeMemberLimit when owner ∪ members exceeds the group limit, CodeTooLong
// for oversized attributes.
func (s *Service) CreateGroup(ctx context.Context, ng NewGroup) (string, error) {
	if ng.Owner == "" {
		return "", Errorf(CodeInvalid, "owner is required")
	}
	if err := CheckID("owner", ng.Owner); err != nil {
		return "", err
	}
	members := uniqueIDs(ng.Members)
	if err := checkIDList("member", members); err != nil {
		return "", err
	}
	attrs, err := cleanAttrs(ng.Attributes)
	if err != nil {
		return "", err
	}
	now := s.nowMillis()
	g := &Group{ID: NewGroupID(), Owner: ng.Owner, Members: members, Attributes: attrs, TS: now}
	if err := s.checkGroupSize(g); err != nil {
		return "", err
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		for _, id := range g.Everyone() {
			if err := createUserIfMissing(tx, id, now); err != nil {
				return err
			}
		}
		return tx.PutGroup(g)
	})
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

// Group returns group gid (G3). Returns CodeNotFound for an unknown group.
func (s *Service) Group(ctx context.Context, gid string) (*Group, error) {
	if err := CheckID("group", gid); err != nil {
		return nil, err
	}
	var g *Group
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		g, err = tx.Group(gid)
		return err
	})
	if err != nil {
		return nil, err
	}
	return tidyGroup(g), nil
}

// UpdateGroup changes the owner and/or replaces the members of group gid
// (G4). The new owner and every member must be existing users
// (CodeNotFound otherwise); the size limit applies (CodeMemberLimit).
// It holds the group's write lock: once it returns, a removed member gets
// no further group message.
func (s *Service) UpdateGroup(ctx context.Context, gid string, u GroupUpdate) error {
	if err := CheckID("group", gid); err != nil {
		return err
	}
	if u.Owner != "" {
		if err := CheckID("owner", u.Owner); err != nil {
			return err
		}
	}
	members := u.Members
	if members != nil {
		members = uniqueIDs(members)
		if err := checkIDList("member", members); err != nil {
			return err
		}
	}
	return s.updateLocked(ctx, "g:"+gid, func(tx Tx) error {
		g, err := tx.Group(gid)
		if err != nil {
			return err
		}
		if u.Owner != "" {
			if err := mustBeUsers(tx, []string{u.Owner}); err != nil {
				return err
			}
			g.Owner = u.Owner
		}
		if members != nil {
			if err := mustBeUsers(tx, members); err != nil {
				return err
			}
			g.Members = members
		}
		if err := s.checkGroupSize(g); err != nil {
			return err
		}
		return tx.PutGroup(g)
	})
}

// DeleteGroup deletes group gid with its attributes and its history (G5).
// It is idempotent: an unknown group is no error. It holds the group's
// write lock, so no message being sent concurrently is delivered after it
// returns.
func (s *Service) DeleteGroup(ctx context.Context, gid string) error {
	if err := CheckID("group", gid); err != nil {
		return err
	}
	if err := s.updateLocked(ctx, "g:"+gid, func(tx Tx) error { return tx.DeleteGroup(gid) }); err != nil {
		return err
	}
	// After the group is gone: a crash in between leaves records that
	// nothing can read and that expire with their TTL.
	return s.store.DeleteRecords(ctx, GroupConv(gid))
}

// AddGroupMembers adds existing users to group gid (G11, G13). Ids already
// in the group (the owner included) are ignored. Returns CodeNotFound for
// an unknown group or user, CodeMemberLimit past the limit, CodeInvalid for
// an empty list or a bad id.
func (s *Service) AddGroupMembers(ctx context.Context, gid string, ids []string) error {
	ids, err := memberArgs("group", gid, ids)
	if err != nil {
		return err
	}
	return s.updateLocked(ctx, "g:"+gid, func(tx Tx) error {
		g, err := tx.Group(gid)
		if err != nil {
			return err
		}
		if err := mustBeUsers(tx, ids); err != nil {
			return err
		}
		var changed bool
		if g.Members, changed = appendNew(g.Members, ids, g.HasMember); !changed {
			return nil
		}
		if err := s.checkGroupSize(g); err != nil {
			return err
		}
		return tx.PutGroup(g)
	})
}

// RemoveGroupMembers removes users from group gid (G12, G14). Ids that are
// not members are ignored. The owner cannot be removed: a list naming the
// owner returns CodeConflict and changes nothing. It holds the group's
// write lock (see UpdateGroup).
func (s *Service) RemoveGroupMembers(ctx context.Context, gid string, ids []string) error {
	ids, err := memberArgs("group", gid, ids)
	if err != nil {
		return err
	}
	return s.updateLocked(ctx, "g:"+gid, func(tx Tx) error {
		g, err := tx.Group(gid)
		if err != nil {
			return err
		}
		if contains(ids, g.Owner) {
			return Errorf(CodeConflict, "the owner %q cannot be removed from the group", g.Owner)
		}
		kept, changed := without(g.Members, ids)
		if !changed {
			return nil
		}
		g.Members = kept
		return tx.PutGroup(g)
	})
}

// GroupIDsOf returns the ids of the groups uid owns or is a member of (U13).
func (s *Service) GroupIDsOf(ctx context.Context, uid string) ([]string, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	var ids []string
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		ids, err = tx.GroupIDsOf(uid)
		return err
	})
	return emptyIfNil(ids), err
}

// GroupDetailsOf returns the groups uid owns or is a member of, each with
// its latest record (U13 ?detail), in the order of GroupIDsOf.
func (s *Service) GroupDetailsOf(ctx context.Context, uid string) ([]GroupItem, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	var groups []*Group
	err := s.store.View(ctx, func(tx Tx) error {
		ids, err := tx.GroupIDsOf(uid)
		if err != nil {
			return err
		}
		for _, id := range ids {
			g, err := tx.Group(id)
			if IsNotFound(err) {
				continue // index ahead of a concurrent delete
			}
			if err != nil {
				return err
			}
			groups = append(groups, g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	now := s.nowMillis()
	out := make([]GroupItem, 0, len(groups))
	for _, g := range groups {
		rec, err := s.latestRecord(ctx, GroupConv(g.ID), now)
		if err != nil {
			return nil, err
		}
		out = append(out, GroupItem{Group: *tidyGroup(g), Recent: rec})
	}
	return out, nil
}

// SearchGroups returns the groups whose attributes match q (G2).
func (s *Service) SearchGroups(ctx context.Context, q SearchQuery) ([]*Group, error) {
	var hits []*Group
	err := s.store.View(ctx, func(tx Tx) error {
		return tx.Groups(func(g *Group) error {
			if q.matches(g.Attributes) {
				hits = append(hits, tidyGroup(g))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return pageSorted(hits, q, func(g *Group) searchable { return searchable{g.ID, g.TS, g.Attributes} }), nil
}

func (s *Service) checkGroupSize(g *Group) error {
	if n := len(g.Everyone()); n > s.opts.GroupLimit {
		return Errorf(CodeMemberLimit, "a group holds at most %d users (owner included), not %d", s.opts.GroupLimit, n)
	}
	return nil
}

// memberArgs validates the arguments of a member add or remove.
func memberArgs(what, id string, ids []string) ([]string, error) {
	if err := CheckID(what, id); err != nil {
		return nil, err
	}
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return nil, Errorf(CodeInvalid, "members is required")
	}
	if err := checkIDList("member", ids); err != nil {
		return nil, err
	}
	return ids, nil
}

// tidyGroup makes empty collections [] and {} rather than null.
func tidyGroup(g *Group) *Group {
	g.Members = emptyIfNil(g.Members)
	g.Attributes = emptyAttrsIfNil(g.Attributes)
	return g
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
