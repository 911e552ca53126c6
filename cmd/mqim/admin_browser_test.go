package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/chromedp/chromedp"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/browser"
	"github.com/mqim/mqim/internal/testwait"
)

// The admin console (/admin, docs/admin.md) driven in headless Chromium
// against the real binary: every click goes through the console's
// JavaScript to the public REST API, and the effects are checked over REST
// and with real MQTT clients.
//
//	go test ./cmd/mqim -run TestAdmin -update-screenshots
//
// rewrites docs/screenshots/admin-*.png.

// updateScreenshots makes the browser tests of the pages mqim serves (the
// admin console, the demo) rewrite their screenshots in docs/screenshots.
var updateScreenshots = flag.Bool("update-screenshots", false, "rewrite docs/screenshots/*.png from the browser tests")

// console is one browser tab on the admin console of p.
type console struct {
	t   *testing.T
	p   *proc
	ctx context.Context
}

// openConsole starts Chromium on p's /admin (the redirect to /admin/
// included), with the 1280x860 viewport of the screenshots.
func openConsole(t *testing.T, p *proc) *console {
	t.Helper()
	c := &console{t: t, p: p, ctx: browser.New(t, 5*time.Minute)}
	c.do(chromedp.EmulateViewport(1280, 860), chromedp.Navigate(p.HTTP+"/admin"))
	c.visible("#login-btn")
	return c
}

// do runs steps; 30 s bound a hang (a selector that never appears), it
// is not a timing assertion.
func (c *console) do(steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.t.Fatalf("browser: %v\npage: %s", err, c.pageText())
	}
}

// pageText is the visible text of the page, for failure messages.
func (c *console) pageText() string {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return s
}

func (c *console) visible(sel string) { c.t.Helper(); c.do(chromedp.WaitVisible(chromedp.CSS(sel))) }
func (c *console) click(sel string)   { c.t.Helper(); c.do(chromedp.Click(chromedp.CSS(sel))) }

// fill replaces the value of an input and types text into it.
func (c *console) fill(sel, text string) {
	c.t.Helper()
	c.visible(sel)
	c.eval(fmt.Sprintf(`document.querySelector(%q).value = ''`, sel))
	c.do(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// goTo opens a console page by its hash route and waits until the page is
// rendered (body[data-route] is the address of the page shown), so that
// no step acts on the page before.
func (c *console) goTo(hash string) {
	c.t.Helper()
	c.eval(fmt.Sprintf(`location.hash = %q`, hash))
	c.waitFor("page "+hash, fmt.Sprintf(`document.body.dataset.route === %q`, hash))
}

// eval runs JavaScript and decodes its value into out (nil: ignored).
func (c *console) eval(js string, out ...any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
	if err != nil {
		c.t.Fatalf("evaluate %s: %v", js, err)
	}
	if len(out) > 0 {
		if err := json.Unmarshal(v, out[0]); err != nil {
			c.t.Fatalf("evaluate %s: decode %s: %v", js, v, err)
		}
	}
}

// waitFor polls a JavaScript condition until it holds.
func (c *console) waitFor(what, cond string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		c.t.Fatalf("waiting for %s (%s): %v\npage: %s", what, cond, err, c.pageText())
	}
}

// waitText waits until the element's text contains want.
func (c *console) waitText(sel, want string) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("%s to show %q", sel, want),
		fmt.Sprintf(`(document.querySelector(%q)?.textContent || '').includes(%q)`, sel, want))
}

// text returns the element's text.
func (c *console) text(sel string) string {
	c.t.Helper()
	var s string
	c.eval(fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ''`, sel), &s)
	return s
}

// noError fails the test when the console shows an error banner.
func (c *console) noError() {
	c.t.Helper()
	var shown bool
	c.eval(`!document.querySelector('#error').hidden`, &shown)
	if shown {
		c.t.Fatalf("console error: %s", c.text("#error"))
	}
}

// login signs in with the app id and the master key.
func (c *console) login() {
	c.t.Helper()
	c.fill("#app-id", c.p.AppID)
	c.fill("#master-key", c.p.Master)
	c.click("#login-btn")
	c.visible("#nav")
	c.waitFor("the dashboard", `location.hash === '#/dashboard' && !!document.querySelector('#stats')`)
}

// screenshot writes docs/screenshots/admin-<name>.png with -update-screenshots.
func (c *console) screenshot(name string) {
	c.t.Helper()
	if !*updateScreenshots {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	// The viewport only (browser.Screenshot takes the full page).
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "..", "docs", "screenshots", "admin-"+name+".png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// masterDo sends a REST request with the master key.
func (p *proc) masterDo(method, path string, body any) response {
	p.t.Helper()
	return p.doWith(method, path, body, map[string]string{"X-ML-AppId": p.AppID, "X-ML-MasterKey": p.Master})
}

// mqttUser is a paho client logged in as one user and subscribed to its
// inbox: events arrive on msgs, the loss of the connection on lost.
type mqttUser struct {
	c    paho.Client
	msgs chan paho.Message
	lost chan error
}

func connectUser(t *testing.T, p *proc, uid string) *mqttUser {
	t.Helper()
	u := &mqttUser{msgs: make(chan paho.Message, 256), lost: make(chan error, 1)}
	u.c = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + p.MQTT).
		SetClientID(uid + "-admin-test").SetUsername(uid).SetPassword(chat.Sign(p.Key, time.Now().UnixMilli())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) { u.lost <- err }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { u.msgs <- m }))
	if tok := u.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", uid, tok.Error())
	}
	if tok := u.c.Subscribe("users/"+uid+"/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", uid, tok.Error())
	}
	t.Cleanup(func() { u.c.Disconnect(0) })
	return u
}

// say publishes a text message at QoS 1 and waits for its PUBACK (the
// message is stored).
func (u *mqttUser) say(t *testing.T, topic, body string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"content": map[string]any{"media": 0, "body": body}})
	if tok := u.c.Publish(topic, 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("say %s: %v", topic, tok.Error())
	}
}

// sys waits for a sys event whose content.body is body.
func (u *mqttUser) sys(t *testing.T, body string) {
	t.Helper()
	deadline := time.After(30 * time.Second) // bounds a hang
	for {
		select {
		case m := <-u.msgs:
			if !strings.HasSuffix(m.Topic(), "/sys") {
				continue
			}
			var ev struct {
				Content struct {
					Body string `json:"body"`
				} `json:"content"`
			}
			if json.Unmarshal(m.Payload(), &ev) == nil && ev.Content.Body == body {
				return
			}
		case <-deadline:
			t.Fatalf("no sys event %q", body)
		}
	}
}

// seedUsers creates users with names over REST (the client key).
func seedUsers(t *testing.T, p *proc, names map[string]string) {
	t.Helper()
	for uid, name := range names {
		expect(t, "attributes of "+uid, p.do("POST", "/ctx/"+uid+"/attributes", map[string]any{"name": name}), 201)
	}
}

// TestAdmin_Console: log in to the console, find a user and kick it (its
// MQTT client sees the disconnect), create a group and change its members,
// page a conversation's history back to its first message, broadcast
// system messages that MQTT clients receive, rename a room, ban a user
// (its MQTT login is refused), lift the ban and erase a user. The steps
// run in order on one server and one browser tab.
func TestAdmin_Console(t *testing.T) {
	p := startMQIM(t, t.TempDir())
	seedUsers(t, p, map[string]string{
		"alice": "Alice Chen", "bob": "Bob Martin", "carol": "Carol Diaz", "dave": "Dave Kim", "erin": "Erin Walsh",
	})
	expect(t, "friends alice bob", p.do("POST", "/ctx/alice/friends/bob", nil), 201)
	expect(t, "friends alice carol", p.do("POST", "/ctx/alice/friends/carol", nil), 201)
	expect(t, "a room", p.do("POST", "/rooms", map[string]any{"name": "Lobby", "members": []string{"alice", "bob", "erin"}}), 201)

	c := openConsole(t, p)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs:\n%s", p.logText())
		}
	})

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("login", func(t *testing.T) {
		c.t = t
		c.screenshot("login")
		// A wrong key is refused with the server's MaxIM error.
		c.fill("#app-id", p.AppID)
		c.fill("#master-key", p.Key) // the client key is not the master key
		c.click("#login-btn")
		c.waitText("#login-error", "Error 5003")
		var stored any
		c.eval(`sessionStorage.getItem('mqim.admin')`, &stored)
		if stored != nil {
			t.Fatalf("a refused login stored credentials: %v", stored)
		}
		c.login()
		var url string
		c.eval(`location.href`, &url)
		if strings.Contains(url, p.Master) {
			t.Fatalf("the master key is in the URL %s", url)
		}
		var persisted int
		c.eval(`localStorage.length`, &persisted)
		if persisted != 0 {
			t.Fatalf("the console wrote %d items to localStorage, want none (sessionStorage only)", persisted)
		}
	})

	step("find and kick a user", func(t *testing.T) {
		c.t = t
		carol := connectUser(t, p, "carol")
		c.goTo("#/users")
		c.visible("#users")
		c.screenshot("users")
		c.fill("#user-search", "carol")
		c.click("#user-search-btn")
		c.waitFor("carol alone in the results", `location.hash.includes('q=carol') && document.querySelectorAll('#users tbody tr').length === 1`)
		if got := c.text("#users tbody tr"); !strings.Contains(got, "Carol Diaz") || !strings.Contains(got, "online") {
			t.Fatalf("search row %q, want carol's name and online", got)
		}
		c.click(`#users a[href="#/users/carol"]`)
		c.waitText("#user-id", "carol")
		c.waitText("#user-sessions", "1")
		c.waitText("#friends", "alice")
		c.noError()
		c.screenshot("user")
		c.click("#kick")
		c.visible("#confirm-ok")
		c.click("#confirm-ok")
		c.waitText("#notice", "Kicked carol: 1 session(s) ended.")
		select {
		case err := <-carol.lost:
			t.Logf("carol's client lost its connection: %v", err)
		case <-time.After(30 * time.Second): // bounds a hang
			t.Fatal("carol's MQTT client was not disconnected")
		}
		testwait.Until(t, "carol offline over REST", 10*time.Second, func() bool {
			var d struct{ Sessions int }
			p.do("GET", "/ctx/carol", nil).JSON(t, &d)
			return d.Sessions == 0
		})
		c.waitText("#user-sessions", "0")
	})

	var gid string
	step("create a group and change its members", func(t *testing.T) {
		c.t = t
		c.goTo("#/groups")
		c.visible("#group-create")
		c.fill("#group-owner", "alice")
		c.fill("#group-name", "Ops team")
		c.fill("#group-members", "bob, carol")
		c.click("#group-create")
		c.waitText("#notice", "Created group")
		c.visible("#list-id")
		gid = c.text("#list-id")
		c.fill("#member-add", "dave erin")
		c.click("#member-add-btn")
		c.waitText("#notice", "Added dave, erin.")
		c.click(`button[data-remove="carol"]`)
		c.waitText("#notice", "Removed carol.")
		c.noError()
		c.screenshot("group")

		var g struct {
			Owner      string
			Members    []string
			Attributes map[string]any
		}
		r := p.do("GET", "/groups/"+gid, nil)
		expect(t, "the console's group", r, 200)
		r.JSON(t, &g)
		slices.Sort(g.Members)
		if g.Owner != "alice" || !slices.Equal(g.Members, []string{"bob", "dave", "erin"}) || g.Attributes["name"] != "Ops team" {
			t.Fatalf("group %s: %s, want owner alice, members bob dave erin, name Ops team", gid, r.Body)
		}
		c.goTo("#/groups")
		c.waitText("#groups", "Ops team")
		c.screenshot("groups")
	})

	step("page a conversation's history", func(t *testing.T) {
		c.t = t
		alice, bob := connectUser(t, p, "alice"), connectUser(t, p, "bob")
		const n = 45 // more than two pages of 20
		want := make([]string, n)
		for i := range want {
			// Each say waits for its PUBACK: the order is the history's.
			if i%3 == 2 {
				want[i] = fmt.Sprintf("message %02d from bob", i+1)
				bob.say(t, "say/friend/alice", want[i])
			} else {
				want[i] = fmt.Sprintf("message %02d from alice", i+1)
				alice.say(t, "say/friend/bob", want[i])
			}
		}
		alice.say(t, "say/group/"+gid, "hello ops")
		c.goTo("#/history")
		c.visible("#hist-load")
		c.fill("#hist-a", "alice")
		c.fill("#hist-b", "bob")
		c.click("#hist-load")
		c.waitFor("the newest page", `document.querySelectorAll('#history li.msg').length === 20`)
		var first []string
		c.eval(`[...document.querySelectorAll('#history .body')].map(e => e.textContent)`, &first)
		if !slices.Equal(first, want[n-20:]) {
			t.Fatalf("newest page %q, want %q", first, want[n-20:])
		}
		c.screenshot("history")
		clicks := 0
		for {
			var done bool
			c.eval(`!document.querySelector('#history-start').hidden`, &done)
			if done {
				break
			}
			if clicks++; clicks > 5 {
				t.Fatalf("still no start of the conversation after %d clicks on older", clicks-1)
			}
			before := 0
			c.eval(`document.querySelectorAll('#history li.msg').length`, &before)
			c.click("#older")
			c.waitFor("an older page", fmt.Sprintf(`document.querySelectorAll('#history li.msg').length > %d || !document.querySelector('#history-start').hidden`, before))
		}
		var got []string
		c.eval(`[...document.querySelectorAll('#history .body')].map(e => e.textContent)`, &got)
		if !slices.Equal(got, want) {
			t.Fatalf("history after %d clicks on older:\n%q\nwant\n%q", clicks, got, want)
		}
		if clicks != 2 {
			t.Fatalf("%d clicks on older for %d messages in pages of 20, want 2", clicks, n)
		}
		c.noError()

		// The group's history, from the group's page.
		c.goTo("#/groups/" + gid)
		c.click(`a[href^="#/history?kind=group"]`)
		c.waitText("#history", "hello ops")
		c.waitText("#history .speaker", "alice")

		// A user found by name, with spaces.
		c.goTo("#/users")
		c.fill("#user-search", "Bob Martin")
		c.click("#user-search-btn")
		c.waitFor("bob found by name", `document.querySelectorAll('#users tbody tr').length === 1 && !!document.querySelector('#users a[href="#/users/bob"]')`)
		c.noError()
	})

	step("broadcast system messages", func(t *testing.T) {
		c.t = t
		erin := connectUser(t, p, "erin")
		bob := connectUser(t, p, "bob")
		c.goTo("#/broadcast")
		c.visible("#bc-send")
		c.fill("#bc-body", "Maintenance tonight at 23:00 UTC")
		c.screenshot("broadcast")
		c.click("#bc-send")
		c.waitText("#notice", "System message sent to every online session.")
		erin.sys(t, "Maintenance tonight at 23:00 UTC")
		bob.sys(t, "Maintenance tonight at 23:00 UTC")

		// To one user: only erin gets it.
		c.goTo("#/broadcast?to=user&target=erin")
		c.waitFor("the user form", `document.querySelector('#bc-to').value === 'user' && !document.querySelector('#bc-target').hidden`)
		c.fill("#bc-body", "just for erin")
		c.click("#bc-send")
		c.waitText("#notice", "System message sent to user erin.")
		erin.sys(t, "just for erin")
		c.fill("#bc-body", "only for bob")
		c.fill("#bc-target", "bob")
		c.click("#bc-send")
		c.waitText("#notice", "System message sent to user bob.")
		bob.sys(t, "only for bob")
		for len(erin.msgs) > 0 {
			if m := <-erin.msgs; strings.Contains(string(m.Payload()), "only for bob") {
				t.Fatalf("erin got bob's system message: %s", m.Payload())
			}
		}
		// An unknown target shows the server's error.
		c.fill("#bc-target", "nobody")
		c.fill("#bc-body", "lost")
		c.click("#bc-send")
		c.waitText("#error", "Error 5004")
	})

	step("rename a room", func(t *testing.T) {
		c.t = t
		c.goTo("#/rooms")
		c.waitText("#rooms", "Lobby")
		c.screenshot("rooms")
		c.click("#rooms a.gid")
		c.visible("#list-rename")
		rid := c.text("#list-id")
		c.fill("#list-name", "Main lobby")
		c.click("#list-rename")
		c.waitText("#notice", "Name saved.")
		var r struct{ Attributes map[string]any }
		p.do("GET", "/rooms/"+rid, nil).JSON(t, &r)
		if r.Attributes["name"] != "Main lobby" {
			t.Fatalf("room %s attributes %v, want name Main lobby", rid, r.Attributes)
		}
	})

	step("ban, lift the ban, erase", func(t *testing.T) {
		c.t = t
		c.goTo("#/users/bob")
		c.visible("#ban")
		c.do(chromedp.SetValue(chromedp.CSS("#ban-for"), "86400000"))
		c.fill("#ban-reason", "spam")
		c.click("#ban")
		c.visible("#confirm-ok")
		c.click("#confirm-ok")
		c.waitText("#notice", "Banned bob.")
		c.waitText("#user-banned", "spam")
		var d struct {
			Banned *struct {
				Until  int64
				Reason string
			}
		}
		p.do("GET", "/ctx/bob", nil).JSON(t, &d)
		if d.Banned == nil || d.Banned.Reason != "spam" || d.Banned.Until < time.Now().Add(23*time.Hour).UnixMilli() {
			t.Fatalf("bob's ban over REST: %+v, want a day for spam", d.Banned)
		}
		refused := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + p.MQTT).SetClientID("bob-banned").
			SetUsername("bob").SetPassword(chat.Sign(p.Key, time.Now().UnixMilli())).SetAutoReconnect(false).SetConnectRetry(false))
		if tok := refused.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() == nil {
			refused.Disconnect(0)
			t.Fatal("banned bob logged in over MQTT")
		}
		c.click("#unban")
		c.waitText("#notice", "Lifted the ban on bob.")
		d.Banned = nil
		p.do("GET", "/ctx/bob", nil).JSON(t, &d)
		if d.Banned != nil {
			t.Fatalf("bob still banned over REST: %+v", d.Banned)
		}

		c.goTo("#/users/dave")
		c.visible("#erase")
		c.click("#erase")
		c.visible("#confirm-cancel")
		c.click("#confirm-cancel") // cancelled: nothing happens
		c.waitFor("the dialog closed", `!document.querySelector('#confirm').open`)
		expect(t, "dave after a cancelled erase", p.do("GET", "/ctx/dave", nil), 200)
		c.click("#erase")
		c.visible("#confirm-ok")
		c.click("#confirm-ok")
		c.waitText("#notice", "Erased dave.")
		c.waitFor("the user list", `location.hash === '#/users'`)
		expectError(t, "dave after erase", p.do("GET", "/ctx/dave", nil), 404, 5004)
		c.noError()
	})

	step("dashboard page", func(t *testing.T) {
		singleNodeOnly(t, "the dashboard shows one node's own counters (GET /stats)")
		c.t = t
		// Some traffic between two polls, for a messages-per-second figure.
		alice, _, _ := connectUser(t, p, "alice"), connectUser(t, p, "bob"), connectUser(t, p, "erin")
		c.goTo("#/dashboard")
		c.waitFor("3 MQTT connections", `document.querySelector('#stat-mqtt').textContent === '3'`)
		for i := range 20 {
			alice.say(t, "say/friend/bob", fmt.Sprintf("busy %d", i))
		}
		c.waitFor("a messages-per-second figure", `/^[1-9][0-9]*\.[0-9]$/.test(document.querySelector('#stat-rate').textContent)`)
		for i := range 8 {
			alice.say(t, "say/friend/bob", fmt.Sprintf("still busy %d", i))
		}
		c.waitFor("two rates in the sparkline", `(document.querySelector('#sparkline polyline')?.getAttribute('points') || '').split(' ').length >= 2`)
		c.noError()
		c.screenshot("dashboard")
	})

	// The one refused request is the wrong key of the login step: the
	// console sends its credentials on every call and its page needs no
	// other (no /favicon.ico: failed logins throttle the address).
	refused := 0
	for _, l := range p.allLogs() {
		if l["message"] == "request" && (l["status"] == 401.0 || l["status"] == 429.0) {
			refused++
			if l["path"] != "/ctx" {
				t.Errorf("refused request %v", l)
			}
		}
	}
	if refused != 1 {
		t.Errorf("%d refused requests, want 1 (the wrong key)", refused)
	}
}

// TestAdmin_Dashboard: the dashboard shows the server's own counters
// (GET /stats): the MQTT connections of the clients connected here and the
// messages they sent.
func TestAdmin_Dashboard(t *testing.T) {
	singleNodeOnly(t, "the dashboard shows one node's own counters (GET /stats)")
	p := startMQIM(t, t.TempDir())
	expect(t, "friends", p.do("POST", "/ctx/u1/friends/u2", nil), 201)
	c := openConsole(t, p)
	c.login()
	u1 := connectUser(t, p, "u1")
	connectUser(t, p, "u2")
	for i := range 3 {
		u1.say(t, "say/friend/u2", fmt.Sprintf("hi %d", i))
	}
	// The REST answer first: the console must show the same numbers.
	testwait.Until(t, "GET /stats to count 2 MQTT connections and 3 says", 10*time.Second, func() bool {
		var st struct {
			Connections struct{ MQTT int }
			Messages    struct{ Says int }
		}
		r := p.masterDo("GET", "/stats", nil)
		expect(t, "stats", r, 200)
		r.JSON(t, &st)
		return st.Connections.MQTT == 2 && st.Messages.Says == 3
	})
	c.waitText("#stat-mqtt", "2")
	c.waitFor("the counters of this test", `document.querySelector('#stat-mqtt').textContent === '2' && document.querySelector('#stat-says').textContent === '3' && document.querySelector('#stat-online').textContent === '2'`)
	var hidden bool
	c.eval(`document.querySelector('#stats-unavailable').hidden`, &hidden)
	if !hidden {
		t.Fatalf("counters unavailable shown: %s", c.text("#stats-unavailable"))
	}
	// Messages per second come from the change of "says" between polls.
	c.waitFor("a rate", `/^[0-9]+\.[0-9]$/.test(document.querySelector('#stat-rate').textContent)`)
	c.noError()
}
