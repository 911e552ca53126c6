package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqim/mqim/attachment"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/rest"
)

// matrixRoute is one REST endpoint of the authorization matrix: its body
// and its success status with valid credentials; admin endpoints need the
// master key in strict mode (docs/maxim.md §2.3).
type matrixRoute struct {
	body   any // string (placeholders filled) or []byte (multipart)
	status int
	admin  adminLevel
}

// adminLevel is which key callers a route refuses.
type adminLevel int

const (
	anyKey     adminLevel = iota // every app key
	strictAdm                    // the master key in strict mode
	masterOnly                   // always the master key (tokens, account control)
)

// matrixRoutes lists every authenticated route by its Fiber pattern. Path
// parameters are filled from the cell's fixture (fill).
func matrixRoutes(upload []byte) map[string]matrixRoute {
	attrs := `{"k":1}`
	return map[string]matrixRoute{
		"GET /ctx":                           {nil, 200, anyKey},
		"GET /ctx/:uid":                      {nil, 200, anyKey},
		"POST /ctx/:uid":                     {nil, 200, anyKey},
		"POST /ctx/:uid/attributes":          {attrs, 201, anyKey},
		"PUT /ctx/:uid/attributes":           {attrs, 201, anyKey},
		"GET /ctx/:uid/attributes":           {nil, 200, anyKey},
		"GET /ctx/:uid/attributes/:name":     {nil, 200, anyKey},
		"DELETE /ctx/:uid/attributes":        {nil, 204, anyKey},
		"DELETE /ctx/:uid/installs":          {`{"install":"i1"}`, 204, anyKey},
		"POST /ctx/:uid/installs":            {`{"install":"i1"}`, 204, anyKey},
		"GET /ctx/:uid/friends":              {nil, 200, anyKey},
		"POST /ctx/:uid/friends":             {`["{C}"]`, 201, anyKey},
		"GET /ctx/:uid/friends/:fid":         {nil, 200, anyKey},
		"POST /ctx/:uid/friends/:fid":        {nil, 201, anyKey},
		"DELETE /ctx/:uid/friends/:fid":      {nil, 204, anyKey},
		"GET /ctx/:uid/friends/:fid/chats":   {nil, 200, anyKey},
		"GET /ctx/:uid/groups":               {nil, 200, anyKey},
		"GET /ctx/:uid/rooms":                {nil, 200, anyKey},
		"GET /ctx/:uid/strangers":            {nil, 200, anyKey},
		"GET /ctx/:uid/strangers/:sid":       {nil, 200, anyKey},
		"GET /ctx/:uid/strangers/:sid/chats": {nil, 200, anyKey},
		"POST /groups":                       {`{"owner":"{A}","members":["{B}"]}`, 201, anyKey},
		"GET /groups":                        {nil, 200, anyKey},
		"GET /groups/:gid":                   {nil, 200, anyKey},
		"POST /groups/:gid":                  {nil, 200, anyKey},
		"PUT /groups/:gid":                   {`{"members":["{C}"]}`, 201, strictAdm},
		"DELETE /groups/:gid":                {nil, 204, strictAdm},
		"POST /groups/:gid/attributes":       {attrs, 201, anyKey},
		"PUT /groups/:gid/attributes":        {attrs, 201, anyKey},
		"GET /groups/:gid/attributes":        {nil, 200, anyKey},
		"GET /groups/:gid/attributes/:name":  {nil, 200, anyKey},
		"DELETE /groups/:gid/attributes":     {nil, 204, anyKey},
		"POST /groups/:gid/members":          {`{"members":["{C}"]}`, 201, anyKey},
		"DELETE /groups/:gid/members":        {`{"members":["{B}"]}`, 204, anyKey},
		"POST /groups/:gid/members/:uid":     {nil, 201, anyKey},
		"DELETE /groups/:gid/members/:uid":   {nil, 204, anyKey},
		"GET /groups/:gid/chats":             {nil, 200, anyKey},
		"DELETE /groups/:gid/chats":          {nil, 204, strictAdm},
		"POST /rooms":                        {`{"members":["{A}"]}`, 201, anyKey},
		"GET /rooms":                         {nil, 200, anyKey},
		"GET /rooms/:rid":                    {nil, 200, anyKey},
		"POST /rooms/:rid":                   {nil, 200, anyKey},
		"PUT /rooms/:rid":                    {`{"members":["{C}"]}`, 201, anyKey},
		"DELETE /rooms/:rid":                 {nil, 204, strictAdm},
		"POST /rooms/:rid/attributes":        {attrs, 201, anyKey},
		"PUT /rooms/:rid/attributes":         {attrs, 201, anyKey},
		"GET /rooms/:rid/attributes":         {nil, 200, anyKey},
		"GET /rooms/:rid/attributes/:name":   {nil, 200, anyKey},
		"DELETE /rooms/:rid/attributes":      {nil, 204, anyKey},
		"POST /rooms/:rid/members":           {`{"members":["{C}"]}`, 201, anyKey},
		"DELETE /rooms/:rid/members":         {`{"members":["{B}"]}`, 204, anyKey},
		"POST /rooms/:rid/members/:uid":      {nil, 201, anyKey},
		"DELETE /rooms/:rid/members/:uid":    {nil, 204, anyKey},
		"POST /passengers":                   {`{"id":"{P}x","name":"n"}`, 201, anyKey},
		"GET /passengers/:pid":               {nil, 200, anyKey},
		"POST /passengers/:pid":              {nil, 200, anyKey},
		"GET /passengers/:pid/chats/:uid":    {nil, 200, anyKey},
		"POST /system":                       {`{"content":{"media":0,"body":"hi"}}`, 202, strictAdm},
		"POST /system/:target":               {`{"content":{"media":0,"body":"hi"}}`, 202, strictAdm},
		"POST /attachment":                   {upload, 201, anyKey},
		// The dashboard summary; this server has no metrics, so the
		// master key gets 400/5009 ("metrics are off").
		"GET /stats": {nil, 400, masterOnly},

		// Recall and edit history (messages.go).
		"DELETE /ctx/:uid/conversations/:kind/:id/messages/:seq": {nil, 204, anyKey},
		"GET /ctx/:uid/friends/:fid/chats/:seq/edits":            {nil, 200, anyKey},
		"GET /ctx/:uid/strangers/:sid/chats/:seq/edits":          {nil, 200, anyKey},
		"GET /groups/:gid/chats/:seq/edits":                      {nil, 200, anyKey},
		"GET /passengers/:pid/chats/:uid/:seq/edits":             {nil, 200, anyKey},
		// Sync: conversations and read cursors.
		"GET /ctx/:uid/conversations":                 {nil, 200, anyKey},
		"POST /ctx/:uid/conversations/:kind/:id/read": {`{"seq":1}`, 204, anyKey},
		"GET /groups/:gid/chats/:seq/reads":           {nil, 200, anyKey},
		// Tokens and account control (accounts.go).
		"POST /tokens":            {`{"user":"{A}","ttl":"1h"}`, 201, masterOnly},
		"DELETE /ctx/:uid/tokens": {nil, 200, masterOnly},
		"POST /ctx/:uid/kick":     {nil, 200, masterOnly},
		"PUT /ctx/:uid/ban":       {`{"until":0,"reason":"matrix"}`, 200, masterOnly},
		"DELETE /ctx/:uid/ban":    {nil, 204, masterOnly},
		"DELETE /ctx/:uid":        {nil, 204, masterOnly},
		// Backup (backup.go): the matrix server has no Options.Backup.
		"GET /backup": {nil, 404, masterOnly},
	}
}

// matrixFixture is one cell's objects: users A, B (friends; A-C
// strangers), group G (owner A, member B), room R (A, B), passenger P, a
// record in each conversation and attributes {"color":"red"} everywhere.
type matrixFixture struct{ A, B, C, G, R, P string }

func newMatrixFixture(t *testing.T, ts *testServer, n int) matrixFixture {
	t.Helper()
	f := matrixFixture{A: fmt.Sprintf("u%da", n), B: fmt.Sprintf("u%db", n), C: fmt.Sprintf("u%dc", n),
		G: fmt.Sprintf("%032x", n), R: fmt.Sprintf("r%d", n), P: fmt.Sprintf("p%d", n)}
	red := chat.Attributes{"color": []byte(`"red"`)}
	now := ts.now()
	err := ts.db.Update(context.Background(), func(tx chat.Tx) error {
		for _, u := range []string{f.A, f.B, f.C} {
			if err := tx.PutUser(&chat.UserRecord{ID: u, Attributes: red.Clone(), Installs: []string{"i1"}, TS: now}); err != nil {
				return err
			}
		}
		if err := tx.PutFriendship(&chat.Friendship{ID: chat.NewFriendshipID(), From: f.A, To: f.B, NS: testApp, TS: now}); err != nil {
			return err
		}
		for _, p := range [][2]string{{f.A, f.C}, {f.C, f.A}} {
			if err := tx.PutStranger(&chat.Stranger{User: p[0], Other: p[1], TS: now, Last: now}); err != nil {
				return err
			}
		}
		if err := tx.PutGroup(&chat.Group{ID: f.G, Owner: f.A, Members: []string{f.B}, Attributes: red.Clone(), TS: now}); err != nil {
			return err
		}
		if err := tx.PutRoom(&chat.Room{ID: f.R, Members: []string{f.A, f.B}, Attributes: red.Clone(), TS: now}); err != nil {
			return err
		}
		return tx.PutPassenger(&chat.PassengerRecord{ID: f.P, Attributes: red.Clone(), TS: now})
	})
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	for _, c := range []chat.Conv{chat.FriendConv(f.A, f.B), chat.GroupConv(f.G), chat.StrangerConv(f.A, f.C), chat.PassengerConv(f.P, f.A)} {
		ts.seed(c, f.A, "secret of "+string(c), now-1000)
	}
	return f
}

// fill replaces the route parameters and body placeholders with the
// fixture's ids.
func (f matrixFixture) fill(s string) string {
	return strings.NewReplacer(
		":uid", f.A, ":fid", f.B, ":sid", f.C, ":gid", f.G, ":rid", f.R, ":pid", f.P, ":name", "color", ":target", f.A,
		":kind", "friend", ":id", f.B, ":seq", "1",
		"{A}", f.A, "{B}", f.B, "{C}", f.C, "{P}", f.P,
	).Replace(s)
}

// matrixCred is one way of presenting (or not) credentials.
type matrixCred struct {
	name string
	hdr  func() map[string]string
	// role is what the credential proves: RoleNone means refused (401).
	role chat.Role
}

func matrixCreds() []matrixCred {
	app := func(kv ...string) map[string]string {
		h := map[string]string{"X-ML-AppId": testApp}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	now := func() int64 { return time.Now().UnixMilli() }
	return []matrixCred{
		{"NoCredentials", func() map[string]string { return map[string]string{} }, chat.RoleNone},
		{"AppIDOnly", func() map[string]string { return app() }, chat.RoleNone},
		{"UnknownApp", func() map[string]string {
			return map[string]string{"X-ML-AppId": "000000000000000000000000", "X-ML-Request-Sign": chat.Sign(testKey, now())}
		}, chat.RoleNone},
		{"BadSign", func() map[string]string { return app("X-ML-Request-Sign", chat.Sign("not-the-key", now())) }, chat.RoleNone},
		{"StaleSign", func() map[string]string { return app("X-ML-Request-Sign", chat.Sign(testKey, now()-16*60_000)) }, chat.RoleNone},
		{"FutureSign", func() map[string]string { return app("X-ML-Request-Sign", chat.Sign(testKey, now()+16*60_000)) }, chat.RoleNone},
		{"SignedClientKey", func() map[string]string { return app("X-ML-Request-Sign", chat.Sign(testKey, now())) }, chat.RoleClient},
		{"RawClientKey", func() map[string]string { return app("X-ML-APIKey", testKey) }, chat.RoleClient},
		{"RawClientKeyAsSign", func() map[string]string { return app("X-ML-Request-Sign", testKey) }, chat.RoleClient},
		{"MasterKey", func() map[string]string { return app("X-ML-MasterKey", testMaster) }, chat.RoleMaster},
		{"SignedMasterKey", func() map[string]string { return app("X-ML-Request-Sign", chat.Sign(testMaster, now())) }, chat.RoleMaster},
	}
}

// Ensure every REST endpoint answers every credential form exactly as
// specified, in lenient and strict admin mode: refused credentials get
// 401/5003 and change nothing; any app key passes in lenient mode; in
// strict mode admin endpoints give client keys 403/5003 and change nothing;
// accepted requests get their documented success status. A route added to
// the server without a row here fails the test.
func TestAuthzMatrix_REST(t *testing.T) {
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "a.txt")
	_, _ = fw.Write([]byte("hello"))
	_ = mw.Close()
	routes := matrixRoutes(form.Bytes())
	uploadType := mw.FormDataContentType()
	cells := 0
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			ts := newTestServer(t, func(o *rest.Options) {
				o.StrictAdmin = strict
				o.Log = zerolog.Nop()
				st, err := attachment.Open(attachment.Options{Dir: filepath.Join(t.TempDir(), "att")})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				o.Attachments = st
				o.UploadLimit = 1 << 20
			})
			checkRouteCoverage(t, ts, routes)

			// Refused credentials share one fixture, checked unchanged at
			// the end.
			shared := newMatrixFixture(t, ts, 0)
			before := matrixSnapshot(ts, shared)
			n := 1
			keys := make([]string, 0, len(routes))
			for k := range routes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, key := range keys {
				r := routes[key]
				method, pattern, _ := strings.Cut(key, " ")
				for _, cred := range matrixCreds() {
					f := shared
					want, code := r.status, 0
					switch {
					case cred.role == chat.RoleNone:
						want, code = 401, chat.CodeUnauthorized
					case r.admin == masterOnly && cred.role != chat.RoleMaster,
						strict && r.admin == strictAdm && cred.role != chat.RoleMaster:
						want, code = 403, chat.CodeUnauthorized
					}
					if want < 300 {
						f = newMatrixFixture(t, ts, n)
						n++
					}
					res := f.call(ts.as(t), method, pattern, r, cred.hdr(), uploadType)
					cells++
					if code != 0 {
						if res.Status != want || errorCode(res.Body) != code {
							t.Errorf("%s as %s: %d %s, want %d/%d", key, cred.name, res.Status, res.Body, want, code)
						}
						continue
					}
					if res.Status != want {
						t.Errorf("%s as %s: %d %s, want %d", key, cred.name, res.Status, res.Body, want)
					}
				}
			}
			if after := matrixSnapshot(ts, shared); after != before {
				t.Errorf("refused requests changed the data:\nbefore %s\nafter  %s", before, after)
			}
			// Public by design: the same answer whatever the credentials.
			for _, cred := range matrixCreds() {
				ts.as(t).callWith("GET", "/healthz", nil, cred.hdr()).expect(200, `{"status":"ok"}`)
				ts.as(t).callWith("GET", "/readyz", nil, cred.hdr()).expect(200, `{"status":"ready","version":"","uptime_s":"*","checks":{}}`)
				cells++
				ts.as(t).callWith("OPTIONS", "/ctx/"+shared.A, nil, cred.hdr()).ok(204)
				ts.as(t).callWith("GET", "/attachments/nothing/here.png", nil, cred.hdr()).expectError(404, chat.CodeNotFound)
				cells += 3
			}
		})
	}
	t.Logf("%d REST cells (routes × credentials × strict mode, plus public routes)", cells)
}

// checkRouteCoverage fails for a server route the matrix does not list.
func checkRouteCoverage(t *testing.T, ts *testServer, routes map[string]matrixRoute) {
	t.Helper()
	public := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /openapi.json": true, "GET /attachments/:dir/:file": true, "GET /attachments/*": true}
	for _, r := range ts.srv.App().GetRoutes(true) {
		key := r.Method + " " + r.Path
		switch r.Method {
		case "HEAD", "OPTIONS", "CONNECT", "TRACE", "PATCH":
			continue
		}
		if _, ok := routes[key]; !ok && !public[key] {
			t.Errorf("route %s is not in the authorization matrix", key)
		}
	}
}

// call calls route method pattern of r on f's objects with hdr: r's body
// filled in (an upload with uploadType); a members path joins C and
// removes B (the owner A cannot leave).
func (f matrixFixture) call(ts *testServer, method, pattern string, r matrixRoute, hdr map[string]string, uploadType string) *response {
	var body any
	switch b := r.body.(type) {
	case string:
		body = f.fill(b)
	case []byte:
		body = b
		hdr["Content-Type"] = uploadType
	}
	path := pattern
	if strings.Contains(path, "/members/:uid") {
		path = strings.Replace(path, ":uid", map[string]string{"POST": f.C, "DELETE": f.B}[method], 1)
	}
	return ts.callWith(method, f.fill(path), body, hdr)
}

// matrixSnapshot reads the shared fixture with the master key.
func matrixSnapshot(ts *testServer, f matrixFixture) string {
	var b strings.Builder
	for _, p := range []string{
		"/ctx/" + f.A, "/ctx/" + f.A + "/attributes", "/ctx/" + f.A + "/friends", "/ctx/" + f.A + "/strangers",
		"/ctx/" + f.A + "/friends/" + f.B + "/chats", "/groups/" + f.G, "/groups/" + f.G + "/chats", "/rooms/" + f.R,
		"/passengers/" + f.P, "/passengers/" + f.P + "/chats/" + f.A, "/ctx/" + f.A + "/strangers/" + f.C + "/chats",
	} {
		r := ts.callWith("GET", p, nil, masterSigned())
		fmt.Fprintf(&b, "%s %d %s\n", p, r.Status, r.Body)
	}
	return b.String()
}

// errorCode returns the errorCode of a MaxIM error body, or 0.
func errorCode(body []byte) int {
	var e struct {
		ErrorCode    int    `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &e) != nil || e.ErrorMessage == "" {
		return 0
	}
	return e.ErrorCode
}

// tokenAllowed lists the routes a user's own token may call on its own
// fixture (A: friend of B, stranger of C, owner of group G, member of room
// R, in a conversation with passenger P); every other route refuses it
// with 403/5003 (docs/maxim.md §2.6).
var tokenAllowed = map[string]bool{
	"GET /ctx": true, "GET /ctx/:uid": true, "POST /ctx/:uid": true,
	"POST /ctx/:uid/attributes": true, "PUT /ctx/:uid/attributes": true, "GET /ctx/:uid/attributes": true,
	"GET /ctx/:uid/attributes/:name": true, "DELETE /ctx/:uid/attributes": true,
	"DELETE /ctx/:uid/installs": true, "POST /ctx/:uid/installs": true,
	"GET /ctx/:uid/friends": true, "POST /ctx/:uid/friends": true, "GET /ctx/:uid/friends/:fid": true,
	"POST /ctx/:uid/friends/:fid": true, "DELETE /ctx/:uid/friends/:fid": true, "GET /ctx/:uid/friends/:fid/chats": true,
	"GET /ctx/:uid/groups": true, "GET /ctx/:uid/rooms": true, "GET /ctx/:uid/strangers": true,
	"GET /ctx/:uid/strangers/:sid": true, "GET /ctx/:uid/strangers/:sid/chats": true,
	"POST /groups": true, "GET /groups/:gid": true, "POST /groups/:gid": true, "PUT /groups/:gid": true,
	"DELETE /groups/:gid": true, "POST /groups/:gid/attributes": true, "PUT /groups/:gid/attributes": true,
	"GET /groups/:gid/attributes": true, "GET /groups/:gid/attributes/:name": true, "DELETE /groups/:gid/attributes": true,
	"POST /groups/:gid/members": true, "DELETE /groups/:gid/members": true, "POST /groups/:gid/members/:uid": true,
	"DELETE /groups/:gid/members/:uid": true, "GET /groups/:gid/chats": true, "DELETE /groups/:gid/chats": true,
	"GET /rooms/:rid": true, "POST /rooms/:rid": true, "GET /rooms/:rid/attributes": true, "GET /rooms/:rid/attributes/:name": true,
	"GET /passengers/:pid/chats/:uid": true, "POST /attachment": true,
	"DELETE /ctx/:uid/conversations/:kind/:id/messages/:seq": true, "GET /ctx/:uid/friends/:fid/chats/:seq/edits": true,
	"GET /ctx/:uid/strangers/:sid/chats/:seq/edits": true, "GET /groups/:gid/chats/:seq/edits": true,
	"GET /passengers/:pid/chats/:uid/:seq/edits": true, "GET /ctx/:uid/conversations": true,
	"POST /ctx/:uid/conversations/:kind/:id/read": true, "GET /groups/:gid/chats/:seq/reads": true,
	"DELETE /ctx/:uid/tokens": true,
}

// tokenOthers lists the routes any valid token may call whoever it is
// for: the user search and uploads.
var tokenOthers = map[string]bool{"GET /ctx": true, "POST /attachment": true}

// Ensure every REST route answers every token caller as the policy says,
// with app.client_key_login off: the owner's token does its own things;
// another user's token, a passenger's token and the client key (signed or
// raw) get nothing of A's; expired and revoked tokens are 401/5003, a
// banned user's token 403/5003; the master key does everything. Refused
// requests change nothing.
func TestAuthzMatrix_RESTTokens(t *testing.T) {
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "a.txt")
	_, _ = fw.Write([]byte("hello"))
	_ = mw.Close()
	routes := matrixRoutes(form.Bytes())
	uploadType := mw.FormDataContentType()
	ts := newTestServer(t, func(o *rest.Options) {
		o.NoClientKey = true
		o.Log = zerolog.Nop()
		st, err := attachment.Open(attachment.Options{Dir: filepath.Join(t.TempDir(), "att")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		o.Attachments = st
		o.UploadLimit = 1 << 20
	})
	checkRouteCoverage(t, ts, routes)
	for key := range tokenAllowed {
		if _, ok := routes[key]; !ok {
			t.Errorf("tokenAllowed lists %s, which is not a route", key)
		}
	}
	now := ts.now()
	ctx := context.Background()
	shared := newMatrixFixture(t, ts, 0)
	// The banned user is B of the shared fixture; A's old token is revoked.
	revoked := mint(t, chat.User(shared.A), now-1000, now+3_600_000)
	ts.clock.Store(now - 500) // revoked before the tokens of the cells
	if _, err := ts.svc.RevokeTokens(ctx, chat.User(shared.A)); err != nil {
		t.Fatal(err)
	}
	ts.clock.Store(now)
	if _, err := ts.svc.BanIdentity(ctx, chat.User(shared.B), 0, "matrix"); err != nil {
		t.Fatal(err)
	}
	before := matrixSnapshot(ts, shared)
	type tokenCred struct {
		name string
		hdr  func(f matrixFixture) map[string]string
		// want is the outcome for a route: 0 the route's success status.
		want func(key string) (status, code int)
		// fresh: accepted cells get a fixture of their own.
		fresh bool
	}
	refuse := func(status int) func(string) (int, int) {
		return func(string) (int, int) { return status, chat.CodeUnauthorized }
	}
	scoped := func(allowed map[string]bool) func(string) (int, int) {
		return func(key string) (int, int) {
			if allowed[key] {
				return 0, 0
			}
			return 403, chat.CodeUnauthorized
		}
	}
	app := func(kv ...string) map[string]string {
		h := map[string]string{"X-ML-AppId": testApp}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	creds := []tokenCred{
		{"OwnToken", func(f matrixFixture) map[string]string { return bearer(mint(t, chat.User(f.A), now, now+3_600_000)) }, scoped(tokenAllowed), true},
		{"OwnTokenWithAppID", func(f matrixFixture) map[string]string {
			h := bearer(mint(t, chat.User(f.A), now, now+3_600_000))
			h["X-ML-AppId"] = testApp
			return h
		}, scoped(map[string]bool{"GET /ctx/:uid": true, "GET /ctx": true}), true},
		{"OtherUsersToken", func(matrixFixture) map[string]string {
			return bearer(mint(t, chat.User("outsider"), now, now+3_600_000))
		}, scoped(tokenOthers), false},
		{"PassengerToken", func(matrixFixture) map[string]string {
			return bearer(mint(t, chat.Passenger("p-outsider"), now, now+3_600_000))
		}, scoped(tokenOthers), false},
		{"ExpiredToken", func(f matrixFixture) map[string]string {
			return bearer(mint(t, chat.User(f.A), now-7_200_000, now-3_600_000))
		}, refuse(401), false},
		{"RevokedToken", func(matrixFixture) map[string]string { return bearer(revoked) }, refuse(401), false},
		{"BannedUsersToken", func(f matrixFixture) map[string]string { return bearer(mint(t, chat.User(f.B), now, now+3_600_000)) }, refuse(403), false},
		{"ForgedToken", func(f matrixFixture) map[string]string {
			tok := mint(t, chat.User(f.A), now, now+3_600_000)
			return bearer(tok[:len(tok)-2] + "xx")
		}, refuse(401), false},
		{"NotBearer", func(f matrixFixture) map[string]string {
			return map[string]string{"Authorization": "Basic " + mint(t, chat.User(f.A), now, now+3_600_000)}
		}, refuse(401), false},
		{"SignedClientKeyOff", func(matrixFixture) map[string]string {
			return app("X-ML-Request-Sign", chat.Sign(testKey, time.Now().UnixMilli()))
		}, refuse(401), false},
		{"RawClientKeyOff", func(matrixFixture) map[string]string { return app("X-ML-APIKey", testKey) }, refuse(401), false},
		{"MasterKey", func(matrixFixture) map[string]string { return app("X-ML-MasterKey", testMaster) }, func(string) (int, int) { return 0, 0 }, true},
	}
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cells, leaks, n := 0, 0, 1
	for _, cred := range creds {
		for _, key := range keys {
			r := routes[key]
			method, pattern, _ := strings.Cut(key, " ")
			want, code := cred.want(key)
			if cred.name == "OwnTokenWithAppID" && want == 403 {
				continue // the app id changes nothing: sampled on two routes
			}
			f := shared
			if want == 0 && cred.fresh {
				f = newMatrixFixture(t, ts, n)
				n++
			}
			if want == 0 {
				want = r.status
			}
			res := f.call(ts.as(t), method, pattern, r, cred.hdr(f), uploadType)
			cells++
			if code != 0 {
				if res.Status != want || errorCode(res.Body) != code {
					if res.Status < 300 {
						leaks++
					}
					t.Errorf("%s as %s: %d %s, want %d/%d", key, cred.name, res.Status, res.Body, want, code)
				}
				continue
			}
			if res.Status != want {
				t.Errorf("%s as %s: %d %s, want %d", key, cred.name, res.Status, res.Body, want)
			}
		}
	}
	if after := matrixSnapshot(ts, shared); after != before {
		t.Errorf("refused requests changed the data:\nbefore %s\nafter  %s", before, after)
	}
	t.Logf("%d REST token cells (routes × token and key callers, client_key_login off), %d leaks", cells, leaks)
}
