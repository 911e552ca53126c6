package chat

import (
	"context"
	"encoding/json"
)

// NewRoom is what creating a room takes (R1). The REST layer maps a
// top-level "name" to Attributes["name"].
type NewRoom struct {
	Members    []string
	Attributes Attributes
}

// RoomUpdate is what R4 changes. A nil Members keeps the members, a non-nil
// one (even empty) replaces them; a non-empty Name sets attributes.name.
type RoomUpdate struct {
	Members []string
	Name    json.RawMessage
}

// CreateRoom creates a room and returns its new 32-hex id (R1). Unknown
// member ids are created as users (maxim-spec.md §1.2). Returns CodeInvalid
// for a bad member id, CodeMemberLimit past the room limit, CodeTooLong for
// oversized attributes.
func (s *Service) CreateRoom(ctx context.Context, nr NewRoom) (string, error) {
	members := uniqueIDs(nr.Members)
	if err := checkIDList("member", members); err != nil {
		return "", err
	}
	attrs, err := cleanAttrs(nr.Attributes)
	if err != nil {
		return "", err
	}
	now := s.nowMillis()
	r := &Room{ID: NewGroupID(), Members: members, Attributes: attrs, TS: now}
	if err := s.checkRoomSize(r); err != nil {
		return "", err
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		for _, id := range r.Members {
			if err := createUserIfMissing(tx, id, now); err != nil {
				return err
			}
		}
		return tx.PutRoom(r)
	})
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// Room returns room rid (R3). Returns CodeNotFound for an unknown room.
func (s *Service) Room(ctx context.Context, rid string) (*Room, error) {
	if err := CheckID("room", rid); err != nil {
		return nil, err
	}
	var r *Room
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		r, err = tx.Room(rid)
		return err
	})
	if err != nil {
		return nil, err
	}
	return tidyRoom(r), nil
}

// UpdateRoom replaces the members and/or sets the name of room rid (R4).
// Members must be existing users (CodeNotFound). It holds the room's write
// lock: once it returns, a removed member gets no further room message.
func (s *Service) UpdateRoom(ctx context.Context, rid string, u RoomUpdate) error {
	if err := CheckID("room", rid); err != nil {
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
		var err error
		if name, err = cleanAttrs(Attributes{"name": u.Name}); err != nil {
			return err
		}
	}
	return s.updateLocked(ctx, "r:"+rid, func(tx Tx) error {
		r, err := tx.Room(rid)
		if err != nil {
			return err
		}
		if members != nil {
			if err := mustBeUsers(tx, members); err != nil {
				return err
			}
			r.Members = members
		}
		if name != nil {
			attrs := emptyAttrsIfNil(r.Attributes).Clone()
			attrs["name"] = name["name"]
			if r.Attributes, err = sizedAttrs(attrs); err != nil {
				return err
			}
		}
		if err := s.checkRoomSize(r); err != nil {
			return err
		}
		return tx.PutRoom(r)
	})
}

// DeleteRoom deletes room rid (R5). It is idempotent and holds the room's
// write lock like UpdateRoom.
func (s *Service) DeleteRoom(ctx context.Context, rid string) error {
	if err := CheckID("room", rid); err != nil {
		return err
	}
	return s.updateLocked(ctx, "r:"+rid, func(tx Tx) error { return tx.DeleteRoom(rid) })
}

// AddRoomMembers adds existing users to room rid (R11, R13). Ids already in
// the room are ignored. Errors as for AddGroupMembers.
func (s *Service) AddRoomMembers(ctx context.Context, rid string, ids []string) error {
	ids, err := memberArgs("room", rid, ids)
	if err != nil {
		return err
	}
	return s.updateLocked(ctx, "r:"+rid, func(tx Tx) error {
		r, err := tx.Room(rid)
		if err != nil {
			return err
		}
		if err := mustBeUsers(tx, ids); err != nil {
			return err
		}
		var changed bool
		if r.Members, changed = appendNew(r.Members, ids, r.HasMember); !changed {
			return nil
		}
		if err := s.checkRoomSize(r); err != nil {
			return err
		}
		return tx.PutRoom(r)
	})
}

// RemoveRoomMembers removes users from room rid (R12, R14); ids that are not
// members are ignored. It holds the room's write lock like UpdateRoom.
func (s *Service) RemoveRoomMembers(ctx context.Context, rid string, ids []string) error {
	ids, err := memberArgs("room", rid, ids)
	if err != nil {
		return err
	}
	return s.updateLocked(ctx, "r:"+rid, func(tx Tx) error {
		r, err := tx.Room(rid)
		if err != nil {
			return err
		}
		kept, changed := without(r.Members, ids)
		if !changed {
			return nil
		}
		r.Members = kept
		return tx.PutRoom(r)
	})
}

// RoomIDsOf returns the ids of the rooms uid is a member of (U14).
func (s *Service) RoomIDsOf(ctx context.Context, uid string) ([]string, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	var ids []string
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		ids, err = tx.RoomIDsOf(uid)
		return err
	})
	return emptyIfNil(ids), err
}

// RoomDetailsOf returns the rooms uid is a member of (U14 ?detail), in the
// order of RoomIDsOf. Rooms keep no history, so there is no recent record.
func (s *Service) RoomDetailsOf(ctx context.Context, uid string) ([]*Room, error) {
	if err := CheckID("user", uid); err != nil {
		return nil, err
	}
	out := []*Room{}
	err := s.store.View(ctx, func(tx Tx) error {
		ids, err := tx.RoomIDsOf(uid)
		if err != nil {
			return err
		}
		for _, id := range ids {
			r, err := tx.Room(id)
			if IsNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, tidyRoom(r))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SearchRooms returns the rooms whose attributes match q (R2).
func (s *Service) SearchRooms(ctx context.Context, q SearchQuery) ([]*Room, error) {
	var hits []*Room
	err := s.store.View(ctx, func(tx Tx) error {
		return tx.Rooms(func(r *Room) error {
			if q.matches(r.Attributes) {
				hits = append(hits, tidyRoom(r))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return pageSorted(hits, q, func(r *Room) searchable { return searchable{r.ID, r.TS, r.Attributes} }), nil
}

func (s *Service) checkRoomSize(r *Room) error {
	if n := len(r.Members); n > s.opts.RoomLimit {
		return Errorf(CodeMemberLimit, "a room holds at most %d members, not %d", s.opts.RoomLimit, n)
	}
	return nil
}

func tidyRoom(r *Room) *Room {
	r.Members = emptyIfNil(r.Members)
	r.Attributes = emptyAttrsIfNil(r.Attributes)
	return r
}
