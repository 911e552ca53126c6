package chat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/storage"
)

// The hot paths of one MQTT say, one by one:
//
//	go test -run '^$' -bench 'VerifySign|ParseSay|ServiceSay' -benchmem ./chat/

// BenchmarkVerifySign is the check of every MQTT login and signed REST call.
func BenchmarkVerifySign(b *testing.B) {
	a := &chat.Authenticator{AppID: "app", Keys: []chat.Key{
		{Value: "clientkey0123456789", Role: chat.RoleClient}, {Value: "masterkey0123456789", Role: chat.RoleMaster},
	}, Tolerance: 15 * time.Minute}
	for _, c := range []struct{ name, key string }{{"client", "clientkey0123456789"}, {"master", "masterkey0123456789"}} {
		b.Run(c.name, func(b *testing.B) {
			sign := chat.Sign(c.key, time.Now().UnixMilli())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.VerifySign(sign); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchSays are typical say payloads: the load generator's, and one with
// the optional fields.
var benchSays = map[string][]byte{
	"plain": []byte(`{"content":{"media":0,"body":"3.1234.987654321012"}}`),
	"full":  []byte(`{"content":{"media":0,"body":"see you at the station at six, bring the tickets"},"remark":"r","ack":17,"push":{"enable":true,"prefix":"A: "}}`),
}

// BenchmarkParseSay is the validation of a say payload.
func BenchmarkParseSay(b *testing.B) {
	for _, name := range []string{"plain", "full"} {
		b.Run(name, func(b *testing.B) {
			p := benchSays[name]
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := chat.ParseSay(p, 65536); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nopPublisher discards events.
type nopPublisher struct{}

func (nopPublisher) Publish(chat.Identity, string, []byte, string)        {}
func (nopPublisher) PublishSession(string, chat.Identity, string, []byte) {}

// BenchmarkServiceSay is Service.Say against a real Badger store
// (SyncWrites off, as deployed by default): parse, membership check, stamp,
// append, and the events handed to a no-op publisher. Senders run in
// parallel (64 goroutines), each on its own friend conversation or its own
// group of 50, with every user online (no push lookups).
func BenchmarkServiceSay(b *testing.B) {
	for _, kind := range []string{"friend", "group"} {
		b.Run(kind, func(b *testing.B) {
			db, err := storage.Open(storage.Options{Dir: b.TempDir(), Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			s := chat.NewService(db, chat.Options{AppID: "app"})
			s.Publisher, s.Pusher = nopPublisher{}, chat.NopPusher{}
			ctx := context.Background()
			const senders = 64
			targets := make([]chat.SayTarget, senders)
			for i := range senders {
				me := fmt.Sprintf("u%03d", i)
				var peers []string
				switch kind {
				case "friend":
					peers = []string{fmt.Sprintf("p%03d", i)}
				case "group":
					for j := range 49 {
						peers = append(peers, fmt.Sprintf("g%03d-%02d", i, j))
					}
				}
				for _, u := range append([]string{me}, peers...) {
					if err := s.Login(ctx, chat.LoginRequest{Identity: chat.User(u)}); err != nil {
						b.Fatal(err)
					}
					s.Presence.Open(chat.User(u), u+"-s", false)
				}
				if kind == "friend" {
					if _, err := s.AddFriend(ctx, me, peers[0]); err != nil {
						b.Fatal(err)
					}
					targets[i] = chat.SayTarget{Type: chat.TypeFriend, ID: peers[0]}
				} else {
					gid, err := s.CreateMemberList(ctx, chat.GroupList, chat.NewMemberList{Owner: me, Members: peers})
					if err != nil {
						b.Fatal(err)
					}
					targets[i] = chat.SayTarget{Type: chat.TypeGroup, ID: gid}
				}
			}
			next := make(chan int, senders)
			for i := range senders {
				next <- i
			}
			payload := benchSays["plain"]
			b.SetParallelism(senders / 2) // 2 cores → 64 senders
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := <-next
				me := chat.User(fmt.Sprintf("u%03d", i))
				for pb.Next() {
					if _, err := s.Say(ctx, me, me.ID+"-s", targets[i], payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "says/s")
		})
	}
}
