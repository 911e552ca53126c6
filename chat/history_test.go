package chat_test

import (
	"context"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
)

// Ensure records leave history and "recent" once the clock passes their
// retention, per conversation kind: friend and group 7 days, stranger and
// passenger 1 year (docs/maxim.md §7).
func TestService_Retention(t *testing.T) {
	svc, now := newService(t)
	ctx := context.Background()
	if _, err := svc.AddFriend(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	start := *now
	for _, conv := range []chat.Conv{chat.FriendConv("a", "b"), chat.StrangerConv("a", "s")} {
		// No TTL: only the service's retention rule can hide them.
		if err := chat.StoreOf(svc).AppendRecord(ctx, &chat.Record{Conv: conv, Speaker: "a", Content: chat.Content{Body: "x"}, TS: start}, 0); err != nil {
			t.Fatal(err)
		}
	}
	count := func(get func() ([]chat.Record, error)) int {
		t.Helper()
		recs, err := get()
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	friend := func() ([]chat.Record, error) { return svc.FriendHistory(ctx, "a", "b", 0, 0) }
	stranger := func() ([]chat.Record, error) { return svc.StrangerHistory(ctx, "s", "a", 0, 0) }

	*now = start + (7 * 24 * time.Hour).Milliseconds() - 1
	if count(friend) != 1 {
		t.Fatal("friend record gone before 7 days")
	}
	*now = start + (7 * 24 * time.Hour).Milliseconds() + 1
	if count(friend) != 0 {
		t.Fatal("friend record still returned after 7 days")
	}
	items, err := svc.FriendDetails(ctx, "a")
	if err != nil || len(items) != 1 || items[0].Recent != nil {
		t.Fatalf("friend details after 7 days = %+v, %v; want no recent", items, err)
	}
	if count(stranger) != 1 {
		t.Fatal("stranger record gone after 7 days")
	}
	*now = start + (366 * 24 * time.Hour).Milliseconds()
	if count(stranger) != 0 {
		t.Fatal("stranger record still returned after a year")
	}
}

// Ensure the cutoff: exclusive, seconds below 1e11, now when ≤ 0.
func TestService_HistoryCutoff(t *testing.T) {
	svc, now := newService(t)
	ctx := context.Background()
	conv := chat.FriendConv("a", "b")
	base := (*now/1000 - 10) * 1000 // a whole second
	for i := int64(0); i < 3; i++ {
		if err := chat.StoreOf(svc).AppendRecord(ctx, &chat.Record{Conv: conv, Speaker: "a", TS: base + i*1000}, 0); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		ts   int64
		want int
	}{
		{0, 3}, {-5, 3}, {base, 0}, {base + 1, 1}, {base + 2000, 2}, {base/1000 + 1, 1}, {base / 1000, 0}, {*now + 1000, 3},
	}
	for _, c := range cases {
		recs, err := svc.FriendHistory(ctx, "a", "b", c.ts, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != c.want {
			t.Errorf("ts=%d: %d records, want %d", c.ts, len(recs), c.want)
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].TS < recs[i-1].TS {
				t.Errorf("ts=%d: not ascending: %+v", c.ts, recs)
			}
		}
	}
}
