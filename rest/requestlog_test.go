package rest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/rest"
)

// logBuffer collects the server's log lines; the server writes from its
// goroutines while the test reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// requestBytes returns the "bytes" field of the last "request" line logged
// for method and path; the line is written before the response is sent,
// so it is there once the client has the response.
func (b *logBuffer) requestBytes(t *testing.T, method, path string) int {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	found, n := false, 0
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var l struct {
			Message, Method, Path string
			Bytes                 *int
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if l.Message == "request" && l.Method == method && l.Path == path {
			if l.Bytes == nil {
				t.Fatalf("request line without bytes: %s", sc.Text())
			}
			found, n = true, *l.Bytes
		}
	}
	if !found {
		t.Fatalf("no request line for %s %s in\n%s", method, path, b.buf.String())
	}
	return n
}

// Ensure the request log's "bytes" is the size of the body sent: JSON
// answers (which have no Content-Length header while the handler chain
// runs) and error bodies their length, empty answers 0.
func TestRequestLog_BytesJSON(t *testing.T) {
	var log logBuffer
	ts := newTestServer(t, func(o *rest.Options) { o.Log = zerolog.New(&log) })
	ts.call("POST", "/ctx/alice/attributes", `{"name":"Alice","city":"shanghai"}`).expect(201, "")
	if n := log.requestBytes(t, "POST", "/ctx/alice/attributes"); n != 0 {
		t.Errorf("empty 201: bytes = %d, want 0", n)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/ctx/alice", 200},
		{"/ctx/alice/attributes", 200},
		{"/groups/0123456789abcdef0123456789abcdef", 404},
	} {
		r := ts.call("GET", tc.path, nil).ok(tc.status)
		if len(r.Body) == 0 {
			t.Fatalf("GET %s: empty body", tc.path)
		}
		if n := log.requestBytes(t, "GET", tc.path); n != len(r.Body) {
			t.Errorf("GET %s: bytes = %d, want the body's %d", tc.path, n, len(r.Body))
		}
	}
}

// Ensure a streamed download logs the bytes it sends: the file, or the
// range asked for; a HEAD sends none.
func TestRequestLog_BytesDownload(t *testing.T) {
	var log logBuffer
	a := newAttServer(t, modeStream, 0, &log)
	data := bytes.Repeat([]byte("0123456789"), 100)
	u := a.mustUpload(t, "data.bin", data)[0]
	path := u[len(a.base):]
	for _, tc := range []struct {
		method string
		hdr    map[string]string
		want   int
	}{
		{"GET", nil, len(data)},
		{"GET", map[string]string{"Range": "bytes=10-19"}, 10},
		{"HEAD", nil, 0},
	} {
		r := a.do(t, tc.method, u, tc.hdr, nil, 0)
		if len(r.Body) != tc.want {
			t.Fatalf("%s %v: %d bytes received, want %d", tc.method, tc.hdr, len(r.Body), tc.want)
		}
		if n := log.requestBytes(t, tc.method, path); n != tc.want {
			t.Errorf("%s %v: bytes = %d, want %d", tc.method, tc.hdr, n, tc.want)
		}
	}
}
