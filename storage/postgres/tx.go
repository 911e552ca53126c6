package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/chat"
)

// tx implements chat.Tx over one PostgreSQL transaction.
type tx struct {
	ctx context.Context
	tx  pgx.Tx
}

var _ chat.Tx = (*tx)(nil)

// pageSize is how many rows the walks (Users, MemberLists) read at a time:
// fn may use the transaction, so rows are read in pages, not streamed.
const pageSize = 500

// getJSON decodes the json column of the row query returns into a new T.
// No row is a CodeNotFound error naming what and id.
func getJSON[T any](t *tx, what, id, query string, args ...any) (*T, error) {
	var b []byte
	err := t.tx.QueryRow(t.ctx, query, args...).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, chat.Errorf(chat.CodeNotFound, "%s %q not found", what, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get %s %q: %w", what, id, err)
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("postgres: decode %s %q: %w", what, id, err)
	}
	return v, nil
}

// listJSON decodes the json column of every row query returns.
func listJSON[T any](t *tx, what string, query string, args ...any) ([]*T, error) {
	rows, err := t.tx.Query(t.ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", what, err)
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("postgres: list %s: %w", what, err)
		}
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("postgres: decode %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", what, err)
	}
	return out, nil
}

// exec runs a statement, wrapping its error.
func (t *tx) exec(what string, query string, args ...any) error {
	if _, err := t.tx.Exec(t.ctx, query, args...); err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nil
}

// putJSON upserts v as the json of (table's key = keys).
func (t *tx) putJSON(what, id, query string, v any, keys ...any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("postgres: encode %s %q: %w", what, id, err)
	}
	return t.exec("put "+what+" "+id, query, append(keys, b)...)
}

// walk calls fn for every object of a keyed table in key order, reading
// pageSize rows at a time after the last key seen. page must select (key,
// data) WHERE key > $1 ORDER BY key LIMIT $2, with extra as $3....
func walk[T any](t *tx, what, page string, fn func(string, *T) error, extra ...any) error {
	after := ""
	for {
		rows, err := t.tx.Query(t.ctx, page, append([]any{after, pageSize}, extra...)...)
		if err != nil {
			return fmt.Errorf("postgres: list %s: %w", what, err)
		}
		type kv struct {
			k string
			b []byte
		}
		var got []kv
		for rows.Next() {
			var r kv
			if err := rows.Scan(&r.k, &r.b); err != nil {
				rows.Close()
				return fmt.Errorf("postgres: list %s: %w", what, err)
			}
			got = append(got, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: list %s: %w", what, err)
		}
		for _, r := range got {
			v := new(T)
			if err := json.Unmarshal(r.b, v); err != nil {
				return fmt.Errorf("postgres: decode %s %q: %w", what, r.k, err)
			}
			if err := fn(r.k, v); err != nil {
				return err
			}
		}
		if len(got) < pageSize {
			return nil
		}
		after = got[len(got)-1].k
	}
}

// Users.

// User returns the user context id or a CodeNotFound error.
func (t *tx) User(id string) (*chat.UserRecord, error) {
	if badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "user %q not found", id)
	}
	return getJSON[chat.UserRecord](t, "user", id, `SELECT data FROM users WHERE id = $1`, id)
}

// PutUser creates or replaces u.
func (t *tx) PutUser(u *chat.UserRecord) error {
	if err := checkParts("user", u.ID); err != nil {
		return err
	}
	return t.putJSON("user", u.ID, `INSERT INTO users (id, data) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data`, u, u.ID)
}

// Users calls fn for every user in id order until fn returns an error.
func (t *tx) Users(fn func(*chat.UserRecord) error) error {
	return walk(t, "user", `SELECT id, data FROM users WHERE id > $1 ORDER BY id LIMIT $2`,
		func(_ string, u *chat.UserRecord) error { return fn(u) })
}

// DeleteUser removes a user context; a missing one is no error.
func (t *tx) DeleteUser(id string) error {
	if badPart(id) {
		return nil
	}
	return t.exec("delete user", `DELETE FROM users WHERE id = $1`, id)
}

// Friendships: stored under both users, like the Badger store.

// Friendship returns the friendship of a and b, in either order.
func (t *tx) Friendship(a, b string) (*chat.Friendship, error) {
	if badPart(a) || badPart(b) {
		return nil, chat.Errorf(chat.CodeNotFound, "friendship %q-%q not found", a, b)
	}
	return getJSON[chat.Friendship](t, "friendship", a+"-"+b,
		`SELECT data FROM friendships WHERE uid = $1 AND other = $2`, a, b)
}

// PutFriendship stores f under f.From and under f.To.
func (t *tx) PutFriendship(f *chat.Friendship) error {
	if err := checkParts("user", f.From, f.To); err != nil {
		return err
	}
	return t.putJSON("friendship", f.From+"-"+f.To, `INSERT INTO friendships (uid, other, data)
		VALUES ($1, $2, $3), ($2, $1, $3)
		ON CONFLICT (uid, other) DO UPDATE SET data = EXCLUDED.data`, f, f.From, f.To)
}

// DeleteFriendship removes both copies of the friendship of a and b.
func (t *tx) DeleteFriendship(a, b string) error {
	if badPart(a) || badPart(b) {
		return nil
	}
	return t.exec("delete friendship", `DELETE FROM friendships
		WHERE (uid = $1 AND other = $2) OR (uid = $2 AND other = $1)`, a, b)
}

// Friendships returns the friendships of uid by TS ascending, then by the
// other user's id.
func (t *tx) Friendships(uid string) ([]*chat.Friendship, error) {
	if badPart(uid) {
		return []*chat.Friendship{}, nil
	}
	out, err := listJSON[chat.Friendship](t, "friendships",
		`SELECT data FROM friendships WHERE uid = $1 ORDER BY other`, uid)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(x, y *chat.Friendship) int {
		switch {
		case x.TS < y.TS:
			return -1
		case x.TS > y.TS:
			return 1
		}
		return 0
	})
	return out, nil
}

// Member lists: groups and rooms.

func validKind(kind chat.ListKind) bool { return kind == chat.GroupList || kind == chat.RoomList }

// MemberList returns group or room id or a CodeNotFound error.
func (t *tx) MemberList(kind chat.ListKind, id string) (*chat.MemberList, error) {
	if !validKind(kind) || badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "%s %q not found", kind, id)
	}
	l, err := getJSON[chat.MemberList](t, kind.String(), id,
		`SELECT data FROM member_lists WHERE kind = $1 AND id = $2`, int16(kind), id)
	if l != nil {
		l.Kind = kind
	}
	return l, err
}

// PutMemberList stores l and moves the member index from the old owner ∪
// members to the new ones, writing only the difference.
func (t *tx) PutMemberList(l *chat.MemberList) error {
	if !validKind(l.Kind) {
		return chat.Errorf(chat.CodeInvalid, "unknown member list kind %d", l.Kind)
	}
	if err := checkParts(l.Kind.String(), l.ID); err != nil {
		return err
	}
	next := l.Everyone()
	if err := checkParts("member", next...); err != nil {
		return err
	}
	old, err := t.MemberList(l.Kind, l.ID)
	if err != nil && !chat.IsNotFound(err) {
		return err
	}
	var prev []string
	if old != nil {
		prev = old.Everyone()
	}
	if err := t.reindex(l.Kind, l.ID, prev, next); err != nil {
		return err
	}
	return t.putJSON(l.Kind.String(), l.ID, `INSERT INTO member_lists (kind, id, data) VALUES ($1, $2, $3)
		ON CONFLICT (kind, id) DO UPDATE SET data = EXCLUDED.data`, l, int16(l.Kind), l.ID)
}

// reindex writes the difference between the member sets prev and next.
func (t *tx) reindex(kind chat.ListKind, id string, prev, next []string) error {
	in := make(map[string]bool, len(next))
	for _, uid := range next {
		in[uid] = true
	}
	was := make(map[string]bool, len(prev))
	var gone, added []string
	for _, uid := range prev {
		was[uid] = true
		if !in[uid] {
			gone = append(gone, uid)
		}
	}
	for uid := range in {
		if !was[uid] {
			added = append(added, uid)
		}
	}
	if len(gone) > 0 {
		if err := t.exec("delete member index", `DELETE FROM list_members
			WHERE kind = $1 AND list_id = $2 AND uid = ANY($3)`, int16(kind), id, gone); err != nil {
			return err
		}
	}
	if len(added) > 0 {
		if err := t.exec("put member index", `INSERT INTO list_members (kind, uid, list_id)
			SELECT $1, u, $2 FROM unnest($3::text[]) AS u ON CONFLICT DO NOTHING`, int16(kind), id, added); err != nil {
			return err
		}
	}
	return nil
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
	if !validKind(kind) || badPart(id) {
		return nil
	}
	if err := t.exec("delete member index", `DELETE FROM list_members WHERE kind = $1 AND list_id = $2`, int16(kind), id); err != nil {
		return err
	}
	return t.exec("delete "+kind.String(), `DELETE FROM member_lists WHERE kind = $1 AND id = $2`, int16(kind), id)
}

// MemberLists calls fn for every list of kind in id order until fn returns
// an error.
func (t *tx) MemberLists(kind chat.ListKind, fn func(*chat.MemberList) error) error {
	if !validKind(kind) {
		return chat.Errorf(chat.CodeInvalid, "unknown member list kind %d", kind)
	}
	return walk(t, kind.String(), `SELECT id, data FROM member_lists WHERE id > $1 AND kind = $3 ORDER BY id LIMIT $2`,
		func(_ string, l *chat.MemberList) error {
			l.Kind = kind
			return fn(l)
		}, int16(kind))
}

// MemberListIDsOf returns the ids of the lists of kind uid owns or belongs
// to, in id order.
func (t *tx) MemberListIDsOf(kind chat.ListKind, uid string) ([]string, error) {
	out := []string{}
	if !validKind(kind) || badPart(uid) {
		return out, nil
	}
	rows, err := t.tx.Query(t.ctx, `SELECT list_id FROM list_members WHERE kind = $1 AND uid = $2 ORDER BY list_id`, int16(kind), uid)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s ids of %q: %w", kind, uid, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: %s ids of %q: %w", kind, uid, err)
	}
	return append(out, ids...), nil
}

// Passengers.

// Passenger returns passenger id or a CodeNotFound error.
func (t *tx) Passenger(id string) (*chat.PassengerRecord, error) {
	if badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "passenger %q not found", id)
	}
	return getJSON[chat.PassengerRecord](t, "passenger", id, `SELECT data FROM passengers WHERE id = $1`, id)
}

// PutPassenger creates or replaces p.
func (t *tx) PutPassenger(p *chat.PassengerRecord) error {
	if err := checkParts("passenger", p.ID); err != nil {
		return err
	}
	return t.putJSON("passenger", p.ID, `INSERT INTO passengers (id, data) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data`, p, p.ID)
}

// Strangers.

// Stranger returns the association of uid with other or a CodeNotFound error.
func (t *tx) Stranger(uid, other string) (*chat.Stranger, error) {
	if badPart(uid) || badPart(other) {
		return nil, chat.Errorf(chat.CodeNotFound, "stranger %q of %q not found", other, uid)
	}
	return getJSON[chat.Stranger](t, "stranger", uid+"-"+other,
		`SELECT data FROM strangers WHERE uid = $1 AND other = $2`, uid, other)
}

// PutStranger creates or replaces the association s.User → s.Other.
func (t *tx) PutStranger(s *chat.Stranger) error {
	if err := checkParts("user", s.User, s.Other); err != nil {
		return err
	}
	return t.putJSON("stranger", s.User+"-"+s.Other, `INSERT INTO strangers (uid, other, data) VALUES ($1, $2, $3)
		ON CONFLICT (uid, other) DO UPDATE SET data = EXCLUDED.data`, s, s.User, s.Other)
}

// Strangers returns the associations of uid, latest Last first (then latest
// TS, then other id).
func (t *tx) Strangers(uid string) ([]*chat.Stranger, error) {
	if badPart(uid) {
		return []*chat.Stranger{}, nil
	}
	out, err := listJSON[chat.Stranger](t, "strangers", `SELECT data FROM strangers WHERE uid = $1 ORDER BY other`, uid)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(x, y *chat.Stranger) int {
		if x.Last != y.Last {
			return cmpDesc(x.Last, y.Last)
		}
		return cmpDesc(x.TS, y.TS)
	})
	return out, nil
}

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// DeleteStranger removes one direction of a stranger association.
func (t *tx) DeleteStranger(uid, other string) error {
	if badPart(uid) || badPart(other) {
		return nil
	}
	return t.exec("delete stranger", `DELETE FROM strangers WHERE uid = $1 AND other = $2`, uid, other)
}

// Accounts.

// Account returns the access state stored under id (Identity.String()).
func (t *tx) Account(id string) (*chat.Account, error) {
	if badPart(id) {
		return nil, chat.Errorf(chat.CodeNotFound, "account %q not found", id)
	}
	return getJSON[chat.Account](t, "account", id, `SELECT data FROM accounts WHERE id = $1`, id)
}

// PutAccount creates or replaces a.
func (t *tx) PutAccount(a *chat.Account) error {
	if err := checkParts("account", a.ID); err != nil {
		return err
	}
	return t.putJSON("account", a.ID, `INSERT INTO accounts (id, data) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data`, a, a.ID)
}
