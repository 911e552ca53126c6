package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/mqim/mqim/internal/mqttcheck"
)

// Outcome is the verdict on one case.
type Outcome string

// The outcomes of a case.
const (
	// Pass: every expectation held.
	Pass Outcome = "pass"
	// Fail: the broker answered, but not as the catalogue expects. A failure
	// is a place to look, not automatically a bug: some cases pin
	// Mosquitto's own choices.
	Fail Outcome = "fail"
	// Hang: the connection went silent. The broker neither replied nor
	// closed within the timeout, and a PINGREQ sent afterwards got no answer
	// within another timeout either.
	Hang Outcome = "hang"
	// Crash: the broker stopped accepting connections (or its process
	// exited) because of this case, confirmed by re-running it alone.
	Crash Outcome = "crash"
	// NotRun: the run stopped (a crash of a broker the runner cannot
	// restart, or a cancelled context) before this case.
	NotRun Outcome = "not run"
)

// Failure classes, the short Result.Class that groups similar failures.
const (
	ClassDial        = "dial"               // could not open the TCP connection
	ClassConnack     = "connack"            // the default CONNACK was missing or refused
	ClassMismatch    = "mismatch"           // a recv got different bytes
	ClassShort       = "short-reply"        // a recv got a matching prefix, then silence
	ClassClosed      = "closed"             // closed where a recv expected bytes
	ClassNoReply     = "no-reply"           // silent where a recv expected bytes, connection alive
	ClassClosedProbe = "closed-on-probe"    // silent, then closed when a PINGREQ arrived
	ClassNotClosed   = "not-closed"         // expected a disconnect, the connection stayed usable
	ClassExtraClose  = "extra-before-close" // expected a plain close, got bytes first, then the close
	ClassExtraOpen   = "extra-open"         // expected a disconnect, got bytes and the connection stayed open
	ClassPing        = "ping"               // final PINGREQ answered with something other than PINGRESP
	ClassHelper      = "helper"             // the external_publish helper connection failed
	ClassHang        = "hang"
	ClassCrash       = "crash"
)

// Result is the verdict on one case.
type Result struct {
	Case    *Case
	Outcome Outcome
	// Class groups failures (one of the Class* constants); empty on Pass.
	Class string
	// Reason is a one-line explanation with the bytes involved.
	Reason  string
	Elapsed time.Duration
	// Isolated is true when the case was re-run alone because the broker
	// went down while it ran concurrently with others; the verdict is
	// from the isolated run.
	Isolated bool
}

// caseError ends a case early with a verdict other than Pass.
type caseError struct {
	outcome Outcome
	class   string
	reason  string
}

func (e *caseError) Error() string { return e.reason }

func failf(class, format string, args ...any) *caseError {
	return &caseError{outcome: Fail, class: class, reason: fmt.Sprintf(format, args...)}
}

func hangf(format string, args ...any) *caseError {
	return &caseError{outcome: Hang, class: ClassHang, reason: fmt.Sprintf(format, args...)}
}

// RunCase executes one case on a fresh TCP connection to addr. Every read
// and write has a deadline of timeout, so a case ends within a small
// multiple of timeout whatever the broker does. It never reports Crash;
// deciding that the broker died is the Runner's job.
func RunCase(ctx context.Context, addr string, c *Case, timeout time.Duration) Result {
	start := time.Now()
	res := Result{Case: c, Outcome: Pass}
	if err := runCase(ctx, addr, c, timeout); err != nil {
		var ce *caseError
		switch {
		case ctx.Err() != nil:
			ce = &caseError{outcome: NotRun, reason: "cancelled: " + err.Error()}
		case !errors.As(err, &ce):
			ce = failf(ClassDial, "%v", err)
		}
		res.Outcome, res.Class, res.Reason = ce.outcome, ce.class, ce.reason
	}
	res.Elapsed = time.Since(start)
	return res
}

func runCase(ctx context.Context, addr string, c *Case, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return failf(ClassDial, "dial: %v", err)
	}
	// The case's outcome is what was read and written; closing is teardown.
	defer func() { _ = conn.Close() }()
	s := &session{ctx: ctx, conn: conn, timeout: timeout}
	// Closing on cancellation unblocks any read at once; deadlines bound
	// everything else.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	if c.Connect {
		s.write(ConnectPacket(c.Ver, c.ClientID()))
		if err := s.expectConnack("default CONNACK"); err != nil {
			return err
		}
	}
	for i, st := range c.Steps {
		what := fmt.Sprintf("msg %d (%s)", i, st.Kind)
		if st.Comment != "" {
			what = fmt.Sprintf("msg %d (%s %q)", i, st.Kind, st.Comment)
		}
		switch st.Kind {
		case StepSend:
			s.write(st.Data)
		case StepRecv:
			if err := s.expect(st.Data, what); err != nil {
				return err
			}
		case StepSubscribe:
			s.write(subscribePacket(c.Ver, st.Topic, st.QoS))
			if err := s.expect(subackPacket(c.Ver, st.QoS), what+" SUBACK"); err != nil {
				return err
			}
		case StepUnsubscribe:
			s.write(unsubscribePacket(c.Ver, st.Topic))
			if err := s.expect(unsubackPacket(c.Ver), what+" UNSUBACK"); err != nil {
				return err
			}
		case StepExternalPublish:
			if err := externalPublish(ctx, addr, st, timeout); err != nil {
				return err
			}
		}
	}
	if c.ExpectDisconnect {
		return s.expectClosed()
	}
	return s.expectPing()
}

// session is the case's connection with its deadlines.
type session struct {
	ctx     context.Context
	conn    net.Conn
	timeout time.Duration
	// writeErr is the first write error. Writes after the broker closed the
	// connection fail (EPIPE, reset); that is not a verdict by itself, so
	// later steps decide: a recv then sees the close, and a final
	// disconnect check passes.
	writeErr error
}

func (s *session) write(b []byte) {
	if s.writeErr != nil || len(b) == 0 {
		return
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		s.writeErr = err
		return
	}
	if _, err := s.conn.Write(b); err != nil {
		s.writeErr = err
	}
}

// readUntil reads into a buffer until stop returns true for the data so
// far, the connection ends, or the deadline passes. It returns the data and
// why reading stopped: nil (stop said so or max bytes arrived), errClosed
// (EOF, reset or any other read error: the connection is over) or
// errTimeout.
// A non-zero grace shortens the deadline to grace after the first bytes.
func (s *session) readUntil(max int, grace time.Duration, stop func([]byte) bool) ([]byte, error) {
	if max == 0 {
		return nil, nil
	}
	// A connection that refuses a deadline is closed: the read below
	// reports it.
	_ = s.conn.SetReadDeadline(time.Now().Add(s.timeout))
	buf := make([]byte, 0, max)
	tmp := make([]byte, max)
	shrunk := false
	for {
		n, err := s.conn.Read(tmp[:max-len(buf)])
		buf = append(buf, tmp[:n]...)
		if stop(buf) || len(buf) == max {
			return buf, nil
		}
		if n > 0 && grace > 0 && !shrunk {
			shrunk = true
			_ = s.conn.SetReadDeadline(time.Now().Add(grace)) // as above
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return buf, s.ctx.Err()
			}
			if isTimeout(err) {
				return buf, errTimeout
			}
			return buf, errClosed
		}
	}
}

var (
	errTimeout = errors.New("timeout")
	errClosed  = errors.New("closed")
)

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// expect reads len(want) bytes, which must equal want.
func (s *session) expect(want []byte, what string) error {
	got, err := s.readUntil(len(want), 0, func(b []byte) bool {
		return !bytes.HasPrefix(want, b) || len(b) == len(want)
	})
	switch {
	case bytes.Equal(got, want):
		return nil
	case !bytes.HasPrefix(want, got):
		return failf(ClassMismatch, "%s: want %s, got %s", what, hexBytes(want), hexBytes(got))
	case err == errClosed:
		if len(got) == 0 {
			return failf(ClassClosed, "%s: connection closed, want %s", what, hexBytes(want))
		}
		return failf(ClassShort, "%s: got %s then close, want %s", what, hexBytes(got), hexBytes(want))
	case err == errTimeout && len(got) > 0:
		return failf(ClassShort, "%s: got %s then nothing for %v, want %s", what, hexBytes(got), s.timeout, hexBytes(want))
	case err == errTimeout:
		return s.silent(fmt.Sprintf("%s: nothing for %v, want %s", what, s.timeout, hexBytes(want)), ClassNoReply)
	}
	return err
}

// silent decides what a silent connection means by sending a PINGREQ: a
// broker that answers is alive and chose not to reply (aliveClass); one
// that closes was waiting for more input; one that stays silent is hung.
func (s *session) silent(reason, aliveClass string) error {
	if s.writeErr == nil {
		s.write(pingreq)
	}
	got, err := s.readUntil(64, 0, func(b []byte) bool { return bytes.HasSuffix(b, pingresp) })
	switch {
	case len(got) > 0 && bytes.HasSuffix(got, pingresp):
		return failf(aliveClass, "%s; connection alive (PINGREQ answered: %s)", reason, hexBytes(got))
	case err == errClosed && len(got) == 0:
		return failf(ClassClosedProbe, "%s; closed only when a PINGREQ followed", reason)
	case err == errClosed:
		return failf(ClassClosedProbe, "%s; sent %s and closed when a PINGREQ followed", reason, hexBytes(got))
	case len(got) > 0:
		return failf(aliveClass, "%s; late bytes after a PINGREQ: %s", reason, hexBytes(got))
	case err == errTimeout:
		return hangf("%s; no answer to a PINGREQ for another %v", reason, s.timeout)
	}
	return err
}

// expectConnack reads one packet and checks only that it is a CONNACK with
// return code 0. Its properties (MQTT 5) and flags are the broker's own
// business: this is the "fair runner" rule of the catalogue's README.
func (s *session) expectConnack(what string) error {
	got, err := s.readUntil(4096, 0, func(b []byte) bool { return packetComplete(b) })
	if len(got) > 0 && got[0] != typeConnack<<4 {
		return failf(ClassConnack, "%s: want CONNACK 20 .. 00, got %s", what, hexBytes(got))
	}
	if packetComplete(got) {
		_, n := mqttcheck.Varint(got[1:])
		body := got[1+n:]
		if len(body) >= 2 && body[1] == 0 {
			return nil
		}
		return failf(ClassConnack, "%s: refused: %s", what, hexBytes(got))
	}
	switch err {
	case errClosed:
		return failf(ClassConnack, "%s: connection closed after %s", what, hexBytes(got))
	case errTimeout:
		if len(got) > 0 {
			return failf(ClassConnack, "%s: incomplete %s", what, hexBytes(got))
		}
		return s.silent(fmt.Sprintf("%s: nothing for %v", what, s.timeout), ClassConnack)
	}
	return err
}

// packetComplete reports whether b holds at least one whole packet.
func packetComplete(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	rl, n := mqttcheck.Varint(b[1:])
	return n > 0 && len(b)-1-n >= rl
}

// expectClosed is the end of a case with expect_disconnect: the broker must
// have closed the connection without sending anything more.
func (s *session) expectClosed() error {
	got, err := s.readUntil(256, closeGrace, func([]byte) bool { return false })
	switch {
	case len(got) == 0 && err == errClosed:
		return nil
	case len(got) == 0 && err == errTimeout:
		return s.silent(fmt.Sprintf("want disconnect, connection open and silent for %v", s.timeout), ClassNotClosed)
	case err == errClosed:
		return failf(ClassExtraClose, "want disconnect, got %s then close", hexBytes(got))
	case err == errTimeout:
		return failf(ClassExtraOpen, "want disconnect, got %s and the connection stayed open", hexBytes(got))
	}
	return err
}

// closeGrace is how long the final check waits for a close after
// unexpected bytes: the verdict is already Fail, the wait only tells
// "sent a packet, then closed" from "sent a packet and stayed open".
const closeGrace = 250 * time.Millisecond

// expectPing is the end of a case without expect_disconnect: PINGREQ must
// get PINGRESP. A write error is not final here: the close shows on read.
func (s *session) expectPing() error {
	s.write(pingreq)
	got, err := s.readUntil(len(pingresp), 0, func(b []byte) bool { return !bytes.HasPrefix(pingresp, b) })
	switch {
	case bytes.Equal(got, pingresp):
		return nil
	case !bytes.HasPrefix(pingresp, got):
		return failf(ClassPing, "final PINGREQ: want D0 00, got %s", hexBytes(got))
	case err == errClosed:
		return failf(ClassClosed, "final PINGREQ: connection closed, want D0 00")
	case err == errTimeout:
		return hangf("final PINGREQ: no PINGRESP for %v", s.timeout)
	}
	return err
}

// externalPublish publishes st.Payload to st.Topic from a fresh MQTT 3.1.1
// connection with client id "helper", completing the QoS 1/2 handshake,
// then closes that connection.
func externalPublish(ctx context.Context, addr string, st Step, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return failf(ClassHelper, "helper: dial: %v", err)
	}
	defer func() { _ = conn.Close() }() // teardown, as in runCase
	h := &session{ctx: ctx, conn: conn, timeout: timeout}
	wrap := func(err error) error {
		var ce *caseError
		if errors.As(err, &ce) {
			if ce.outcome == Fail {
				ce.class = ClassHelper
			}
			ce.reason = "helper: " + ce.reason
		}
		return err
	}
	h.write(ConnectPacket(4, "helper"))
	if err := h.expectConnack("CONNACK"); err != nil {
		return wrap(err)
	}
	h.write(publishPacket(st.Topic, st.QoS, st.Retain, st.Payload))
	switch st.QoS {
	case 1:
		if err := h.expect(ackPacket(typePuback<<4), "PUBACK"); err != nil {
			return wrap(err)
		}
	case 2:
		if err := h.expect(ackPacket(typePubrec<<4), "PUBREC"); err != nil {
			return wrap(err)
		}
		h.write(ackPacket(typePubrel<<4 | 0x02))
		if err := h.expect(ackPacket(typePubcomp<<4), "PUBCOMP"); err != nil {
			return wrap(err)
		}
	}
	if h.writeErr != nil {
		return failf(ClassHelper, "helper: write: %v", h.writeErr)
	}
	return nil
}

// hexBytes formats b as spaced upper-case hex, shortened past 48 bytes so
// reasons stay one line.
func hexBytes(b []byte) string {
	if len(b) == 0 {
		return "(nothing)"
	}
	const max = 48
	var sb strings.Builder
	for i, c := range b {
		if i == max {
			fmt.Fprintf(&sb, " …(+%d)", len(b)-max)
			break
		}
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}
