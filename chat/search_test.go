package chat_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/storage"
)

// newService returns a Service over a real Badger store in a temp dir, with
// a clock the test moves.
func newService(t *testing.T) (*chat.Service, *int64) {
	t.Helper()
	db, err := storage.Open(storage.Options{Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	svc := chat.NewService(db, chat.Options{AppID: "app"})
	now := time.Now().UnixMilli()
	svc.Now = func() time.Time { return time.UnixMilli(now) }
	return svc, &now
}

func attrs(kv ...any) chat.Attributes {
	a := chat.Attributes{}
	for i := 0; i < len(kv); i += 2 {
		a[kv[i].(string)] = []byte(fmt.Sprint(kv[i+1]))
	}
	return a
}

// Ensure _skip, _limit and _sort are controls, other "_" names are
// reserved, and everything else is a filter, in order (docs/maxim.md §5.1).
func TestParseSearch(t *testing.T) {
	q, err := chat.ParseSearch([][2]string{
		{"city", "shanghai"}, {"_skip", "-3"}, {"_limit", "500"}, {"_sort", "score, -age,,-"},
		{"_where", "x"}, {"age", "46"}, {"", "empty name"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := chat.SearchQuery{
		Skip: 0, Limit: 100,
		Sort:    []chat.SortKey{{Key: "score"}, {Key: "age", Desc: true}},
		Filters: []chat.Filter{{Name: "city", Value: "shanghai"}, {Name: "age", Value: "46"}},
	}
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("ParseSearch = %+v, want %+v", q, want)
	}
	if q, _ := chat.ParseSearch(nil); q.Limit != 20 || q.Skip != 0 {
		t.Errorf("defaults = %+v", q)
	}
	if q, _ := chat.ParseSearch([][2]string{{"_limit", "0"}}); q.Limit != 20 {
		t.Errorf("_limit=0 → %d, want 20", q.Limit)
	}
	for _, bad := range []string{"x", "1.5", "9999999999999999999999"} {
		if _, err := chat.ParseSearch([][2]string{{"_skip", bad}}); chat.ErrorCode(err) != chat.CodeInvalidQuery {
			t.Errorf("_skip=%s: err = %v, want 5018", bad, err)
		}
	}
}

// Ensure sorting across JSON types: numbers < strings < booleans < others,
// missing values last in both directions, then ts and id.
func TestService_SearchUsersSortTypes(t *testing.T) {
	svc, now := newService(t)
	ctx := context.Background()
	users := []struct {
		id string
		v  chat.Attributes
	}{
		{"s", attrs("v", `"abc"`)},
		{"n2", attrs("v", 10)},
		{"none", attrs()},
		{"b", attrs("v", true)},
		{"n1", attrs("v", 9.5)},
		{"obj", attrs("v", `{"x":1}`)},
	}
	for _, u := range users {
		*now++
		if err := svc.ReplaceAttributes(ctx, chat.AttrUser, u.id, u.v); err != nil {
			t.Fatal(err)
		}
	}
	order := func(sort string) string {
		t.Helper()
		q, err := chat.ParseSearch([][2]string{{"_sort", sort}})
		if err != nil {
			t.Fatal(err)
		}
		hits, err := svc.SearchUsers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, h := range hits {
			ids = append(ids, h.ID)
		}
		return fmt.Sprint(ids)
	}
	if got := order("v"); got != "[n1 n2 s b obj none]" {
		t.Errorf("v: %s", got)
	}
	if got := order("-v"); got != "[obj b s n2 n1 none]" {
		t.Errorf("-v: %s", got)
	}
	if got := order(""); got != "[s n2 none b n1 obj]" {
		t.Errorf("default: %s", got)
	}
	if got := order("-ts"); got != "[obj n1 b none n2 s]" {
		t.Errorf("-ts: %s", got)
	}
}

// Ensure filters match the text form: numbers in shortest form, booleans,
// strings as is; objects, arrays and null never match.
func TestService_SearchFilters(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if err := svc.ReplaceAttributes(ctx, chat.AttrUser, "u", chat.Attributes{
		"age": []byte(`46.0`), "ok": []byte(`false`), "tags": []byte(`["a"]`), "nil": []byte(`null`), "s": []byte(`"46"`),
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, value string
		match       bool
	}{
		{"age", "46", true}, {"age", "46.0", false}, {"ok", "false", true}, {"s", "46", true},
		{"tags", `["a"]`, false}, {"tags", "a", false}, {"nil", "null", false}, {"nil", "", false}, {"missing", "", false},
	}
	for _, c := range cases {
		q, _ := chat.ParseSearch([][2]string{{c.name, c.value}})
		hits, err := svc.SearchUsers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(hits) == 1; got != c.match {
			t.Errorf("%s=%s: match = %v, want %v", c.name, c.value, got, c.match)
		}
	}
}
