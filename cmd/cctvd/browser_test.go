//go:build integration

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is Debian's package's binary (scripts/deps.sh installs it).
const chromium = "/usr/bin/chromium"

// browser is a headless Chromium driven through the DevTools protocol,
// with a fresh profile, for one test.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v (run `make deps`)", chromium, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// videoState is what the page reports of its <video> element.
type videoState struct {
	Duration    float64 `json:"duration"`
	CurrentTime float64 `json:"currentTime"`
	ReadyState  int     `json:"readyState"`
	Error       string  `json:"error"`
	Seeked      int     `json:"seeked"`
}

const stateJS = `(() => { const v = document.querySelector('video');
	return {duration: isFinite(v.duration) ? v.duration : -1, currentTime: v.currentTime, readyState: v.readyState,
		error: v.error ? (v.error.code + ': ' + v.error.message) : '', seeked: window.seeked || 0}; })()`

func (b *browser) state() videoState {
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[videoState](stateJS))
	if err != nil {
		b.t.Fatalf("read the video's state: %v", err)
	}
	return s
}

// fail saves a screenshot as a test artifact, then fails the test naming
// it.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100) /* 100: PNG */); err == nil {
		path := filepath.Join(artifactDir(b.t), "browser.png")
		if err := os.WriteFile(path, png, 0o644); err == nil {
			format += "\n(screenshot: " + path + ")"
		}
	}
	b.t.Fatalf(format, args...)
}

// artifactDir is where a failing test leaves its artifacts: the test's
// artifact folder with go test -artifacts; otherwise a folder under
// $TMPDIR that is kept (t.ArtifactDir's is removed with the test, and
// the failure message would name a folder that is gone).
func artifactDir(t *testing.T) string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, t.Name())
	dir, err := os.MkdirTemp("", "cctvd-"+name+"-")
	if err != nil {
		return os.TempDir()
	}
	return dir
}

// await waits until the JavaScript condition holds, or fails.
func (b *browser) await(what, cond string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		b.fail("%s: not within %v (%v); video: %+v", what, timeout, err, b.state())
	}
}

// playVideo opens page (an http:// URL on the API's origin), puts a muted
// <video> of src in it and plays it: it checks that the duration is want
// within tol and that playing advances, at the start and after a seek
// near the end (which needs Range requests).
func (b *browser) playVideo(page, src string, want, tol time.Duration) {
	b.t.Helper()
	script := fmt.Sprintf(`(() => { document.body.innerHTML = '';
		const v = document.createElement('video'); v.muted = true; v.preload = 'auto'; v.src = %q;
		v.addEventListener('seeked', () => { window.seeked = (window.seeked || 0) + 1; });
		document.body.appendChild(v); v.play().catch(() => {}); return true; })()`, src)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(page)); err != nil {
		b.fail("load the page: %v", err)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](script)); err != nil {
		b.fail("add the video: %v", err)
	}
	b.await("the video's metadata", `document.querySelector('video').readyState >= 1`, 30*time.Second)
	s := b.state()
	if s.Error != "" {
		b.fail("the video does not play: %s", s.Error)
	}
	got := time.Duration(s.Duration * float64(time.Second))
	if (got - want).Abs() > tol {
		b.fail("the video says it lasts %v, want %v within %v", got, want, tol)
	}
	b.await("playing from the start", `document.querySelector('video').currentTime > 1`, 30*time.Second)
	seekTo := s.Duration - 2
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](fmt.Sprintf(`document.querySelector('video').currentTime = %f`, seekTo))); err != nil {
		b.fail("seek: %v", err)
	}
	b.await("the seek near the end", `window.seeked >= 1`, 30*time.Second)
	b.await("playing after the seek", fmt.Sprintf(`document.querySelector('video').currentTime > %f`, seekTo+0.5), 30*time.Second)
	if s := b.state(); s.Error != "" {
		b.fail("the video failed: %s", s.Error)
	}
}
