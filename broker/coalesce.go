package broker

import (
	"net"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/internal/mqttcheck"
)

// Acknowledgement coalescing.
//
// mochi writes the PUBACK of every inbound QoS 1 publish (PUBREC, PUBCOMP
// for QoS 2) on the connection's read goroutine, one write system call
// each, and a write on loopback or a LAN costs as much CPU as the whole say
// path. A client that pipelines publishes gets several per socket read, so
// the framer defers each acknowledgement while the read goroutine is
// working through what it has read, and writes the batch in one system call:
//
//   - before the read goroutine blocks on the connection for more input
//     (so an ack never waits for the client's next packet);
//   - ahead of any other packet written to the connection (a delivery from
//     mochi's write loop, an event, a CONNACK): the bytes on the wire keep
//     their order, and a chatting client's acks ride with its deliveries;
//   - when ackFlushDelay has passed since the first deferred ack (a say
//     that waits long for its commit does not hold the acks before it);
//   - when ackBatchMax bytes are pending, and on Close.
//
// A deferred ack is an ack all the same: the say it acknowledges is stored
// before mochi writes it, and only its transmission is batched.
const (
	ackFlushDelay = 2 * time.Millisecond
	ackBatchMax   = 1024
	// coalesceCopyMax: a packet up to this size is appended to the pending
	// acks and written with them in one Write; a larger one goes out with
	// them in one writev, uncopied.
	coalesceCopyMax = 4096
)

// Write implements net.Conn.
func (f *framer) Write(p []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.connecting {
		return f.holdUntilConnack(p)
	}
	if !f.waiting && !f.closed && isAck(p) && len(f.acks)+len(p) <= ackBatchMax {
		if f.acks == nil {
			f.acks = make([]byte, 0, 256)
		}
		if len(f.acks) == 0 {
			f.armAckTimer()
		}
		f.acks = append(f.acks, p...)
		return len(p), nil
	}
	if f.v311 {
		if i := disconnectAt(p); i >= 0 {
			return f.dropDisconnectLocked(p, i)
		}
	}
	return f.writeLocked(p)
}

// holdUntilConnack keeps what mochi writes before the CONNACK and writes it
// right after. mochi lists a connection among its clients before it sends
// the CONNACK, and the connection takes over the subscriptions of the
// session it resumes then: an event published in between reaches the
// client first, which a client must treat as a protocol error (paho:
// "received unexpected packet"). The caller holds wmu.
func (f *framer) holdUntilConnack(p []byte) (int, error) {
	if len(p) == 0 || p[0]>>4 != packets.Connack {
		f.early = append(f.early, p...)
		return len(p), nil
	}
	f.connecting = false
	early := f.early
	f.early = nil
	if len(early) == 0 {
		return f.writeLocked(p)
	}
	if _, err := f.writeLocked(append(append(make([]byte, 0, len(p)+len(early)), p...), early...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// A server DISCONNECT exists in MQTT 5 only: MQTT 3.1.1 allows DISCONNECT
// from the client alone (§3.14), and its clients treat one from the server
// as a protocol error. mochi writes one to a 3.1.1 client anyway when
// another connection takes its session over (0x8E, in
// inheritClientSession); the framer writes the packets before it, drops it
// and closes the connection, which is all a 3.1.1 client may see.
// (Shutdown and kicks close 3.1.1 connections themselves.)

// disconnectAt returns the offset in p of the first DISCONNECT among the
// whole packets mochi wrote (each of its writes holds whole packets), or
// -1.
func disconnectAt(p []byte) int {
	for off := 0; off < len(p); {
		if p[off]>>4 == packets.Disconnect {
			return off
		}
		rem, n := mqttcheck.Varint(p[off+1:])
		if n <= 0 {
			return -1
		}
		off += 1 + n + rem
	}
	return -1
}

// dropDisconnectLocked writes p up to the DISCONNECT at i and closes the
// connection; p counts as written. The caller holds wmu.
func (f *framer) dropDisconnectLocked(p []byte, i int) (int, error) {
	if i > 0 {
		if _, err := f.writeLocked(p[:i]); err != nil {
			return 0, err
		}
	}
	f.flushAcksLocked()
	f.disarmAckTimer()
	f.closed = true
	_ = f.Conn.Close()
	return len(p), nil
}

// isAck reports whether p is exactly one short PUBACK, PUBREC or PUBCOMP.
func isAck(p []byte) bool {
	if len(p) < 2 || p[1] >= 128 || len(p) != 2+int(p[1]) {
		return false
	}
	switch p[0] {
	case packets.Puback << 4, packets.Pubrec << 4, packets.Pubcomp << 4:
		return true
	}
	return false
}

// writeLocked writes the pending acks and then p. The caller holds wmu.
func (f *framer) writeLocked(p []byte) (int, error) {
	if len(f.acks) == 0 {
		return f.Conn.Write(p)
	}
	f.disarmAckTimer()
	var err error
	if len(p) <= coalesceCopyMax {
		f.acks = append(f.acks, p...)
		_, err = f.Conn.Write(f.acks)
	} else {
		bufs := net.Buffers{f.acks, p}
		_, err = bufs.WriteTo(f.Conn)
	}
	f.acks = f.acks[:0]
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushAcksLocked writes the pending acks, if any. The caller holds wmu.
// Errors are left to the connection's next read or write.
func (f *framer) flushAcksLocked() {
	if len(f.acks) == 0 {
		return
	}
	f.disarmAckTimer()
	_, _ = f.Conn.Write(f.acks)
	f.acks = f.acks[:0]
}

func (f *framer) armAckTimer() {
	if f.ackTimer == nil {
		f.ackTimer = time.AfterFunc(ackFlushDelay, f.flushAcks)
	} else {
		f.ackTimer.Reset(ackFlushDelay)
	}
	f.armed = true
}

func (f *framer) disarmAckTimer() {
	if f.armed {
		f.ackTimer.Stop()
		f.armed = false
	}
}

// flushAcks is the ack timer's function.
func (f *framer) flushAcks() {
	f.wmu.Lock()
	f.armed = false
	f.flushAcksLocked()
	f.wmu.Unlock()
}

// readConn reads from the connection for the read goroutine. Acks deferred
// while it worked are written first, and none are deferred while it waits:
// a write that comes then is from another goroutine, and nothing would
// flush it. A connection that goes idle drops its ack buffer.
func (f *framer) readConn(p []byte) (int, error) {
	f.wmu.Lock()
	f.waiting = true
	f.flushAcksLocked()
	if cap(f.acks) > 0 {
		f.acks = nil
	}
	f.wmu.Unlock()
	n, err := f.Conn.Read(p)
	f.wmu.Lock()
	f.waiting = false
	f.wmu.Unlock()
	return n, err
}

// Close implements net.Conn: pending acks are written first when no write
// holds the connection (a write blocked on a client that does not read must
// not hold the Close that releases it).
func (f *framer) Close() error {
	if f.wmu.TryLock() {
		f.closed = true
		if len(f.acks) > 0 {
			// Bounded like send: the deadline alone does not hold on
			// WebSocket.
			_ = f.Conn.SetWriteDeadline(time.Now().Add(rejectWriteTimeout))
			timer := time.AfterFunc(rejectWriteTimeout, func() { _ = f.Conn.Close() })
			f.flushAcksLocked()
			timer.Stop()
		}
		f.disarmAckTimer()
		f.wmu.Unlock()
	}
	return f.Conn.Close()
}
