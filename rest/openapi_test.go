package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	iofs "io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/attachment"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
	"github.com/mqim/mqim/rest"
)

var updateAPIDoc = flag.Bool("update-api-doc", false, "rewrite docs/api.md from rest/openapi.yaml")

// notYetRegistered lists the operations the document describes before the
// server registers them: routes other branches are adding. Delete an entry
// when its route lands (TestOpenAPI_Coverage says when).
var notYetRegistered = map[string]bool{}

// notREST are the prefixes of registered routes that are not REST API
// operations: the static pages (Options.Pages: the admin console and the
// demo) and the socket.io endpoint, which speaks its own protocol.
var notREST = []string{"/admin", "/demo", "/socket.io"}

// loadOpenAPI loads the served document with kin-openapi and validates it
// (OpenAPI 3.1: JSON Schema 2020-12 keywords, type arrays, const).
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	b, err := rest.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	return doc
}

// operations returns every operation of doc by "METHOD /path".
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	out := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[method+" "+path] = op
		}
	}
	return out
}

// fiberToOpenAPI turns a Fiber pattern (/ctx/:uid) into an OpenAPI path
// template (/ctx/{uid}).
func fiberToOpenAPI(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/")
}

// openAPIToFiber is the reverse of fiberToOpenAPI.
func openAPIToFiber(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = ":" + s[1:len(s)-1]
		}
	}
	return strings.Join(segs, "/")
}

// access is an operation's x-mqim-access ("key" when absent) and
// x-mqim-token ("" when absent).
func access(op *openapi3.Operation) (keys, token string) {
	keys, _ = op.Extensions["x-mqim-access"].(string)
	if keys == "" {
		keys = "key"
	}
	token, _ = op.Extensions["x-mqim-token"].(string)
	return keys, token
}

// security is the operation's security requirements, else the document's.
func security(doc *openapi3.T, op *openapi3.Operation) openapi3.SecurityRequirements {
	if op.Security != nil {
		return *op.Security
	}
	return doc.Security
}

// hasScheme reports whether one alternative of sec is scheme alone (with
// the app id).
func hasScheme(sec openapi3.SecurityRequirements, scheme string) bool {
	for _, alt := range sec {
		if _, ok := alt[scheme]; ok {
			return true
		}
	}
	return false
}

// fullServer is a test server with every optional part on, so that it
// registers every route: attachments, the socket.io endpoint and pages.
func fullServer(t *testing.T, opts ...func(*rest.Options)) *testServer {
	t.Helper()
	all := append([]func(*rest.Options){func(o *rest.Options) {
		st, err := attachment.Open(attachment.Options{Dir: filepath.Join(t.TempDir(), "att")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		o.Attachments = st
		o.UploadLimit = 1 << 20
		o.SocketIO = http.NotFoundHandler()
		page := fstest.MapFS{"index.html": {Data: []byte("<p>page</p>")}}
		o.Pages = map[string]iofs.FS{"/admin": page, "/demo": page}
		o.Metrics = metrics.New("test")
		o.Ready = func(context.Context) map[string]error {
			return map[string]error{"store": nil, "mqtt": nil, "http": nil}
		}
		o.Version = "test"
	}}, opts...)
	return newTestServer(t, all...)
}

// Ensure the document loads and validates as OpenAPI 3.1, and that every
// operation says what it is: an id, a summary, a tag, a success answer,
// and for authenticated ones the 401 and 403 errors.
func TestOpenAPI_Valid(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	tags := map[string]bool{}
	for _, tg := range doc.Tags {
		tags[tg.Name] = true
	}
	ops := operations(doc)
	for key, op := range ops {
		if op.OperationID == "" || op.Summary == "" || len(op.Tags) != 1 || !tags[op.Tags[0]] {
			t.Errorf("%s: needs an operationId, a summary and one declared tag", key)
		}
		ok := false
		for code := range op.Responses.Map() {
			ok = ok || strings.HasPrefix(code, "2")
		}
		if !ok {
			t.Errorf("%s: no 2xx response", key)
		}
		if keys, _ := access(op); keys != "public" {
			for _, code := range []int{401, 403} {
				if op.Responses.Status(code) == nil {
					t.Errorf("%s: authenticated, but no %d response", key, code)
				}
			}
		}
	}
	if len(ops) < 80 {
		t.Errorf("%d operations: the document lost some", len(ops))
	}
	t.Logf("%d operations, %d schemas", len(ops), len(doc.Components.Schemas))
}

// Ensure the document and the server agree both ways: every registered
// route is documented, every documented operation is registered (but the
// ones of notYetRegistered), and each operation's access (x-mqim-access,
// x-mqim-token, its security schemes) is the rule of the access policy.
func TestOpenAPI_Coverage(t *testing.T) {
	doc := loadOpenAPI(t)
	ts := fullServer(t)
	ops := operations(doc)
	policy := rest.PolicyAccess()

	registered := map[string]bool{}
	for _, r := range ts.srv.App().GetRoutes(true) {
		switch {
		case r.Method == "HEAD":
			continue // Fiber adds HEAD to every GET; the GET documents it
		case slices.ContainsFunc(notREST, func(p string) bool { return r.Path == p || strings.HasPrefix(r.Path, p+"/") }):
			continue
		case r.Path == "/attachments/*":
			continue // 404/5004 for any malformed download path; not an operation
		}
		key := r.Method + " " + fiberToOpenAPI(r.Path)
		registered[key] = true
		if ops[key] == nil {
			t.Errorf("route %s %s is not in rest/openapi.yaml", r.Method, r.Path)
		}
	}
	if len(registered) < 75 {
		t.Fatalf("only %d routes registered: is the server complete?", len(registered))
	}
	for key := range notYetRegistered {
		if registered[key] {
			t.Errorf("%s is registered now: delete it from notYetRegistered", key)
		}
		if ops[key] == nil {
			t.Errorf("%s is in notYetRegistered but not documented", key)
		}
	}
	for key, op := range ops {
		if !registered[key] && !notYetRegistered[key] {
			t.Errorf("%s is documented but the server does not register it", key)
		}
		method, path, _ := strings.Cut(key, " ")
		keys, token := access(op)
		sec := security(doc, op)
		if keys == "public" {
			if len(sec) != 0 || token != "" {
				t.Errorf("%s: public, but asks for credentials", key)
			}
			if _, ok := policy[method+" "+openAPIToFiber(path)]; ok {
				t.Errorf("%s: public in the document, but the access policy has a rule for it", key)
			}
			if registered[key] {
				// Served without credentials: anything but 401.
				p := strings.NewReplacer("{dir}", "nothing", "{file}", "here.png").Replace(path)
				if res := ts.callWith(method, p, nil, map[string]string{}); res.Status == 401 {
					t.Errorf("%s: public in the document, but %s answers 401 without credentials", key, p)
				}
			}
			continue
		}
		rule, ok := policy[method+" "+openAPIToFiber(path)]
		if !ok {
			if registered[key] {
				t.Errorf("%s: documented as authenticated, but the access policy has no rule", key)
			}
			continue
		}
		if keys != rule.Keys {
			t.Errorf("%s: x-mqim-access %q, the policy says %q", key, keys, rule.Keys)
		}
		if (token != "") != rule.Token || hasScheme(sec, "bearer") != rule.Token {
			t.Errorf("%s: x-mqim-token %q and bearer security %v, but the policy lets tokens call it: %v",
				key, token, hasScheme(sec, "bearer"), rule.Token)
		}
		if keys == "master" && hasScheme(sec, "apiKey") {
			t.Errorf("%s: master key only, but X-ML-APIKey (the client key) is listed", key)
		}
	}
}

// Ensure GET /openapi.json serves the document without credentials, as
// JSON that loads.
func TestOpenAPI_Served(t *testing.T) {
	ts := newTestServer(t)
	want, err := rest.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, hdr := range []map[string]string{{}, signed(), {"X-ML-AppId": testApp, "X-ML-APIKey": "wrong"}} {
		res := ts.callWith("GET", "/openapi.json", nil, hdr).ok(200)
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if !bytes.Equal(res.Body, want) {
			t.Errorf("served %d bytes, not the document's %d", len(res.Body), len(want))
		}
	}
	var m map[string]any
	if err := json.Unmarshal(want, &m); err != nil {
		t.Fatal(err)
	}
	if m["openapi"] != "3.1.0" || m["x-anchors"] != nil {
		t.Errorf("served openapi %v, x-anchors %v", m["openapi"], m["x-anchors"])
	}
}

// apiChecker validates responses against the document.
type apiChecker struct {
	t      *testing.T
	router routers.Router
	// seen counts validated responses by "METHOD /template" and status.
	seen map[string]map[int]int
}

func newAPIChecker(t *testing.T, doc *openapi3.T) *apiChecker {
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiChecker{t: t, router: r, seen: map[string]map[int]int{}}
}

// check validates res, the answer to method path (query included), with
// openapi3filter: its status must be documented, its body must match the
// status's schema, and a status documented without content has no body.
func (v *apiChecker) check(method, path string, res *response) {
	v.t.Helper()
	req, err := http.NewRequest(method, "http://mqim"+path, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		v.t.Errorf("%s %s: no operation in the document: %v", method, path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.Status,
		Header:                 res.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(res.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		v.t.Errorf("%s %s: %d %s\ndoes not match the document: %v", method, path, res.Status, res.Body, err)
		return
	}
	if r := route.Operation.Responses.Status(res.Status); r != nil && len(r.Value.Content) == 0 && len(res.Body) != 0 {
		v.t.Errorf("%s %s: %d documented without a body, got %s", method, path, res.Status, res.Body)
		return
	}
	key := route.Method + " " + route.Path
	if v.seen[key] == nil {
		v.seen[key] = map[int]int{}
	}
	v.seen[key][res.Status]++
}

// call sends a request through ts and validates the answer.
func (v *apiChecker) call(ts *testServer, method, path string, body any, hdr map[string]string) *response {
	v.t.Helper()
	res := ts.as(v.t).callWith(method, path, body, hdr)
	v.check(method, path, res)
	return res
}

// masterKey are the raw master key credentials.
func masterKey() map[string]string {
	return map[string]string{"X-ML-AppId": testApp, "X-ML-MasterKey": testMaster}
}

// Ensure real answers match the document: every route of the
// authorization matrix with the master key (its success), with the client
// key in strict mode (success, or 403 on admin routes) and without
// credentials (401); then the shapes the matrix does not reach (detail
// lists, recalled and edited records, bans, conversations, errors, files).
// Every registered operation must have had a validated success answer.
func TestOpenAPI_Responses(t *testing.T) {
	doc := loadOpenAPI(t)
	v := newAPIChecker(t, doc)
	ts := fullServer(t, func(o *rest.Options) { o.StrictAdmin = true; o.Log = zerolog.Nop(); o.BodyLimit = 4096 })

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "a.txt")
	_, _ = fw.Write([]byte("hello"))
	_ = mw.Close()
	routes := matrixRoutes(form.Bytes())
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := 1
	for _, key := range keys {
		r := routes[key]
		if key == "GET /stats" {
			r.status = 200 // the matrix server has no Options.Metrics (400); fullServer has
		}
		method, pattern, _ := strings.Cut(key, " ")
		for _, cred := range []struct {
			hdr  map[string]string
			want int
		}{
			{masterKey(), r.status},
			{signed(), map[bool]int{true: 403, false: r.status}[r.admin != anyKey]},
			{map[string]string{}, 401},
		} {
			f := newMatrixFixture(t, ts, n)
			n++
			res := f.call(ts.as(t), method, pattern, r, cred.hdr, mw.FormDataContentType())
			if res.Status != cred.want {
				t.Errorf("%s: %d %s, want %d", key, res.Status, res.Body, cred.want)
			}
			path := f.fill(pattern)
			if strings.Contains(pattern, "/members/:uid") {
				path = strings.Replace(pattern, ":uid", map[string]string{"POST": f.C, "DELETE": f.B}[method], 1)
				path = f.fill(path)
			}
			v.check(method, path, res)
		}
	}

	// The same routes on ids that do not exist, and with bodies that are
	// not JSON objects: whatever the answer, it is documented.
	ghost := matrixFixture{A: "ghost-a", B: "ghost-b", C: "ghost-c", G: "ghost-g", R: "ghost-r", P: "ghost-p"}
	for _, key := range keys {
		r := routes[key]
		method, pattern, _ := strings.Cut(key, " ")
		bodies := []any{r.body}
		if _, upload := r.body.([]byte); !upload {
			bodies = append(bodies, "[1,2]")
		}
		for _, body := range bodies {
			res := ghost.call(ts.as(t), method, pattern, matrixRoute{body: body, status: r.status}, masterKey(), mw.FormDataContentType())
			path := ghost.fill(pattern)
			if strings.Contains(pattern, "/members/:uid") {
				path = ghost.fill(strings.Replace(pattern, ":uid", map[string]string{"POST": ghost.C, "DELETE": ghost.B}[method], 1))
			}
			v.check(method, path, res)
		}
	}

	f := newMatrixFixture(t, ts, n)
	m := masterKey()
	A, B, C, G, R, P := f.A, f.B, f.C, f.G, f.R, f.P
	// Operations and public routes; the ones still in notYetRegistered are
	// checked once their branch has landed.
	v.call(ts, "GET", "/healthz", nil, nil)
	v.call(ts, "GET", "/openapi.json", nil, nil)
	for _, c := range []struct {
		path string
		hdr  map[string]string
	}{{"/readyz", nil}, {"/metrics", m}, {"/stats", m}, {"/backup", m}} {
		if res := ts.as(t).callWith("GET", c.path, nil, c.hdr); !notYetRegistered["GET "+c.path] {
			v.check("GET", c.path, res)
		}
	}
	// A backup answer (the matrix server has no Options.Backup: 404).
	bs := newTestServer(t, func(o *rest.Options) {
		o.Backup = func(_ context.Context, w io.Writer) error {
			_, err := w.Write([]byte("backup stream"))
			return err
		}
	})
	v.check("GET", "/backup", bs.as(t).callWith("GET", "/backup", nil, m))
	// Detail lists and search hits.
	for _, p := range []string{"/ctx/%s/friends?detail", "/ctx/%s/groups?detail", "/ctx/%s/rooms?detail", "/ctx/%s/strangers?detail&limit=5", "/ctx/%s/friends", "/ctx/%s/strangers?ids=" + C} {
		v.call(ts, "GET", fmt.Sprintf(p, A), nil, m).ok(200)
	}
	v.call(ts, "GET", "/ctx?color=red&_limit=3&_sort=-ts", nil, m).ok(200)
	v.call(ts, "GET", "/groups?color=red", nil, m).ok(200)
	v.call(ts, "GET", "/rooms?color=red", nil, m).ok(200)
	v.call(ts, "GET", "/ctx/"+A+"/attributes/color", nil, m).expect(200, `"red"`)
	// A conversation with a recalled and an edited record: history,
	// recent items and the conversation list carry both.
	ts.online(A, "s1")
	say := func(from, target, body string) uint64 {
		t.Helper()
		res, err := ts.svc.Say(context.Background(), chat.User(from), "s1", chat.SayTarget{Type: chat.TypeFriend, ID: target},
			[]byte(fmt.Sprintf(`{"content":{"media":0,"body":%q}}`, body)))
		if err != nil {
			t.Fatalf("say: %v", err)
		}
		return res.Seq
	}
	s1 := say(A, B, "first")
	s2 := say(A, B, "second")
	if _, err := ts.svc.Edit(context.Background(), chat.User(A), chat.ConvRef{Kind: "friend", ID: B}, s2, chat.Content{Media: 0, Body: "second, edited"}); err != nil {
		t.Fatalf("edit: %v", err)
	}
	v.call(ts, "DELETE", fmt.Sprintf("/ctx/%s/conversations/friend/%s/messages/%d", A, B, s1), nil, signed()).ok(204)
	hist := string(v.call(ts, "GET", fmt.Sprintf("/ctx/%s/friends/%s/chats?limit=10", A, B), nil, m).ok(200).Body)
	if !strings.Contains(hist, `"recalled":true`) || !strings.Contains(hist, `"edited":`) {
		t.Errorf("history lacks the recalled and edited records: %s", hist)
	}
	v.call(ts, "GET", fmt.Sprintf("/ctx/%s/friends/%s/chats?after=0", A, B), nil, m).ok(200)
	v.call(ts, "GET", fmt.Sprintf("/ctx/%s/friends/%s/chats/%d/edits", A, B, s2), nil, m).ok(200)
	v.call(ts, "GET", "/ctx/"+B+"/friends?detail", nil, m).ok(200)
	v.call(ts, "POST", fmt.Sprintf("/ctx/%s/conversations/friend/%s/read", B, A), map[string]any{"seq": s2}, m).ok(204)
	conv := string(v.call(ts, "GET", "/ctx/"+B+"/conversations?limit=10", nil, m).ok(200).Body)
	if !strings.Contains(conv, `"last":{`) {
		t.Errorf("conversation list without a last record: %s", conv)
	}
	v.call(ts, "GET", fmt.Sprintf("/groups/%s/chats/1/reads", G), nil, m).ok(200)
	v.call(ts, "GET", "/ctx/"+A+"/strangers/"+C, nil, m).ok(200)
	// A ban shows in the user detail.
	v.call(ts, "PUT", "/ctx/"+B+"/ban", map[string]any{"until": 0, "reason": "spam"}, m).ok(200)
	v.call(ts, "GET", "/ctx/"+B, nil, m).ok(200)
	// Errors.
	v.call(ts, "GET", "/ctx/"+A, nil, map[string]string{"X-ML-AppId": testApp, "X-ML-APIKey": "wrong"}).expectError(401, chat.CodeUnauthorized)
	v.call(ts, "POST", "/tokens", map[string]string{"user": A}, signed()).expectError(403, chat.CodeUnauthorized)
	v.call(ts, "GET", "/groups/nope", nil, m).expectError(404, chat.CodeNotFound)
	v.call(ts, "GET", "/ctx/"+A+"/attributes/nope", nil, m).expectError(404, chat.CodeNotFound)
	v.call(ts, "GET", "/ctx/"+A+"/friends/"+C, nil, m).expectError(404, chat.CodeNotFound)
	v.call(ts, "DELETE", "/groups/"+G+"/members/"+A, nil, m).expectError(409, chat.CodeConflict)
	v.call(ts, "POST", "/ctx/"+A+"/attributes", "[1]", m).expectError(400, chat.CodeInvalid)
	v.call(ts, "POST", "/tokens", map[string]string{"user": A, "ttl": "soon"}, m).expectError(400, chat.CodeInvalid)
	many := make([]string, 60)
	for i := range many {
		many[i] = fmt.Sprintf("member%d", i)
	}
	v.call(ts, "POST", "/groups", map[string]any{"owner": A, "members": many}, m).expectError(400, chat.CodeMemberLimit)
	v.call(ts, "POST", "/ctx/"+A+"/attributes", map[string]string{"big": strings.Repeat("x", 5000)}, m).expectError(413, chat.CodeTooLong)
	v.call(ts, "POST", "/attachment", "not a form", m).expectError(400, chat.CodeUpload)
	v.call(ts, "GET", "/ctx/"+A+"/friends/"+B+"/chats?limit=x", nil, m).expectError(400, chat.CodeInvalid)
	v.call(ts, "POST", "/system/nobody", map[string]any{"content": map[string]any{"media": 0, "body": "hi"}}, m).expectError(404, chat.CodeNotFound)
	// Files: an image with its thumbnail, a range, a missing file.
	var img bytes.Buffer
	_ = png.Encode(&img, image.NewGray(image.Rect(0, 0, 300, 200)))
	var up bytes.Buffer
	w := multipart.NewWriter(&up)
	pw, _ := w.CreateFormFile("attachment", "a.png")
	_, _ = pw.Write(img.Bytes())
	_ = w.Close()
	hdr := signed()
	hdr["Content-Type"] = w.FormDataContentType()
	var urls []string
	v.call(ts, "POST", "/attachment", up.Bytes(), hdr).ok(201).decode(&urls)
	if len(urls) != 2 {
		t.Fatalf("upload of an image: %v", urls)
	}
	file := urls[0][strings.Index(urls[0], "/attachments/"):]
	v.call(ts, "GET", file, nil, nil).ok(200)
	v.call(ts, "GET", file, nil, map[string]string{"Range": "bytes=0-9"}).ok(206)
	v.call(ts, "GET", file, nil, map[string]string{"Range": "bytes=999999-"}).ok(416)
	v.call(ts, "GET", "/attachments/nothing/here.png", nil, nil).expectError(404, chat.CodeNotFound)
	v.call(ts, "GET", "/rooms/"+R, nil, m).ok(200)
	v.call(ts, "GET", "/passengers/"+P, nil, m).ok(200)

	// Every registered operation answered with success at least once.
	for key := range operations(doc) {
		if notYetRegistered[key] {
			continue
		}
		ok := false
		for status := range v.seen[key] {
			ok = ok || status < 300
		}
		if !ok {
			t.Errorf("%s: no success answer was validated", key)
		}
	}
	total, byStatus := 0, map[int]int{}
	for _, st := range v.seen {
		for status, c := range st {
			total += c
			byStatus[status] += c
		}
	}
	t.Logf("%d answers of %d operations validated against the document; by status %v", total, len(v.seen), byStatus)
}

// Ensure docs/api.md is the rendering of the document (-update-api-doc
// rewrites it).
func TestOpenAPI_APIDoc(t *testing.T) {
	doc := loadOpenAPI(t)
	got := renderAPIDoc(doc)
	const path = "../docs/api.md"
	if *updateAPIDoc {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("docs/api.md is stale: run go test ./rest -run TestOpenAPI_APIDoc -update-api-doc")
	}
}

// renderAPIDoc renders the document as docs/api.md: per tag, each
// operation with who may call it, its parameters, body, answers and error
// codes; then the named schemas. Schemas are written JSON-ish: `"f"?: T`
// an optional field, `[T]` an array, `A | B` either, `{…}` any object.
func renderAPIDoc(doc *openapi3.T) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# REST API reference\n\n")
	p("<!-- generated from rest/openapi.yaml by TestOpenAPI_APIDoc: go test ./rest -run TestOpenAPI_APIDoc -update-api-doc -->\n\n")
	p("Generated from mqim's OpenAPI 3.1 document, [rest/openapi.yaml](../rest/openapi.yaml), which a running server serves at `GET /openapi.json` (no credentials). ")
	p("The tests of `rest` hold the document to the registered routes and the access policy, and validate real answers against it; the MaxIM background of each endpoint is in [maxim.md](maxim.md).\n\n")
	p("%s\n", strings.TrimSpace(doc.Info.Description))
	p("\nShapes are written JSON-ish: `\"f\"?: T` is an optional field, `[T]` an array of T, `A | B` either, `{…}` an object that may hold other fields, `any` any JSON value; named shapes link to [Schemas](#schemas).\n\n")

	byTag := map[string][]string{}
	ops := operations(doc)
	for key, op := range ops {
		byTag[op.Tags[0]] = append(byTag[op.Tags[0]], key)
	}
	for _, tg := range doc.Tags {
		p("- [%s](#%s): %s\n", tg.Name, tg.Name, strings.TrimSuffix(tg.Description, "."))
	}
	p("- [Errors](#errors)\n- [Schemas](#schemas)\n")
	p("\n## Errors\n\nEvery error answer is [Error](#error) `{\"errorCode\": integer, \"errorMessage\": string}`. The statuses and their MaxIM codes:\n\n")
	p("| status | codes | meaning |\n|---|---|---|\n")
	errResponses := map[string]string{} // status → component
	for name, r := range doc.Components.Responses {
		if codes := errorCodes(r.Value); codes != "" {
			errResponses[name] = codes
		}
	}
	var errRows []string
	for name, codes := range errResponses {
		errRows = append(errRows, fmt.Sprintf("| %s | %s | %s |\n", statusOf(doc, name), codes, *doc.Components.Responses[name].Value.Description))
	}
	sort.Strings(errRows)
	for _, row := range errRows {
		p("%s", row)
	}
	methodOrder := map[string]int{"GET": 0, "POST": 1, "PUT": 2, "DELETE": 3}
	for _, tg := range doc.Tags {
		keys := byTag[tg.Name]
		sort.Slice(keys, func(i, j int) bool {
			mi, pi, _ := strings.Cut(keys[i], " ")
			mj, pj, _ := strings.Cut(keys[j], " ")
			if pi != pj {
				return pi < pj
			}
			return methodOrder[mi] < methodOrder[mj]
		})
		p("\n## %s\n\n%s\n", tg.Name, tg.Description)
		for _, key := range keys {
			renderOperation(&b, doc, key, ops[key])
		}
	}

	p("\n## Schemas\n")
	names := make([]string, 0, len(doc.Components.Schemas))
	for name, s := range doc.Components.Schemas {
		if linked(s.Value) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		s := doc.Components.Schemas[name].Value
		p("\n### %s\n\n", name)
		if s.Description != "" {
			p("%s\n\n", s.Description)
		}
		p("`%s`\n\n", shape(&openapi3.SchemaRef{Value: s}, false))
		for _, f := range fieldOrder(s) {
			fs := s.Properties[f]
			opt := ""
			if !slices.Contains(s.Required, f) {
				opt = " (optional)"
			}
			desc := ""
			if fs.Value != nil && fs.Value.Description != "" {
				desc = ": " + fs.Value.Description
			}
			p("- `%s` %s%s%s\n", f, shapeLink(fs), opt, desc)
		}
	}
	return b.String()
}

// renderOperation writes one operation.
func renderOperation(b *strings.Builder, doc *openapi3.T, key string, op *openapi3.Operation) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("\n### `%s`\n\n%s.", key, op.Summary)
	if op.Description != "" {
		p(" %s", op.Description)
	}
	p("\n\n")
	keys, token := access(op)
	who := map[string]string{
		"public": "no credentials",
		"key":    "any app key",
		"strict": "any app key; only the master key when `app.strict_admin` is on",
		"master": "the master key only",
	}[keys]
	if keys != "public" {
		if token != "" {
			who += "; a token: " + token
		} else {
			who += "; no token"
		}
	}
	p("- **Who**: %s\n", who)
	var params []string
	for _, pr := range op.Parameters {
		v := pr.Value
		kind := v.In
		if v.AllowEmptyValue {
			kind += ", flag"
		} else if t := shape(v.Schema, false); t != "string" {
			kind += ", " + t
		}
		params = append(params, fmt.Sprintf("`%s` (%s): %s", v.Name, kind, strings.TrimSuffix(v.Description, ".")))
	}
	if len(params) > 0 {
		p("- **Parameters**: %s\n", strings.Join(params, "; "))
	}
	if rb := op.RequestBody; rb != nil {
		for _, mt := range sortedKeys(rb.Value.Content) {
			req := ""
			if rb.Value.Required {
				req = ", required"
			}
			p("- **Body** (%s%s): %s", mt, req, bodyShape(rb.Value.Content[mt].Schema))
			if d := rb.Value.Description; d != "" {
				p(". %s", d)
			}
			p("\n")
		}
	}
	var errs []string
	for _, code := range sortedKeys(op.Responses.Map()) {
		r := op.Responses.Map()[code].Value
		if errorCodes(r) != "" {
			errs = append(errs, code)
			continue
		}
		p("- **%s**: %s", code, strings.TrimSuffix(*r.Description, "."))
		for _, mt := range sortedKeys(r.Content) {
			s := r.Content[mt].Schema
			switch {
			case s == nil:
				p(" (%s)", mt)
			case mt == "application/json":
				p(": %s", bodyShape(s))
			default:
				p(" (%s): %s", mt, bodyShape(s))
			}
		}
		p("\n")
	}
	if len(errs) > 0 {
		p("- **[Errors](#errors)**: %s\n", strings.Join(errs, ", "))
	}
}

// statusOf returns the status that the operations answer with the
// response component name.
func statusOf(doc *openapi3.T, name string) string {
	for _, op := range operations(doc) {
		for code, r := range op.Responses.Map() {
			if r.Ref == "#/components/responses/"+name {
				return code
			}
		}
	}
	return "?"
}

// errorCodes returns the MaxIM codes of an error answer ("5001 5008"),
// or "" when r is not one.
func errorCodes(r *openapi3.Response) string {
	mt := r.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || !strings.HasSuffix(mt.Schema.Ref, "/Error") {
		return ""
	}
	var codes []string
	s := mt.Schema.Value
	for _, part := range append([]*openapi3.SchemaRef{{Value: s}}, s.AllOf...) {
		ec := part.Value.Properties["errorCode"]
		if ec == nil || ec.Value == nil {
			continue
		}
		if ec.Value.Const != nil {
			codes = append(codes, fmt.Sprint(ec.Value.Const))
		}
		for _, e := range ec.Value.Enum {
			codes = append(codes, fmt.Sprint(e))
		}
	}
	return strings.Join(codes, ", ")
}

// linked reports whether a named schema is written by name (an object
// with fields) rather than inline.
func linked(s *openapi3.Schema) bool { return s != nil && len(s.Properties) > 0 }

// bodyShape is shape in code quotes, or a link for a named schema.
func bodyShape(s *openapi3.SchemaRef) string { return shapeLink(s) }

// shapeLink renders s: a named object schema as a link, the rest inline
// in code quotes.
func shapeLink(s *openapi3.SchemaRef) string {
	if name, ok := schemaName(s); ok {
		return fmt.Sprintf("[%s](#%s)", name, strings.ToLower(name))
	}
	if s != nil && s.Value != nil && s.Value.Items != nil {
		if name, ok := schemaName(s.Value.Items); ok && s.Value.Type.Is("array") {
			return fmt.Sprintf(`\[[%s](#%s)\]`, name, strings.ToLower(name))
		}
	}
	return "`" + shape(s, false) + "`"
}

// schemaName returns the component name of a reference to a named object
// schema.
func schemaName(s *openapi3.SchemaRef) (string, bool) {
	if s == nil || !strings.HasPrefix(s.Ref, "#/components/schemas/") || !linked(s.Value) {
		return "", false
	}
	return strings.TrimPrefix(s.Ref, "#/components/schemas/"), true
}

// shape renders a schema JSON-ish; nested names stay names.
func shape(s *openapi3.SchemaRef, nested bool) string {
	if s == nil || s.Value == nil {
		return "any"
	}
	if name, ok := schemaName(s); ok && nested {
		return name
	}
	v := s.Value
	if v.Const != nil {
		c, _ := json.Marshal(v.Const)
		return string(c)
	}
	if len(v.Enum) > 0 {
		var alts []string
		for _, e := range v.Enum {
			c, _ := json.Marshal(e)
			alts = append(alts, string(c))
		}
		return strings.Join(alts, " | ")
	}
	if alts := append(append([]*openapi3.SchemaRef{}, v.AnyOf...), v.OneOf...); len(alts) > 0 {
		var out []string
		for _, a := range alts {
			out = append(out, shape(a, true))
		}
		return strings.Join(out, " | ")
	}
	if v.Type == nil || len(*v.Type) == 0 {
		if len(v.Properties) > 0 {
			return objectShape(v)
		}
		return "any"
	}
	var out []string
	for _, t := range *v.Type {
		switch t {
		case "array":
			out = append(out, "["+shape(v.Items, true)+"]")
		case "object":
			out = append(out, objectShape(v))
		default:
			if t == "integer" && v.Min != nil {
				t = fmt.Sprintf("integer ≥ %v", *v.Min)
			}
			out = append(out, t)
		}
	}
	return strings.Join(out, " | ")
}

// objectShape renders an object's fields, required ones first.
func objectShape(v *openapi3.Schema) string {
	if len(v.Properties) == 0 {
		if ap := v.AdditionalProperties.Schema; ap != nil {
			return "{…: " + shape(ap, true) + "}"
		}
		return "{…}"
	}
	var fields []string
	for _, f := range fieldOrder(v) {
		opt := "?"
		if slices.Contains(v.Required, f) {
			opt = ""
		}
		fields = append(fields, fmt.Sprintf("%q%s: %s", f, opt, shape(v.Properties[f], true)))
	}
	if v.AdditionalProperties.Has == nil || *v.AdditionalProperties.Has {
		fields = append(fields, "…")
	}
	return "{" + strings.Join(fields, ", ") + "}"
}

// fieldOrder is the required fields in their order, then the others by
// name.
func fieldOrder(v *openapi3.Schema) []string {
	var out []string
	for _, f := range v.Required {
		if _, ok := v.Properties[f]; ok {
			out = append(out, f)
		}
	}
	var rest []string
	for f := range v.Properties {
		if !slices.Contains(out, f) {
			rest = append(rest, f)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
