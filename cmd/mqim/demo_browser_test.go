package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mqim/mqim/internal/browser"
	"github.com/mqim/mqim/internal/testwait"
)

// demoLib is MQTT.js as `make web` copies it from npm for the demo page.
const demoLib = "../../web/demo/files/vendor/mqtt.min.js"

// needDemoLib makes sure the binary under test embeds MQTT.js: `make test`
// has run `make web`; elsewhere the test runs it and rebuilds the binary.
func needDemoLib(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(demoLib); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s missing in CI: `make test` runs `make web`, which copies MQTT.js from npm (web/package.json)", demoLib)
	}
	_, npmErr := exec.LookPath("npm")
	_, makeErr := exec.LookPath("make")
	needTool(t, "npm and make (MQTT.js for /demo)", "install Node.js, then make web", npmErr != nil || makeErr != nil)
	for _, c := range [][]string{{"make", "-C", "../..", "web"}, {"go", "build", "-o", binPath, "."}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	if _, err := os.Stat(demoLib); err != nil {
		t.Fatalf("make web did not produce %s: %v", demoLib, err)
	}
}

// demoTab is one chat participant: a browser tab on /demo.
type demoTab struct {
	t    *testing.T
	ctx  context.Context
	name string
}

// wait polls a JavaScript expression in the page until it is truthy (the
// bound only keeps a broken page from hanging the test).
func (d demoTab) wait(what, expr string) {
	d.t.Helper()
	_, err := chromedp.Run(d.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		d.t.Fatalf("%s: %s: %v\npage: %s", d.name, what, err, d.describe())
	}
}

// describe is what the page shows, for failure messages.
func (d demoTab) describe() string {
	s, err := chromedp.Run(d.ctx, chromedp.Evaluate[string](`JSON.stringify({status: document.getElementById("status").textContent,
		error: document.getElementById("error").textContent, presence: document.getElementById("presence").textContent,
		messages: [...document.querySelectorAll("#messages .msg")].map(li => li.textContent)})`))
	if err != nil {
		return err.Error()
	}
	return s
}

// messages are the chat's messages as "speaker:body", in the order shown;
// a message still waiting for its ack ends in " (pending)".
func (d demoTab) messages() []string {
	d.t.Helper()
	v, err := chromedp.Run(d.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#messages .msg")].map(li =>
		li.dataset.speaker + ":" + li.querySelector(".body").textContent + (li.dataset.ts ? "" : " (pending)"))`))
	if err != nil {
		d.t.Fatalf("%s: messages: %v", d.name, err)
	}
	return v
}

func (d demoTab) say(text string) {
	d.t.Helper()
	err := chromedp.Do(d.ctx,
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#send")))
	if err != nil {
		d.t.Fatalf("%s says %q: %v", d.name, text, err)
	}
}

func (d demoTab) screenshot() image.Image {
	d.t.Helper()
	b, err := chromedp.Run(d.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		d.t.Fatalf("%s: screenshot: %v", d.name, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		d.t.Fatalf("%s: screenshot: %v", d.name, err)
	}
	return img
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Ensure the browser chat demo works end to end in headless Chromium against
// the real binary: two tabs (alice with the client key, bob with a login
// token) make friends over REST, see each other's presence, chat live over
// MQTT.js on the WebSocket listener, see typing, and move their read
// cursors; a reload shows the stored history; closing bob's tab turns him
// offline on alice's page.
func TestMain_DemoBrowser(t *testing.T) {
	needDemoLib(t)
	p := startMQIM(t, t.TempDir())
	lib := p.doWith("GET", "/demo/vendor/mqtt.min.js", nil, nil)
	expect(t, "GET /demo/vendor/mqtt.min.js (embedded by make web)", lib, 200)
	root := p.doWith("GET", "/demo", nil, nil)
	expect(t, "GET /demo (redirected to /demo/, no credentials)", root, 200)

	ctx := browser.New(t, 4*time.Minute)
	// Without settings in the URL the page asks for them, with the
	// WebSocket listener's default address on the page's host.
	form := demoTab{t: t, ctx: ctx, name: "form"}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(620, 720), chromedp.Navigate(p.HTTP+"/demo/")); err != nil {
		t.Fatal(err)
	}
	form.wait("login form", `!document.getElementById("login").hidden && demo.state.status === "login"`)
	ws, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#ws")))
	if err != nil || ws != "ws://127.0.0.1:8083/mqtt" {
		t.Fatalf("default WebSocket URL %q, %v; want ws://127.0.0.1:8083/mqtt", ws, err)
	}
	loginShot := form.screenshot()

	open := func(ctx context.Context, name, user, peer, key string) demoTab {
		q := url.Values{"app": {p.AppID}, "key": {key}, "user": {user}, "peer": {peer}, "ws": {"ws://" + p.WS + "/mqtt"}}
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(620, 720),
			chromedp.Navigate(p.HTTP+"/demo/?"+q.Encode()))
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		return demoTab{t: t, ctx: ctx, name: name}
	}

	// alice signs in with the client key: the page signs with its own MD5.
	alice := open(ctx, "alice", "alice", "bob", p.Key)
	sum := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	for _, s := range []string{"", "The quick brown fox jumps over the lazy dog", "1795639137604" + p.Key + p.Key + p.Key, "ключ 你好"} {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string]("demo.md5("+jsString(s)+")"))
		if err != nil || got != sum(s) {
			t.Fatalf("page md5(%q) = %q, %v; want %s", s, got, err, sum(s))
		}
	}
	alice.wait("connected", `demo.state.status === "connected"`)
	alice.wait("bob offline", `document.getElementById("presence").dataset.state === "offline"`)
	expect(t, "alice's page made alice and bob friends", p.do("GET", "/ctx/alice/friends/bob", nil), 200)

	// bob signs in with a login token: REST with Bearer, MQTT with the token.
	token := p.mintToken(t, `{"user":"bob","ttl":"1h"}`)
	bob := open(browser.Tab(t, ctx), "bob", "bob", "alice", token)
	bob.wait("connected", `demo.state.status === "connected"`)
	bob.wait("alice online (REST at connect)", `demo.state.peerOnline === true`)
	alice.wait("bob online (online event)", `demo.state.peerOnline === true`)

	alice.say("hi bob")
	bob.wait("alice's message", `[...document.querySelectorAll("#messages .theirs .body")].some(e => e.textContent === "hi bob")`)
	alice.wait("her own message acknowledged", `document.querySelector("#messages .mine[data-ts]") !== null`)

	bob.say("hi alice, how are you?")
	alice.wait("typing seen", `demo.state.typingSeen > 0`)
	alice.wait("bob's message", `[...document.querySelectorAll("#messages .theirs .body")].some(e => e.textContent === "hi alice, how are you?")`)
	alice.say("fine, thanks")
	bob.wait("alice's second message", `document.querySelectorAll("#messages .theirs").length === 2`)

	want := []string{"alice:hi bob", "bob:hi alice, how are you?", "alice:fine, thanks"}
	alice.wait("all acknowledged", `document.querySelectorAll("#messages .msg[data-ts]").length === 3`)
	if got := alice.messages(); !slices.Equal(got, want) {
		t.Fatalf("alice's page shows %q, want %q", got, want)
	}
	// The server stored what the pages show.
	var hist []struct {
		Speaker string `json:"speaker"`
		Content struct {
			Body string `json:"body"`
		} `json:"content"`
	}
	r := p.do("GET", "/ctx/bob/friends/alice/chats", nil)
	expect(t, "history", r, 200)
	r.JSON(t, &hist)
	var stored []string
	for _, h := range hist {
		stored = append(stored, h.Speaker+":"+h.Content.Body)
	}
	if !slices.Equal(stored, want) {
		t.Fatalf("stored history %q, want %q", stored, want)
	}

	// bob's page moved his read cursor to what it shows.
	testwait.Until(t, "bob's read cursor at 3", 30*time.Second, func() bool {
		var convs []struct {
			Kind   string `json:"kind"`
			ID     string `json:"id"`
			Read   int    `json:"read"`
			Unread int    `json:"unread"`
		}
		r := p.do("GET", "/ctx/bob/conversations", nil)
		if r.Status != 200 || json.Unmarshal(r.Body, &convs) != nil {
			t.Fatalf("GET /ctx/bob/conversations: %d %s", r.Status, r.Body)
		}
		return len(convs) == 1 && convs[0].Kind == "friend" && convs[0].ID == "alice" && convs[0].Read == 3 && convs[0].Unread == 0
	})

	// bob reloads: the URL kept his settings, the history comes back in order.
	if err := chromedp.Do(bob.ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload bob: %v", err)
	}
	bob.wait("connected after reload", `demo.state.status === "connected"`)
	bob.wait("history loaded", `document.querySelectorAll("#messages .msg").length === 3`)
	if got := bob.messages(); !slices.Equal(got, want) {
		t.Fatalf("bob's page after reload shows %q, want %q", got, want)
	}
	alice.wait("bob online again", `demo.state.peerOnline === true`)
	bob.wait("alice online", `demo.state.peerOnline === true`)

	// Both windows side by side: docs/screenshots/demo.png.
	shot := sideBySide(alice.screenshot(), bob.screenshot())
	writeScreenshot(t, "demo.png", shot)
	writeScreenshot(t, "demo-login.png", loginShot)

	// bob closes his tab: alice sees him go offline.
	if err := chromedp.Cancel(bob.ctx); err != nil {
		t.Fatalf("close bob's tab: %v", err)
	}
	alice.wait("bob offline after his tab closed", `demo.state.peerOnline === false && document.getElementById("presence").textContent === "offline"`)
}

// Ensure the demo says why when the key is wrong and goes no further: the
// REST call that makes friends is refused (401/5003) and shown, and the page
// does not connect.
func TestMain_DemoBrowserBadKey(t *testing.T) {
	needDemoLib(t)
	p := startMQIM(t, t.TempDir())
	ctx := browser.New(t, 2*time.Minute)
	q := url.Values{"app": {p.AppID}, "key": {"not-the-key"}, "user": {"carol"}, "peer": {"dave"}, "ws": {"ws://" + p.WS + "/mqtt"}}
	if err := chromedp.Do(ctx, chromedp.Navigate(p.HTTP+"/demo/?"+q.Encode())); err != nil {
		t.Fatal(err)
	}
	d := demoTab{t: t, ctx: ctx, name: "carol"}
	d.wait("error shown", `document.getElementById("error").textContent.includes("5003")`)
	if got := d.describe(); !bytes.Contains([]byte(got), []byte("not connected")) {
		t.Fatalf("page after a refused key: %s", got)
	}
	r := p.do("GET", "/ctx/carol/friends/dave", nil)
	if r.Status == 200 {
		t.Fatalf("a refused page made friends: %s", r.Body)
	}
}

// writeScreenshot encodes img and, with -update-screenshots, writes it to
// docs/screenshots/name.
func writeScreenshot(t *testing.T, name string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if !*updateScreenshots {
		return
	}
	path := filepath.Join("..", "..", "docs", "screenshots", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, buf.Len())
}

// sideBySide draws a and b next to each other with a gap.
func sideBySide(a, b image.Image) image.Image {
	const gap = 12
	ab, bb := a.Bounds(), b.Bounds()
	h := max(ab.Dy(), bb.Dy())
	out := image.NewRGBA(image.Rect(0, 0, ab.Dx()+gap+bb.Dx(), h))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.RGBA{0x9a, 0xa3, 0xb3, 0xff}), image.Point{}, draw.Src)
	draw.Draw(out, image.Rect(0, 0, ab.Dx(), ab.Dy()), a, ab.Min, draw.Src)
	draw.Draw(out, image.Rect(ab.Dx()+gap, 0, ab.Dx()+gap+bb.Dx(), bb.Dy()), b, bb.Min, draw.Src)
	return out
}
