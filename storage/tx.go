package storage

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

// tx implements chat.Tx over one Badger transaction.
type tx struct{ txn *badger.Txn }

var _ chat.Tx = (*tx)(nil)

// get decodes the JSON value at k into a new T. A missing key is a
// CodeNotFound error naming what and id.
func get[T any](t *tx, k []byte, what, id string) (*T, error) {
	item, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, chat.Errorf(chat.CodeNotFound, "%s %q not found", what, id)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get %s %q: %w", what, id, err)
	}
	v := new(T)
	if err := item.Value(func(b []byte) error { return json.Unmarshal(b, v) }); err != nil {
		return nil, fmt.Errorf("storage: get %s %q: %w", what, id, err)
	}
	return v, nil
}

// find is get for an object that may be missing: (nil, nil) when it is.
func find[T any](t *tx, k []byte, what, id string) (*T, error) {
	v, err := get[T](t, k, what, id)
	if chat.IsNotFound(err) {
		return nil, nil
	}
	return v, err
}

// set stores v as JSON at k.
func (t *tx) set(k []byte, v any, what, id string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("storage: encode %s %q: %w", what, id, err)
	}
	if err := t.txn.Set(k, b); err != nil {
		return fmt.Errorf("storage: put %s %q: %w", what, id, err)
	}
	return nil
}

// del removes k; deleting a missing key is no error in Badger.
func (t *tx) del(k []byte, what, id string) error {
	if err := t.txn.Delete(k); err != nil {
		return fmt.Errorf("storage: delete %s %q: %w", what, id, err)
	}
	return nil
}

// scan calls fn for every key with prefix p in key order, until fn returns an
// error, which is returned unchanged. val is nil when keysOnly is set. Key and
// value are only valid during the call. Values are small and stored inside
// the LSM tree (below Badger's ValueThreshold), so prefetching them on
// goroutines would cost more than it saves.
func (t *tx) scan(p []byte, keysOnly bool, fn func(k, val []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: p})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		if keysOnly {
			if err := fn(item.Key(), nil); err != nil {
				return err
			}
			continue
		}
		var fnErr error
		err := item.Value(func(val []byte) error {
			fnErr = fn(item.Key(), val)
			return fnErr
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return fmt.Errorf("storage: read %q: %w", item.Key(), err)
		}
	}
	return nil
}

// scanJSON decodes every value under prefix p into a new T and calls fn.
func scanJSON[T any](t *tx, p []byte, what string, fn func(*T) error) error {
	return t.scan(p, false, func(k, val []byte) error {
		v := new(T)
		if err := json.Unmarshal(val, v); err != nil {
			return fmt.Errorf("storage: decode %s %q: %w", what, lastPart(k), err)
		}
		return fn(v)
	})
}

// ids returns the trailing ids of the keys under prefix p, in key order.
func (t *tx) ids(p []byte) ([]string, error) {
	out := []string{}
	err := t.scan(p, true, func(k, _ []byte) error {
		out = append(out, string(k[len(p):]))
		return nil
	})
	return out, err
}

// Users.

// User returns the user context id or a CodeNotFound error.
func (t *tx) User(id string) (*chat.UserRecord, error) {
	if badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "user %q not found", id)
	}
	return get[chat.UserRecord](t, key(tagUser, id), "user", id)
}

// PutUser creates or replaces u.
func (t *tx) PutUser(u *chat.UserRecord) error {
	if err := checkParts("user", u.ID); err != nil {
		return err
	}
	return t.set(key(tagUser, u.ID), u, "user", u.ID)
}

// Users calls fn for every user in id order until fn returns an error.
func (t *tx) Users(fn func(*chat.UserRecord) error) error {
	return scanJSON(t, prefix(tagUser), "user", fn)
}

// Friendships. Each friendship is written under both users so that either
// side finds it with one prefix scan; the two copies change together.

// Friendship returns the friendship of a and b, in either order.
func (t *tx) Friendship(a, b string) (*chat.Friendship, error) {
	if badPart(a) || badPart(b) {
		return nil, chat.Errorf(chat.CodeNotFound, "friendship %q-%q not found", a, b)
	}
	return get[chat.Friendship](t, key(tagFriend, a, b), "friendship", a+"-"+b)
}

// PutFriendship stores f under f.From and under f.To.
func (t *tx) PutFriendship(f *chat.Friendship) error {
	if err := checkParts("user", f.From, f.To); err != nil {
		return err
	}
	id := f.From + "-" + f.To
	if err := t.set(key(tagFriend, f.From, f.To), f, "friendship", id); err != nil {
		return err
	}
	return t.set(key(tagFriend, f.To, f.From), f, "friendship", id)
}

// DeleteFriendship removes both copies of the friendship of a and b.
func (t *tx) DeleteFriendship(a, b string) error {
	if badPart(a) || badPart(b) {
		return nil
	}
	id := a + "-" + b
	if err := t.del(key(tagFriend, a, b), "friendship", id); err != nil {
		return err
	}
	return t.del(key(tagFriend, b, a), "friendship", id)
}

// Friendships returns the friendships of uid by TS ascending (then by the
// other user's id, so the order is total).
func (t *tx) Friendships(uid string) ([]*chat.Friendship, error) {
	out := []*chat.Friendship{}
	if badPart(uid) {
		return out, nil
	}
	err := scanJSON(t, prefix(tagFriend, uid), "friendship", func(f *chat.Friendship) error {
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(x, y *chat.Friendship) int {
		return cmp.Or(cmp.Compare(x.TS, y.TS), cmp.Compare(x.Other(uid), y.Other(uid)))
	})
	return out, nil
}

// Groups.

// Group returns group id or a CodeNotFound error.
func (t *tx) Group(id string) (*chat.Group, error) {
	if badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "group %q not found", id)
	}
	return get[chat.Group](t, key(tagGroup, id), "group", id)
}

// PutGroup stores g and moves the ug␀<uid>␀<gid> index from the old owner ∪
// members to the new ones.
func (t *tx) PutGroup(g *chat.Group) error {
	if err := checkParts("group", g.ID); err != nil {
		return err
	}
	next := g.Everyone()
	if err := checkParts("member", next...); err != nil {
		return err
	}
	old, err := find[chat.Group](t, key(tagGroup, g.ID), "group", g.ID)
	if err != nil {
		return err
	}
	var prev []string
	if old != nil {
		prev = old.Everyone()
	}
	if err := t.reindex(tagUserGroup, g.ID, prev, next); err != nil {
		return err
	}
	return t.set(key(tagGroup, g.ID), g, "group", g.ID)
}

// DeleteGroup removes group id and its index entries.
func (t *tx) DeleteGroup(id string) error {
	if badPart(id) {
		return nil
	}
	old, err := find[chat.Group](t, key(tagGroup, id), "group", id)
	if err != nil || old == nil {
		return err
	}
	if err := t.reindex(tagUserGroup, id, old.Everyone(), nil); err != nil {
		return err
	}
	return t.del(key(tagGroup, id), "group", id)
}

// Groups calls fn for every group in id order until fn returns an error.
func (t *tx) Groups(fn func(*chat.Group) error) error {
	return scanJSON(t, prefix(tagGroup), "group", fn)
}

// GroupIDsOf returns the ids of the groups uid owns or belongs to, in id order.
func (t *tx) GroupIDsOf(uid string) ([]string, error) {
	if badPart(uid) {
		return []string{}, nil
	}
	return t.ids(prefix(tagUserGroup, uid))
}

// Rooms.

// Room returns room id or a CodeNotFound error.
func (t *tx) Room(id string) (*chat.Room, error) {
	if badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "room %q not found", id)
	}
	return get[chat.Room](t, key(tagRoom, id), "room", id)
}

// PutRoom stores r and moves the ur␀<uid>␀<rid> index to the new members.
func (t *tx) PutRoom(r *chat.Room) error {
	if err := checkParts("room", r.ID); err != nil {
		return err
	}
	if err := checkParts("member", r.Members...); err != nil {
		return err
	}
	old, err := find[chat.Room](t, key(tagRoom, r.ID), "room", r.ID)
	if err != nil {
		return err
	}
	var prev []string
	if old != nil {
		prev = old.Members
	}
	if err := t.reindex(tagUserRoom, r.ID, prev, r.Members); err != nil {
		return err
	}
	return t.set(key(tagRoom, r.ID), r, "room", r.ID)
}

// DeleteRoom removes room id and its index entries.
func (t *tx) DeleteRoom(id string) error {
	if badPart(id) {
		return nil
	}
	old, err := find[chat.Room](t, key(tagRoom, id), "room", id)
	if err != nil || old == nil {
		return err
	}
	if err := t.reindex(tagUserRoom, id, old.Members, nil); err != nil {
		return err
	}
	return t.del(key(tagRoom, id), "room", id)
}

// Rooms calls fn for every room in id order until fn returns an error.
func (t *tx) Rooms(fn func(*chat.Room) error) error {
	return scanJSON(t, prefix(tagRoom), "room", fn)
}

// RoomIDsOf returns the ids of the rooms uid belongs to, in id order.
func (t *tx) RoomIDsOf(uid string) ([]string, error) {
	if badPart(uid) {
		return []string{}, nil
	}
	return t.ids(prefix(tagUserRoom, uid))
}

// reindex writes only the difference between the member sets prev and next
// of object id: a room of 1,000 members that gains one member costs one
// write, not 1,000.
func (t *tx) reindex(tag, id string, prev, next []string) error {
	in := make(map[string]bool, len(next))
	for _, uid := range next {
		in[uid] = true
	}
	was := make(map[string]bool, len(prev))
	for _, uid := range prev {
		was[uid] = true
		if !in[uid] {
			if err := t.del(key(tag, uid, id), "member index", uid); err != nil {
				return err
			}
		}
	}
	for uid := range in {
		if !was[uid] {
			if err := t.txn.Set(key(tag, uid, id), nil); err != nil {
				return fmt.Errorf("storage: put member index %q: %w", uid, err)
			}
		}
	}
	return nil
}

// Passengers.

// Passenger returns passenger id or a CodeNotFound error.
func (t *tx) Passenger(id string) (*chat.PassengerRecord, error) {
	if badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "passenger %q not found", id)
	}
	return get[chat.PassengerRecord](t, key(tagPassenger, id), "passenger", id)
}

// PutPassenger creates or replaces p.
func (t *tx) PutPassenger(p *chat.PassengerRecord) error {
	if err := checkParts("passenger", p.ID); err != nil {
		return err
	}
	return t.set(key(tagPassenger, p.ID), p, "passenger", p.ID)
}

// Strangers.

// Stranger returns the association of uid with other or a CodeNotFound error.
func (t *tx) Stranger(uid, other string) (*chat.Stranger, error) {
	if badPart(uid) || badPart(other) {
		return nil, chat.Errorf(chat.CodeNotFound, "stranger %q of %q not found", other, uid)
	}
	return get[chat.Stranger](t, key(tagStranger, uid, other), "stranger", uid+"-"+other)
}

// PutStranger creates or replaces the association s.User → s.Other.
func (t *tx) PutStranger(s *chat.Stranger) error {
	if err := checkParts("user", s.User, s.Other); err != nil {
		return err
	}
	return t.set(key(tagStranger, s.User, s.Other), s, "stranger", s.User+"-"+s.Other)
}

// Strangers returns the associations of uid, latest Last first (then latest
// TS, then other id, so the order is total).
func (t *tx) Strangers(uid string) ([]*chat.Stranger, error) {
	out := []*chat.Stranger{}
	if badPart(uid) {
		return out, nil
	}
	err := scanJSON(t, prefix(tagStranger, uid), "stranger", func(s *chat.Stranger) error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(x, y *chat.Stranger) int {
		return cmp.Or(cmp.Compare(y.Last, x.Last), cmp.Compare(y.TS, x.TS), cmp.Compare(x.Other, y.Other))
	})
	return out, nil
}
