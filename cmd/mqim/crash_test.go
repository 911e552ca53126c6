package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/chat"
)

// crashKills is how many SIGKILLs TestMain_CrashSafety delivers. CI runs the
// default; MQIM_CRASH_KILLS=25 is the long run reported in docs/reliability.md.
func crashKills() int {
	if n, err := strconv.Atoi(os.Getenv("MQIM_CRASH_KILLS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 2
	}
	return 5
}

// Ensure no acknowledged message is lost or duplicated when the server is
// killed with SIGKILL under QoS 1 friend and group traffic: every message
// whose PUBACK arrived is in the REST history exactly once after restart,
// and the server starts cleanly every time.
func TestMain_CrashSafety(t *testing.T) {
	dir := t.TempDir()
	kills := crashKills()
	const pairs, groupSenders = 4, 2
	// Each round uses fresh conversations so that one history page (limit
	// 100) holds a whole conversation: at most perConv messages each.
	const perConv = 90

	type conv struct {
		path string // REST history path
		sent map[string]bool
	}
	var (
		mu     sync.Mutex
		acked  = map[string]*conv{} // history path → bodies whose PUBACK arrived
		totals struct{ acked, attempted int }
	)
	record := func(path, body string) {
		mu.Lock()
		defer mu.Unlock()
		c := acked[path]
		if c == nil {
			c = &conv{path: path, sent: map[string]bool{}}
			acked[path] = c
		}
		c.sent[body] = true
		totals.acked++
	}

	p := startMQIM(t, dir)
	for round := 0; round < kills; round++ {
		// Set up this round's friendships and group over REST.
		owner := fmt.Sprintf("g%downer", round)
		members := []string{owner}
		for i := 0; i < groupSenders; i++ {
			members = append(members, fmt.Sprintf("g%dm%d", round, i))
		}
		for i := 0; i < pairs; i++ {
			a, b := fmt.Sprintf("r%da%d", round, i), fmt.Sprintf("r%db%d", round, i)
			expect(t, "friend", p.do("POST", "/ctx/"+a+"/friends/"+b, nil), 201)
		}
		r := p.do("POST", "/groups", map[string]any{"owner": owner, "members": members[1:]})
		expect(t, "group", r, 201)
		var gid string
		r.JSON(t, &gid)

		// Senders publish QoS 1 until the connection dies.
		type sender struct{ user, topic, history string }
		var senders []sender
		for i := 0; i < pairs; i++ {
			a, b := fmt.Sprintf("r%da%d", round, i), fmt.Sprintf("r%db%d", round, i)
			senders = append(senders, sender{a, "say/friend/" + b, "/ctx/" + a + "/friends/" + b + "/chats?limit=100"})
		}
		for _, m := range members[1:] {
			senders = append(senders, sender{m, "say/group/" + gid, "/groups/" + gid + "/chats?limit=100"})
		}
		var wg sync.WaitGroup
		started := make(chan struct{}, len(senders))
		for _, s := range senders {
			wg.Add(1)
			go func(s sender) {
				defer wg.Done()
				c := mustConnectV3(t, p, s.user, s.user+"-dev")
				if c == nil {
					return
				}
				defer c.Disconnect(0)
				started <- struct{}{}
				for n := 0; n < perConv/len(members); n++ {
					body := fmt.Sprintf("%s-%d", s.user, n)
					payload, _ := json.Marshal(map[string]any{"content": map[string]any{"media": 0, "body": body}})
					mu.Lock()
					totals.attempted++
					mu.Unlock()
					tok := c.Publish(s.topic, 1, false, payload)
					if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
						return // connection gone: this one and later ones were not acknowledged
					}
					record(s.history, body)
				}
			}(s)
		}
		for range senders {
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: senders did not connect", round)
			}
		}
		// Kill at a random moment while traffic flows.
		time.Sleep(time.Duration(20+rand.IntN(200)) * time.Millisecond)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		wg.Wait()
		p = startMQIM(t, dir)
	}

	// Every acknowledged message is in history exactly once.
	checked := 0
	for path, c := range acked {
		r := p.do("GET", path, nil)
		expect(t, "history "+path, r, 200)
		var recs []chat.Record
		r.JSON(t, &recs)
		seen := map[string]int{}
		for _, rec := range recs {
			seen[rec.Content.Body]++
		}
		for body := range c.sent {
			switch seen[body] {
			case 1:
				checked++
			case 0:
				t.Errorf("%s: acknowledged message %q missing", path, body)
			default:
				t.Errorf("%s: message %q stored %d times", path, body, seen[body])
			}
		}
		for body, n := range seen {
			if n > 1 {
				t.Errorf("%s: %q stored %d times", path, body, n)
			}
		}
	}
	p.stop()
	t.Logf("kills=%d attempted=%d acknowledged=%d checked=%d", kills, totals.attempted, totals.acked, checked)
	if totals.acked == 0 {
		t.Fatalf("no message was acknowledged: the test exercised nothing")
	}
}

// mustConnectV3 logs in as uid with a fresh signature over MQTT 3.1.1.
// It returns nil if the server went away meanwhile (the test kills it).
func mustConnectV3(t testing.TB, p *proc, uid, clientID string) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().
		AddBroker("tcp://" + p.MQTT).
		SetClientID(clientID).
		SetUsername(uid).
		SetPassword(chat.Sign(p.Key, time.Now().UnixMilli())).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Errorf("connect %s: %v", uid, tok.Error())
		return nil
	}
	return c
}
