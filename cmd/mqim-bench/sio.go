package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqim/mqim/chat"
)

// A minimal socket.io client, as socket.io-client 1.4.8 (MaxIM's SDKs)
// speaks it: Engine.IO v3 over the websocket transport only, the MaxIM
// auth JSON in the handshake query, namespace /chat, one JSON argument per
// event. Text frames only: "0{...}" open, "2"/"3" ping/pong (the client
// pings), "40/chat" namespace connect, "41/chat" disconnect,
// `42/chat,["event",{...}]` events.

// sioConn is the socket.io connection of one client.
type sioConn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex    // one writer at a time
	sem  chan struct{} // says in flight; an ack event frees a slot
	dead chan struct{} // closed when the reader stops
	err  error         // why the reader stopped, read after dead
	// noAcks: the sender has finished; later acks are not counted.
	noAcks bool // guarded by client.mu
}

func (s *sioConn) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return s.ws.WriteMessage(websocket.TextMessage, b)
}

func (s *sioConn) close() {
	s.wmu.Lock()
	_ = s.ws.WriteMessage(websocket.TextMessage, []byte("41/chat")) // closing anyway
	s.wmu.Unlock()
	_ = s.ws.Close()
	<-s.dead
}

var (
	chatPrefix = []byte(`42/chat,["`)
	ackKey     = []byte(`"ack":`)
)

// connectSIO logs cl in over socket.io and starts its reader; inFlight
// sizes the window of unacknowledged says.
func (r *Runner) connectSIO(cl *client, inFlight int) error {
	b := r.nodeOf(cl) // on a cluster, spread like the MQTT clients
	auth, _ := json.Marshal(map[string]string{
		"app": b.AppID, "sign": chat.Sign(b.Key, time.Now().UnixMilli()), "client": cl.user,
	})
	u := "ws" + strings.TrimPrefix(b.HTTP, "http") + "/socket.io/?EIO=3&transport=websocket&auth=" + url.QueryEscape(string(auth))
	d := websocket.Dialer{HandshakeTimeout: 60 * time.Second}
	ws, _, err := d.Dial(u, nil)
	if err != nil {
		return fmt.Errorf("socket.io connect %s: %w", cl.user, err)
	}
	s := &sioConn{ws: ws, sem: make(chan struct{}, max(inFlight, 1)), dead: make(chan struct{})}
	// The open packet, then the namespace.
	_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, open, err := ws.ReadMessage()
	if err != nil || len(open) == 0 || open[0] != '0' {
		_ = ws.Close()
		return fmt.Errorf("socket.io open %s: %q %v", cl.user, open, err)
	}
	var hs struct {
		PingInterval int `json:"pingInterval"`
	}
	_ = json.Unmarshal(open[1:], &hs) // no interval: the default below
	interval := time.Duration(hs.PingInterval) * time.Millisecond
	if interval <= 0 {
		interval = 25 * time.Second
	}
	if err := s.write([]byte("40/chat")); err != nil {
		_ = ws.Close()
		return fmt.Errorf("socket.io namespace %s: %w", cl.user, err)
	}
	for {
		_, f, err := ws.ReadMessage()
		if err != nil {
			_ = ws.Close()
			return fmt.Errorf("socket.io login %s: %w", cl.user, err)
		}
		if bytes.HasPrefix(f, []byte(`42/chat,["login",`)) {
			if !bytes.Contains(f, []byte(`"success":true`)) {
				_ = ws.Close()
				return fmt.Errorf("socket.io login %s: %s", cl.user, f)
			}
			break
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	cl.sio = s
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.dead:
				return
			case <-t.C:
				if s.write([]byte("2")) != nil {
					return
				}
			}
		}
	}()
	go cl.readSIO()
	return nil
}

// readSIO handles the frames of cl's socket.io connection until it closes.
func (cl *client) readSIO() {
	s := cl.sio
	defer close(s.dead)
	for {
		_, f, err := s.ws.ReadMessage()
		if err != nil {
			s.err = err
			return
		}
		switch {
		case len(f) == 1 && f[0] == '2':
			_ = s.write([]byte("3")) // a failed write ends the reader next
		case bytes.HasPrefix(f, []byte("41/chat")):
			s.err = errors.New("namespace disconnected by the server")
			return
		case bytes.HasPrefix(f, chatPrefix):
			ev := f[len(chatPrefix):]
			switch {
			case bytes.HasPrefix(ev, []byte(`message"`)):
				cl.deliver(time.Since(epoch), ev)
			case bytes.HasPrefix(ev, []byte(`ack"`)):
				cl.onAck(ev)
			default:
				cl.mu.Lock()
				cl.other++
				cl.mu.Unlock()
			}
		}
	}
}

// onAck records the acknowledgement of the say whose ack field was its
// sequence number.
func (cl *client) onAck(ev []byte) {
	i := bytes.Index(ev, ackKey)
	if i < 0 {
		return
	}
	p := ev[i+len(ackKey):]
	j := 0
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		j++
	}
	seq, err := strconv.ParseUint(string(p[:j]), 10, 64)
	if err != nil {
		return
	}
	cl.mu.Lock()
	counted := !cl.sio.noAcks
	if counted {
		cl.acked.set(seq)
	}
	cl.mu.Unlock()
	if counted {
		select {
		case <-cl.sio.sem:
		default:
		}
	}
}

// sendSIO sends friend says from cl to peer until stop, with at most
// cap(sem) unacknowledged, at rate messages/s (0: as fast as acks allow).
// A say never acknowledged within 30 s counts as failed.
func sendSIO(cl *client, peer string, rate float64, stop time.Time) {
	s := cl.sio
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	acquire := func() bool {
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case s.sem <- struct{}{}:
			return true
		case <-s.dead:
		case <-t.C:
		}
		return false
	}
	prefix := []byte(`42/chat,["say",{"to":{"id":` + strconv.Quote(peer) + `,"type":0},"ack":`)
	buf := make([]byte, 0, 256)
	begin := time.Now()
	for seq := uint64(0); ; seq++ {
		if interval > 0 {
			if d := time.Until(begin.Add(time.Duration(seq) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		if !time.Now().Before(stop) || !acquire() {
			break
		}
		buf = append(buf[:0], prefix...)
		buf = strconv.AppendUint(buf, seq, 10)
		buf = append(buf, ',')
		// appendSay writes `{"content":...}`: its '{' is dropped.
		n := len(buf)
		buf = appendSay(buf, cl.idx, seq, time.Since(epoch))
		buf = append(buf[:n], buf[n+1:]...)
		buf = append(buf, ']')
		if s.write(buf) != nil {
			break
		}
		cl.sent++
	}
	// Wait for the window to drain: every slot free again.
	for range cap(s.sem) {
		if !acquire() {
			break
		}
	}
	cl.mu.Lock()
	s.noAcks = true
	cl.fail = cl.sent - int64(cl.acked.count())
	cl.mu.Unlock()
}
