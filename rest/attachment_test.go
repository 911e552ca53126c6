package rest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/attachment"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
	"github.com/mqim/mqim/storage"
)

// Body-reading modes of the Fiber app under test.
const (
	// modeStream is StreamRequestBody with DisablePreParseMultipartForm,
	// as rest.New sets them: the handler reads the upload from the
	// connection.
	modeStream = "stream"
	// modeBuffered is Fiber's default, which the handler still supports:
	// fasthttp reads the whole body (pre-parsing a multipart form with a
	// Content-Length) before any handler runs, up to UploadLimit.
	modeBuffered = "buffered"
)

// Credentials of the attachment tests' app (kept apart from the other
// test files' helpers so this file stands alone).
const (
	attApp = "569d84a0169e7d00012c7afe"
	attKey = "MjVvSjJUMTZveUR2d1hoNlVoQ0R1QQ"
)

// attServer is a real REST server on 127.0.0.1:0 with an attachment store
// in a temp dir.
type attServer struct {
	base   string
	dir    string // store directory
	store  *attachment.Store
	srv    *rest.Server
	client *http.Client
	clock  *attClock
}

type attClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *attClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *attClock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *attClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// newAttServer starts a server in mode with a store of maxSize bytes (0:
// the 20 MiB default). log may be nil (discard).
func newAttServer(tb testing.TB, mode string, maxSize int64, log io.Writer) *attServer {
	tb.Helper()
	dir := tb.TempDir()
	db, err := storage.Open(storage.Options{Dir: filepath.Join(dir, "db"), Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("storage.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	clk := &attClock{t: time.Now()}
	st, err := attachment.Open(attachment.Options{Dir: filepath.Join(dir, "attachments"), MaxSize: maxSize, Now: clk.Now})
	if err != nil {
		tb.Fatalf("attachment.Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	if log == nil {
		log = io.Discard
	}
	srv := rest.New(rest.Options{
		Service:     chat.NewService(db, chat.Options{AppID: attApp}),
		Auth:        &chat.Authenticator{AppID: attApp, Keys: []chat.Key{{Value: attKey, Role: chat.RoleClient}}, Tolerance: 15 * time.Minute},
		Attachments: st,
		// Buffered mode needs room for the largest upload plus the form.
		UploadLimit: int(st.MaxSize()) + 1<<20,
		ReadTimeout: 30 * time.Second,
		Log:         zerolog.New(log),
	})
	// Set both ways, whatever rest.New chose, so each mode is tested.
	fs := srv.App().Server()
	fs.StreamRequestBody = mode == modeStream
	fs.DisablePreParseMultipartForm = mode == modeStream
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	a := &attServer{
		base: "http://" + srv.Addr().String(), dir: filepath.Join(dir, "attachments"), store: st, srv: srv,
		client: &http.Client{Transport: &http.Transport{}, Timeout: 60 * time.Second}, clock: clk,
	}
	tb.Cleanup(func() {
		a.client.CloseIdleConnections()
		if err := srv.App().ShutdownWithTimeout(5 * time.Second); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return a
}

// formPart is one part of a multipart form; filename "" makes a plain field.
type formPart struct {
	field, filename string
	data            []byte
}

// multipartForm encodes parts and returns the Content-Type and body.
func multipartForm(tb testing.TB, parts ...formPart) (string, []byte) {
	tb.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		var pw io.Writer
		var err error
		if p.filename == "" {
			pw, err = w.CreateFormField(p.field)
		} else {
			pw, err = w.CreateFormFile(p.field, p.filename)
		}
		if err != nil {
			tb.Fatal(err)
		}
		pw.Write(p.data)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

type attResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorCode returns the errorCode of a MaxIM error body, or 0.
func (r *attResponse) errorCode() int {
	var e struct {
		ErrorCode int `json:"errorCode"`
	}
	_ = json.Unmarshal(r.Body, &e) // not a MaxIM error body: 0
	return e.ErrorCode
}

// do sends a request; size < 0 sends the body chunked (no Content-Length).
func (a *attServer) do(tb testing.TB, method, url string, hdr map[string]string, body io.Reader, size int64) *attResponse {
	tb.Helper()
	r, err := a.try(method, url, hdr, body, size)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// try is do that returns the transport error.
func (a *attServer) try(method, url string, hdr map[string]string, body io.Reader, size int64) (*attResponse, error) {
	if !strings.HasPrefix(url, "http") {
		url = a.base + url
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		if size < 0 {
			req.ContentLength = -1
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &attResponse{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

func authHeaders(contentType string) map[string]string {
	return map[string]string{"X-ML-AppId": attApp, "X-ML-Request-Sign": chat.Sign(attKey, time.Now().UnixMilli()), "Content-Type": contentType}
}

// upload posts parts as a signed multipart form with a Content-Length.
func (a *attServer) upload(tb testing.TB, parts ...formPart) *attResponse {
	tb.Helper()
	ct, body := multipartForm(tb, parts...)
	return a.do(tb, "POST", "/attachment", authHeaders(ct), bytes.NewReader(body), int64(len(body)))
}

// mustUpload uploads one file and returns the URLs of a 201.
func (a *attServer) mustUpload(tb testing.TB, filename string, data []byte) []string {
	tb.Helper()
	r := a.upload(tb, formPart{"attachment", filename, data})
	if r.Status != http.StatusCreated {
		tb.Fatalf("upload %q: status %d, body %s", filename, r.Status, r.Body)
	}
	var urls []string
	if err := json.Unmarshal(r.Body, &urls); err != nil {
		tb.Fatalf("upload %q: body %s: %v", filename, r.Body, err)
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, a.base+"/attachments/") || !attachment.ValidName(strings.TrimPrefix(u, a.base+"/attachments/")) {
			tb.Fatalf("upload %q: URL %q is not %s/attachments/<8 hex>/<8 hex>.<ext>", filename, u, a.base)
		}
	}
	return urls
}

func testPNG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.NRGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// forModes runs f against a server in each body-reading mode.
func forModes(t *testing.T, f func(t *testing.T, a *attServer)) {
	for _, mode := range []string{modeStream, modeBuffered} {
		t.Run(mode, func(t *testing.T) { f(t, newAttServer(t, mode, 0, nil)) })
	}
}

// Ensure a PNG upload answers the original's and the thumbnail's URLs, and
// both download with the right bytes, types and headers.
func TestAttachment_UploadImage(t *testing.T) {
	forModes(t, func(t *testing.T, a *attServer) {
		src := testPNG(t, 400, 200)
		urls := a.mustUpload(t, "photo.png", src)
		if len(urls) != 2 || !strings.HasSuffix(urls[0], ".png") || urls[1] != strings.TrimSuffix(urls[0], ".png")+".sm.png" {
			t.Fatalf("URLs = %q, want [<a>/<b>.png, <a>/<b>.sm.png]", urls)
		}
		orig := a.do(t, "GET", urls[0], nil, nil, 0)
		if orig.Status != 200 || !bytes.Equal(orig.Body, src) || orig.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET original: status %d, %d bytes, type %q; want 200, the %d uploaded bytes, image/png", orig.Status, len(orig.Body), orig.Header.Get("Content-Type"), len(src))
		}
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Content-Disposition":    `inline; filename="` + urls[0][len(urls[0])-12:] + `"`,
			"Accept-Ranges":          "bytes",
		} {
			if got := orig.Header.Get(k); got != want {
				t.Errorf("GET original: %s = %q, want %q", k, got, want)
			}
		}
		if cc := orig.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "public, max-age=") {
			t.Errorf("Cache-Control = %q", cc)
		}
		if orig.Header.Get("ETag") == "" || orig.Header.Get("Last-Modified") == "" {
			t.Errorf("no validators: ETag %q, Last-Modified %q", orig.Header.Get("ETag"), orig.Header.Get("Last-Modified"))
		}
		thumb := a.do(t, "GET", urls[1], nil, nil, 0)
		if thumb.Status != 200 || thumb.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET thumbnail: status %d, type %q", thumb.Status, thumb.Header.Get("Content-Type"))
		}
		m, err := png.Decode(bytes.NewReader(thumb.Body))
		if err != nil {
			t.Fatalf("thumbnail does not decode: %v", err)
		}
		if b := m.Bounds(); b.Dx() != 128 || b.Dy() != 64 {
			t.Errorf("thumbnail is %dx%d, want 128x64 (≤128×128, aspect 2:1 kept)", b.Dx(), b.Dy())
		}
	})
}

// Ensure uploads without an image answer one URL; the file part is found
// whatever its field name, after other fields; names never shape the path.
func TestAttachment_UploadFile(t *testing.T) {
	forModes(t, func(t *testing.T, a *attServer) {
		text := []byte("hello, world\n")
		urls := a.mustUpload(t, "notes.txt", text)
		if len(urls) != 1 || !strings.HasSuffix(urls[0], ".txt") {
			t.Fatalf("URLs = %q, want one .txt", urls)
		}
		r := a.do(t, "GET", urls[0], nil, nil, 0)
		if r.Status != 200 || !bytes.Equal(r.Body, text) || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("GET: status %d, body %q, type %q", r.Status, r.Body, r.Header.Get("Content-Type"))
		}

		// SDK-JS0 field name, after a plain field.
		r = a.upload(t, formPart{"name", "", []byte("x")}, formPart{"userfile", "a.txt", []byte("js0")})
		if r.Status != 201 {
			t.Fatalf("userfile upload: status %d, body %s", r.Status, r.Body)
		}

		for _, name := range []string{"../../x.txt", "/etc/passwd", `..\..\x.txt`, "a/../../../b.txt", "%2e%2e%2fx.txt"} {
			urls := a.mustUpload(t, name, []byte("traversal"))
			if got := a.do(t, "GET", urls[0], nil, nil, 0); string(got.Body) != "traversal" {
				t.Errorf("upload %q: GET %s = %q", name, urls[0], got.Body)
			}
		}
		// Only generated names exist in the store, and nothing was written
		// beside it.
		err := filepath.WalkDir(filepath.Dir(a.dir), func(p string, d os.DirEntry, err error) error {
			rel, _ := filepath.Rel(a.dir, p)
			switch {
			case err != nil, d.IsDir(), strings.HasPrefix(p, filepath.Join(filepath.Dir(a.dir), "db")):
			case strings.HasPrefix(rel, ".."):
				t.Errorf("file written outside the store: %s", p)
			case !attachment.ValidName(filepath.ToSlash(rel)):
				t.Errorf("stored file %q has not a generated name", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// Ensure HTML is never served as HTML, whatever the upload claims.
func TestAttachment_HTMLNotServedAsHTML(t *testing.T) {
	forModes(t, func(t *testing.T, a *attServer) {
		for _, name := range []string{"cat.png", "page.html", "x.txt", "x.svg"} {
			urls := a.mustUpload(t, name, []byte("<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"))
			r := a.do(t, "GET", urls[0], nil, nil, 0)
			ct := r.Header.Get("Content-Type")
			if r.Status != 200 || (ct != "application/octet-stream" && !strings.HasPrefix(ct, "text/plain")) {
				t.Errorf("%s: status %d, Content-Type %q; want text/plain or application/octet-stream", name, r.Status, ct)
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: no nosniff", name)
			}
			if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
				t.Errorf("%s: Content-Disposition %q, want attachment", name, cd)
			}
		}
	})
}

// Ensure malformed uploads get the MaxIM 400/5012, and a zero-byte file
// is refused the same way.
func TestAttachment_UploadErrors(t *testing.T) {
	forModes(t, func(t *testing.T, a *attServer) {
		ct, noFile := multipartForm(t, formPart{"name", "", []byte("no file here")})
		for _, tc := range []struct {
			desc, ct string
			body     []byte
		}{
			{"NoFilePart", ct, noFile},
			{"EmptyForm", "multipart/form-data; boundary=xyz", []byte("--xyz--\r\n")},
			{"NotMultipart", "application/json", []byte(`{"file":"x"}`)},
			{"NoBoundary", "multipart/form-data", noFile},
			{"NoBody", ct, nil},
		} {
			r := a.do(t, "POST", "/attachment", authHeaders(tc.ct), bytes.NewReader(tc.body), int64(len(tc.body)))
			if r.Status != 400 || r.errorCode() != chat.CodeUpload {
				t.Errorf("%s: status %d, body %s; want 400/5012", tc.desc, r.Status, r.Body)
			}
		}
		r := a.upload(t, formPart{"attachment", "empty.txt", nil})
		if r.Status != 400 || r.errorCode() != chat.CodeUpload {
			t.Errorf("zero-byte file: status %d, body %s; want 400/5012", r.Status, r.Body)
		}
		r = a.do(t, "POST", "/attachment", map[string]string{"Content-Type": ct}, bytes.NewReader(noFile), int64(len(noFile)))
		if r.Status != 401 || r.errorCode() != chat.CodeUnauthorized {
			t.Errorf("unsigned upload: status %d, body %s; want 401/5003", r.Status, r.Body)
		}
	})
}

// Ensure the size limit is exact and answered with 413/5011, whether the
// Content-Length gives it away or only the part's bytes do, and that the
// client reads that answer rather than a reset connection. Bodies far past
// the limit are cut off: the client may then see either.
func TestAttachment_TooLarge(t *testing.T) {
	for _, mode := range []string{modeStream, modeBuffered} {
		t.Run(mode, func(t *testing.T) {
			const max = 1 << 20
			a := newAttServer(t, mode, max, nil)
			if r := a.upload(t, formPart{"attachment", "max.bin", make([]byte, max)}); r.Status != 201 {
				t.Fatalf("upload of exactly MaxSize: status %d, body %s", r.Status, r.Body)
			}
			for _, tc := range []struct {
				desc    string
				size    int64
				chunked bool
				cut     bool // far past the limit: a reset is allowed
			}{
				{"OneByteOver", max + 1, false, false},     // within the form slack: the part's bytes tell
				{"HeaderTells", max * 3 / 2, false, false}, // Content-Length alone tells
				{"Chunked", max * 3 / 2, true, false},      // no Content-Length
				{"Huge", 64 * max, false, true},
				{"HugeChunked", 64 * max, true, true},
			} {
				ct, body, size := zeroUpload(tc.size)
				if tc.chunked {
					size = -1
				}
				r, err := a.try("POST", "/attachment", authHeaders(ct), body, size)
				switch {
				case err != nil && tc.cut:
					t.Logf("%s: connection cut: %v", tc.desc, err)
				case err != nil:
					t.Errorf("%s: %v; want the 413 answer", tc.desc, err)
				case tc.cut && r.Status == 413:
					// Buffered mode: fasthttp refuses a chunked body past
					// UploadLimit before any handler and resets the request
					// first, so the error handler answers 5010 for lack of
					// the path. Any 413 will do here.
				case r.Status != 413 || r.errorCode() != chat.CodeFileTooLarge:
					t.Errorf("%s: status %d, body %s; want 413/5011", tc.desc, r.Status, r.Body)
				}
			}
			// The server still serves, and the store kept nothing partial.
			a.mustUpload(t, "after.txt", []byte("still here"))
			if left, _ := os.ReadDir(filepath.Join(a.dir, ".tmp")); len(left) != 0 {
				t.Errorf(".tmp holds %d files", len(left))
			}
		})
	}
}

// zeroUpload returns a multipart form with one file of size zero bytes,
// generated as it is read, and its Content-Type and length.
func zeroUpload(size int64) (string, io.Reader, int64) {
	return formAround("big.bin", io.LimitReader(zeroReader{}, size), size)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Ensure downloads honour single byte ranges, If-Range, conditional
// requests and HEAD.
func TestAttachment_Download(t *testing.T) {
	a := newAttServer(t, modeStream, 0, nil)
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	u := a.mustUpload(t, "data.bin", data)[0]
	full := a.do(t, "GET", u, nil, nil, 0)
	etag, lastMod := full.Header.Get("ETag"), full.Header.Get("Last-Modified")

	for _, tc := range []struct {
		desc   string
		hdr    map[string]string
		status int
		body   []byte
		crange string
	}{
		{"Range", map[string]string{"Range": "bytes=10-19"}, 206, data[10:20], "bytes 10-19/1000"},
		{"OpenRange", map[string]string{"Range": "bytes=990-"}, 206, data[990:], "bytes 990-999/1000"},
		{"Suffix", map[string]string{"Range": "bytes=-5"}, 206, data[995:], "bytes 995-999/1000"},
		{"PastEnd", map[string]string{"Range": "bytes=995-5000"}, 206, data[995:], "bytes 995-999/1000"},
		{"Unsatisfiable", map[string]string{"Range": "bytes=1000-"}, 416, nil, "bytes */1000"},
		{"MultiRangeIgnored", map[string]string{"Range": "bytes=0-1,5-6"}, 200, data, ""},
		{"MalformedIgnored", map[string]string{"Range": "bytes=x-y"}, 200, data, ""},
		{"IfRangeMatch", map[string]string{"Range": "bytes=0-3", "If-Range": etag}, 206, data[:4], "bytes 0-3/1000"},
		{"IfRangeStale", map[string]string{"Range": "bytes=0-3", "If-Range": `"other"`}, 200, data, ""},
		{"IfNoneMatch", map[string]string{"If-None-Match": etag}, 304, nil, ""},
		{"IfNoneMatchOther", map[string]string{"If-None-Match": `"other"`}, 200, data, ""},
		{"IfModifiedSince", map[string]string{"If-Modified-Since": lastMod}, 304, nil, ""},
	} {
		r := a.do(t, "GET", u, tc.hdr, nil, 0)
		if r.Status != tc.status || (tc.body != nil && !bytes.Equal(r.Body, tc.body)) || r.Header.Get("Content-Range") != tc.crange {
			t.Errorf("%s: status %d, %d bytes, Content-Range %q; want %d, %d bytes, %q", tc.desc, r.Status, len(r.Body), r.Header.Get("Content-Range"), tc.status, len(tc.body), tc.crange)
		}
	}
	head := a.do(t, "HEAD", u, nil, nil, 0)
	if head.Status != 200 || len(head.Body) != 0 || head.Header.Get("Content-Length") != "1000" {
		t.Errorf("HEAD: status %d, %d bytes, Content-Length %q", head.Status, len(head.Body), head.Header.Get("Content-Length"))
	}
}

// Ensure anything that is not a stored file is 404/5004, with no
// credentials needed to find out.
func TestAttachment_NotFound(t *testing.T) {
	a := newAttServer(t, modeStream, 0, nil)
	u := a.mustUpload(t, "a.txt", []byte("a"))[0]
	name := strings.TrimPrefix(u, a.base+"/attachments/")
	for _, p := range []string{
		"/attachments/00000000/00000000.png", "/attachments/" + name[:8] + "/00000000.txt",
		"/attachments/" + strings.ToUpper(name), "/attachments/" + name[:8], "/attachments/" + name + "/x",
		"/attachments/zz/yy.png", "/attachments/" + name[:8] + "/..%2f..%2fdb", "/attachments/%2e%2e/%2e%2e/etc/passwd",
		"/attachments/.tmp/x", "/attachments/" + strings.Replace(name, ".txt", ".sm.txt", 1),
	} {
		r := a.do(t, "GET", p, nil, nil, 0)
		if r.Status != 404 || r.errorCode() != chat.CodeNotFound {
			t.Errorf("GET %s: status %d, body %s; want 404/5004", p, r.Status, r.Body)
		}
	}
}

// Ensure a swept file is gone over HTTP while a fresh one stays (injected
// clock).
func TestAttachment_Retention(t *testing.T) {
	a := newAttServer(t, modeStream, 0, nil)
	old := a.mustUpload(t, "old.png", testPNG(t, 300, 300))
	a.clock.Add(6 * 24 * time.Hour)
	fresh := a.mustUpload(t, "fresh.txt", []byte("fresh"))
	a.clock.Add(24 * time.Hour)
	if n, err := a.store.Sweep(a.clock.Now()); n != 2 || err != nil {
		t.Fatalf("Sweep() = %d, %v; want 2 (image and thumbnail)", n, err)
	}
	for _, u := range old {
		if r := a.do(t, "GET", u, nil, nil, 0); r.Status != 404 {
			t.Errorf("GET expired %s: status %d", u, r.Status)
		}
	}
	if r := a.do(t, "GET", fresh[0], nil, nil, 0); r.Status != 200 || string(r.Body) != "fresh" {
		t.Errorf("GET fresh: status %d, body %q", r.Status, r.Body)
	}
}

// Ensure URLs follow the Host the client used (and a proxy's forwarded
// host and scheme) when no public URL is configured.
func TestAttachment_URLBase(t *testing.T) {
	a := newAttServer(t, modeStream, 0, nil)
	ct, body := multipartForm(t, formPart{"attachment", "a.txt", []byte("x")})
	for _, tc := range []struct {
		hdr  map[string]string
		want string
	}{
		{map[string]string{"X-Forwarded-Host": "im.example.com", "X-Forwarded-Proto": "https"}, "https://im.example.com/attachments/"},
		{map[string]string{"X-Forwarded-Host": "evil.com/<script>"}, a.base + "/attachments/"},
	} {
		h := authHeaders(ct)
		for k, v := range tc.hdr {
			h[k] = v
		}
		r := a.do(t, "POST", "/attachment", h, bytes.NewReader(body), int64(len(body)))
		var urls []string
		_ = json.Unmarshal(r.Body, &urls) // a non-list body fails the check below
		if r.Status != 201 || len(urls) != 1 || !strings.HasPrefix(urls[0], tc.want) {
			t.Errorf("headers %v: status %d, URLs %q; want prefix %q", tc.hdr, r.Status, urls, tc.want)
		}
	}
}

// memChildEnv makes the test binary a server child for
// TestAttachment_Memory; its value is the body-reading mode.
const memChildEnv = "MQIM_ATTACH_MEMCHILD"

// Ensure a 20 MiB upload (the default limit) raises the server's peak
// resident memory by less than 64 MiB. The server runs in a child process
// (this test binary, re-executed) so that the client's buffers do not
// count; the client streams the body from a generator. Peak is the child's
// VmHWM, reset through /proc/<pid>/clear_refs once idle.
//
// Run: go test ./rest -run TestAttachment_Memory -v
// (skipped with -short and with -race, whose shadow memory inflates RSS).
func TestAttachment_Memory(t *testing.T) {
	if testing.Short() || raceEnabled() {
		t.Skip("memory figure: needs a non-race, non-short run")
	}
	if _, err := os.Stat("/proc/self/clear_refs"); err != nil {
		t.Skip("needs Linux /proc")
	}
	const size = attachment.DefaultMaxSize
	for _, tc := range []struct {
		mode, desc string
		chunked    bool
		image      bool
		assert     bool
	}{
		{modeStream, "upload", false, false, true},
		{modeStream, "upload chunked", true, false, true},
		{modeStream, "upload image", false, true, false},
		{modeStream, "upload 40 Mpx image", false, true, false},
		{modeBuffered, "upload", false, false, false},
		{modeBuffered, "upload chunked", true, false, false},
	} {
		t.Run(tc.mode+" "+tc.desc, func(t *testing.T) {
			child := startMemChild(t, tc.mode)
			var ct string
			var body io.Reader
			var n int64
			switch {
			case tc.image && strings.Contains(tc.desc, "Mpx"):
				ct, body, n = flatImageUpload(t, attachment.DefaultMaxPixels)
			case tc.image:
				ct, body, n = imageUpload(t, size)
			default:
				ct, body, n = randomUpload(size)
			}
			// Warm up (code paths, pools), then measure from idle.
			child.upload(t, "text/plain", strings.NewReader("warm-up"), false)
			idle := child.resetPeak(t)
			bodySize := n
			if tc.chunked {
				n = -1
			}
			urls := child.uploadForm(t, ct, body, n)
			peak := child.status(t, "VmHWM")
			t.Logf("%s mode, %s (body %.1f MiB, %d URLs): idle RSS %.1f MiB, peak %.1f MiB, +%.1f MiB",
				tc.mode, tc.desc, mib(bodySize), len(urls), mib(idle), mib(peak), mib(peak-idle))
			if tc.assert && peak-idle >= 64<<20 {
				t.Errorf("peak RSS grew by %.1f MiB during the upload, want < 64 MiB", mib(peak-idle))
			}
			if tc.mode == modeStream && !tc.image {
				// The download streams the file too (not asserted: the
				// request logger's own behaviour decides).
				child.resetPeak(t)
				res, err := http.Get(urls[0])
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				peak := child.status(t, "VmHWM")
				t.Logf("download of %d MiB: peak +%.1f MiB", got>>20, mib(peak-idle))
			}
		})
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestAttachmentMemoryChild is the server side of TestAttachment_Memory:
// it serves until its stdin closes.
func TestAttachmentMemoryChild(t *testing.T) {
	mode := os.Getenv(memChildEnv)
	if mode == "" {
		t.Skip("helper process of TestAttachment_Memory")
	}
	a := newAttServer(t, mode, 0, nil)
	fmt.Printf("ADDR %s\n", a.base)
	io.Copy(io.Discard, os.Stdin)
}

type memChild struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
}

func startMemChild(t *testing.T, mode string) *memChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttachmentMemoryChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), memChildEnv+"="+mode)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() }) // the child ends on EOF; its exit is not under test
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if base, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			go io.Copy(io.Discard, stdout)
			return &memChild{cmd: cmd, base: base, client: &http.Client{Timeout: 2 * time.Minute}}
		}
	}
	t.Fatalf("child gave no address: %v", sc.Err())
	return nil
}

// status returns a /proc/<pid>/status field in bytes.
func (m *memChild) status(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in status", field)
	return 0
}

// resetPeak resets the child's VmHWM to its current RSS and returns that.
func (m *memChild) resetPeak(t *testing.T) int64 {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", m.cmd.Process.Pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
	return m.status(t, "VmRSS")
}

func (m *memChild) upload(t *testing.T, ct string, body io.Reader, chunked bool) []string {
	t.Helper()
	b, _ := io.ReadAll(body)
	form, data := multipartForm(t, formPart{"attachment", "a.txt", b})
	return m.uploadForm(t, form, bytes.NewReader(data), int64(len(data)))
}

func (m *memChild) uploadForm(t *testing.T, ct string, body io.Reader, n int64) []string {
	t.Helper()
	req, _ := http.NewRequest("POST", m.base+"/attachment", body)
	req.ContentLength = n
	for k, v := range authHeaders(ct) {
		req.Header.Set(k, v)
	}
	res, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var urls []string
	if err := json.NewDecoder(res.Body).Decode(&urls); err != nil || res.StatusCode != 201 {
		t.Fatalf("upload: status %d, err %v", res.StatusCode, err)
	}
	return urls
}

// randomUpload returns a multipart form with one file of size pseudo-random
// bytes, generated as it is read.
func randomUpload(size int64) (string, io.Reader, int64) {
	return formAround("big.bin", io.LimitReader(&xorshift{x: 88172645463325252}, size), size)
}

// imageUpload returns a form with a noise PNG of about size bytes (noise
// does not compress); it is encoded up front, in the client.
func imageUpload(t *testing.T, size int64) (string, io.Reader, int64) {
	side := 1
	for int64(side*side*4) < size*95/100 {
		side += 16
	}
	m := image.NewNRGBA(image.Rect(0, 0, side, side))
	_, _ = (&xorshift{x: 1}).Read(m.Pix) // never fails
	for i := 3; i < len(m.Pix); i += 4 {
		m.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) > size {
		t.Fatalf("noise PNG is %d bytes, over %d", buf.Len(), size)
	}
	t.Logf("image: %dx%d PNG, %.1f MiB", side, side, mib(int64(buf.Len())))
	return formAround("noise.png", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
}

// flatImageUpload returns a form with a one-colour RGBA PNG of about
// pixels pixels: a small file that decodes to the largest canvas the store
// still thumbnails (the worst case of decode memory).
func flatImageUpload(t *testing.T, pixels int64) (string, io.Reader, int64) {
	side := 1
	for int64((side+1)*(side+1)) <= pixels {
		side++
	}
	m := image.NewNRGBA(image.Rect(0, 0, side, side))
	for i := range m.Pix {
		m.Pix[i] = 0x80
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	t.Logf("image: %dx%d PNG, %.1f MiB", side, side, mib(int64(buf.Len())))
	return formAround("flat.png", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
}

// formAround frames a file of size bytes from r as a one-part form.
func formAround(filename string, r io.Reader, size int64) (string, io.Reader, int64) {
	var head bytes.Buffer
	w := multipart.NewWriter(&head)
	_, _ = w.CreateFormFile("attachment", filename) // into a bytes.Buffer: never fails
	tail := "\r\n--" + w.Boundary() + "--\r\n"
	return w.FormDataContentType(), io.MultiReader(bytes.NewReader(head.Bytes()), r, strings.NewReader(tail)), int64(head.Len()) + size + int64(len(tail))
}

type xorshift struct{ x uint64 }

func (g *xorshift) Read(p []byte) (int, error) {
	for i := range p {
		g.x ^= g.x << 13
		g.x ^= g.x >> 7
		g.x ^= g.x << 17
		p[i] = byte(g.x)
	}
	return len(p), nil
}
