package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// mosquittoSub is a running mosquitto_sub -d -v and its output lines.
type mosquittoSub struct {
	cmd        *exec.Cmd
	lines      chan string
	transcript []string
}

// startMosquittoSub runs mosquitto_sub with a persistent session (-c) as
// user uid with client id clientID on the inbox users/uid/#, at QoS 1.
// mosquitto_sub subscribes with packet id 1 on every connect.
func startMosquittoSub(t *testing.T, p *proc, uid, clientID string) *mosquittoSub {
	t.Helper()
	host, port, _ := net.SplitHostPort(p.MQTT)
	cmd := exec.Command("stdbuf", "-oL", "mosquitto_sub", "-d", "-v", "-c", "-q", "1", "-h", host, "-p", port,
		"-i", clientID, "-u", uid, "-P", chat.Sign(p.Key, time.Now().UnixMilli()), "-t", "users/"+uid+"/#")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &mosquittoSub{cmd: cmd, lines: make(chan string, 1000)}
	t.Cleanup(s.stop)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	return s
}

// stop kills mosquitto_sub: the session stays (clean session false)
// whether or not the client says goodbye.
func (s *mosquittoSub) stop() {
	_ = s.cmd.Process.Kill()
	go func() { // unblock the reader so that Wait can close the pipe
		for range s.lines {
		}
	}()
	_ = s.cmd.Wait()
}

// next returns the next line that match accepts.
func (s *mosquittoSub) next(t *testing.T, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("mosquitto_sub ended before %s; transcript:\n%s", what, strings.Join(s.transcript, "\n"))
			}
			s.transcript = append(s.transcript, l)
			if strings.Contains(l, "denied") {
				t.Fatalf("mosquitto_sub: %s; transcript:\n%s", l, strings.Join(s.transcript, "\n"))
			}
			if match(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("no %s within 20s; transcript:\n%s", what, strings.Join(s.transcript, "\n"))
		}
	}
}

// message waits for the next users/dave/message event and returns its seq
// and body.
func (s *mosquittoSub) message(t *testing.T) (uint64, string) {
	t.Helper()
	const topic = "users/dave/message "
	l := s.next(t, "a message event", func(l string) bool { return strings.HasPrefix(l, topic) })
	var m struct {
		Seq     uint64
		Content struct{ Body string }
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(l, topic)), &m); err != nil {
		t.Fatalf("message %q: %v", l, err)
	}
	return m.Seq, m.Content.Body
}

// sessionsOf returns the number of connected sessions of uid.
func sessionsOf(p *proc, uid string) int {
	var ctx struct{ Sessions int }
	r := p.do("GET", "/ctx/"+uid, nil)
	if json.Unmarshal(r.Body, &ctx) != nil {
		return -1
	}
	return ctx.Sessions
}

// sayToDave sends n friend messages from alice to dave over MQTT at QoS 1,
// each acknowledged (stored) before the next, with bodies from first on.
func sayToDave(t *testing.T, p *proc, first, n int) {
	t.Helper()
	alice := mustConnectV3(t, p, "alice", "alice-phone")
	if alice == nil {
		t.FailNow()
	}
	defer alice.Disconnect(0)
	for i := first; i < first+n; i++ {
		tok := alice.Publish("say/friend/dave", 1, false, fmt.Sprintf(`{"content":{"media":0,"body":"m%d"}}`, i))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("say %d: %v", i, tok.Error())
		}
	}
}

// Ensure a mosquitto_sub persistent session (packet ids from 1) gets the
// events queued while it was away exactly once, in seq order, and its
// subscription succeeds on reconnect: without restart, across a SIGTERM
// restart and across a SIGKILL restart of the binary (same data dir).
func TestMain_PersistentSessionMosquitto(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "stdbuf"} {
		_, err := exec.LookPath(tool)
		needTool(t, tool, "apt-get install mosquitto-clients coreutils", err != nil)
	}
	for _, restart := range []string{"none", "SIGTERM", "SIGKILL"} {
		t.Run(restart, func(t *testing.T) {
			dir := t.TempDir()
			p := startMQIM(t, dir, "MQIM_LOG_LEVEL=debug")
			expect(t, "friends", p.do("POST", "/ctx/alice/friends/dave", nil), 201)

			sub := startMosquittoSub(t, p, "dave", "dave-tab")
			sub.next(t, "SUBACK", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
			sub.stop()
			testwait.Until(t, "dave offline", 10*time.Second, func() bool { return sessionsOf(p, "dave") == 0 })

			const queued = 6
			sayToDave(t, p, 1, queued)
			switch restart {
			case "SIGTERM":
				p.stop()
				p = startMQIM(t, dir)
			case "SIGKILL":
				// The queue of a disconnected session is written in the
				// background; wait until its last event is on disk.
				testwait.Until(t, "queue written", 10*time.Second, func() bool { return eventsSaved(p) >= queued })
				p.kill()
				p = startMQIM(t, dir)
			}

			sub = startMosquittoSub(t, p, "dave", "dave-tab")
			for i := 1; i <= queued; i++ {
				seq, body := sub.message(t)
				if seq != uint64(i) || body != fmt.Sprintf("m%d", i) {
					t.Fatalf("event %d: seq %d body %q; transcript:\n%s", i, seq, body, strings.Join(sub.transcript, "\n"))
				}
			}
			sub.next(t, "SUBACK granting QoS 1", func(l string) bool { return strings.Contains(l, "Subscribed (mid: 1): 1") })
			// Nothing comes twice: the next event is the next message.
			sayToDave(t, p, queued+1, 1)
			if seq, body := sub.message(t); seq != queued+1 || body != fmt.Sprintf("m%d", queued+1) {
				t.Fatalf("after the queue: seq %d body %q; transcript:\n%s", seq, body, strings.Join(sub.transcript, "\n"))
			}
		})
	}
}

// eventsSaved returns how many queued events the server reports written
// (its debug log counts them).
func eventsSaved(p *proc) int {
	n := 0
	for _, l := range p.allLogs() {
		if l["message"] == "persistent sessions saved" {
			if v, ok := l["events_total"].(float64); ok {
				n = max(n, int(v))
			}
		}
	}
	return n
}

// Ensure at SIGTERM an MQTT 3.1.1 client sees its connection closed with
// no DISCONNECT packet (3.1.1 has none from the server), and an MQTT 5
// client gets DISCONNECT 0x8B (server shutting down).
func TestMain_ShutdownDisconnectByVersion(t *testing.T) {
	p := startMQIM(t, t.TempDir())
	dial := func(version byte, clientID string) (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", p.MQTT, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		body := []byte{0, 4, 'M', 'Q', 'T', 'T', version, 0xC2, 0, 60}
		if version == 5 {
			body = append(body, 0)
		}
		sign := chat.Sign(p.Key, time.Now().UnixMilli())
		for _, s := range []string{clientID, "erin", sign} {
			body = append(body, byte(len(s)>>8), byte(len(s)))
			body = append(body, s...)
		}
		if _, err := c.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		ack := make([]byte, 4)
		if _, err := r.Read(ack[:1]); err != nil || ack[0] != 0x20 {
			t.Fatalf("v%d CONNACK: %x %v", version, ack[0], err)
		}
		n, _ := r.ReadByte()
		rest := make([]byte, n)
		if _, err := io.ReadFull(r, rest); err != nil || rest[1] != 0 {
			t.Fatalf("v%d CONNACK %x: %v", version, rest, err)
		}
		return c, r
	}
	_, r3 := dial(4, "erin-v3")
	_, r5 := dial(5, "erin-v5")
	p.signal(syscall.SIGTERM)

	var got3 []byte
	for {
		b, err := r3.ReadByte()
		if err != nil {
			break
		}
		got3 = append(got3, b)
	}
	if len(got3) != 0 {
		t.Errorf("MQTT 3.1.1 client got %x at shutdown, want the connection closed without a packet", got3)
	}
	typ, err := r5.ReadByte()
	if err != nil || typ != 0xE0 {
		t.Fatalf("MQTT 5 client got %#x (%v), want DISCONNECT", typ, err)
	}
	n, _ := r5.ReadByte()
	rest := make([]byte, n)
	if _, err := io.ReadFull(r5, rest); err != nil || len(rest) < 1 || rest[0] != 0x8B {
		t.Errorf("MQTT 5 DISCONNECT %x (%v), want reason 0x8B", rest, err)
	}
	<-p.exited
	if p.exitErr != nil {
		t.Errorf("mqim exit: %v", p.exitErr)
	}
}
