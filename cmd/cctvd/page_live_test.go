//go:build integration

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// livePageConfig writes (or rewrites, for a reload) the page's daemon:
// "door" on the test camera, transcoded at 5 fps and size res in 3 s
// segments, and "yard", whose stream does not exist (never recording).
func livePageConfig(t *testing.T, s *setup, path, res string) {
	t.Helper()
	cam := func(name, p string) string {
		return fmt.Sprintf(`{"cameraName": %q, "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
    "frameRate": 5, "resolution": %q, "videoDuration": 3, "videoFeedId": "f1", "rtspPort": %d, "rtspPath": %q}`,
			name, e2ePassword, res, s.cam.Port, p)
	}
	cfg := fmt.Sprintf(`{
  "cameras": [%s, %s],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec/2025", "endpoint": %q},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:0", "token": %q},
  "log": {"format": "json", "level": "debug"}
}`, cam("door", "/cam1"), cam("yard", "/no-such-stream"), s.minio.Endpoint, s.minio.AccessKey, s.minio.SecretKey, s.savePath, apiToken)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// liveState is what the page shows of a live view.
type liveState struct {
	State       string  `json:"state"`
	CurrentTime float64 `json:"currentTime"`
	EdgeWall    float64 `json:"edgeWall"` // ms since the epoch of the buffered end
	Width       int     `json:"width"`
	Inits       string  `json:"inits"`
	Connects    string  `json:"connects"`
	Error       string  `json:"error"`
}

func liveStateJS(sel string) string {
	return fmt.Sprintf(`(() => { const v = document.querySelector(%q);
	if (!v) return {state: 'none'};
	return {state: v.dataset.live || '', currentTime: v.currentTime, edgeWall: Number(v.dataset.edgeWall || 0), width: v.videoWidth,
		inits: v.dataset.inits || '', connects: v.dataset.connects || '', error: v.error ? v.error.code + ': ' + v.error.message : ''}; })()`, sel)
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// viewersNow matches the daemon's debug line saying how many live viewers
// there are now, when there are n.
func viewersNow(n int) func(map[string]any) bool {
	return func(m map[string]any) bool {
		msg, _ := m["message"].(string)
		v, ok := m["viewers"].(float64)
		return strings.HasPrefix(msg, "live viewer ") && ok && int(v) == n
	}
}

// TestPageLive drives live view on the page in Chromium against a real
// cctvd: a click on door's still plays it live; for 30 s its currentTime
// advances and the end of what it buffered stays within 3 s of the newest
// fragment ffmpeg wrote (the video it lacks is under 3 s), across 3 s segment boundaries and ffmpeg killed
// with SIGKILL; a new size (a reload) is a new init segment the player
// takes without a new connection; the transcode note; the live grid with
// door playing and yard waiting; tiles out of view and a hidden tab stop
// their streams; the H.265 message where the browser cannot play it; the
// token in no URL the page used, no page address and no log line.
func TestPageLive(t *testing.T) {
	s := newSetup(t, 3)
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	livePageConfig(t, s, cfgPath, "640x360")
	d := startDaemon(t, "run", "--config", cfgPath)
	c := newClient(t, d, apiToken)
	d.await(0, 60*time.Second, closedOf("door"))

	p := openPage(t, c.base+"/")
	p.wait("the sign-in", `!document.querySelector('#signin').hidden`, 15*time.Second)
	p.do("sign in", chromedp.SendKeys("#token", apiToken+kb.Enter))
	p.wait("door recording", `!!document.querySelector('[data-camera="door"][data-state="recording"]')`, 30*time.Second)

	// The still becomes live on click.
	p.click(`[data-camera="door"] button[data-act="live"]`)
	const tile = `[data-camera="door"] .thumb .live video`
	p.wait("door live", fmt.Sprintf(`(() => { const v = document.querySelector(%q); return v && v.dataset.live === 'playing' && v.currentTime > 0; })()`, tile), 30*time.Second)
	if note := p.text(`[data-camera="door"] .live-note`); !strings.Contains(note, "Transcoded") || !strings.Contains(note, "5 fps at 640×360") {
		p.fail("the transcode note: %q", note)
	}

	// 30 s of it: a ffmpeg killed in the middle, segments every 3 s.
	var door apiCamera
	c.json("GET", "/api/v1/cameras/door", 200, &door)
	pid := door.PID
	first0PID := pid
	first := pageEval[liveState](p, liveStateJS(tile))
	last, worst, unknown := first, time.Duration(0), 0
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range tick.C {
		if time.Since(start) > 30*time.Second {
			break
		}
		if pid != 0 && time.Since(start) > 10*time.Second {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill ffmpeg: %v", err)
			}
			pid = 0
		}
		newest, runStart, ok := newestFragment(t, s.savePath, "door")
		st := pageEval[liveState](p, liveStateJS(tile))
		if st.CurrentTime < last.CurrentTime || st.Error != "" {
			p.fail("at %v: the live video went back or failed: %+v after %+v", time.Since(start), st, last)
		}
		if st.EdgeWall == 0 {
			unknown++ // the new run's wall clock, not known yet
		}
		if ok && st.EdgeWall > 0 {
			// How much of what ffmpeg wrote the page lacks: after a
			// restart, the time between the runs is no video to lack.
			behind := newest.Sub(later(time.UnixMilli(int64(st.EdgeWall)), runStart))
			worst = max(worst, behind)
			if behind > 3*time.Second {
				p.fail("at %v: the page's buffered end is %v behind the newest fragment (%+v)", time.Since(start), behind, st)
			}
		}
		last = st
	}
	if unknown > 5 {
		p.fail("for %d of 30 s the page did not know the wall-clock time of its live picture", unknown)
	}
	if adv := last.CurrentTime - first.CurrentTime; adv < 15 {
		p.fail("in 30 s of live view, currentTime advanced %.1f s (%+v -> %+v)", adv, first, last)
	}
	c.json("GET", "/api/v1/cameras/door", 200, &door)
	if door.PID == first0PID || last.Connects != "1" || last.Inits != "1" {
		p.fail("after ffmpeg was killed: pid %d (was %d), the page connected %s times with %s init segments, want 1 and 1", door.PID, first0PID, last.Connects, last.Inits)
	}
	t.Logf("30 s live: currentTime %.1f -> %.1f, at most %v behind the newest fragment (%d s of it the wall clock unknown)", first.CurrentTime, last.CurrentTime, worst, unknown)

	// A new size: a new init segment, on the same connection.
	livePageConfig(t, s, cfgPath, "320x180")
	c.json("POST", "/api/v1/reload", 200, nil)
	p.wait("door live at 320×180", fmt.Sprintf(`(() => { const v = document.querySelector(%q); return v.videoWidth === 320 && v.dataset.inits === '2'; })()`, tile), 60*time.Second)
	at := pageEval[liveState](p, liveStateJS(tile)).CurrentTime
	p.wait("door playing on at 320×180", fmt.Sprintf(`document.querySelector(%q).currentTime > %f`, tile, at+2), 30*time.Second)
	if st := pageEval[liveState](p, liveStateJS(tile)); st.Connects != "1" || st.Error != "" {
		p.fail("after the new size: %+v", st)
	}

	// The token: in no URL the page asked for, nor in its address.
	urls := pageEval[[]string](p, `[location.href, ...performance.getEntriesByType('resource').map((e) => e.name),
		...[...document.querySelectorAll('div.live[data-camera]')].map((e) => (e.liveView.ws ? e.liveView.ws.url : ''))]`)
	for _, u := range urls {
		if strings.Contains(u, apiToken) {
			p.fail("the token is in a URL: %s", u)
		}
	}
	if !strings.Contains(strings.Join(urls, " "), "/live?ticket=") {
		p.fail("the live socket's URL is not among %v", urls)
	}

	// Back to the still; then the live grid: every camera, door playing,
	// yard waiting.
	mark := d.mark()
	p.click(`[data-camera="door"] button[data-act="live"]`)
	d.await(mark, 15*time.Second, viewersNow(0))
	if n := pageEval[int](p, `document.querySelectorAll('[data-camera="door"] .thumb .live').length`); n != 0 {
		p.fail("door's still: %d live views left in its card", n)
	}
	mark = d.mark()
	pageEval[bool](p, `window.scrollTo(0, 0), true`) // the button clear of the sticky top bar
	p.click("#live-grid-btn")
	const gridDoor, gridYard = `#live-tiles [data-camera="door"] video`, `#live-tiles [data-camera="yard"] video`
	p.wait("door in the grid", fmt.Sprintf(`document.querySelector(%q).dataset.live === 'playing'`, gridDoor), 30*time.Second)
	p.wait("yard waiting in the grid", fmt.Sprintf(`document.querySelector(%q).dataset.live === 'waiting' &&
		document.querySelector('#live-tiles [data-camera="yard"] .live-msg').textContent.includes('not recording')`, gridYard), 30*time.Second)
	d.await(mark, 15*time.Second, viewersNow(2)) // door's and yard's tiles

	// Out of view: the tiles stop their streams; back in view, they play.
	mark = d.mark()
	p.do("a short window scrolled to the log", chromedp.EmulateViewport(1280, 300), chromedp.ScrollIntoView("#log-lines"))
	p.wait("the grid stopped out of view", fmt.Sprintf(`document.querySelector(%q).dataset.live === 'stopped'`, gridDoor), 15*time.Second)
	d.await(mark, 15*time.Second, viewersNow(0))
	p.do("scroll to the grid", chromedp.EmulateViewport(1280, 900), chromedp.ScrollIntoView("#live-grid"))
	p.wait("the grid playing again", fmt.Sprintf(`document.querySelector(%q).dataset.live === 'playing'`, gridDoor), 30*time.Second)

	// A hidden tab: every stream stops; shown again, they play.
	mark = d.mark()
	pageEval[bool](p, `Object.defineProperty(document, 'hidden', {configurable: true, get: () => true}), document.dispatchEvent(new Event('visibilitychange')), true`)
	p.wait("stopped in a hidden tab", fmt.Sprintf(`document.querySelector(%q).dataset.live === 'stopped'`, gridDoor), 15*time.Second)
	d.await(mark, 15*time.Second, viewersNow(0))
	pageEval[bool](p, `delete document.hidden, document.dispatchEvent(new Event('visibilitychange')), true`)
	p.wait("playing in the tab shown again", fmt.Sprintf(`document.querySelector(%q).dataset.live === 'playing'`, gridDoor), 30*time.Second)

	// A browser that cannot play H.265 (Firefox) says so.
	msg := pageEval[string](p, `(async () => { const { LiveView } = await import('/ui/live.js');
		const orig = MediaSource.isTypeSupported.bind(MediaSource);
		MediaSource.isTypeSupported = (t) => !/hvc1|hev1/.test(t) && orig(t);
		const lv = new LiveView({ name: 'h265cam', mode: 'copy', config: {} }, { onUnauthorized() {} });
		document.body.append(lv.el);
		lv.message(lv.gen, JSON.stringify({ type: 'init', mime: 'video/mp4; codecs="hvc1.1.6.L93.B0"', codec: 'hvc1.1.6.L93.B0', width: 1920, height: 1080, stream: 1 }));
		MediaSource.isTypeSupported = orig;
		const out = lv.video.dataset.live + ': ' + lv.msg.textContent; lv.destroy(); return out; })()`)
	if !strings.HasPrefix(msg, "unsupported: ") || !strings.Contains(msg, "H.265 (HEVC)") || !strings.Contains(msg, "Firefox cannot") {
		p.fail("the H.265 message: %q", msg)
	}

	pageEval[bool](p, `window.scrollTo(0, 0), true`)
	p.click("#live-grid-btn")
	p.wait("the grid closed", `document.querySelector('#live-grid').hidden && !document.querySelector('#live-tiles video')`, 10*time.Second)
	p.noErrors()
	assertNoSecret(t, d.output(), apiToken)
}
