//go:build integration

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cctvd/cctvd/internal/testenv"
)

// TestPageActivity: in Chromium, the page's timeline shows the activity
// the scene camera's scripted motion made, and "Next activity" jumps
// playback from the still footage before it to its start; with nothing
// later, the button is disabled.
func TestPageActivity(t *testing.T) {
	testenv.RequireTools(t)
	s := &setup{duration: 3, savePath: t.TempDir()}
	s.cam = testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@10"},
		User: "admin", Password: e2ePassword, Auth: "digest", Scene: true, GOPSeconds: 1})
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	cfg := fmt.Sprintf(`{
  "cameras": [{"cameraName": "door", "ipAddress": "127.0.0.1", "userName": "admin", "password": %q, "frameRate": 10,
    "resolution": "640x360", "videoDuration": 3, "videoFeedId": "f1", "rtspPort": %d, "rtspPath": "/cam1", "mode": "copy"}],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec/2025", "endpoint": %q},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:0", "token": %q},
  "log": {"format": "json"}
}`, e2ePassword, s.cam.Port, s.minio.Endpoint, s.minio.AccessKey, s.minio.SecretKey, s.savePath, apiToken)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "run", "--config", path)
	c := newClient(t, d, apiToken)
	i := 0
	segments := func(n int) {
		for range n {
			_, i = d.await(i, 60*time.Second, closedOf("door"))
			i++
		}
	}
	segments(4) // still footage first
	s.cam.Script("motion on")
	segments(2)
	s.cam.Script("motion off")
	segments(2)
	var act struct {
		Intervals []apiInterval `json:"intervals"`
	}
	c.json("GET", "/api/v1/cameras/door/activity", 200, &act)
	if len(act.Intervals) != 1 {
		t.Fatalf("the scripted motion: %+v, want one interval", act.Intervals)
	}
	iv := act.Intervals[0]

	p := openPage(t, c.base+"/")
	p.wait("the sign-in", `!document.querySelector('#signin').hidden`, 15*time.Second)
	p.do("sign in", chromedp.SendKeys("#token", apiToken+"\r"))
	p.wait("door recording", `!!document.querySelector('[data-camera="door"][data-state="recording"]')`, 30*time.Second)
	p.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	p.click(`#zoom button[data-range="600"]`)
	p.wait("the last 10 minutes", `document.querySelector('[data-camera="door"] .tl-caption').textContent.startsWith('Last 10 min')`, 15*time.Second)
	p.wait("the activity on door's timeline", `document.querySelectorAll('[data-camera="door"] .tl-act').length === 1`, 30*time.Second)
	if caption := p.text(`[data-camera="door"] .tl-caption`); !strings.Contains(caption, "activity 1 time") {
		p.fail("the timeline's caption does not count the activity: %q", caption)
	}
	// The mark lies where the interval is: its left edge at its start.
	off := pageEval[float64](p, fmt.Sprintf(`(() => {
	  const bar = document.querySelector('[data-camera="door"] .tl-bar').getBoundingClientRect();
	  const mark = document.querySelector('[data-camera="door"] .tl-act').getBoundingClientRect();
	  const t = Date.now() - 600000 + (mark.left - bar.left) / bar.width * 600000;
	  return (t - %d) / 1000; })()`, iv.Start.UnixMilli()))
	if off < -3 || off > 3 {
		p.fail("the activity mark starts %.1f s from the interval's start", off)
	}

	// Play the still footage before it (a click on the timeline), then
	// jump to the activity.
	before := iv.Start.Add(-8 * time.Second).UnixMilli()
	xy := pageEval[[]float64](p, fmt.Sprintf(`(() => { const r = document.querySelector('[data-camera="door"] .tl-bar').getBoundingClientRect();
	  return [r.left + (%d - (Date.now() - 600000)) / 600000 * r.width, r.top + r.height / 2]; })()`, before))
	p.do("click the timeline before the activity", chromedp.MouseClickXY(xy[0], xy[1]))
	p.wait("the footage before the activity playing", `(() => { const v = document.querySelector('#video');
	  return !document.querySelector('#player').hidden && v.src.startsWith('blob:') && !v.paused && v.currentTime > 0.5; })()`, 60*time.Second)
	p.wait("Next activity enabled", `!document.querySelector('#player-next-act').disabled`, 15*time.Second)
	p.click("#player-next-act")
	p.wait("the clip of the activity playing", fmt.Sprintf(`(() => { const v = document.querySelector('#video'), pl = document.querySelector('#player');
	  return +pl.dataset.from === %d && !v.paused && v.currentTime > 0.5 && +pl.dataset.at >= %[1]d; })()`, iv.Start.UnixMilli()), 60*time.Second)
	if st := p.text("#player-status"); !strings.Contains(st, "Activity") {
		p.fail("the player does not say it plays the activity: %q", st)
	}
	at := pageEval[float64](p, `+document.querySelector('#player').dataset.at`)
	if d := at - float64(iv.Start.UnixMilli()); d < 0 || d > float64(iv.End.Sub(iv.Start).Milliseconds()) {
		p.fail("the wall clock of the frame playing is %.0f ms from the activity's start: outside it", d)
	}
	p.wait("nothing later: Next activity disabled", `document.querySelector('#player-next-act').disabled`, 15*time.Second)
	p.noErrors()
	stop(t, d)
}
