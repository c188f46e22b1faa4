//go:build integration

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// screenshot, if set, is where TestPage writes a picture of the page for
// the manual (docs/page.md; go test -run TestPage ./cmd/cctvd -args -screenshot ../../docs/page.png).
var screenshot = flag.String("screenshot", "", "TestPage writes a screenshot of the page to this PNG file")

// pageConfig is a daemon with an API token and two cameras: "door" on the
// test camera (3 s segments) and "yard", whose stream path the camera
// does not have (it waits in backoff with an error).
func pageConfig(t *testing.T, s *setup) string {
	t.Helper()
	cam := func(name, path string) string {
		return fmt.Sprintf(`{"cameraName": %q, "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
    "frameRate": 5, "resolution": "640x360", "videoDuration": 3, "videoFeedId": "f1", "rtspPort": %d, "rtspPath": %q}`,
			name, e2ePassword, s.cam.Port, path)
	}
	cfg := fmt.Sprintf(`{
  "cameras": [%s, %s],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec/2025", "endpoint": %q},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:0", "token": %q},
  "log": {"format": "json"}
}`, cam("door", "/cam1"), cam("yard", "/no-such-stream"), s.minio.Endpoint, s.minio.AccessKey, s.minio.SecretKey, s.savePath, apiToken)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedOf matches the log line of a closed segment of camera.
func closedOf(camera string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["message"] == "segment closed" && m["camera"] == camera }
}

// colourScheme emulates the browser's preferred colour scheme ("dark",
// "light", or "" for the default).
func colourScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var features []*emulation.MediaFeature
		if scheme != "" {
			features = append(features, &emulation.MediaFeature{Name: "prefers-color-scheme", Value: scheme})
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
		return err
	})
}

// pageErrors collects what the page must never cause: uncaught
// JavaScript exceptions, console.error calls, and what the browser
// refused on security grounds (a Content-Security-Policy violation).
type pageErrors struct {
	mu   sync.Mutex
	list []string
}

func (p *pageErrors) listen(ctx context.Context) error {
	return chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				msg = "console.error"
				for _, a := range e.Args {
					msg += " " + string(a.Value) + a.Description
				}
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Source == cdplog.EntrySourceSecurity || (e.Entry.Source == cdplog.EntrySourceJavascript && e.Entry.Level == cdplog.EntryLevelError) {
				msg = fmt.Sprintf("%s %s: %s", e.Entry.Source, e.Entry.Level, e.Entry.Text)
			}
		}
		if msg != "" {
			p.mu.Lock()
			p.list = append(p.list, msg)
			p.mu.Unlock()
		}
	})
}

func (p *pageErrors) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.list...)
}

// page drives the page on the box in a browser.
type page struct {
	*browser
	errs *pageErrors
}

func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("%s: %v", what, err)
	}
}

func pageEval[T any](p *page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fail("evaluate %.80s: %v", js, err)
	}
	return v
}

// text is an element's text, "" when there is none.
func (p *page) text(sel string) string {
	return pageEval[string](p, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel))
}

// wait waits for the JavaScript condition, or fails with a screenshot.
func (p *page) wait(what, cond string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		p.fail("%s: not within %v (%v)", what, timeout, err)
	}
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.Click(sel, chromedp.NodeVisible))
}

// fail fails the test with a screenshot and the page's errors.
func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	if errs := p.errs.get(); len(errs) > 0 {
		format += "\nthe page's errors:\n  " + strings.Join(errs, "\n  ")
	}
	p.browser.fail(format, args...)
}

// tabTo presses Tab until sel has the focus, and checks that the focus
// shows.
func (p *page) tabTo(sel string) {
	p.t.Helper()
	pageEval[bool](p, `document.activeElement.blur(), true`) // from the top of the page
	for range 100 {
		if pageEval[bool](p, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel)) {
			if style := pageEval[string](p, `getComputedStyle(document.activeElement).outlineStyle`); style == "none" {
				p.fail("%s has the focus and shows no outline", sel)
			}
			return
		}
		p.do("press Tab", chromedp.KeyEvent(kb.Tab))
	}
	p.fail("Tab does not reach %s", sel)
}

// noErrors fails if the page caused an error so far.
func (p *page) noErrors() {
	p.t.Helper()
	if errs := p.errs.get(); len(errs) > 0 {
		p.fail("the page caused errors")
	}
}

// openPage opens the page in a fresh browser with a desktop-sized window.
func openPage(t *testing.T, url string) *page {
	t.Helper()
	p := &page{browser: newBrowser(t), errs: &pageErrors{}}
	if err := p.errs.listen(p.ctx); err != nil {
		t.Fatal(err)
	}
	p.do("open the page", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url))
	return p
}

// refusedWithoutToken is JavaScript run in the page: every API route,
// called as the page would without a token (and with a wrong one), with
// its status; the POSTs carry Content-Type: application/json, as the
// page's own do.
const refusedWithoutToken = `(async () => {
  const now = Date.now(), q = 'from=' + new Date(now - 600000).toISOString() + '&to=' + new Date(now).toISOString();
  const routes = [['GET', '/api/v1/cameras'], ['GET', '/api/v1/cameras/door'], ['GET', '/api/v1/cameras/door/snapshot.jpg'],
    ['GET', '/api/v1/cameras/door/logs?tail=5'], ['GET', '/api/v1/cameras/door/logs?follow=true'], ['GET', '/api/v1/logs?tail=5'],
    ['GET', '/api/v1/cameras/door/spans?' + q], ['GET', '/api/v1/cameras/door/export?' + q], ['GET', '/api/v1/cameras/door/export/manifest?' + q],
    ['GET', '/api/v1/cameras/door/gaps'], ['GET', '/api/v1/recordings'], ['GET', '/api/v1/recordings/1'], ['GET', '/api/v1/recordings/1/file'],
    ['GET', '/api/v1/status'], ['POST', '/api/v1/cameras/door/stop'], ['POST', '/api/v1/cameras/door/start'], ['POST', '/api/v1/reload']];
  const out = [];
  for (const auth of ['', 'Bearer not-the-t0ken-at-all']) {
    for (const [method, path] of routes) {
      const headers = auth ? {Authorization: auth} : {};
      if (method === 'POST') headers['Content-Type'] = 'application/json';
      const r = await fetch(path, {method, headers, body: method === 'POST' ? '{}' : undefined, cache: 'no-store'});
      out.push(method + ' ' + path.split('?')[0] + (auth ? ' (wrong token)' : '') + ': ' + r.status);
    }
  }
  return out;
})()`

// TestPage drives the page on the box in Chromium against a real cctvd
// recording the test camera, with a token: without it, the sign-in and
// every API call refused; a wrong token refused; signed in, the camera
// recording with its still; stop (and the API agrees, and ffmpeg is gone),
// start; the camera's live log with a new line, pause and resume; a click
// on the timeline plays the footage; a phone-width window; the page from
// http://localhost:PORT/ too; logout forgets the token.
func TestPage(t *testing.T) {
	s := newSetup(t, 3)
	d := startDaemon(t, "run", "--config", pageConfig(t, s))
	c := newClient(t, d, apiToken)
	i := 0
	for range 3 { // footage first: three closed segments of door
		_, i = d.await(i, 60*time.Second, closedOf("door"))
		i++
	}
	d.await(0, 60*time.Second, msgIs("uploaded and verified"))

	p := openPage(t, c.base+"/")

	// Without the token: the sign-in, no data, every call refused.
	p.wait("the sign-in, focused", `!document.querySelector('#signin').hidden && document.activeElement === document.querySelector('#token')`, 15*time.Second)
	if shown := pageEval[bool](p, `!document.querySelector('#app').hidden || document.querySelectorAll('#camera-list > *').length > 0`); shown {
		p.fail("the page shows cameras without the token")
	}
	for _, r := range pageEval[[]string](p, refusedWithoutToken) {
		if !strings.HasSuffix(r, ": 401") {
			p.fail("without the token, from the page: %s, want 401", r)
		}
	}
	var door apiCamera
	c.json("GET", "/api/v1/cameras/door", 200, &door)
	if door.State != "recording" || door.Desired != "running" || door.PID == 0 {
		t.Fatalf("after the refused stop: %+v", door)
	}

	// A wrong token: refused, said so, still the sign-in.
	p.do("type a wrong token", chromedp.SendKeys("#token", "n0t-the-t0ken"+kb.Enter))
	p.wait("the wrong token refused", `!document.querySelector('#signin-error').hidden && document.querySelector('#signin-error').textContent.includes('not the API token')`, 15*time.Second)

	// Signed in (from the keyboard): the cameras.
	p.do("type the token", chromedp.Evaluate[chromedp.Void](`document.querySelector('#token').value = ''`), chromedp.SendKeys("#token", apiToken+kb.Enter))
	p.wait("door recording", `!!document.querySelector('[data-camera="door"][data-state="recording"]')`, 15*time.Second)
	p.wait("yard waiting in backoff with its error", `!!document.querySelector('[data-camera="yard"][data-state="backoff"] .cam-error:not([hidden])')`, 30*time.Second)
	if kept := pageEval[string](p, `sessionStorage.getItem('cctvd.token') + ' / ' + localStorage.length + ' / ' + document.cookie`); kept != apiToken+" / 0 / " {
		p.fail("the token is kept as %q, want in sessionStorage only", kept)
	}
	p.wait("door's still", `document.querySelector('[data-camera="door"] .thumb img').naturalWidth > 0`, 30*time.Second)
	p.wait("the storage panel", `document.querySelector('#storage-body').textContent.includes('Backlog')`, 15*time.Second)
	p.noErrors()

	// Stop: the page says so, the API agrees, ffmpeg is gone.
	pid := door.PID
	p.click(`[data-camera="door"] button[data-act="stop"]`)
	p.wait("door stopped", `!!document.querySelector('[data-camera="door"][data-state="stopped"]')`, 30*time.Second)
	if r := p.text(`[data-camera="door"] .result`); !strings.Contains(r, "HTTP 200") || !strings.Contains(r, "state stopped") {
		p.fail("the result of stop: %q", r)
	}
	c.json("GET", "/api/v1/cameras/door", 200, &door)
	if door.State != "stopped" || door.Desired != "stopped" {
		p.fail("the API after the page's stop: %+v", door)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		p.fail("ffmpeg (pid %d) after the stop: kill 0 = %v, want no such process", pid, err)
	}

	// Start, from the keyboard: Tab reaches the button, its focus shows,
	// Enter presses it.
	p.tabTo(`[data-camera="door"] button[data-act="start"]`)
	p.do("press Enter", chromedp.KeyEvent(kb.Enter))
	p.wait("door recording again", `!!document.querySelector('[data-camera="door"][data-state="recording"]')`, 60*time.Second)
	c.json("GET", "/api/v1/cameras/door", 200, &door)
	if door.State != "recording" || door.Desired != "running" || door.PID == 0 || door.PID == pid {
		p.fail("the API after the page's start: %+v", door)
	}

	// The camera's live log: its tail, then a new line.
	p.click(`[data-camera="door"] button[data-act="log"]`)
	p.wait("door's log", `document.querySelector('#log-source').value === 'door' && document.querySelectorAll('#log-lines .ll').length > 0`, 15*time.Second)
	last := pageEval[int](p, `Math.max(...[...document.querySelectorAll('#log-lines .ll')].map(e => +e.dataset.seq))`)
	p.wait("a new line in door's log", fmt.Sprintf(`[...document.querySelectorAll('#log-lines .ll')].some(e => +e.dataset.seq > %d)`, last), 30*time.Second)
	if txt := p.text("#log-lines"); strings.Contains(txt, e2ePassword) || strings.Contains(txt, apiToken) {
		p.fail("the log shows a secret")
	}
	// Paused, new lines are held back; resumed, they show.
	p.click("#log-pause")
	shown := pageEval[int](p, `document.querySelectorAll('#log-lines .ll').length`)
	mark := d.mark()
	d.await(mark, 30*time.Second, closedOf("door")) // door logs a line...
	p.wait("the new line held", `/Paused · [1-9]/.test(document.querySelector('#log-state').textContent)`, 15*time.Second)
	if now := pageEval[int](p, `document.querySelectorAll('#log-lines .ll').length`); now != shown {
		p.fail("paused, the log went from %d to %d lines", shown, now)
	}
	p.click("#log-pause")
	p.wait("the held lines shown", fmt.Sprintf(`document.querySelectorAll('#log-lines .ll').length > %d`, shown), 15*time.Second)

	// The timeline: a click on footage plays it.
	p.click(`#zoom button[data-range="600"]`)
	p.wait("a span of footage on door's timeline", `!!document.querySelector('[data-camera="door"] .tl-item.span')`, 15*time.Second)
	xy := pageEval[[]float64](p, `(() => { const spans = document.querySelectorAll('[data-camera="door"] .tl-item.span');
		const r = spans[0].getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`)
	p.do("click the timeline", chromedp.MouseClickXY(xy[0], xy[1]))
	p.wait("the clip playing", `(() => { const v = document.querySelector('#video');
		return v.src.startsWith('blob:') && !v.paused && v.currentTime > 0.5; })()`, 60*time.Second)
	at := pageEval[float64](p, `document.querySelector('#video').currentTime`)
	p.wait("the clip playing on", fmt.Sprintf(`document.querySelector('#video').currentTime > %f`, at+0.5), 30*time.Second)
	if clock := p.text("#player-clock"); clock == "" {
		p.fail("no wall clock under the video")
	}

	// README's picture, as the page looks now (-screenshot).
	if *screenshot != "" {
		p.wait("the clip playing on", `document.querySelector('#video').currentTime > 1.5`, 30*time.Second)
		pageEval[bool](p, `document.activeElement.blur(), true`) // as it looks, not as it was clicked
		p.do("the mouse away", chromedp.MouseEvent("mouseMoved", 1, 1))
		png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", *screenshot)
	}
	// Dark colours, as the browser prefers them: readable too (the state
	// badge's text differs from its background).
	p.do("dark colours", colourScheme("dark"))
	if same := pageEval[bool](p, `(() => { const b = document.querySelector('[data-camera="door"] .state');
		const s = getComputedStyle(b); return s.color === s.backgroundColor || getComputedStyle(document.body).backgroundColor !== 'rgb(13, 17, 23)'; })()`); same {
		p.fail("dark colours are not applied, or a state badge is unreadable")
	}
	p.do("light colours", colourScheme(""))

	// From the keyboard too: the timeline is reachable, Home puts its
	// cursor at the window's start (before any footage), Enter plays from
	// the next footage.
	before := p.text("#player-what")
	p.tabTo(`[data-camera="door"] .tl-bar`)
	p.do("Home, Enter", chromedp.KeyEvent(kb.Home), chromedp.KeyEvent(kb.Enter))
	p.wait("another clip from the keyboard", fmt.Sprintf(`document.querySelector('#player-what').textContent !== %q &&
		document.querySelector('#player-status').textContent.includes('next footage')`, before), 30*time.Second)
	p.wait("that clip playing", `(() => { const v = document.querySelector('#video'); return !v.paused && v.currentTime > 0.5; })()`, 60*time.Second)
	p.noErrors()

	// A phone-width screen: nothing wider than the screen, the buttons there.
	p.do("a phone-width window", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	p.wait("the page laid out for a phone", `document.documentElement.scrollWidth <= window.innerWidth`, 10*time.Second)
	if off := pageEval[[]string](p, `[...document.querySelectorAll('button, select, input, video, .tl-bar')].filter(e => {
			const r = e.getBoundingClientRect(); return r.width > 0 && (r.left < 0 || r.right > window.innerWidth + 0.5); }).map(e => e.outerHTML.slice(0, 80))`); len(off) > 0 {
		p.fail("on a phone, these stick out of the screen: %v", off)
	}
	if *screenshot != "" { // beside it, the page on a phone
		pageEval[bool](p, `document.activeElement.blur(), window.scrollTo(0, 0), true`)
		phone := strings.TrimSuffix(*screenshot, ".png") + "-phone.png"
		png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(phone, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("phone screenshot: %s", phone)
	}

	// The log keeps at most 500 lines in the page: 700 more, through the
	// page's own log module, leave the newest 500.
	if got := pageEval[string](p, `(async () => { const { LogPanel, MAX } = await import('/ui/log.js');
		const panel = new LogPanel({ onUnauthorized() {} });
		const lines = []; for (let i = 1; i <= 700; i++) lines.push({ seq: 1000000 + i, entry: { level: 'info', message: 'line ' + i }, text: '' });
		panel.append(lines);
		const box = document.querySelector('#log-lines');
		return MAX + ' ' + box.querySelectorAll('.ll').length + ' ' + !!box.querySelector('[data-seq="1000700"]') + ' ' + !!box.querySelector('[data-seq="1000200"]'); })()`); got != "500 500 true false" {
		p.fail("the log after 700 more lines: %q, want 500 lines, the newest kept", got)
	}

	// Logout forgets the token and what was shown.
	p.do("a desktop window", chromedp.EmulateViewport(1280, 900))
	p.click("#logout")
	p.wait("the sign-in after logout", `!document.querySelector('#signin').hidden && document.querySelector('#app').hidden`, 10*time.Second)
	if left := pageEval[string](p, `(sessionStorage.getItem('cctvd.token') || '') + document.querySelectorAll('#camera-list > *').length + document.querySelectorAll('#log-lines > *').length`); left != "00" {
		p.fail("after logout the page keeps %q (token, cameras, log lines)", left)
	}
	p.noErrors()

	// The page opened as http://localhost:PORT/: the Host allow-list and
	// the cross-site guard let it work (a state-changing call included).
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(c.base, "http://"))
	p.do("open the page on localhost", chromedp.Navigate("http://localhost:"+port+"/"))
	p.wait("the sign-in on localhost", `!document.querySelector('#signin').hidden`, 15*time.Second)
	p.do("sign in on localhost", chromedp.SendKeys("#token", apiToken+kb.Enter))
	p.wait("yard on localhost", `!!document.querySelector('[data-camera="yard"] button[data-act="start"]:not(:disabled)')`, 30*time.Second)
	p.click(`[data-camera="yard"] button[data-act="start"]`)
	p.wait("yard's start answered", `/HTTP 200/.test(document.querySelector('[data-camera="yard"] .result').textContent)`, 30*time.Second)
	p.noErrors()
	assertNoSecret(t, d.output()+c.bodies.String())
}
