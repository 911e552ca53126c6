package rest_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
)

// Ensure the JSON body limit is exact: BodyLimit bytes pass, one more is
// 413/5010, with a declared length and chunked.
func TestLimits_BodyBoundary(t *testing.T) {
	const limit = 4096
	ts := newTestServer(t, func(o *rest.Options) { o.BodyLimit = limit; o.UploadLimit = 1 << 20 })
	body := func(n int) string { return `{"a":"` + strings.Repeat("x", n-8) + `"}` }
	if len(body(limit)) != limit {
		t.Fatal("bad test body")
	}
	ts.call("PUT", "/ctx/u1/attributes", body(limit)).expect(201, "")
	ts.call("PUT", "/ctx/u1/attributes", body(limit+1)).expectError(413, chat.CodeTooLong)
	ts.call("PUT", "/ctx/u1/attributes", chunked(body(limit))).expect(201, "")
	ts.call("PUT", "/ctx/u1/attributes", chunked(body(limit+1))).expectError(413, chat.CodeTooLong)
}

// Ensure a request declaring a 100 MiB body is answered 413 after at most
// its first 64 KiB were sent (fasthttp reads a little ahead of the
// handler; nothing near the declared size is buffered), and headers past
// the read buffer are refused with 431.
func TestLimits_DeclaredBodyAndHeaders(t *testing.T) {
	ts := newTestServer(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := signed()
	_, err = fmt.Fprintf(c, "PUT /ctx/u1/attributes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-ML-AppId: %s\r\nX-ML-Request-Sign: %s\r\n\r\n",
		100<<20, h["X-ML-AppId"], h["X-ML-Request-Sign"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer after 64 KiB of a 100 MiB body: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("status %d, want 413", res.StatusCode)
	}

	big := signed()
	big["X-Padding"] = strings.Repeat("p", 16<<10)
	if r := ts.callWith("GET", "/ctx", nil, big); r.Status != 431 {
		t.Fatalf("16 KiB of headers: status %d, want 431", r.Status)
	}
	ts.call("GET", "/healthz", nil).ok(200)
}
