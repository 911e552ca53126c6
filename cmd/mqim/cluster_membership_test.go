package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// membershipRounds is the number of removals of TestCluster_MembershipRace:
// 30, 8 with -short; MQIM_MEMBERSHIP_ROUNDS overrides.
func membershipRounds() int {
	if n, err := strconv.Atoi(os.Getenv("MQIM_MEMBERSHIP_ROUNDS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 8
	}
	return 30
}

// Ensure a member removed on node A while the group speaks on node B gets
// nothing said after the REST call returned, on node C: the membership
// barrier of docs/scaleout.md across three real nodes.
//
// The speaker on B says to the group without pause, one QoS 1 message at
// a time, numbered. Each round the member is removed by a REST call to A;
// every message the speaker began to publish after the call returned and
// whose PUBACK arrived before the member was added again (a REST call to A)
// was handled while the member was out: it must never reach the member,
// whenever it would arrive. Messages begun before the call returned may
// still arrive (they were in flight when the removal committed). After
// each re-add the member must receive the speaker's messages again, which
// shows the rounds ran with the member connected and the group speaking.
func TestCluster_MembershipRace(t *testing.T) {
	if clusterSize() > 0 {
		t.Skip("starts its own three nodes: it runs in the one-process pass (make test)")
	}
	began := time.Now()
	cl := startCrashNodes(t, 3)
	a, b, c := cl.node(0), cl.node(1), cl.node(2)
	res := a.do("POST", "/groups", map[string]any{"owner": "mowner", "members": []string{"speaker", "removed", "stays"}})
	expect(t, "group", res, 201)
	var gid string
	res.JSON(t, &gid)

	// got: the message numbers each listener received from the group.
	var mu sync.Mutex
	got := map[string][]int{}
	listen := func(p *proc, uid string) paho.Client {
		cli := connectTo(p, uid, uid+"-dev", nil)
		if cli == nil {
			t.Fatalf("connect %s", uid)
		}
		tok := cli.Subscribe("users/"+uid+"/message", 1, func(_ paho.Client, m paho.Message) {
			var e chat.MessageEvent
			if json.Unmarshal(m.Payload(), &e) != nil || e.From.GID != gid {
				return
			}
			if n, err := strconv.Atoi(strings.TrimPrefix(e.Content.Body, "m-")); err == nil {
				mu.Lock()
				got[uid] = append(got[uid], n)
				mu.Unlock()
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", uid, tok.Error())
		}
		t.Cleanup(func() { cli.Disconnect(0) })
		return cli
	}
	listen(c, "removed")
	listen(a, "stays")
	receivedAfter := func(uid string, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range got[uid] {
			if m > n {
				return true
			}
		}
		return false
	}

	// The speaker: begun is the number of messages begun, acked the
	// number acknowledged (in order: one at a time).
	var begun, acked atomic.Int64
	spk := connectTo(b, "speaker", "speaker-dev", nil)
	if spk == nil {
		t.Fatal("connect speaker")
	}
	defer spk.Disconnect(0)
	stop := make(chan struct{})
	speakerDone := make(chan error, 1)
	go func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				speakerDone <- nil
				return
			default:
			}
			begun.Store(int64(n + 1))
			payload, _ := json.Marshal(map[string]any{"content": map[string]any{"media": 0, "body": fmt.Sprintf("m-%d", n)}})
			tok := spk.Publish("say/group/"+gid, 1, false, payload)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				speakerDone <- fmt.Errorf("say m-%d: %v", n, tok.Error())
				return
			}
			acked.Store(int64(n + 1))
			// Under mqtt.rate_limit (100 a second): a refused say would
			// be acknowledged at 3.1.1 but not stored.
			time.Sleep(10 * time.Millisecond)
		}
	}()

	type window struct{ from, to int } // message numbers [from, to] said while removed
	var windows []window
	rounds := membershipRounds()
	for round := range rounds {
		// The member receives the group while it is in it.
		since := int(acked.Load())
		testwait.Until(t, fmt.Sprintf("round %d: the member receives the group", round), 30*time.Second, func() bool {
			return receivedAfter("removed", since)
		})
		st, body, err := call(a, "DELETE", "/groups/"+gid+"/members/removed", nil)
		if err != nil || st/100 != 2 {
			t.Fatalf("round %d: remove: %d %s %v", round, st, body, err)
		}
		from := int(begun.Load()) // messages numbered from here on began after the call returned
		testwait.Until(t, fmt.Sprintf("round %d: the group speaks without the member", round), 30*time.Second, func() bool {
			return int(acked.Load()) > from+3
		})
		to := int(acked.Load()) - 1 // acknowledged before the member is back
		windows = append(windows, window{from, to})
		st, body, err = call(a, "POST", "/groups/"+gid+"/members/removed", nil)
		if err != nil || st/100 != 2 {
			t.Fatalf("round %d: add again: %d %s %v", round, st, body, err)
		}
	}
	since := int(acked.Load())
	testwait.Until(t, "the member receives the group after the last round", 30*time.Second, func() bool {
		return receivedAfter("removed", since) && receivedAfter("stays", since)
	})
	close(stop)
	if err := <-speakerDone; err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	forbidden, leaked := 0, 0
	for _, w := range windows {
		forbidden += w.to - w.from + 1
	}
	for _, n := range got["removed"] {
		for i, w := range windows {
			if n >= w.from && n <= w.to {
				leaked++
				t.Errorf("round %d: m-%d reached the removed member: said after the removal returned (messages m-%d to m-%d)", i, n, w.from, w.to)
			}
		}
	}
	stays := map[int]bool{}
	for _, n := range got["stays"] {
		stays[n] = true
	}
	for _, w := range windows {
		for n := w.from; n <= w.to; n++ {
			if !stays[n] {
				t.Errorf("m-%d never reached the member that stayed", n)
			}
		}
	}
	t.Logf("rounds=%d said=%d said_while_removed=%d received_by_removed=%d leaked=%d received_by_stays=%d runtime=%v",
		rounds, acked.Load(), forbidden, len(got["removed"]), leaked, len(got["stays"]), time.Since(began).Round(time.Millisecond))
}
