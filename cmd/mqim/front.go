package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// front shares the REST address between Fiber (fasthttp) and net/http.
// socket.io needs net/http (a WebSocket upgrade through Fiber's adaptor
// fails), REST is Fiber's. The front reads the request line of each new
// connection: one whose first request is for /socket.io/ (every WebSocket
// upgrade, every socket.io-only connection) goes to net/http, the rest to
// Fiber. Later requests on a kept-alive connection stay where the
// connection went: net/http hands REST paths to Fiber's app through
// rest.Server.HTTPHandler, and Fiber hands /socket.io/ to the socket.io
// handler through its adaptor (polling only: browsers open a new
// connection for a WebSocket).
type front struct {
	ln    net.Listener
	fiber *chanListener
	std   *chanListener
	http  *http.Server
	log   zerolog.Logger
	wg    sync.WaitGroup
}

// sniffTimeout bounds the wait for a new connection's request line.
const sniffTimeout = 10 * time.Second

func newFront(ln net.Listener, std http.Handler, log zerolog.Logger) *front {
	f := &front{
		ln:    ln,
		fiber: newChanListener(ln.Addr()),
		std:   newChanListener(ln.Addr()),
		log:   log,
	}
	f.http = &http.Server{Handler: std, ReadHeaderTimeout: sniffTimeout}
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		if err := f.http.Serve(f.std); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error().Err(err).Msg("socket.io http server stopped")
		}
	}()
	go func() {
		defer f.wg.Done()
		f.accept()
	}()
	return f
}

func (f *front) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			f.fiber.stop()
			f.std.stop()
			return
		}
		go f.route(c)
	}
}

// route sends c to net/http when its first request is for /socket.io.
func (f *front) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(c, 4096)
	toStd := false
	for {
		_, err := br.Peek(br.Buffered() + 1) // waits for at least one more byte
		b, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			toStd = socketIORequest(b[:i])
			break
		}
		if err != nil || len(b) >= 4096 {
			break // let Fiber answer (or drop) what it is
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if toStd {
		f.std.deliver(pc)
	} else {
		f.fiber.deliver(pc)
	}
}

// socketIORequest reports whether a request line targets /socket.io.
func socketIORequest(line []byte) bool {
	_, rest, ok := bytes.Cut(line, []byte(" "))
	return ok && bytes.HasPrefix(rest, []byte("/socket.io"))
}

// Close stops accepting and closes net/http's connections (socket.io
// sessions); Fiber's shutdown is rest.Server.Shutdown.
func (f *front) Close(ctx context.Context) error {
	err := f.ln.Close()
	f.fiber.stop()
	f.std.stop()
	_ = f.http.Close()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	_ = ctx
	return err
}

// peekedConn reads the bytes the front peeked before the connection's own.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by the front.
type chanListener struct {
	addr  net.Addr
	ch    chan net.Conn
	done  chan struct{}
	close sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// Accept implements net.Listener.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *chanListener) Close() error {
	l.stop()
	return nil
}

func (l *chanListener) stop() { l.close.Do(func() { close(l.done) }) }

// Addr implements net.Listener.
func (l *chanListener) Addr() net.Addr { return l.addr }
