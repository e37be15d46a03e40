// Package e2e holds OpenVisit's end-to-end tests and the harness they share:
// a real server (HTTPS, Postgres, SFU on loopback) and real headless
// Chromium instances driven with chromedp.
//
// The harness lives in non-test files so that later browser tests (waiting
// room, provider pages, recording) reuse it.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/testenv"
)

// chromiumFlags are the flags verified to work on the project's machines
// (shared/ENVIRONMENT.md). The background-networking flags keep Chromium
// from flooding a closed network; the media flags give a fake camera and
// microphone without a permission prompt; the WebRTC flags let ICE use
// loopback and host IPs instead of mDNS names; the self-signed development
// certificate needs ignore-certificate-errors.
var chromiumFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", true),
	chromedp.Flag("no-sandbox", true),
	chromedp.Flag("disable-gpu", true),
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("no-default-browser-check", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("disable-default-apps", true),
	chromedp.Flag("disable-extensions", true),
	chromedp.Flag("use-fake-ui-for-media-stream", true),
	chromedp.Flag("use-fake-device-for-media-stream", true),
	chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	chromedp.Flag("allow-loopback-in-peer-connection", true),
	chromedp.Flag("ignore-certificate-errors", true),
}

// DefaultTimeout bounds one browser action (navigate, evaluate, click).
const DefaultTimeout = 30 * time.Second

// Browser is one headless Chromium process with one tab. It lives until the
// test ends (t.Cleanup stops it and removes its profile); it is not safe for
// use by several goroutines at once.
type Browser struct {
	// Name prefixes the browser's console messages in the test log.
	Name string

	ctx  context.Context // the tab's chromedp context
	log  *testLog
	stop func()
}

type browserConfig struct {
	name  string
	flags []chromedp.ExecAllocatorOption
}

// BrowserOption changes how NewBrowser starts Chromium.
type BrowserOption func(*browserConfig)

// WithName names the browser in log lines ("alice", "provider").
func WithName(name string) BrowserOption {
	return func(c *browserConfig) { c.name = name }
}

// WithFlag adds a Chromium command-line flag (true for a bare switch, a
// string for --name=value) to the verified set.
func WithFlag(name string, value any) BrowserOption {
	return func(c *browserConfig) { c.flags = append(c.flags, chromedp.Flag(name, value)) }
}

// NewBrowser starts headless Chromium with a fresh profile and opens a blank
// tab. The browser's console messages and uncaught exceptions go to the test
// log. A missing Chromium skips the test (fails it under CI).
func NewBrowser(t testing.TB, opts ...BrowserOption) *Browser {
	t.Helper()
	path := testenv.Chromium(t)
	cfg := browserConfig{name: "browser"}
	for _, o := range opts {
		o(&cfg)
	}

	// Not t.TempDir: Chromium's helper processes can still write to the
	// profile for a moment after the browser exits, and t.TempDir fails the
	// test when its removal fails. removeDir retries instead.
	profile, err := os.MkdirTemp("", "openvisit-chromium-")
	if err != nil {
		t.Fatalf("e2e: profile dir: %v", err)
	}

	log := &testLog{t: t}
	flags := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
	}, chromiumFlags...)
	flags = append(flags, cfg.flags...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags...)
	ctx, cancelTab := chromedp.NewContext(allocCtx,
		chromedp.WithErrorf(func(f string, a ...any) { log.logf("%s: chromedp: "+f, append([]any{cfg.name}, a...)...) }),
	)

	b := &Browser{Name: cfg.name, ctx: ctx, log: log}
	var wg sync.WaitGroup
	b.stop = func() {
		cancelTab()
		cancelAlloc()
		wg.Wait()
		log.close()
		removeDir(profile)
	}
	t.Cleanup(b.stop)

	// The first Run starts the browser; it must use the long-lived context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("e2e: start %s (%s): %v", cfg.name, path, err)
	}
	console := chromedp.Console(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range console {
			if err != nil {
				return
			}
			where := ""
			if m.URL != "" {
				where = fmt.Sprintf(" (%s:%d)", shortURL(m.URL), m.Line+1)
			}
			log.logf("%s console %s: %s%s", cfg.name, m.Type, m.Text, where)
		}
	}()
	return b
}

// Context returns the tab's chromedp context, for actions the helpers do not
// cover. Derive timeouts from it; never cancel it.
func (b *Browser) Context() context.Context { return b.ctx }

// Close stops the browser before the test ends (for example to check what
// the other side sees when a participant's browser disappears). It is safe
// to call more than once.
func (b *Browser) Close() {
	b.stop()
	b.stop = func() {}
}

// Navigate opens url in the tab and waits for the page to load.
func (b *Browser) Navigate(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("e2e: %s: navigate to %s: %v", b.Name, redactFragment(url), err)
	}
}

// Click clicks the first element matching the CSS selector, waiting for it
// to be visible.
func (b *Browser) Click(t testing.TB, selector string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	for {
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
		if err == nil {
			return
		}
		// A page that re-renders a list between the query and the click (a
		// refresh answering late) replaces the node: find it again, as a
		// person clicking the new one would.
		if !staleNode(err) || ctx.Err() != nil {
			t.Fatalf("e2e: %s: click %s: %v", b.Name, selector, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// staleNode reports whether a CDP error says the node found by a query
// left the document before the action on it ran.
func staleNode(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Could not find node with given id") ||
		strings.Contains(msg, "Node is detached") ||
		strings.Contains(msg, "node not found")
}

// Screenshot captures the viewport as PNG.
func (b *Browser) Screenshot(t testing.TB) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("e2e: %s: screenshot: %v", b.Name, err)
	}
	return png
}

// FullScreenshot captures the whole page, beyond the viewport, as PNG.
func (b *Browser) FullScreenshot(t testing.TB) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("e2e: %s: screenshot: %v", b.Name, err)
	}
	return png
}

// Fill replaces the value of the first input matching the CSS selector by
// typing value into it (real key events, so input handlers and validation
// run), waiting for it to be visible.
func (b *Browser) Fill(t testing.TB, selector, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	sel, _ := json.Marshal(selector)
	err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(selector)))
	if err == nil {
		// chromedp.SetValue cannot set an empty value (it compares the
		// result with a Go zero value), so clear the field in the page.
		_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+string(sel)+`); e.value = ''; return true; })()`))
	}
	if err == nil {
		err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(selector), value, chromedp.NodeVisible))
	}
	if err != nil {
		t.Fatalf("e2e: %s: fill %s: %v", b.Name, selector, err)
	}
}

// SetViewport emulates a viewport of w×h CSS pixels (e.g. 360 wide for a
// small phone).
func (b *Browser) SetViewport(t testing.TB, w, h int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h)); err != nil {
		t.Fatalf("e2e: %s: viewport: %v", b.Name, err)
	}
}

// Eval evaluates a JavaScript expression in the page, awaits it when it is a
// Promise, and decodes the JSON value into T.
func Eval[T any](t testing.TB, b *Browser, js string) T {
	t.Helper()
	v, err := EvalErr[T](b, js)
	if err != nil {
		t.Fatalf("e2e: %s: eval: %v", b.Name, err)
	}
	return v
}

// EvalErr is Eval returning the error instead of failing the test, for use
// off the test goroutine.
func EvalErr[T any](b *Browser, js string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// PageFailure is what WaitFor reports when the page says the call failed.
type PageFailure struct {
	State string `json:"state"`
	Error string `json:"error"`
}

// waitResult is what the wrapped predicate returns on each poll.
type waitResult struct {
	OK     bool         `json:"ok"`
	Failed *PageFailure `json:"failed"`
}

// WaitFor polls the JavaScript expression pred (which may return a Promise)
// until it is truthy. It fails the test at once when the page reports
// document.body.dataset.state === 'failed' (a failed ICE would otherwise
// only show after ≈30 s), when ctx ends, or after timeout.
func (b *Browser) WaitFor(t testing.TB, ctx context.Context, pred string, timeout time.Duration) {
	t.Helper()
	if err := b.Poll(ctx, pred, timeout); err != nil {
		t.Fatalf("e2e: %s: %v", b.Name, err)
	}
}

// Poll is WaitFor returning an error, for use off the test goroutine.
func (b *Browser) Poll(ctx context.Context, pred string, timeout time.Duration) error {
	js := `(async () => {
  const b = document.body;
  if (b && b.dataset.state === 'failed') {
    const e = document.querySelector('[role=alert]');
    return {ok: false, failed: {state: 'failed', error: e ? e.textContent : ''}};
  }
  return {ok: !!(await (` + pred + `))};
})()`
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		r, err := EvalErr[waitResult](b, js)
		switch {
		case err == nil && r.Failed != nil:
			return fmt.Errorf("page reports state %q (%s) while waiting for %s", r.Failed.State, r.Failed.Error, pred)
		case err == nil && r.OK:
			return nil
		case err != nil:
			// A navigation in progress destroys the execution context; try again.
			lastErr = err
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("timed out after %v waiting for %s (last error: %v)", timeout, pred, lastErr)
			}
			return fmt.Errorf("timed out after %v waiting for %s", timeout, pred)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", pred, ctx.Err())
		case <-b.ctx.Done():
			return fmt.Errorf("waiting for %s: browser closed", pred)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Dump logs a JSON snapshot of a page expression, for diagnosing a failure.
func (b *Browser) Dump(t testing.TB, label, js string) {
	t.Helper()
	raw, err := EvalErr[json.RawMessage](b, js)
	if err != nil {
		t.Logf("%s %s: %v", b.Name, label, err)
		return
	}
	t.Logf("%s %s: %s", b.Name, label, raw)
}

// LoopbackWebRTC makes a Pion SettingEngine use loopback only, for tests
// with Chromium on the same machine: loopback candidates included (Pion
// leaves them out by default), every other address filtered out, and mDNS
// off (Pion's default joins the multicast group).
func LoopbackWebRTC(se *webrtc.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
}

// testLog forwards lines to t.Log until the test's cleanup closes it; lines
// that arrive later (a browser shutting down) are dropped, because t.Log
// after the test ends panics.
type testLog struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

func (l *testLog) logf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Logf(format, a...)
	}
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// removeDir removes a browser profile, retrying while Chromium's helper
// processes finish writing to it.
func removeDir(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.RemoveAll(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redactFragment drops a URL's fragment, which carries one-time codes.
func redactFragment(u string) string {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		return u[:i] + "#…"
	}
	return u
}

// shortURL keeps the path of a page or script URL for log lines.
func shortURL(u string) string {
	u = redactFragment(u)
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[i+3+j:]
		}
	}
	return u
}
