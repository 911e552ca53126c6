package hooks_test

import (
	"fmt"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/chat"
)

// Ensure 1,000 messages pipelined into one conversation (many in the same
// millisecond) page back without loss with MaxIM's ts cursor at limits 1, 7
// and 100, and forward with after=<seq>: every record exactly once, in
// order, each with its seq and id, ts strictly increasing.
func TestSync_PagingPipelined(t *testing.T) {
	e := newSyncEnv(t)
	e.users(t, "alice", "bob")
	e.friends(t, "alice", "bob")
	alice := e.connectV3(t, "alice-phone", "alice", sign(), true, 0, nil)

	const n = 1000
	start := time.Now()
	toks := make([]paho3.Token, n)
	for i := range n {
		toks[i] = alice.c.Publish("say/friend/bob", 1, false, fmt.Sprintf(`{"content":{"body":"m%04d"}}`, i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: no PUBACK (%v)", i, tok.Error())
		}
	}
	t.Logf("%d says acknowledged in %v", n, time.Since(start))

	check := func(t *testing.T, how string, recs []histRecord) {
		t.Helper()
		if len(recs) != n {
			t.Fatalf("%s: %d records, want %d", how, len(recs), n)
		}
		for i, r := range recs {
			if r.Seq != uint64(i+1) || r.Content.Body != fmt.Sprintf("m%04d", i) || r.ID == "" || r.Speaker != "alice" {
				t.Fatalf("%s: record %d = %+v, want seq %d body m%04d with an id", how, i, r, i+1, i)
			}
			if i > 0 && r.TS <= recs[i-1].TS {
				t.Fatalf("%s: ts %d of seq %d not above %d", how, r.TS, r.Seq, recs[i-1].TS)
			}
		}
	}
	for _, limit := range []int{1, 7, 100} {
		t.Run(fmt.Sprintf("ts/limit=%d", limit), func(t *testing.T) {
			var all []histRecord
			path := fmt.Sprintf("/ctx/bob/friends/alice/chats?limit=%d", limit)
			for len(all) <= n {
				var page []histRecord
				e.get(t, path, &page)
				if len(page) == 0 {
					break
				}
				if len(page) > limit {
					t.Fatalf("page of %d records, limit %d", len(page), limit)
				}
				all = append(page, all...)
				path = fmt.Sprintf("/ctx/bob/friends/alice/chats?limit=%d&ts=%d", limit, page[0].TS)
			}
			check(t, "paging back", all)
		})
		t.Run(fmt.Sprintf("after/limit=%d", limit), func(t *testing.T) {
			var all []histRecord
			var after uint64
			for len(all) <= n {
				var page []histRecord
				e.get(t, fmt.Sprintf("/ctx/alice/friends/bob/chats?limit=%d&after=%d", limit, after), &page)
				if len(page) == 0 {
					break
				}
				if len(page) > limit {
					t.Fatalf("page of %d records, limit %d", len(page), limit)
				}
				all = append(all, page...)
				after = page[len(page)-1].Seq
			}
			check(t, "catching up", all)
		})
	}
	t.Run("after/default-and-max-limit", func(t *testing.T) {
		var page []histRecord
		e.get(t, "/ctx/alice/friends/bob/chats?after=10", &page)
		if len(page) != chat.DefaultListLimit || page[0].Seq != 11 {
			t.Errorf("after=10: %d records from seq %d, want %d from 11", len(page), page[0].Seq, chat.DefaultListLimit)
		}
		e.get(t, "/ctx/alice/friends/bob/chats?after=0&limit=500", &page)
		if len(page) != chat.MaxListLimit || page[0].Seq != 1 {
			t.Errorf("limit=500: %d records from seq %d, want %d from 1", len(page), page[0].Seq, chat.MaxListLimit)
		}
		e.get(t, fmt.Sprintf("/ctx/alice/friends/bob/chats?after=%d", n), &page)
		if len(page) != 0 {
			t.Errorf("after the latest: %d records, want none", len(page))
		}
		if status, b := e.call(t, "GET", "/ctx/alice/friends/bob/chats?after=-1", nil); status != 400 {
			t.Errorf("after=-1: %d %s, want 400", status, b)
		}
	})
}

// Ensure group, stranger and passenger histories carry seq and id and take
// after=<seq> too.
func TestSync_AfterEveryHistory(t *testing.T) {
	e := newSyncEnv(t)
	e.users(t, "alice", "bob", "carol")
	e.seed(t, func(tx chat.Tx) error {
		if err := tx.PutPassenger(&chat.PassengerRecord{ID: "p1", Attributes: chat.Attributes{}}); err != nil {
			return err
		}
		return tx.PutGroup(&chat.Group{ID: "g1", Owner: "alice", Members: []string{"bob"}, Attributes: chat.Attributes{}})
	})
	alice := e.userV5(t, "alice-phone", "alice")
	p1, _ := e.connectV5(t, "p1-web", "passenger:p1", sign(), 0, nil)
	for i := range 3 {
		for _, topic := range []string{"say/group/g1", "say/stranger/carol"} {
			if rc := alice.Publish(t, topic, fmt.Sprintf(`{"content":{"body":"%d"}}`, i)); rc != 0 {
				t.Fatalf("%s: PUBACK %#x", topic, rc)
			}
		}
		if rc := p1.Publish(t, "say/user/alice", fmt.Sprintf(`{"content":{"body":"%d"}}`, i)); rc != 0 {
			t.Fatalf("say/user/alice: PUBACK %#x", rc)
		}
	}
	for _, path := range []string{"/groups/g1/chats", "/ctx/carol/strangers/alice/chats", "/passengers/p1/chats/alice"} {
		var all, after []histRecord
		e.get(t, path, &all)
		e.get(t, path+"?after=1", &after)
		if len(all) != 3 || len(after) != 2 || after[0].Seq != 2 || after[1].Seq != 3 || after[0].ID != all[1].ID || all[0].ID == "" {
			t.Errorf("%s = %+v, after=1 %+v", path, all, after)
		}
	}
}
