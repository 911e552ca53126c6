package demo

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mqim/mqim/internal/browser"
)

// Ensure the embedded page is complete: the page, its script and style, and
// the vendor folder's README (MQTT.js itself is there only after make web).
func TestFiles_Page(t *testing.T) {
	for _, name := range []string{"index.html", "demo.js", "style.css", "vendor/README.md"} {
		if _, err := fs.Stat(Files(), name); err != nil {
			t.Errorf("%s not embedded: %v", name, err)
		}
	}
	html, err := fs.ReadFile(Files(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{`src="vendor/mqtt.min.js"`, `src="demo.js"`, `href="style.css"`} {
		if !strings.Contains(string(html), ref) {
			t.Errorf("index.html lacks %s", ref)
		}
	}
}

// Ensure a build without MQTT.js (go build before make web, or no npm)
// says so on the page instead of failing silently.
func TestPage_SaysWhenMQTTJSIsMissing(t *testing.T) {
	files := http.FileServerFS(Files())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/vendor/") {
			http.NotFound(w, r) // as if make web had not run
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := browser.New(t, time.Minute)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?app=a&key=k&user=alice&peer=bob")); err != nil {
		t.Fatal(err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById("error").textContent`,
		chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "MQTT.js is missing") || !strings.Contains(msg, "make build") {
		t.Fatalf("page says %q, want that MQTT.js is missing and to run make build", msg)
	}
}
