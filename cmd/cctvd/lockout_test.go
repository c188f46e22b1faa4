//go:build integration

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/rtspcount"
	"github.com/cctvd/cctvd/internal/testenv"
)

// A wrong password must not lock the camera out. Cameras (Hikvision's
// "illegal login lock", Dahua) lock an address out for about 30 minutes
// after about five failed logins; the daemon keeps the failed logins that
// reach the camera, counted at the camera's side by a proxy in front of
// the real test camera, under its budget (3 in 30 minutes by default):
// within a minute at most 3, whatever ffprobe's probe (mode auto) and
// ffmpeg's runs together try. The API shows the camera waiting for the
// credentials with its next try; "Retry now" tries once at once (one more
// failed login); a reload with the right password records at once.
func TestWrongPasswordDoesNotLockTheCameraOut(t *testing.T) {
	testenv.RequireTools(t)
	s := &setup{savePath: t.TempDir()}
	s.cam = testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@25"},
		User: "admin", Password: e2ePassword, Auth: "digest"})
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	proxy, err := rtspcount.Start("127.0.0.1:" + strconv.Itoa(s.cam.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	const wrong = "Wr0ng!pass"
	camera := func(password string) string {
		return fmt.Sprintf(`{"cameraName": "door", "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
    "frameRate": 5, "resolution": "640x360", "videoDuration": 2, "videoFeedId": "f1",
    "rtspPort": %d, "rtspPath": "/cam1"}`, password, proxy.Port())
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeCameras(t, s, cfg, camera(wrong))
	d := startDaemon(t, "run", "--config", cfg)
	c := newClient(t, d, "")

	// One minute from the first login that reaches the camera.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := proxy.WaitFor(ctx, func(n rtspcount.Counts) bool { return n.Logins > 0 }); err != nil {
		t.Fatalf("no login reached the camera: %+v", proxy.Counts())
	}
	first := time.Now()
	window, stop := context.WithDeadline(context.Background(), first.Add(60*time.Second))
	defer stop()
	// Over the minute the count may only grow to 3: watch every change.
	_ = proxy.WaitFor(window, func(n rtspcount.Counts) bool { return n.Refused > 3 })
	if n := proxy.Counts(); n.Refused > 3 {
		t.Fatalf("%d failed logins reached the camera within %v of the first (%+v), want at most 3",
			n.Refused, time.Since(first).Round(time.Second), n)
	}
	refused := proxy.Counts().Refused
	if refused == 0 {
		t.Fatalf("no refused login counted: %+v", proxy.Counts())
	}

	var cam struct {
		apiCamera
		NextAttempt  time.Time `json:"nextAttempt"`
		FailedLogins int       `json:"failedLogins"`
		LastError    string    `json:"lastError"`
	}
	c.json("GET", "/api/v1/cameras/door", 200, &cam)
	if cam.State != "waiting-credentials" || cam.FailedLogins != refused {
		t.Errorf("camera: state %q, failed logins %d (the camera saw %d), last error %q; want waiting-credentials",
			cam.State, cam.FailedLogins, refused, cam.LastError)
	}
	// The next try is when the oldest failed login leaves the 30 minutes.
	if next := cam.NextAttempt.Sub(first); next < 29*time.Minute || next > 31*time.Minute {
		t.Errorf("next attempt %v after the first login (%v), want 30 minutes", next, cam.NextAttempt)
	}
	var list struct {
		Cameras []struct {
			Name        string    `json:"name"`
			State       string    `json:"state"`
			NextAttempt time.Time `json:"nextAttempt"`
		} `json:"cameras"`
	}
	c.json("GET", "/api/v1/cameras", 200, &list)
	if len(list.Cameras) != 1 || list.Cameras[0].State != "waiting-credentials" || !list.Cameras[0].NextAttempt.Equal(cam.NextAttempt) {
		t.Errorf("camera list: %+v", list.Cameras)
	}

	// The page shows the wait; its Retry now (POST .../retry) tries one
	// more login at once, refused, and the camera waits again.
	p := openPage(t, c.base+"/")
	p.wait("door waiting for its password", `!!document.querySelector('[data-camera="door"][data-state="waiting-credentials"] .cam-error:not([hidden])')`, 30*time.Second)
	// A minute and more after the first login: the next try in 28 or 29 minutes.
	if since := p.text(`[data-camera="door"] .since`); !strings.Contains(since, "next try in 28 min") && !strings.Contains(since, "next try in 29 min") {
		p.fail("door's card says %q, want its next try in 28 or 29 minutes", since)
	}
	if msg := p.text(`[data-camera="door"] .cam-error`); !strings.Contains(msg, fmt.Sprintf("refused the user name or password %d times in 30 min", refused)) {
		p.fail("door's card explains %q", msg)
	}
	if b := p.text(`[data-camera="door"] button[data-act="retry"]`); b != "Retry now" {
		p.fail("door's retry button says %q", b)
	}
	mark := d.mark()
	p.click(`[data-camera="door"] button[data-act="retry"]`)
	retried, cancelRetry := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelRetry()
	if err := proxy.WaitFor(retried, func(n rtspcount.Counts) bool { return n.Refused > refused }); err != nil {
		t.Fatalf("the retry reached no login: %+v", proxy.Counts())
	}
	d.await(mark, 30*time.Second, func(m map[string]any) bool {
		return m["message"] == "waiting for the camera's credentials" && m["camera"] == "door"
	})
	if r := p.text(`[data-camera="door"] .result`); !strings.Contains(r, "Retried: HTTP 200") {
		p.fail("the result of Retry now: %q", r)
	}
	p.noErrors()
	if n := proxy.Counts(); n.Refused != refused+1 {
		t.Errorf("after one retry the camera saw %d failed logins, want %d", n.Refused, refused+1)
	}

	// The right password, by a reload: recording at once.
	writeCameras(t, s, cfg, camera(e2ePassword))
	mark = d.mark()
	reloaded := time.Now()
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.await(mark, 60*time.Second, func(m map[string]any) bool { return m["message"] == "recording" && m["camera"] == "door" })
	if took := time.Since(reloaded); took > 45*time.Second {
		t.Errorf("recording %v after the reload", took)
	}
	if n := proxy.Counts(); n.Refused != refused+1 {
		t.Errorf("the right password added failed logins: %+v", n)
	}
	c.json("GET", "/api/v1/cameras/door", 200, &cam)
	if cam.State != "recording" {
		t.Errorf("after the reload: state %q, last error %q", cam.State, cam.LastError)
	}
	stopDaemon(t, d)
	assertNoSecret(t, d.output(), s.minio.SecretKey, wrong)
}
