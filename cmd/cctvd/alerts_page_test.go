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
)

// TestPageShowsOpenAlerts: a camera that never records is down after the
// debounce, and the page says so at its top, in a real browser; the API
// lists the same condition.
func TestPageShowsOpenAlerts(t *testing.T) {
	cfg := fmt.Sprintf(`{
  "cameras": [{"cameraName": "porch", "ipAddress": "127.0.0.1", "rtspPort": 1, "rtspPath": "/x", "frameRate": 1, "resolution": "640x360", "videoDuration": 10, "videoFeedId": "f"}],
  "s3Config": {"s3Bucket": "b-b-b", "endpoint": "http://127.0.0.1:1"},
  "awsCredentials": {"accessKeyId": "k", "secretAccessKey": "s3cret-value"},
  "storageConfig": {"savePath": %q, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:0"},
  "alerts": {"cameraDownAfter": "2s"},
  "log": {"format": "json"}
}`, t.TempDir())
	path := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(path, []byte(cfg), 0o600)
	d := startDaemon(t, "run", "--config", path)
	c := newClient(t, d, "")
	d.await(0, 60*time.Second, func(m map[string]any) bool { return m["alert"] == "camera-down" && m["camera"] == "porch" })

	p := openPage(t, c.base+"/")
	p.await("the open alert at the top of the page",
		`(() => { const a = document.querySelector('#alerts'); return !!a && !a.hidden && a.querySelector('li[data-type="camera-down"][data-camera="porch"]') !== null; })()`,
		60*time.Second)
	text := pageEval[string](p, `document.querySelector('#alerts').innerText`)
	top := pageEval[bool](p, `(() => { const a = document.querySelector('#alerts').getBoundingClientRect(), m = document.querySelector('#app').getBoundingClientRect(); return a.bottom <= m.top + 1 && a.height > 0; })()`)
	if !strings.Contains(text, "Camera down: porch") || !strings.Contains(text, "has not recorded for 2s") || !strings.Contains(text, "1 problem needs a person") || !top {
		p.fail("the banner says %q (above the cameras: %v)", text, top)
	}
	if errs := p.errs.get(); len(errs) > 0 {
		p.fail("the page reported errors: %v", errs)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, d.output(), "s3cret-value")
}
