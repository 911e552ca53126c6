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

// Member lists: groups and rooms, one code path over the tags of
// listTags.

// MemberList returns group or room id or a CodeNotFound error.
func (t *tx) MemberList(kind chat.ListKind, id string) (*chat.MemberList, error) {
	tags, ok := listTags[kind]
	if !ok || badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "%s %q not found", kind, id)
	}
	l, err := get[chat.MemberList](t, key(tags.list, id), kind.String(), id)
	if l != nil {
		l.Kind = kind
	}
	return l, err
}

// PutMemberList stores l and moves the member index (ug␀<uid>␀<gid> or
// ur␀<uid>␀<rid>) from the old owner ∪ members to the new ones.
func (t *tx) PutMemberList(l *chat.MemberList) error {
	tags, ok := listTags[l.Kind]
	if !ok {
		return chat.Errorf(chat.CodeInvalid, "unknown member list kind %d", l.Kind)
	}
	if err := checkParts(l.Kind.String(), l.ID); err != nil {
		return err
	}
	next := l.Everyone()
	if err := checkParts("member", next...); err != nil {
		return err
	}
	old, err := find[chat.MemberList](t, key(tags.list, l.ID), l.Kind.String(), l.ID)
	if err != nil {
		return err
	}
	var prev []string
	if old != nil {
		prev = old.Everyone()
	}
	if err := t.reindex(tags.index, l.ID, prev, next); err != nil {
		return err
	}
	return t.set(key(tags.list, l.ID), l, l.Kind.String(), l.ID)
}

// PutGroup stores a copy of g as a group.
func (t *tx) PutGroup(g *chat.Group) error {
	l := *g
	l.Kind = chat.GroupList
	return t.PutMemberList(&l)
}

// PutRoom stores a copy of r as a room.
func (t *tx) PutRoom(r *chat.Room) error {
	l := *r
	l.Kind = chat.RoomList
	return t.PutMemberList(&l)
}

// DeleteMemberList removes group or room id and its index entries.
func (t *tx) DeleteMemberList(kind chat.ListKind, id string) error {
	tags, ok := listTags[kind]
	if !ok || badPart(id) {
		return nil
	}
	old, err := find[chat.MemberList](t, key(tags.list, id), kind.String(), id)
	if err != nil || old == nil {
		return err
	}
	if err := t.reindex(tags.index, id, old.Everyone(), nil); err != nil {
		return err
	}
	return t.del(key(tags.list, id), kind.String(), id)
}

// MemberLists calls fn for every list of kind in id order until fn returns
// an error.
func (t *tx) MemberLists(kind chat.ListKind, fn func(*chat.MemberList) error) error {
	tags, ok := listTags[kind]
	if !ok {
		return chat.Errorf(chat.CodeInvalid, "unknown member list kind %d", kind)
	}
	return scanJSON(t, prefix(tags.list), kind.String(), func(l *chat.MemberList) error {
		l.Kind = kind
		return fn(l)
	})
}

// MemberListIDsOf returns the ids of the lists of kind uid owns or belongs
// to, in id order.
func (t *tx) MemberListIDsOf(kind chat.ListKind, uid string) ([]string, error) {
	tags, ok := listTags[kind]
	if !ok || badPart(uid) {
		return []string{}, nil
	}
	return t.ids(prefix(tags.index, uid))
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

// Accounts: the access state of an identity (token revocation, ban),
// kept apart from the user so that erasing a user keeps its revocation.

// Account returns the access state stored under id (Identity.String()).
func (t *tx) Account(id string) (*chat.Account, error) {
	if badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "account %q not found", id)
	}
	return get[chat.Account](t, key(tagAccount, id), "account", id)
}

// PutAccount creates or replaces a.
func (t *tx) PutAccount(a *chat.Account) error {
	if err := checkParts("account", a.ID); err != nil {
		return err
	}
	return t.set(key(tagAccount, a.ID), a, "account", a.ID)
}
