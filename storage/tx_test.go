package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

func TestTx_User(t *testing.T) {
	db := newTestDB(t)
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.User("alice"); chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("User(missing) code = %d, want %d", chat.ErrorCode(err), chat.CodeNotFound)
		}
		return nil
	})

	want := &chat.UserRecord{
		ID:         "alice",
		Attributes: chat.Attributes{"age": json.RawMessage(`20`), "tags": json.RawMessage(`{"a":[1,2.50]}`)},
		Installs:   []string{"i1"},
		Created:    10,
		TS:         11,
	}
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutUser(want) })
	mustView(t, db, func(tx chat.Tx) error {
		got, err := tx.User("alice")
		if err != nil {
			t.Fatalf("User() error = %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("User() = %+v, want %+v", got, want)
		}
		// The returned object is a copy.
		got.Installs[0] = "changed"
		again, _ := tx.User("alice")
		if again.Installs[0] != "i1" {
			t.Error("User() returned shared memory")
		}
		return nil
	})

	// Update, and list in id order.
	mustUpdate(t, db, func(tx chat.Tx) error {
		u, err := tx.User("alice")
		if err != nil {
			return err
		}
		u.TS = 12
		return errors.Join(tx.PutUser(u), tx.PutUser(&chat.UserRecord{ID: "Zed"}), tx.PutUser(&chat.UserRecord{ID: "bob"}))
	})
	mustView(t, db, func(tx chat.Tx) error {
		var ids []string
		err := tx.Users(func(u *chat.UserRecord) error {
			ids = append(ids, u.ID)
			if u.ID == "alice" && u.TS != 12 {
				t.Errorf("updated TS = %d, want 12", u.TS)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Users() error = %v", err)
		}
		if want := []string{"Zed", "alice", "bob"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("Users() ids = %v, want %v", ids, want)
		}
		// fn's error stops the walk and comes back unchanged.
		stop := errors.New("stop")
		n := 0
		if err := tx.Users(func(*chat.UserRecord) error { n++; return stop }); err != stop || n != 1 {
			t.Errorf("Users(stop) = %v after %d calls, want stop after 1", err, n)
		}
		return nil
	})

	// Keys cannot be forged with NUL.
	err := db.Update(t.Context(), func(tx chat.Tx) error { return tx.PutUser(&chat.UserRecord{ID: "a\x00b"}) })
	if chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("PutUser(NUL id) code = %d, want %d", chat.ErrorCode(err), chat.CodeInvalid)
	}
	err = db.Update(t.Context(), func(tx chat.Tx) error { return tx.PutUser(&chat.UserRecord{}) })
	if chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("PutUser(empty id) code = %d, want %d", chat.ErrorCode(err), chat.CodeInvalid)
	}
}

func TestTx_Friendship(t *testing.T) {
	db := newTestDB(t)
	put := func(f *chat.Friendship) {
		t.Helper()
		mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutFriendship(f) })
	}
	put(&chat.Friendship{ID: "ab", From: "alice", To: "bob", NS: "app", TS: 30})
	put(&chat.Friendship{ID: "ca", From: "carol", To: "alice", NS: "app", TS: 10})
	put(&chat.Friendship{ID: "ad", From: "alice", To: "dave", NS: "app", TS: 20})
	// "al" is a prefix of "alice": its friendships must not leak into alice's.
	put(&chat.Friendship{ID: "xx", From: "al", To: "zoe", NS: "app", TS: 1})

	mustView(t, db, func(tx chat.Tx) error {
		for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
			f, err := tx.Friendship(pair[0], pair[1])
			if err != nil || f.ID != "ab" || f.From != "alice" {
				t.Errorf("Friendship(%s, %s) = %+v, %v", pair[0], pair[1], f, err)
			}
		}
		if _, err := tx.Friendship("bob", "carol"); !chat.IsNotFound(err) {
			t.Errorf("Friendship(missing) error = %v, want not found", err)
		}
		return nil
	})
	assertFriends(t, db, "alice", []string{"ca", "ad", "ab"})
	assertFriends(t, db, "bob", []string{"ab"})
	assertFriends(t, db, "carol", []string{"ca"})
	assertFriends(t, db, "al", []string{"xx"})
	assertFriends(t, db, "nobody", []string{})

	// Replacing updates both sides.
	put(&chat.Friendship{ID: "ab", From: "alice", To: "bob", NS: "app", TS: 5})
	assertFriends(t, db, "alice", []string{"ab", "ca", "ad"})
	assertFriends(t, db, "bob", []string{"ab"})

	// Delete from either side; deleting again is no error.
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.DeleteFriendship("bob", "alice") })
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.DeleteFriendship("alice", "bob") })
	assertFriends(t, db, "alice", []string{"ca", "ad"})
	assertFriends(t, db, "bob", []string{})
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.Friendship("alice", "bob"); !chat.IsNotFound(err) {
			t.Errorf("Friendship(deleted) error = %v, want not found", err)
		}
		return nil
	})
}

func assertFriends(tb testing.TB, db *DB, uid string, want []string) {
	tb.Helper()
	mustView(tb, db, func(tx chat.Tx) error {
		fs, err := tx.Friendships(uid)
		if err != nil {
			tb.Fatalf("Friendships(%s) error = %v", uid, err)
		}
		got := []string{}
		for _, f := range fs {
			got = append(got, f.ID)
		}
		if !reflect.DeepEqual(got, want) {
			tb.Errorf("Friendships(%s) = %v, want %v", uid, got, want)
		}
		return nil
	})
}

func assertIDs(tb testing.TB, what string, got []string, err error, want []string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s error = %v", what, err)
	}
	if got == nil || !reflect.DeepEqual(got, want) {
		tb.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// listFixture opens a store for the member-list tests of kind. listsOf
// checks the lists of kind a user belongs to; put stores a list as kind.
func listFixture(t *testing.T, kind chat.ListKind) (db *DB, listsOf func(uid string, want ...string), put func(*chat.MemberList)) {
	db = newTestDB(t)
	listsOf = func(uid string, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		mustView(t, db, func(tx chat.Tx) error {
			ids, err := tx.MemberListIDsOf(kind, uid)
			assertIDs(t, fmt.Sprintf("MemberListIDsOf(%s, %s)", kind, uid), ids, err, want)
			return nil
		})
	}
	put = func(l *chat.MemberList) {
		t.Helper()
		l.Kind = kind
		mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutMemberList(l) })
	}
	return db, listsOf, put
}

// checkList checks that list id of kind reads back as want (nil: missing,
// with CodeNotFound).
func checkList(t *testing.T, db *DB, kind chat.ListKind, id string, want *chat.MemberList) {
	t.Helper()
	mustView(t, db, func(tx chat.Tx) error {
		got, err := tx.MemberList(kind, id)
		if want == nil && chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("MemberList(%s, %s) = %+v, %v; want not found", kind, id, got, err)
		}
		if want != nil && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("MemberList(%s, %s) = %+v, %v; want %+v", kind, id, got, err, want)
		}
		return nil
	})
}

// checkLists checks the ids MemberLists visits for kind.
func checkLists(t *testing.T, db *DB, kind chat.ListKind, want ...string) {
	t.Helper()
	mustView(t, db, func(tx chat.Tx) error {
		var ids []string
		err := tx.MemberLists(kind, func(l *chat.MemberList) error {
			if l.Kind != kind {
				t.Errorf("MemberLists(%s) visits %s of kind %s", kind, l.ID, l.Kind)
			}
			ids = append(ids, l.ID)
			return nil
		})
		assertIDs(t, fmt.Sprintf("MemberLists(%s)", kind), ids, err, want)
		return nil
	})
}

// deleteList deletes list id twice: the second time is no error.
func deleteList(t *testing.T, db *DB, kind chat.ListKind, id string) {
	t.Helper()
	for range 2 {
		mustUpdate(t, db, func(tx chat.Tx) error { return tx.DeleteMemberList(kind, id) })
	}
	checkList(t, db, kind, id, nil)
}

func TestTx_Group(t *testing.T) {
	db, groupsOf, put := listFixture(t, chat.GroupList)
	checkList(t, db, chat.GroupList, "g1", nil)

	g1 := &chat.Group{ID: "g1", Owner: "alice", Members: []string{"bob", "carol"},
		Attributes: chat.Attributes{"name": json.RawMessage(`"fans"`)}, TS: 7}
	put(g1)
	// The owner listed as a member too is indexed once.
	put(&chat.Group{ID: "g2", Owner: "bob", Members: []string{"bob", "alice"}})
	checkList(t, db, chat.GroupList, "g1", g1)
	groupsOf("alice", "g1", "g2")
	groupsOf("bob", "g1", "g2")
	groupsOf("carol", "g1")
	groupsOf("dave")

	// Member removed, member added, owner changed (the old owner is no
	// longer indexed unless still a member).
	put(&chat.Group{ID: "g1", Owner: "dave", Members: []string{"bob", "erin"}})
	groupsOf("alice", "g2")
	groupsOf("carol")
	groupsOf("dave", "g1")
	groupsOf("erin", "g1")
	groupsOf("bob", "g1", "g2")
	checkLists(t, db, chat.GroupList, "g1", "g2")

	// Delete removes the group and every index entry; again is no error.
	deleteList(t, db, chat.GroupList, "g1")
	groupsOf("dave")
	groupsOf("erin")
	groupsOf("bob", "g2")

	// A member id that would break the key layout is refused.
	err := db.Update(t.Context(), func(tx chat.Tx) error {
		return tx.PutGroup(&chat.Group{ID: "g3", Owner: "alice", Members: []string{"x\x00y"}})
	})
	if chat.ErrorCode(err) != chat.CodeInvalid {
		t.Errorf("PutGroup(NUL member) code = %d, want %d", chat.ErrorCode(err), chat.CodeInvalid)
	}
}

func TestTx_Room(t *testing.T) {
	db, roomsOf, put := listFixture(t, chat.RoomList)
	checkList(t, db, chat.RoomList, "r1", nil)
	r1 := &chat.Room{ID: "r1", Members: []string{"alice", "bob"}, Attributes: chat.Attributes{}, TS: 3}
	put(r1)
	put(&chat.Room{ID: "r0", Members: []string{"bob"}})
	checkList(t, db, chat.RoomList, "r1", r1)
	roomsOf("alice", "r1")
	roomsOf("bob", "r0", "r1")

	put(&chat.Room{ID: "r1", Members: []string{"bob", "carol"}})
	roomsOf("alice")
	roomsOf("carol", "r1")
	roomsOf("bob", "r0", "r1")
	checkLists(t, db, chat.RoomList, "r0", "r1")

	deleteList(t, db, chat.RoomList, "r1")
	roomsOf("carol")
	roomsOf("bob", "r0")
}

// Ensure groups and rooms keep the keys and values of the previous
// versions, which kept them in separate code: g␀/ug␀ and r␀/ur␀ with the
// JSON of chat.Group and chat.Room (no owner key for a room), so an
// existing data directory reads the same; and that a group id is not a
// room id.
func TestTx_MemberListKeyLayout(t *testing.T) {
	db := newTestDB(t)
	mustUpdate(t, db, func(tx chat.Tx) error {
		return errors.Join(
			tx.PutGroup(&chat.Group{ID: "g1", Owner: "alice", Members: []string{"bob"}, Attributes: chat.Attributes{"name": json.RawMessage(`"x"`)}, TS: 7}),
			tx.PutRoom(&chat.Room{ID: "r1", Members: []string{"carol", "bob"}, TS: 8}),
		)
	})
	want := map[string]string{
		"g\x00g1":           `{"id":"g1","owner":"alice","members":["bob"],"attributes":{"name":"x"},"ts":7}`,
		"ug\x00alice\x00g1": "",
		"ug\x00bob\x00g1":   "",
		"r\x00r1":           `{"id":"r1","members":["carol","bob"],"attributes":null,"ts":8}`,
		"ur\x00bob\x00r1":   "",
		"ur\x00carol\x00r1": "",
	}
	got := map[string]string{}
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			got[string(it.Item().KeyCopy(nil))] = string(v)
		}
		return nil
	})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("stored = %q, %v\nwant %q", got, err, want)
	}
	checkList(t, db, chat.RoomList, "g1", nil)
	checkList(t, db, chat.GroupList, "r1", nil)
}

func TestTx_Passenger(t *testing.T) {
	db := newTestDB(t)
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.Passenger("p1"); chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("Passenger(missing) code = %d, want %d", chat.ErrorCode(err), chat.CodeNotFound)
		}
		return nil
	})
	want := &chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{"k": json.RawMessage(`true`)}, TS: 4}
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutPassenger(want) })
	want.TS = 5
	mustUpdate(t, db, func(tx chat.Tx) error { return tx.PutPassenger(want) })
	mustView(t, db, func(tx chat.Tx) error {
		got, err := tx.Passenger("p1")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Passenger() = %+v, %v; want %+v", got, err, want)
		}
		// Users and passengers are separate namespaces.
		if _, err := tx.User("p1"); !chat.IsNotFound(err) {
			t.Errorf("User(p1) error = %v, want not found", err)
		}
		return nil
	})
}

func TestTx_Stranger(t *testing.T) {
	db := newTestDB(t)
	mustView(t, db, func(tx chat.Tx) error {
		if _, err := tx.Stranger("alice", "bob"); chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("Stranger(missing) code = %d, want %d", chat.ErrorCode(err), chat.CodeNotFound)
		}
		return nil
	})
	mustUpdate(t, db, func(tx chat.Tx) error {
		return errors.Join(
			tx.PutStranger(&chat.Stranger{User: "alice", Other: "bob", TS: 1, Last: 10}),
			tx.PutStranger(&chat.Stranger{User: "alice", Other: "carol", TS: 2, Last: 30}),
			tx.PutStranger(&chat.Stranger{User: "alice", Other: "dave", TS: 3, Last: 20}),
			tx.PutStranger(&chat.Stranger{User: "bob", Other: "alice", TS: 1, Last: 10}),
		)
	})
	strangers := func(uid string) []string {
		var out []string
		mustView(t, db, func(tx chat.Tx) error {
			ss, err := tx.Strangers(uid)
			if err != nil {
				t.Fatalf("Strangers(%s) error = %v", uid, err)
			}
			out = []string{}
			for _, s := range ss {
				out = append(out, s.Other)
			}
			return nil
		})
		return out
	}
	if got, want := strangers("alice"), []string{"carol", "dave", "bob"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Strangers(alice) = %v, want %v", got, want)
	}
	// One direction only: bob sees alice, carol sees nobody.
	if got := strangers("carol"); len(got) != 0 {
		t.Errorf("Strangers(carol) = %v, want none", got)
	}

	// A new message moves bob to the front.
	mustUpdate(t, db, func(tx chat.Tx) error {
		s, err := tx.Stranger("alice", "bob")
		if err != nil {
			return err
		}
		s.Last = 40
		return tx.PutStranger(s)
	})
	if got, want := strangers("alice"), []string{"bob", "carol", "dave"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Strangers(alice) after update = %v, want %v", got, want)
	}
	mustView(t, db, func(tx chat.Tx) error {
		s, err := tx.Stranger("alice", "bob")
		if err != nil || s.TS != 1 || s.Last != 40 {
			t.Errorf("Stranger() = %+v, %v", s, err)
		}
		return nil
	})
}

// Ensure a Tx sees its own writes, including in the indexes.
func TestTx_ReadYourWrites(t *testing.T) {
	db := newTestDB(t)
	mustUpdate(t, db, func(tx chat.Tx) error {
		if err := tx.PutGroup(&chat.Group{ID: "g", Owner: "alice"}); err != nil {
			return err
		}
		ids, err := tx.MemberListIDsOf(chat.GroupList, "alice")
		assertIDs(t, "MemberListIDsOf in tx", ids, err, []string{"g"})
		if err := tx.PutFriendship(&chat.Friendship{ID: "f", From: "alice", To: "bob"}); err != nil {
			return err
		}
		fs, err := tx.Friendships("bob")
		if err != nil || len(fs) != 1 {
			t.Errorf("Friendships in tx = %v, %v", fs, err)
		}
		return nil
	})
}
