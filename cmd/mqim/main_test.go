package main

import (
	"encoding/json"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/chat"
)

// Ensure a first start generates credentials, keeps them and prints them
// once; a second start on the same directory reuses them silently.
func TestMain_GeneratesCredentialsOnce(t *testing.T) {
	dir := t.TempDir()
	p := startMQIM(t, dir)
	p.stop()
	out := p.stdout.String()
	if !strings.Contains(out, p.AppID) || !strings.Contains(out, p.Key) || !strings.Contains(out, p.Master) {
		t.Fatalf("first start did not print the credentials; stdout %q", out)
	}
	fi, err := os.Stat(filepath.Join(dir, "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials.json: %v, mode %v; want 0600", err, fi)
	}

	p2 := startMQIM(t, dir)
	if p2.AppID != p.AppID || p2.Key != p.Key {
		t.Fatalf("credentials changed across restarts")
	}
	p2.stop()
	if strings.Contains(p2.stdout.String(), p.Key) {
		t.Fatalf("second start printed the key again: %q", p2.stdout.String())
	}
}

// Ensure configured credentials are used and nothing is generated.
func TestMain_ConfiguredCredentials(t *testing.T) {
	dir := t.TempDir()
	// The harness reads credentials.json, so write the configured ones there
	// too; the check is that the server does not print or replace them.
	b, _ := json.Marshal(credentials{AppID: "cfgapp", Key: "cfgkey", MasterKey: "cfgmaster"})
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startMQIM(t, dir, "MQIM_APP_ID=cfgapp", "MQIM_APP_KEY=cfgkey", "MQIM_MASTER_KEY=cfgmaster")
	expect(t, "healthz", p.do("GET", "/healthz", nil), 200)
	expect(t, "GET /ctx with configured key", p.do("GET", "/ctx", nil), 200)
	p.stop()
	if strings.Contains(p.stdout.String(), "cfgkey") {
		t.Fatalf("configured key printed")
	}
}

// Ensure a bad config file is a clear error at start, not a crash.
func TestMain_BadConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("http: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runBinary(t, "--config", path)
	if err == nil {
		t.Fatalf("mqim started with a bad config; output %s", out)
	}
	if !strings.Contains(out, "bad.yaml") || strings.Contains(out, "panic") {
		t.Fatalf("output %q: want an error naming the file and no panic", out)
	}
	out, err = runBinary(t, "--config", "../../configs/mqim.yaml", "--check-config")
	if err != nil || !strings.Contains(out, "config ok") {
		t.Fatalf("--check-config on configs/mqim.yaml: %v %s", err, out)
	}
}

// Ensure the documented requests of docs/maxim.md §3 give the documented
// responses against the real binary, and that everything survives a
// restart on the same data directory.
func TestMain_SpecExamplesAndRestart(t *testing.T) {
	dir := t.TempDir()
	p := startMQIM(t, dir)

	expect(t, "healthz", p.do("GET", "/healthz", nil), 200)

	// U3/U5/U6: attributes.
	expect(t, "U3", p.do("POST", "/ctx/testuser1/attributes", map[string]any{
		"name": "隔壁老王", "gender": "male", "age": 46, "city": "shanghai"}), 201)
	r := p.do("GET", "/ctx/testuser1/attributes", nil)
	expect(t, "U5", r, 200)
	var attrs map[string]any
	r.JSON(t, &attrs)
	if attrs["city"] != "shanghai" || attrs["age"] != float64(46) {
		t.Fatalf("U5 attributes = %v", attrs)
	}
	r = p.do("GET", "/ctx/testuser1/attributes/city", nil)
	expect(t, "U6", r, 200)
	if string(r.Body) != `"shanghai"` {
		t.Fatalf("U6 body = %s, want \"shanghai\"", r.Body)
	}
	expectError(t, "U6 missing", p.do("GET", "/ctx/testuser1/attributes/nope", nil), 404, chat.CodeNotFound)

	// U1: search by attribute; numbers match their text form.
	r = p.do("GET", "/ctx?city=shanghai&age=46", nil)
	expect(t, "U1", r, 200)
	var users []map[string]any
	r.JSON(t, &users)
	if len(users) != 1 || users[0]["id"] != "testuser1" || users[0]["online"] != false {
		t.Fatalf("U1 = %s", r.Body)
	}
	if _, ok := users[0]["ts"].(float64); !ok {
		t.Fatalf("U1 item has no ts: %s", r.Body)
	}

	// U8/U9: friendship, idempotent, both directions.
	r = p.do("POST", "/ctx/testuser1/friends/testuser2", nil)
	expect(t, "U8", r, 201)
	var fr struct {
		ID, From, To, NS string
		TS               int64
	}
	r.JSON(t, &fr)
	if len(fr.ID) != 16 || fr.From != "testuser1" || fr.To != "testuser2" || fr.NS != p.AppID || fr.TS == 0 {
		t.Fatalf("U8 = %s", r.Body)
	}
	r2 := p.do("POST", "/ctx/testuser2/friends/testuser1", nil)
	expect(t, "U8 repeat swapped", r2, 201)
	var fr2 struct{ ID, From string }
	r2.JSON(t, &fr2)
	if fr2.ID != fr.ID || fr2.From != "testuser1" {
		t.Fatalf("U8 repeat = %s, want the original friendship %s", r2.Body, r.Body)
	}
	r = p.do("GET", "/ctx/testuser2/friends/testuser1", nil)
	expect(t, "U9", r, 200)
	var info map[string]any
	r.JSON(t, &info)
	if info["id"] != fr.ID || info["online"] != false {
		t.Fatalf("U9 = %s", r.Body)
	}
	expectError(t, "U8 self", p.do("POST", "/ctx/testuser1/friends/testuser1", nil), 400, chat.CodeInvalid)

	// U12: friend list with and without detail.
	r = p.do("GET", "/ctx/testuser1/friends", nil)
	expect(t, "U12", r, 200)
	if strings.TrimSpace(string(r.Body)) != `["testuser2"]` {
		t.Fatalf("U12 = %s", r.Body)
	}
	r = p.do("GET", "/ctx/testuser1/friends?detail", nil)
	expect(t, "U12 detail", r, 200)
	var friends []map[string]any
	r.JSON(t, &friends)
	if len(friends) != 1 || friends[0]["id"] != "testuser2" || friends[0]["online"] != false {
		t.Fatalf("U12 detail = %s", r.Body)
	}
	if _, ok := friends[0]["recent"]; ok {
		t.Fatalf("U12 detail has recent without history: %s", r.Body)
	}

	// U11: empty history is [].
	r = p.do("GET", "/ctx/testuser1/friends/testuser2/chats", nil)
	expect(t, "U11", r, 200)
	if strings.TrimSpace(string(r.Body)) != "[]" {
		t.Fatalf("U11 = %s, want []", r.Body)
	}

	// G1/G3/G2/U13: groups.
	r = p.do("POST", "/groups", map[string]any{"owner": "testuser1", "members": []string{"testuser2"}})
	expect(t, "G1", r, 201)
	var gid string
	r.JSON(t, &gid)
	if len(gid) != 32 {
		t.Fatalf("G1 body = %s, want a 32-hex id string", r.Body)
	}
	expect(t, "G6", p.do("POST", "/groups/"+gid+"/attributes", map[string]any{"name": "我的测试群", "company": "maxleap"}), 201)
	r = p.do("GET", "/groups/"+gid, nil)
	expect(t, "G3", r, 200)
	var g map[string]any
	r.JSON(t, &g)
	if g["owner"] != "testuser1" || !reflect.DeepEqual(g["members"], []any{"testuser2"}) || g["id"] != nil {
		t.Fatalf("G3 = %s", r.Body)
	}
	if a, _ := g["attributes"].(map[string]any); a["name"] != "我的测试群" {
		t.Fatalf("G3 attributes = %s", r.Body)
	}
	r = p.do("GET", "/groups?company=maxleap", nil)
	expect(t, "G2", r, 200)
	var groups []map[string]any
	r.JSON(t, &groups)
	if len(groups) != 1 || groups[0]["id"] != gid {
		t.Fatalf("G2 = %s", r.Body)
	}
	r = p.do("GET", "/ctx/testuser1/groups", nil)
	expect(t, "U13", r, 200)
	if strings.TrimSpace(string(r.Body)) != fmt.Sprintf("[%q]", gid) {
		t.Fatalf("U13 (owner) = %s", r.Body)
	}
	expectError(t, "G12 owner", p.doJSON("DELETE", "/groups/"+gid+"/members", `{"members":["testuser1"]}`), 409, chat.CodeConflict)
	expectError(t, "G3 unknown", p.do("GET", "/groups/"+strings.Repeat("0", 32), nil), 404, chat.CodeNotFound)

	// R1/R3: rooms.
	r = p.do("POST", "/rooms", map[string]any{"members": []string{"testuser1", "testuser2"}, "name": "lobby"})
	expect(t, "R1", r, 201)
	var rid string
	r.JSON(t, &rid)
	r = p.do("GET", "/rooms/"+rid, nil)
	expect(t, "R3", r, 200)
	var room map[string]any
	r.JSON(t, &room)
	if a, _ := room["attributes"].(map[string]any); a["name"] != "lobby" || len(room["members"].([]any)) != 2 {
		t.Fatalf("R3 = %s", r.Body)
	}

	// P1/P2: passengers.
	r = p.do("POST", "/passengers", map[string]any{"name": "王尼玛", "qq": 88888888, "age": 28})
	expect(t, "P1", r, 201)
	var pid string
	r.JSON(t, &pid)
	r = p.do("GET", "/passengers/"+pid, nil)
	expect(t, "P2", r, 200)
	var pass map[string]any
	r.JSON(t, &pass)
	if pass["name"] != "王尼玛" || pass["qq"] != float64(88888888) || pass["id"] != nil {
		t.Fatalf("P2 = %s", r.Body)
	}

	// U2: user detail.
	r = p.do("GET", "/ctx/testuser1", nil)
	expect(t, "U2", r, 200)
	var detail struct {
		Attributes map[string]any
		Installs   []string
		Sessions   int
		Friends    []string
		Groups     []string
		Rooms      []string
		TS         int64
	}
	r.JSON(t, &detail)
	if detail.Attributes["city"] != "shanghai" || detail.Installs == nil || detail.Sessions != 0 ||
		!reflect.DeepEqual(detail.Friends, []string{"testuser2"}) || !reflect.DeepEqual(detail.Groups, []string{gid}) ||
		!reflect.DeepEqual(detail.Rooms, []string{rid}) || detail.TS == 0 {
		t.Fatalf("U2 = %s", r.Body)
	}

	// Credentials: none, bad sign, raw key in x-ml-apikey.
	expectError(t, "no credentials", p.doWith("GET", "/ctx/testuser1", nil, nil), 401, chat.CodeUnauthorized)
	expectError(t, "bad sign", p.doWith("GET", "/ctx/testuser1", nil, map[string]string{
		"X-ML-AppId": p.AppID, "X-ML-Request-Sign": chat.Sign("wrong", time.Now().UnixMilli())}), 401, chat.CodeUnauthorized)
	expect(t, "x-ml-apikey", p.doWith("GET", "/ctx/testuser1", nil, map[string]string{
		"x-ml-appid": p.AppID, "x-ml-apikey": p.Key}), 200)

	// Restart on the same directory keeps everything.
	before := map[string]string{}
	for _, path := range []string{"/ctx/testuser1", "/groups/" + gid, "/rooms/" + rid, "/passengers/" + pid,
		"/ctx/testuser1/friends/testuser2", "/ctx?_sort=id"} {
		before[path] = string(p.do("GET", path, nil).Body)
	}
	p.stop()
	p = startMQIM(t, dir)
	for path, want := range before {
		if got := string(p.do("GET", path, nil).Body); got != want {
			t.Errorf("after restart GET %s = %s, want %s", path, got, want)
		}
	}
	p.stop()
}

// doJSON sends a raw JSON body (DELETE with a body, for instance).
func (p *proc) doJSON(method, path, body string) response {
	p.t.Helper()
	return p.do(method, path, body)
}

func runBinary(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "MQIM_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}
