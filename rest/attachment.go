package rest

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/attachment"
	"github.com/mqim/mqim/chat"
)

// Upload limits on top of the store's MaxSize (docs/maxim.md §6).
const (
	// formSlack is the multipart framing (boundaries, part headers, small
	// fields) accepted on top of MaxSize before Content-Length alone
	// decides 413. The file part itself is held to MaxSize exactly.
	formSlack = 64 << 10
	// maxFormParts and maxFieldSize bound the non-file parts skipped before
	// the file part.
	maxFormParts = 16
	maxFieldSize = 8 << 10
	// drainLimit is how much of an unread request body is discarded after
	// an answer so the connection can serve another request; past it the
	// connection is closed instead.
	drainLimit = 64 << 10
	// maxUploadTime caps one upload however steadily it trickles in
	// (the read timeout acts as an idle timeout while it progresses).
	maxUploadTime = 15 * time.Minute
)

// routeAttachments registers A1 (POST /attachment) and A2 (GET
// /attachments/<a>/<b>.<ext>). Downloads are unauthenticated (auth.go
// skips /attachments/): <img> and media tags send no MaxIM headers.
func (s *Server) routeAttachments(r fiber.Router) {
	if s.opts.Attachments == nil {
		return
	}
	r.Post("/attachment", s.uploadAttachment)
	r.Get("/attachments/:dir/:file", s.serveAttachment) // GET and HEAD
	r.Get("/attachments/*", func(*fiber.Ctx) error { return errAttachmentNotFound })
}

var (
	errAttachmentNotFound = chat.Errorf(chat.CodeNotFound, "attachment not found")
	errNotMultipart       = chat.Errorf(chat.CodeUpload, "expected a multipart/form-data body with a file part")
	errNoFilePart         = chat.Errorf(chat.CodeUpload, "no file part in the form")
)

// uploadAttachment is A1: the first file part of a multipart form becomes
// a stored file; the answer is 201 with [url] or [url, thumbnailUrl].
//
// The body is read as a stream when Fiber runs with StreamRequestBody (the
// setting that keeps a 20 MB upload out of memory): only the part being
// copied to disk is in flight. Without it, Fiber has already buffered the
// body (or pre-parsed the form to temp files) and this reads that instead.
func (s *Server) uploadAttachment(c *fiber.Ctx) error {
	st := s.opts.Attachments
	limit := st.MaxSize()
	req := c.Request()
	var body io.Reader
	if rs := c.Context().RequestBodyStream(); rs != nil {
		body = s.uploadReader(c, &stickyEOF{r: rs})
	}
	if cl := int64(req.Header.ContentLength()); cl > limit+formSlack {
		// Refuse on the header alone, storing nothing. A body up to about
		// twice the limit is still read and discarded, so the client, which
		// sends it all before reading any answer, gets the 413 rather than
		// a reset connection; a bigger one is cut off at once.
		if cl <= 2*limit+formSlack {
			discardBody(c, body, cl)
		} else if body != nil {
			c.Context().SetConnectionClose()
		}
		return errFileTooLarge(limit)
	}
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	boundary := params["boundary"]
	if err != nil || mt != "multipart/form-data" || boundary == "" || c.Get(fiber.HeaderContentEncoding) != "" {
		discardBody(c, body, drainLimit)
		return errNotMultipart
	}

	var names []string
	switch {
	case body != nil:
		names, err = s.saveParts(c, body, boundary)
		budget := int64(drainLimit)
		if chat.ErrorCode(err) == chat.CodeFileTooLarge {
			budget = limit
		}
		discardBody(c, body, budget)
	case !s.app.Server().DisablePreParseMultipartForm && req.Header.ContentLength() > 0:
		// fasthttp parsed the form while reading the body (files past
		// 16 MiB went to temp files); req.Body() would re-assemble it.
		names, err = s.saveForm(c)
	default:
		names, err = s.saveParts(c, bytes.NewReader(req.Body()), boundary)
	}
	if err != nil {
		return err
	}
	base := s.attachmentBase(c)
	urls := make([]string, len(names))
	for i, n := range names {
		urls[i] = attachment.URL(base, n)
	}
	return c.Status(fiber.StatusCreated).JSON(urls)
}

// saveParts reads a multipart body and saves its first file part: the
// first part with a filename, or named attachment (the documented field),
// userfile (SDK-JS0) or file. Small fields before it are skipped.
func (s *Server) saveParts(c *fiber.Ctx, body io.Reader, boundary string) ([]string, error) {
	mr := multipart.NewReader(body, boundary)
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, errNoFilePart
		}
		if err != nil {
			return nil, chat.Errorf(chat.CodeUpload, "malformed multipart body")
		}
		if i >= maxFormParts {
			return nil, chat.Errorf(chat.CodeUpload, "too many form parts before the file")
		}
		if isFilePart(p.FormName(), p.FileName()) {
			return s.opts.Attachments.Save(uploadCtx(c), p.FileName(), p)
		}
		if n, _ := io.Copy(io.Discard, io.LimitReader(p, maxFieldSize+1)); n > maxFieldSize {
			return nil, chat.Errorf(chat.CodeUpload, "form field %q too large", p.FormName())
		}
	}
}

func isFilePart(name, filename string) bool {
	return filename != "" || name == "attachment" || name == "userfile" || name == "file"
}

// saveForm saves the file of a form fasthttp pre-parsed. Its map loses the
// part order, so the documented field names win, then the first by name.
func (s *Server) saveForm(c *fiber.Ctx) ([]string, error) {
	form, err := c.Request().MultipartForm()
	if err != nil {
		return nil, errNotMultipart
	}
	keys := make([]string, 0, len(form.File))
	for k, fhs := range form.File {
		if len(fhs) > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errNoFilePart
	}
	rank := func(k string) int {
		switch k {
		case "attachment":
			return 0
		case "userfile":
			return 1
		}
		return 2
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	fh := form.File[keys[0]][0]
	if fh.Size > s.opts.Attachments.MaxSize() {
		return nil, errFileTooLarge(s.opts.Attachments.MaxSize())
	}
	f, err := fh.Open()
	if err != nil {
		return nil, chat.Errorf(chat.CodeUpload, "cannot read the uploaded file")
	}
	defer func() { _ = f.Close() }() // read only
	return s.opts.Attachments.Save(uploadCtx(c), fh.Filename, f)
}

// uploadCtx is the request's context without its deadline: how long an
// upload takes depends on the client's link (reads have their own idle
// timeout, see uploadReader), and a slow upload must not lose its
// thumbnail to the request timeout meant for store calls.
func uploadCtx(c *fiber.Ctx) context.Context {
	return context.WithoutCancel(c.UserContext())
}

// uploadReader wraps a streamed body so that the server's read timeout
// acts as an idle timeout while the upload progresses: fasthttp sets one
// deadline for the whole request, which a 20 MB upload on a slow mobile
// link would overrun.
func (s *Server) uploadReader(c *fiber.Ctx, body io.Reader) io.Reader {
	conn := c.Context().Conn()
	if s.opts.ReadTimeout <= 0 || conn == nil {
		return body
	}
	return &progressReader{r: body, conn: conn, idle: s.opts.ReadTimeout, end: time.Now().Add(maxUploadTime)}
}

type progressReader struct {
	r    io.Reader
	conn net.Conn
	idle time.Duration
	end  time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		d := time.Now().Add(p.idle)
		if d.After(p.end) {
			d = p.end
		}
		// fasthttp sets its own again per request; a connection that refuses
		// a deadline fails its next read anyway.
		_ = p.conn.SetReadDeadline(d)
	}
	return n, err
}

// discardBody discards what is left of a streamed request body (nil: none),
// up to budget bytes, or else marks the connection to close after the
// answer. Two reasons: fasthttp does not skip an unread streamed body, so
// the leftover bytes would be parsed as the next request on the
// connection; and closing a socket with unread input resets it, which
// makes most clients (browsers, Go) report a network error instead of the
// answer. Discarding costs bandwidth, never memory.
//
// Once the body is known to be over, it is released, so that nothing reads
// the chunked stream again: fasthttp's does not stay at EOF, a further Read
// waits for the next chunk header until the read deadline.
func discardBody(c *fiber.Ctx, body io.Reader, budget int64) {
	if body == nil {
		return
	}
	if _, err := io.CopyN(io.Discard, body, budget+1); err != io.EOF {
		c.Context().SetConnectionClose()
		return
	}
	c.Request().ResetBody()
}

// stickyEOF keeps returning the first error of r (io.EOF above all)
// without reading r again; see discardBody.
type stickyEOF struct {
	r   io.Reader
	err error
}

func (s *stickyEOF) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.err = err
	return n, err
}

func errFileTooLarge(limit int64) error {
	return chat.Errorf(chat.CodeFileTooLarge, "file larger than %d bytes", limit)
}

// attachmentBase returns the base of the URLs to answer with: the
// configured public URL; else the scheme and host the client used (Host,
// or X-Forwarded-Host/-Proto set by a proxy), so URLs work under whatever
// name the server is reached by; else the listener's address.
func (s *Server) attachmentBase(c *fiber.Ctx) string {
	st := s.opts.Attachments
	if u := st.PublicURL(); u != "" {
		return u
	}
	if host := c.Hostname(); validHost(host) {
		return c.Protocol() + "://" + host
	}
	if u := st.DefaultURL(); u != "" {
		return u
	}
	return "http://" + c.Context().LocalAddr().String()
}

// validHost accepts a host[:port] (including [v6]:port) made of the
// characters a host can hold, so a hostile Host cannot shape the URL.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		b := h[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte(".-:[]", b) >= 0) {
			return false
		}
	}
	return true
}

// serveAttachment is A2: a stored file with its safe type, caching
// validators and single byte ranges. Whatever is not a stored file is
// 404/5004.
func (s *Server) serveAttachment(c *fiber.Ctx) error {
	rel := c.Params("dir") + "/" + c.Params("file")
	f, err := s.opts.Attachments.Open(rel)
	if err != nil {
		return err
	}
	closeFile := true
	defer func() {
		if closeFile {
			_ = f.Close() // read only
		}
	}()

	etag := `"` + strings.Replace(f.Name, "/", "-", 1) + `"`
	lastMod := f.ModTime.UTC().Truncate(time.Second)
	h := &c.Response().Header
	h.Set(fiber.HeaderContentType, f.ContentType)
	// Never let a browser second-guess the type (an HTML polyglot in a
	// GIF), and keep anything that does render from running scripts.
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	disposition := "attachment"
	if f.Inline {
		disposition = "inline"
	}
	// The name is server-generated ([0-9a-f.a-z] only): safe unescaped.
	h.Set(fiber.HeaderContentDisposition, disposition+`; filename="`+f.Name[9:]+`"`)
	h.Set(fiber.HeaderETag, etag)
	h.Set(fiber.HeaderLastModified, lastMod.Format(http.TimeFormat))
	h.Set(fiber.HeaderAcceptRanges, "bytes")
	// A stored file never changes; caches may keep it until it expires.
	maxAge := int64(365 * 24 * time.Hour / time.Second)
	if !f.Expires.IsZero() {
		maxAge = max(0, int64(f.Expires.Sub(s.opts.Attachments.Options().Now())/time.Second))
	}
	h.Set(fiber.HeaderCacheControl, "public, max-age="+strconv.FormatInt(maxAge, 10)+", immutable")

	if notModified(c, etag, lastMod) {
		c.Status(fiber.StatusNotModified)
		return nil
	}

	start, length := int64(0), f.Size
	status := fiber.StatusOK
	if rg := c.Get(fiber.HeaderRange); rg != "" && ifRange(c.Get(fiber.HeaderIfRange), etag, lastMod) {
		switch st, n, res := parseRange(rg, f.Size); res {
		case rangeOK:
			start, length, status = st, n, fiber.StatusPartialContent
			h.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(st, 10)+"-"+strconv.FormatInt(st+n-1, 10)+"/"+strconv.FormatInt(f.Size, 10))
		case rangeUnsatisfiable:
			h.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(f.Size, 10))
			h.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
			return c.Status(fiber.StatusRequestedRangeNotSatisfiable).SendString("requested range not satisfiable")
		}
	}
	c.Status(status)
	if c.Method() == fiber.MethodHead {
		h.SetContentLength(int(length))
		return nil
	}
	// fasthttp streams the section to the client after the handler returns
	// and closes it then; the file is never held in memory.
	closeFile = false
	c.Context().SetBodyStream(&sectionFile{SectionReader: io.NewSectionReader(f, start, length), f: f}, int(length))
	return nil
}

// sectionFile is the byte range of an open file that fasthttp closes once
// sent.
type sectionFile struct {
	*io.SectionReader
	f *attachment.File
}

func (s *sectionFile) Close() error { return s.f.Close() }

// notModified applies If-None-Match (weak comparison), or else
// If-Modified-Since, as RFC 9110 §13.2.2 orders them.
func notModified(c *fiber.Ctx, etag string, lastMod time.Time) bool {
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == etag {
				return true
			}
		}
		return false
	}
	if ims := c.Get(fiber.HeaderIfModifiedSince); ims != "" {
		if t, err := http.ParseTime(ims); err == nil {
			return !lastMod.After(t)
		}
	}
	return false
}

// ifRange reports whether a Range may be honoured under If-Range (strong
// comparison of the ETag, or the exact Last-Modified date).
func ifRange(v, etag string, lastMod time.Time) bool {
	if v == "" {
		return true
	}
	if strings.HasPrefix(v, `"`) {
		return v == etag
	}
	t, err := http.ParseTime(v)
	return err == nil && t.Equal(lastMod)
}

type rangeResult int

const (
	rangeIgnore rangeResult = iota // serve the whole file
	rangeOK
	rangeUnsatisfiable
)

// parseRange reads a Range header for a file of size bytes. Only a single
// byte range is honoured: several ranges, other units and malformed values
// are ignored (RFC 9110 §14.2 lets a server serve the whole file).
func parseRange(v string, size int64) (start, length int64, res rangeResult) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, rangeIgnore
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, rangeIgnore
	}
	if first == "" { // suffix: the last n bytes
		n, ok := parseDigits(last)
		if !ok {
			return 0, 0, rangeIgnore
		}
		if n == 0 {
			return 0, 0, rangeUnsatisfiable
		}
		n = min(n, size)
		return size - n, n, rangeOK
	}
	a, ok := parseDigits(first)
	if !ok {
		return 0, 0, rangeIgnore
	}
	b := size - 1
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return 0, 0, rangeIgnore
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, rangeUnsatisfiable
	}
	return a, b - a + 1, rangeOK
}

// parseDigits parses a non-negative decimal of at most 18 digits.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
