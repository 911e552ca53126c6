// Package browser starts headless Chromium (Debian's chromium package) for
// the end-to-end tests of the pages mqim serves (/admin, /demo), driven
// over the DevTools protocol with chromedp.
//
// Under CI=true a missing Chromium fails the test; elsewhere it skips with
// a message (.ci/run installs the package).
package browser

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// candidates are the names Chromium is installed under, tried in order
// after $CHROMIUM.
var candidates = []string{"chromium", "chromium-browser", "google-chrome"}

// Path returns the Chromium executable, or "" when none is installed.
func Path() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts one headless Chromium for t and returns the context of its
// first tab; the browser is closed when t ends. Further tabs (a second
// chat participant) come from Tab. timeout bounds everything done in the
// browser, so a page that never shows what a test waits for fails the test
// instead of hanging it.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	path := Path()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium missing in CI (.ci/run installs Debian's chromium package)")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 860),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})
	// Start the browser now, so that a broken install fails here.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return bctx
}

// Tab opens another tab in the browser of parent (a context from New).
func Tab(t testing.TB, parent context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// Screenshot captures the full page of ctx into path (PNG).
func Screenshot(ctx context.Context, path string) error {
	// Quality 100 is PNG; below it chromedp takes a JPEG.
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}
