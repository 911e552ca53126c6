package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/storage"
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
// whose PUBACK arrived is stored exactly once after restart, in the order
// its sender sent it, nothing is stored that was never sent, and the
// server starts cleanly every time.
//
// Each round's senders publish without pause (a window of publishes in
// flight each) until their connection dies, and the kill is triggered by
// the round's acknowledged count reaching a random threshold, not by a
// timer: every kill lands while messages are in flight, some acknowledged
// and some in doubt. MQIM_CRASH_SYNC=true runs the server with
// storage.sync_writes on.
func TestMain_CrashSafety(t *testing.T) {
	singleNodeOnly(t, "SIGKILL and restart of one process on one Badger data dir")
	dir := t.TempDir()
	kills := crashKills()
	var env []string
	if os.Getenv("MQIM_CRASH_SYNC") == "true" {
		env = append(env, "MQIM_SYNC_WRITES=true")
	}
	const (
		pairs, groupSenders = 8, 4
		window              = 4 // publishes in flight per sender
		// The kill comes after minAcked to maxAcked acknowledgements of
		// the round.
		minAcked, maxAcked = 200, 1500
	)

	// sent is what one sender sent to one conversation: body index n is
	// acknowledged (acked[n]) or in doubt (attempted, no PUBACK).
	type sent struct {
		conv      chat.Conv
		sender    string
		attempted int
		acked     map[int]bool
		refused   map[int]bool // named by an error event (e.g. rate limited)
	}
	var (
		mu      sync.Mutex
		senders []*sent
		totals  struct{ acked, attempted int }
		restart time.Duration
	)

	p := startMQIM(t, dir, env...)
	for round := 0; round < kills; round++ {
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

		type job struct {
			topic string
			s     *sent
		}
		var jobs []job
		for i := 0; i < pairs; i++ {
			a, b := fmt.Sprintf("r%da%d", round, i), fmt.Sprintf("r%db%d", round, i)
			jobs = append(jobs, job{"say/friend/" + b, &sent{conv: chat.FriendConv(a, b), sender: a, acked: map[int]bool{}, refused: map[int]bool{}}})
		}
		for _, m := range members[1:] {
			jobs = append(jobs, job{"say/group/" + gid, &sent{conv: chat.GroupConv(gid), sender: m, acked: map[int]bool{}, refused: map[int]bool{}}})
		}
		threshold := int64(minAcked + rand.IntN(maxAcked-minAcked+1))
		var roundAcked atomic.Int64
		reached := make(chan struct{})
		var reachedOnce sync.Once
		var wg sync.WaitGroup
		started := make(chan struct{}, len(jobs))
		for _, j := range jobs {
			mu.Lock()
			senders = append(senders, j.s)
			mu.Unlock()
			wg.Add(1)
			go func(j job) {
				defer wg.Done()
				c := mustConnectV3(t, p, j.s.sender, j.s.sender+"-dev")
				if c == nil {
					return
				}
				defer c.Disconnect(0)
				// MQTT 3.1.1 cannot fail a PUBACK: a refused say is told
				// by an error event, written before its PUBACK.
				sub := c.Subscribe("users/"+j.s.sender+"/error", 1, func(_ paho.Client, m paho.Message) {
					var e chat.ErrorEvent
					if json.Unmarshal(m.Payload(), &e) == nil && e.Ack != nil {
						mu.Lock()
						j.s.refused[int(*e.Ack)] = true
						mu.Unlock()
					}
				})
				if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
					t.Errorf("subscribe %s: %v", j.s.sender, sub.Error())
					return
				}
				started <- struct{}{}
				// Publishes of one connection are handled in order; the
				// window keeps several in flight at the kill.
				type inflight struct {
					n   int
					tok paho.Token
				}
				var q []inflight
				settle := func(f inflight) bool {
					if !f.tok.WaitTimeout(10*time.Second) || f.tok.Error() != nil {
						return false // connection gone: this one and later ones are in doubt
					}
					mu.Lock()
					refused := j.s.refused[f.n]
					if !refused {
						j.s.acked[f.n] = true
						totals.acked++
					}
					mu.Unlock()
					if refused {
						return true
					}
					if roundAcked.Add(1) == threshold {
						reachedOnce.Do(func() { close(reached) })
					}
					return true
				}
				for n := 0; ; n++ {
					body := fmt.Sprintf("%s-%d", j.s.sender, n)
					payload, _ := json.Marshal(map[string]any{"content": map[string]any{"media": 0, "body": body}, "ack": n})
					mu.Lock()
					j.s.attempted = n + 1
					totals.attempted++
					mu.Unlock()
					q = append(q, inflight{n, c.Publish(j.topic, 1, false, payload)})
					if len(q) == window {
						if !settle(q[0]) {
							return
						}
						q = q[1:]
					}
				}
			}(j)
		}
		for range jobs {
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: senders did not connect", round)
			}
		}
		select {
		case <-reached:
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d: %d of %d acknowledgements before the kill", round, roundAcked.Load(), threshold)
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		wg.Wait()
		start := time.Now()
		p = startMQIM(t, dir, env...)
		restart = max(restart, time.Since(start))
	}
	p.stop()

	// Read every record from the store itself: REST pages by timestamp,
	// and a fast sender stores several records in one millisecond.
	db, err := storage.Open(storage.Options{Dir: filepath.Join(dir, "db"), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("open the store after the last stop: %v", err)
	}
	defer db.Close()
	byConv := map[chat.Conv][]chat.Record{}
	for _, s := range senders {
		if _, ok := byConv[s.conv]; ok {
			continue
		}
		recs, err := db.Records(context.Background(), s.conv, math.MaxInt64, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		byConv[s.conv] = recs
		for i := 1; i < len(recs); i++ {
			if recs[i].Seq <= recs[i-1].Seq {
				t.Errorf("%s: seq %d after %d", s.conv, recs[i].Seq, recs[i-1].Seq)
			}
		}
	}
	checked, inDoubt, inDoubtStored, refused := 0, 0, 0, 0
	for _, s := range senders {
		stored := map[int]int{}
		last := -1
		for _, rec := range byConv[s.conv] {
			if rec.Speaker != s.sender {
				continue
			}
			n, err := strconv.Atoi(strings.TrimPrefix(rec.Content.Body, s.sender+"-"))
			if err != nil || n >= s.attempted {
				t.Errorf("%s: stored %q was never sent", s.conv, rec.Content.Body)
				continue
			}
			stored[n]++
			if n <= last {
				t.Errorf("%s: %q stored after %s-%d: sender order broken", s.conv, rec.Content.Body, s.sender, last)
			}
			last = n
		}
		for n := 0; n < s.attempted; n++ {
			switch {
			case stored[n] > 1:
				t.Errorf("%s: %s-%d stored %d times", s.conv, s.sender, n, stored[n])
			case s.acked[n] && stored[n] == 0:
				t.Errorf("%s: acknowledged message %s-%d missing", s.conv, s.sender, n)
			case s.acked[n]:
				checked++
			case s.refused[n] && stored[n] > 0:
				t.Errorf("%s: refused message %s-%d stored", s.conv, s.sender, n)
			case s.refused[n]:
				refused++
			default:
				inDoubt++
				inDoubtStored += stored[n]
			}
		}
	}
	t.Logf("kills=%d attempted=%d acknowledged=%d checked=%d in_doubt=%d in_doubt_stored=%d refused=%d max_restart=%v",
		kills, totals.attempted, totals.acked, checked, inDoubt, inDoubtStored, refused, restart.Round(time.Millisecond))
	if checked == 0 || inDoubt == 0 {
		t.Fatalf("checked %d acknowledged and %d in-doubt messages: the kills did not land under traffic", checked, inDoubt)
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
