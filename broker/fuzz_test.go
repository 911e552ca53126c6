package broker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
)

// Fuzz targets of the topic scheme and of the whole read path. `go test`
// runs the seed corpora; `go test -run '^$' -fuzz FuzzX -fuzztime 60s
// ./broker` explores further (figures in docs/reliability.md).

// Ensure ParseSendTopic accepts exactly say/{known kind}/{valid id}, and
// what it accepts writes back to the same topic.
func FuzzParseSendTopic(f *testing.F) {
	for _, s := range []string{"say/friend/bob", "say/user/a", "say/friend/bob/x", "say//", "say/group/#", "say/room/+", "$share/g/say/friend/b", "say/friend/b\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		st, ok := ParseSendTopic(topic)
		if !ok {
			return
		}
		if st.String() != topic || !chat.ValidID(st.ID) || !IsSayTopic(topic) {
			t.Fatalf("%q parsed as %+v", topic, st)
		}
		if strings.ContainsAny(topic, "+#$\x00") {
			t.Fatalf("%q with a wildcard or special character accepted", topic)
		}
	})
}

// Ensure ParseInboxTopic and ParseUsername accept only what they write
// back byte for byte.
func FuzzParseInboxTopic(f *testing.F) {
	for _, s := range []string{"users/bob/message", "passengers/p1/sys", "users/bob/#", "users/bob/a/b", "users//x", "users/bob/"} {
		f.Add(s, "bob")
	}
	f.Add("passengers/p/error", "passenger:p")
	f.Add("x", "passenger:")
	f.Fuzz(func(t *testing.T, topic, username string) {
		if id, event, ok := ParseInboxTopic(topic); ok && InboxTopic(id, event) != topic {
			t.Fatalf("%q parsed as %v %q", topic, id, event)
		}
		if id, ok := ParseUsername(username); ok && (Username(id) != username || !chat.ValidID(id.ID)) {
			t.Fatalf("username %q parsed as %v", username, id)
		}
	})
}

// Ensure InboxAllowed never lets a filter reach outside the client's own
// inbox: every topic the filter can match lies under users/{me} (or
// passengers/{me}), whole levels compared.
func FuzzInboxAllowed(f *testing.F) {
	for _, s := range []string{"users/bob/#", "users/bob", "users/bobby/#", "users/+/message", "#", "+/bob/#", "$SYS/#",
		"$share/g/users/bob/#", "users/bob/+", "users/bob//x", "passengers/bob/#", "users/bo/#", "users/bob#"} {
		f.Add("bob", s)
	}
	f.Add("passenger:p1", "passengers/p1/#")
	f.Add("passenger:p1", "users/passenger:p1/#")
	f.Add("passenger:", "passengers//#")
	f.Fuzz(func(t *testing.T, username, filter string) {
		id, ok := ParseUsername(username)
		if !ok || !InboxAllowed([]byte(username), filter) {
			return
		}
		inbox := InboxPrefix(id)
		if filter != inbox && !strings.HasPrefix(filter, inbox+"/") {
			t.Fatalf("%q may subscribe to %q, outside %q", username, filter, inbox)
		}
	})
}

// fuzzBroker is one broker per fuzzing process, shared by the inputs.
var fuzzBroker struct {
	once   sync.Once
	s      *Server
	panics *panicCounter
}

// panicCounter counts the recovered connection panics in the broker log.
type panicCounter struct {
	mu  sync.Mutex
	n   int
	out io.Writer
}

func (p *panicCounter) Write(b []byte) (int, error) {
	if strings.Contains(string(b), "connection handler panicked") {
		p.mu.Lock()
		p.n++
		if p.out != nil {
			_, _ = p.out.Write(b)
		}
		p.mu.Unlock()
	}
	return len(b), nil
}

// Ensure no byte sequence sent to a live listener, as a first packet or
// after a valid MQTT 3.1.1 or 5 CONNECT, in two chunks, brings the broker
// down or wedges it: the connection ends once the input has been read and
// the client has closed its side, and a normal client is served afterwards.
// Decoder panics (mochi-mqtt/server#501 is in the seeds) are recovered by
// the listener and closed per connection; set MQIM_FUZZ_PANIC_LOG to a
// file to collect the ones the fuzzer reaches.
func FuzzRawPacket(f *testing.F) {
	seeds := []string{
		"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00",     // CONNECT 3.1.1, empty client id
		"\x10\x0d\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x00", // CONNECT 5
		"\x82\x06\x04\xd2\x00\x00\x01p",                    // #501: SUBSCRIBE without options
		"\x82\x0f\x00\x01\x00\x00\x09users/x/#\x01",        // SUBSCRIBE 5
		"\x82\x0e\x00\x01\x00\x09users/x/#\x01",            // SUBSCRIBE 3.1.1
		"\x32\x0f\x00\x0asay/friend\x00\x01\x00x",          // PUBLISH QoS 1
		"\x30\x03\x00\x00x",                                // PUBLISH empty topic
		"\x36\x05\x00\x01a\x00\x01",                        // PUBLISH QoS 3
		"\x10\xff\xff\xff\x7f",                             // 256 MB CONNECT
		"\x30\xff\xff\xff\xff\x01",                         // malformed remaining length
		"\x62\x02\x00\x07", "\x40\x02\x00\x00", "\xc0\x00", "\xe0\x00", "\xf0\x00", "\xa2\x05\x00\x01\x00\x01a",
		"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", // two CONNECTs
		"\x10\x10\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x00",                                           // MQTT 3.1
		"\x30\x0a\x00\x00\x03\x23\x00\x00xyz",                                                      // topic alias 0
		"", "\x00", "GET / HTTP/1.1\r\n\r\n",
	}
	for _, s := range seeds {
		for mode := byte(0); mode < 3; mode++ {
			f.Add(mode, []byte(s), uint16(len(s)/2))
		}
	}
	fuzzBroker.once.Do(func() {
		pc := &panicCounter{}
		if path := os.Getenv("MQIM_FUZZ_PANIC_LOG"); path != "" {
			if fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
				pc.out = fh
			}
		}
		s := New(Options{TCPAddr: "127.0.0.1:0", ConnectTimeout: 5 * time.Second, MaxPacketSize: 64 << 10,
			Logger: zerolog.New(pc).Level(zerolog.ErrorLevel)})
		if err := s.AddHook(&testHook{}, nil); err != nil {
			f.Fatal(err)
		}
		if err := s.Start(); err != nil {
			f.Fatal(err)
		}
		fuzzBroker.s, fuzzBroker.panics = s, pc
	})
	addr := fuzzBroker.s.TCPAddr().String()
	f.Fuzz(func(t *testing.T, mode byte, data []byte, split uint16) {
		if err := rawExchange(addr, mode%3, data, int(split)); err != nil {
			t.Fatal(err)
		}
		if err := probe(addr); err != nil {
			t.Fatalf("broker no longer serves a normal client: %v", err)
		}
	})
}

// rawExchange connects (after a valid CONNECT of version 4 or 5 for mode 1
// or 2), writes data in two chunks, closes its sending side and reads until
// the server closes the connection.
func rawExchange(addr string, mode byte, data []byte, split int) error {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return err
	}
	c := conn.(*net.TCPConn)
	_ = c.SetLinger(0) // no TIME_WAIT: the fuzzer opens many connections
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	r := bufio.NewReader(c)
	if mode > 0 {
		connect := "\x10\x0f\x00\x04MQTT\x04\x02\x00\x3c\x00\x03fzz"
		if mode == 2 {
			connect = "\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03fzz"
		}
		if _, err := c.Write([]byte(connect)); err != nil {
			return err
		}
		var ack [2]byte
		if _, err := io.ReadFull(r, ack[:]); err != nil || ack[0] != 0x20 {
			return fmt.Errorf("CONNACK: %x, %v", ack, err)
		}
		if _, err := r.Discard(int(ack[1])); err != nil {
			return err
		}
	}
	if split > len(data) {
		split = len(data)
	}
	// Write errors are fine: the server may close before reading it all.
	if _, err := c.Write(data[:split]); err == nil {
		_, _ = c.Write(data[split:])
	}
	_ = c.CloseWrite()
	_, err = io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("connection still open %v after the client closed its side", wait)
	}
	return nil
}

// probe logs in with MQTT 5 and exchanges a PINGREQ.
func probe(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return err
	}
	c := conn.(*net.TCPConn)
	_ = c.SetLinger(0)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("\x10\x12\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x05probe\xc0\x00")); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	var ack [2]byte
	if _, err := io.ReadFull(r, ack[:]); err != nil || ack[0] != 0x20 {
		return fmt.Errorf("CONNACK: %x, %v", ack, err)
	}
	body := make([]byte, ack[1])
	if _, err := io.ReadFull(r, body); err != nil || body[1] != 0 {
		return fmt.Errorf("CONNACK %x: %v", body, err)
	}
	var pong [2]byte
	if _, err := io.ReadFull(r, pong[:]); err != nil || pong[0] != 0xd0 {
		return fmt.Errorf("PINGRESP: %x, %v", pong, err)
	}
	return nil
}
