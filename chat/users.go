package chat

import (
	"bytes"
	"context"
	"encoding/json"
)

// Attribute limits. MaxIM documents none; these keep one object's stored
// attributes to a size that is cheap to read on every search scan.
const (
	// MaxAttrNameLen is the longest attribute name, in bytes.
	MaxAttrNameLen = 256
	// MaxAttrsSize is the largest attributes object of one user, group,
	// room or passenger, in bytes of compact JSON.
	MaxAttrsSize = 64 << 10
)

// AttrKind names the kind of object an attribute call reads or writes
// (U3–U7, G6–G10, R6–R10 share their rules).
type AttrKind int

const (
	// AttrUser is a user context: merge and replace create it if unknown.
	AttrUser AttrKind = iota + 1
	// AttrGroup is a group: it must exist.
	AttrGroup
	// AttrRoom is a room: it must exist.
	AttrRoom
)

// String names the kind in error messages: "user", "group" or "room".
func (k AttrKind) String() string {
	switch k {
	case AttrUser:
		return "user"
	case AttrGroup:
		return "group"
	case AttrRoom:
		return "room"
	}
	return "object"
}

// list returns the kind of member list of AttrGroup or AttrRoom.
func (k AttrKind) list() ListKind {
	if k == AttrGroup {
		return GroupList
	}
	return RoomList
}

// UserDetail is a user context with its live session count and the ids of
// its friends, groups (owned ones included) and rooms (U2).
type UserDetail struct {
	UserRecord
	Sessions int
	Friends  []string
	Groups   []string
	Rooms    []string
}

// UserItem is one user of a search result (U1).
type UserItem struct {
	UserRecord
	Online bool
}

// User returns the detail of user uid. Returns CodeInvalid for a bad id and
// CodeNotFound for an unknown user.
func (s *Service) User(ctx context.Context, uid string) (*UserDetail, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	var d *UserDetail
	err := s.store.View(ctx, func(tx Tx) error {
		u, err := tx.User(uid)
		if err != nil {
			return err
		}
		fs, err := tx.Friendships(uid)
		if err != nil {
			return err
		}
		gids, err := tx.MemberListIDsOf(GroupList, uid)
		if err != nil {
			return err
		}
		rids, err := tx.MemberListIDsOf(RoomList, uid)
		if err != nil {
			return err
		}
		d = &UserDetail{UserRecord: *u, Friends: make([]string, 0, len(fs)), Groups: emptyIfNil(gids), Rooms: emptyIfNil(rids)}
		for _, f := range fs {
			d.Friends = append(d.Friends, f.Other(uid))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.Attributes = emptyAttrsIfNil(d.Attributes)
	d.Installs = emptyIfNil(d.Installs)
	d.Sessions = s.Presence.Count(User(uid))
	return d, nil
}

// MergeAttributes shallow-merges attrs into the attributes of an object:
// given names are overwritten, others kept (U3, G6, R6). A user is created
// if unknown (docs/maxim.md §1.2); a group or room must exist (CodeNotFound).
// Returns CodeInvalid for a bad id or name and CodeTooLong when the result
// exceeds MaxAttrsSize.
func (s *Service) MergeAttributes(ctx context.Context, kind AttrKind, id string, attrs Attributes) error {
	return s.writeAttrs(ctx, kind, id, attrs, false)
}

// ReplaceAttributes replaces all attributes of an object with attrs (U4,
// G7, R7). Creation and errors as for MergeAttributes.
func (s *Service) ReplaceAttributes(ctx context.Context, kind AttrKind, id string, attrs Attributes) error {
	return s.writeAttrs(ctx, kind, id, attrs, true)
}

// ClearAttributes removes every attribute of an existing object (U7, G10,
// R10). Returns CodeNotFound if it does not exist: clearing is not a reason
// to create a user.
func (s *Service) ClearAttributes(ctx context.Context, kind AttrKind, id string) error {
	if err := CheckID(kind.String(), id); err != nil {
		return err
	}
	now := s.nowMillis()
	return s.store.Update(ctx, func(tx Tx) error {
		return attrObject(tx, kind, id, false, now, func(Attributes) Attributes { return Attributes{} })
	})
}

// GetAttributes returns the attributes of an object ({} when it has none).
// Returns CodeNotFound for an unknown object (U5, G8, R8).
func (s *Service) GetAttributes(ctx context.Context, kind AttrKind, id string) (Attributes, error) {
	if err := CheckID(kind.String(), id); err != nil {
		return nil, err
	}
	var out Attributes
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = readAttrs(tx, kind, id)
		return err
	})
	return emptyAttrsIfNil(out), err
}

// GetAttribute returns the raw JSON value of one attribute (U6, G9, R9). A
// stored null comes back as null. Returns CodeNotFound for an unknown object
// or a missing attribute.
func (s *Service) GetAttribute(ctx context.Context, kind AttrKind, id, name string) (json.RawMessage, error) {
	attrs, err := s.GetAttributes(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	v, ok := attrs[name]
	if !ok {
		return nil, Errorf(CodeNotFound, "attribute %q not found", truncate(name, 64))
	}
	return v, nil
}

// UnbindInstalls removes the given installation ids from user uid, or all of
// them when installs is empty (U18, logout: no more push to that device).
// An unknown user has nothing to unbind and is no error.
func (s *Service) UnbindInstalls(ctx context.Context, uid string, installs []string) error {
	if err := CheckID("user", uid); err != nil {
		return err
	}
	now := s.nowMillis()
	return s.store.Update(ctx, func(tx Tx) error {
		u, err := tx.User(uid)
		if IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		kept := []string{}
		if len(installs) > 0 {
			for _, in := range u.Installs {
				if !contains(installs, in) {
					kept = append(kept, in)
				}
			}
		}
		if len(kept) == len(u.Installs) {
			return nil
		}
		u.Installs = kept
		u.TS = now
		return tx.PutUser(u)
	})
}

// SearchUsers returns the users whose attributes match q, sorted and paged
// as q says (U1, docs/maxim.md §5.1).
func (s *Service) SearchUsers(ctx context.Context, q SearchQuery) ([]UserItem, error) {
	var hits []*UserRecord
	err := s.store.View(ctx, func(tx Tx) error {
		return tx.Users(func(u *UserRecord) error {
			if q.matches(u.Attributes) {
				hits = append(hits, u)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	hits = pageSorted(hits, q, func(u *UserRecord) searchable { return searchable{u.ID, u.TS, u.Attributes} })
	out := make([]UserItem, 0, len(hits))
	for _, u := range hits {
		it := UserItem{UserRecord: *u, Online: s.Presence.Online(User(u.ID))}
		it.Attributes = emptyAttrsIfNil(it.Attributes)
		out = append(out, it)
	}
	return out, nil
}

func (s *Service) writeAttrs(ctx context.Context, kind AttrKind, id string, attrs Attributes, replace bool) error {
	if err := CheckID(kind.String(), id); err != nil {
		return err
	}
	clean, err := cleanAttrs(attrs)
	if err != nil {
		return err
	}
	now := s.nowMillis()
	return s.store.Update(ctx, func(tx Tx) error {
		return attrObject(tx, kind, id, true, now, func(old Attributes) Attributes {
			if replace {
				return clean.Clone()
			}
			merged := old.Clone()
			for k, v := range clean {
				merged[k] = v
			}
			return merged
		})
	})
}

// attrObject loads an object, applies fn to its attributes and stores it.
// create allows an unknown user to be created; groups and rooms must exist.
func attrObject(tx Tx, kind AttrKind, id string, create bool, now int64, fn func(Attributes) Attributes) error {
	switch kind {
	case AttrUser:
		u, err := tx.User(id)
		if IsNotFound(err) && create {
			u, err = &UserRecord{ID: id, Attributes: Attributes{}, Installs: []string{}, Created: now}, nil
		}
		if err != nil {
			return err
		}
		attrs, err := sizedAttrs(fn(emptyAttrsIfNil(u.Attributes)))
		if err != nil {
			return err
		}
		u.Attributes, u.TS = attrs, now
		return tx.PutUser(u)
	case AttrGroup, AttrRoom:
		l, err := tx.MemberList(kind.list(), id)
		if err != nil {
			return err
		}
		if l.Attributes, err = sizedAttrs(fn(emptyAttrsIfNil(l.Attributes))); err != nil {
			return err
		}
		return tx.PutMemberList(l)
	}
	return Errorf(CodeInvalid, "unknown object kind")
}

func readAttrs(tx Tx, kind AttrKind, id string) (Attributes, error) {
	switch kind {
	case AttrUser:
		u, err := tx.User(id)
		if err != nil {
			return nil, err
		}
		return u.Attributes, nil
	case AttrGroup, AttrRoom:
		l, err := tx.MemberList(kind.list(), id)
		if err != nil {
			return nil, err
		}
		return l.Attributes, nil
	}
	return nil, Errorf(CodeInvalid, "unknown object kind")
}

// cleanAttrs validates attribute names and compacts the raw values, so
// what is stored is canonical whatever whitespace the client sent.
func cleanAttrs(attrs Attributes) (Attributes, error) {
	out := make(Attributes, len(attrs))
	for k, v := range attrs {
		if k == "" {
			return nil, Errorf(CodeInvalid, "empty attribute name")
		}
		if len(k) > MaxAttrNameLen {
			return nil, Errorf(CodeTooLong, "attribute name longer than %d bytes", MaxAttrNameLen)
		}
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, Errorf(CodeInvalid, "attribute %q is not valid JSON", truncate(k, 64))
		}
		out[k] = json.RawMessage(buf.Bytes())
	}
	if _, err := sizedAttrs(out); err != nil {
		return nil, err
	}
	return out, nil
}

// sizedAttrs returns attrs if their JSON form fits MaxAttrsSize.
func sizedAttrs(attrs Attributes) (Attributes, error) {
	n := 2
	for k, v := range attrs {
		n += len(k) + len(v) + 4
	}
	if n > MaxAttrsSize {
		return nil, Errorf(CodeTooLong, "attributes larger than %d bytes", MaxAttrsSize)
	}
	return attrs, nil
}

// createUserIfMissing creates user id if it does not exist (docs/maxim.md §1.2).
func createUserIfMissing(tx Tx, id string, now int64) error {
	_, err := tx.User(id)
	if IsNotFound(err) {
		return tx.PutUser(&UserRecord{ID: id, Attributes: Attributes{}, Installs: []string{}, Created: now, TS: now})
	}
	return err
}

// mustBeUsers returns CodeNotFound naming the first id that is not a user
// (member add and replace take existing users only, docs/maxim.md §11 A15).
func mustBeUsers(tx Tx, ids []string) error {
	for _, id := range ids {
		if _, err := tx.User(id); err != nil {
			if IsNotFound(err) {
				return Errorf(CodeNotFound, "user %q not found", id)
			}
			return err
		}
	}
	return nil
}

// checkIDList validates every id of a list.
func checkIDList(what string, ids []string) error {
	for _, id := range ids {
		if err := CheckID(what, id); err != nil {
			return err
		}
	}
	return nil
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func emptyAttrsIfNil(a Attributes) Attributes {
	if a == nil {
		return Attributes{}
	}
	return a
}
