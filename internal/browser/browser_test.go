package browser

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowser_RendersAndRunsScript: the browser starts, loads a page from a
// loopback server and runs its script.
func TestBrowser_RendersAndRunsScript(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><p id=out>wait</p><script>document.getElementById('out').textContent = 'ran ' + (6*7)</script>`))
	}))
	defer srv.Close()
	ctx := New(t, time.Minute)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
	if err != nil {
		t.Fatal(err)
	}
	if got != "ran 42" {
		t.Fatalf("page text %q, want %q", got, "ran 42")
	}
	second := Tab(t, ctx)
	if err := chromedp.Do(second, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if got, err = chromedp.Run(second, chromedp.Text(chromedp.CSS("#out"))); err != nil || got != "ran 42" {
		t.Fatalf("second tab: %q, %v", got, err)
	}
}
