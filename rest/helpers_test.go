package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
	"github.com/mqim/mqim/storage"
	"github.com/mqim/mqim/token"
)

// Test credentials: the golden vector's app and key (docs/maxim.md §2.1)
// and a master key.
const (
	testApp    = "569d84a0169e7d00012c7afe"
	testKey    = "MjVvSjJUMTZveUR2d1hoNlVoQ0R1QQ"
	testMaster = "bWFzdGVyLWtleS1mb3ItdGVzdHM"
	// testTokenSecret signs the test server's tokens.
	testTokenSecret = "a-token-secret-for-the-tests"
)

// bearer returns the headers of a token caller.
func bearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// mint returns a token for id issued at iat (ms) and expiring at exp (ms),
// signed like the server's.
func mint(t testing.TB, id chat.Identity, iat, exp int64) string {
	t.Helper()
	codec, err := token.New(testTokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := codec.Issue(chat.TokenClaims{Subject: id, IssuedAt: time.UnixMilli(iat), Expires: time.UnixMilli(exp)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testServer is a real mqim REST server on 127.0.0.1:0 over a real Badger
// store in a temp dir.
type testServer struct {
	t      testing.TB
	base   string
	dir    string
	svc    *chat.Service
	db     *storage.DB
	srv    *rest.Server
	client *http.Client
	opts   []func(*rest.Options)
	// routes, when set, adds routes to the app before it listens.
	routes func(*rest.Server)
	// clock is the service clock in ms; atomic because handlers read it on
	// server goroutines.
	clock *atomic.Int64
}

// newTestServer starts a server; opts adjust rest.Options (StrictAdmin,
// BodyLimit, ...).
func newTestServer(t testing.TB, opts ...func(*rest.Options)) *testServer {
	t.Helper()
	return newTestServerRoutes(t, nil, opts...)
}

// newTestServerRoutes is newTestServer with extra routes (panics, internal
// errors) registered before the server listens.
func newTestServerRoutes(t testing.TB, routes func(*rest.Server), opts ...func(*rest.Options)) *testServer {
	t.Helper()
	ts := &testServer{t: t, dir: t.TempDir(), opts: opts, routes: routes, clock: new(atomic.Int64)}
	ts.clock.Store(time.Now().UnixMilli())
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// start opens the store in ts.dir and serves it.
func (ts *testServer) start() {
	t := ts.t
	t.Helper()
	db, err := storage.Open(storage.Options{Dir: ts.dir, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	svc := chat.NewService(db, chat.Options{AppID: testApp})
	svc.Now = func() time.Time { return time.UnixMilli(ts.clock.Load()) }
	codec, err := token.New(testTokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	svc.Tokens = codec
	auth := &chat.Authenticator{
		AppID:     testApp,
		Keys:      []chat.Key{{Value: testKey, Role: chat.RoleClient}, {Value: testMaster, Role: chat.RoleMaster}},
		Tolerance: 15 * time.Minute,
	}
	o := rest.Options{Service: svc, Auth: auth, Log: zerolog.New(zerolog.NewTestWriter(t))}
	for _, f := range ts.opts {
		f(&o)
	}
	srv := rest.New(o)
	if ts.routes != nil {
		ts.routes(srv)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ts.db, ts.svc, ts.srv = db, svc, srv
	ts.base = "http://" + srv.Addr().String()
	ts.client = &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
}

// stop shuts the server down and closes the store.
func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ts.client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("Shutdown: %v", err)
	}
	if err := ts.db.Close(); err != nil {
		ts.t.Errorf("db.Close: %v", err)
	}
	ts.srv, ts.db = nil, nil
}

// as returns a view of ts that reports failures to t (a subtest).
func (ts *testServer) as(t testing.TB) *testServer {
	c := *ts
	c.t = t
	return &c
}

// now returns the service clock in ms.
func (ts *testServer) now() int64 { return ts.clock.Load() }

// signed returns the default credentials: the app id and a fresh signature
// with the client key.
func signed() map[string]string {
	return map[string]string{"X-ML-AppId": testApp, "X-ML-Request-Sign": chat.Sign(testKey, time.Now().UnixMilli())}
}

// masterSigned returns credentials signed with the master key.
func masterSigned() map[string]string {
	return map[string]string{"X-ML-AppId": testApp, "X-ML-Request-Sign": chat.Sign(testMaster, time.Now().UnixMilli())}
}

// call sends a request with the default credentials. body is nil (no
// body), a string or []byte (sent as is), a chunked string, or anything
// else (JSON-encoded).
func (ts *testServer) call(method, path string, body any) *response {
	ts.t.Helper()
	return ts.callWith(method, path, body, signed())
}

// callWith sends a request with exactly the headers given.
func (ts *testServer) callWith(method, path string, body any, hdr map[string]string) *response {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case chunked:
		// A reader of unknown length: net/http sends it chunked.
		rd = io.MultiReader(strings.NewReader(string(b)))
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, ts.base+"/", rd)
	if err != nil {
		ts.t.Fatalf("NewRequest %s %s: %v", method, path, err)
	}
	// Send the path and query exactly as written (bad escapes and raw
	// UTF-8 included), as a careless client would.
	req.URL.Opaque, req.URL.RawQuery, _ = strings.Cut(path, "?")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{t: ts.t, req: method + " " + path, Status: res.StatusCode, Body: b, Header: res.Header}
}

// chunked is a request body sent with Transfer-Encoding: chunked.
type chunked string

// response is a finished request.
type response struct {
	t      testing.TB
	req    string
	Status int
	Body   []byte
	Header http.Header
}

// expect checks the status and the JSON body against want, where the
// string "*" stands for any value (ids, timestamps) and object keys must
// match exactly. want "" means an empty body.
func (r *response) expect(status int, want string) *response {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s: status = %d, want %d; body %s", r.req, r.Status, status, r.Body)
	}
	if want == "" {
		if len(r.Body) != 0 {
			r.t.Fatalf("%s: body = %s, want empty", r.req, r.Body)
		}
		return r
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		r.t.Errorf("%s: Content-Type = %q, want application/json", r.req, ct)
	}
	var got, w any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		r.t.Fatalf("%s: body is not JSON: %v: %s", r.req, err, r.Body)
	}
	if err := json.Unmarshal([]byte(starsQuoted(want)), &w); err != nil {
		r.t.Fatalf("bad want JSON %s: %v", want, err)
	}
	if path, ok := match(got, w, "$"); !ok {
		r.t.Fatalf("%s: body mismatch at %s\n got: %s\nwant: %s", r.req, path, r.Body, want)
	}
	return r
}

// ok checks the status only.
func (r *response) ok(status int) *response {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s: status = %d, want %d; body %s", r.req, r.Status, status, r.Body)
	}
	return r
}

// expectError checks a MaxIM error response.
func (r *response) expectError(status, code int) *response {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s: status = %d, want %d; body %s", r.req, r.Status, status, r.Body)
	}
	var e struct {
		ErrorCode    *int    `json:"errorCode"`
		ErrorMessage *string `json:"errorMessage"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil || e.ErrorCode == nil || e.ErrorMessage == nil {
		r.t.Fatalf("%s: not a MaxIM error body: %s", r.req, r.Body)
	}
	if *e.ErrorCode != code {
		r.t.Fatalf("%s: errorCode = %d, want %d; body %s", r.req, *e.ErrorCode, code, r.Body)
	}
	if *e.ErrorMessage == "" {
		r.t.Errorf("%s: empty errorMessage", r.req)
	}
	return r
}

// decode unmarshals the body into v.
func (r *response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("%s: decode %s: %v", r.req, r.Body, err)
	}
}

// str returns the body decoded as a JSON string (created ids).
func (r *response) str() string {
	var s string
	r.decode(&s)
	return s
}

// starsQuoted turns every bare * of a want template into "*", so that
// templates read like the spec examples: {"id":*,"ts":*}.
func starsQuoted(s string) string {
	var b strings.Builder
	inStr, esc := false, false
	for _, r := range s {
		switch {
		case esc:
			esc = false
		case inStr && r == '\\':
			esc = true
		case r == '"':
			inStr = !inStr
		case !inStr && r == '*':
			b.WriteString(`"*"`)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// match compares decoded JSON, "*" in want matching any value.
func match(got, want any, path string) (string, bool) {
	if s, ok := want.(string); ok && s == "*" {
		return "", true
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		if !sameKeys(g, w) {
			return path + " (keys)", false
		}
		for k := range w {
			if p, ok := match(g[k], w[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path + " (length)", false
		}
		for i := range w {
			if p, ok := match(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	}
	return path, reflect.DeepEqual(got, want)
}

func sameKeys(a, b map[string]any) bool {
	ka, kb := keys(a), keys(b)
	return reflect.DeepEqual(ka, kb)
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// js formats a JSON template: fmt.Sprintf with %q-free substitution of
// numbers and ids.
func js(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// seed appends a record to conv directly in the store (sending over MQTT is
// the real-time layer's job). ttl 0 keeps it for ever, so only the
// service's retention rule can hide it.
func (ts *testServer) seed(conv chat.Conv, speaker, body string, tsMillis int64) chat.Record {
	ts.t.Helper()
	rec := &chat.Record{Conv: conv, Speaker: speaker, Content: chat.Content{Media: chat.MediaText, Body: body}, TS: tsMillis}
	if err := ts.db.AppendRecord(context.Background(), rec, 0); err != nil {
		ts.t.Fatalf("AppendRecord: %v", err)
	}
	return *rec
}

// seedStranger records a stranger association both ways, as a stranger
// message does.
func (ts *testServer) seedStranger(a, b string, first, last int64) {
	ts.t.Helper()
	err := ts.db.Update(context.Background(), func(tx chat.Tx) error {
		if err := tx.PutStranger(&chat.Stranger{User: a, Other: b, TS: first, Last: last}); err != nil {
			return err
		}
		return tx.PutStranger(&chat.Stranger{User: b, Other: a, TS: first, Last: last})
	})
	if err != nil {
		ts.t.Fatalf("PutStranger: %v", err)
	}
}

// online opens a presence session for user uid (what an MQTT login does).
func (ts *testServer) online(uid, session string) {
	ts.svc.Presence.Open(chat.User(uid), session, false)
}
