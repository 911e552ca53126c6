package storage

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/mqim/mqim/chat"
)

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
