//go:build integration

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
)

// designNoteCamera is the design note's camera entry with the test
// camera's address, user and password, and no path: only the ports the
// test's servers got (rtspPort, onvifPort) are added.
func designNoteCamera(name, password string, rtspPort, onvifPort int, extra string) string {
	return fmt.Sprintf(`{"cameraName": %q, "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
    "frameRate": 5, "resolution": "640x360", "videoDuration": 2, "videoFeedId": "xx",
    "rtspPort": %d, "onvifPort": %d %s}`, name, password, rtspPort, onvifPort, extra)
}

func onboardSetup(t *testing.T) *setup {
	t.Helper()
	s := &setup{savePath: t.TempDir(), cam: onboardCamera(t)}
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	return s
}

func segmentOf(camera string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["message"] == "segment closed" && strings.HasPrefix(fmt.Sprint(m["segment"]), camera+"_xx_")
	}
}

func stopDaemon(t *testing.T, d *proc) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// The design note's camera without a path records through ONVIF: the
// stand-in device (its clock an hour off) gives the real test camera's
// stream, which is recorded as it is (copy).
func TestOnboardThroughONVIF(t *testing.T) {
	s := onboardSetup(t)
	dev := standIn(t, s.cam)
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeCameras(t, s, cfg, designNoteCamera("camera1", e2ePassword, s.cam.Port, dev.Port(), ""))
	d := startDaemon(t, "run", "--config", cfg)
	found, _ := d.await(0, 60*time.Second, msgIs("stream found"))
	want := "rtsp://admin:***@127.0.0.1:" + strconv.Itoa(s.cam.Port) + "/Streaming/Channels/101"
	if found["source"] != `onvif profile "mainStream"` || found["url"] != want {
		t.Errorf("stream found: %v", found)
	}
	d.await(0, 60*time.Second, segmentOf("camera1"))
	d.await(0, 60*time.Second, segmentOf("camera1"))

	c := newClient(t, d, "")
	var cam struct {
		apiCamera
		Source         string `json:"source"`
		StreamURL      string `json:"streamUrl"`
		DiscoveryError string `json:"discoveryError"`
	}
	c.json("GET", "/api/v1/cameras/camera1", 200, &cam)
	if cam.State != "recording" || cam.Source != `onvif profile "mainStream"` || cam.StreamURL != want || cam.Mode != "copy" {
		t.Errorf("camera: state %s, source %q, url %q, mode %q", cam.State, cam.Source, cam.StreamURL, cam.Mode)
	}
	if r := dev.Rejections(); len(r) != 0 {
		t.Errorf("the stand-in refused calls: %q", r)
	}
	stopDaemon(t, d)
	assertNoSecret(t, d.output(), s.minio.SecretKey)
}

// The same camera without ONVIF records through the known paths
// (Hikvision's /Streaming/Channels/101); after a restart it records the
// remembered stream without probing again.
func TestOnboardThroughKnownPath(t *testing.T) {
	s := onboardSetup(t)
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeCameras(t, s, cfg, designNoteCamera("camera2", e2ePassword, s.cam.Port, freePort(t), ""))
	d := startDaemon(t, "run", "--config", cfg)
	found, _ := d.await(0, 60*time.Second, msgIs("stream found"))
	if found["source"] != "known path /Streaming/Channels/101" {
		t.Errorf("stream found: %v", found)
	}
	d.await(0, 60*time.Second, segmentOf("camera2"))
	stopDaemon(t, d)

	d2 := startDaemon(t, "run", "--config", cfg)
	again, _ := d2.await(0, 60*time.Second, msgIs("recording the stream found before"))
	if again["source"] != "known path /Streaming/Channels/101" {
		t.Errorf("remembered: %v", again)
	}
	d2.await(0, 60*time.Second, segmentOf("camera2"))
	stopDaemon(t, d2)
	if strings.Contains(d2.output(), "looking for the camera's stream") {
		t.Error("the restarted daemon looked for the stream again")
	}
	assertNoSecret(t, d.output()+d2.output(), s.minio.SecretKey)
}

// A wrong password: the camera gets an auth error from its first
// discovery and waits five minutes; the other camera (a configured path)
// records.
func TestOnboardWrongPassword(t *testing.T) {
	s := onboardSetup(t)
	dev := standIn(t, s.cam)
	cfg := filepath.Join(t.TempDir(), "config.json")
	const wrong = "Wr0ng!pass"
	writeCameras(t, s, cfg,
		designNoteCamera("camera1", wrong, s.cam.Port, dev.Port(), ""),
		designNoteCamera("camera2", e2ePassword, s.cam.Port, dev.Port(), `, "rtspPath": "/Streaming/Channels/102"`))
	d := startDaemon(t, "run", "--config", cfg)
	failed, i := d.await(0, 60*time.Second, func(m map[string]any) bool {
		return m["message"] != nil && strings.HasPrefix(m["message"].(string), "no stream found") && m["camera"] == "camera1"
	})
	if failed["reason"] != "auth" {
		t.Errorf("discovery failed with %v", failed)
	}
	pause, _ := d.await(i, 60*time.Second, func(m map[string]any) bool {
		return m["message"] == "restarting ffmpeg after a pause" && m["camera"] == "camera1"
	})
	if p, _ := pause["pause"].(float64); p < 300 {
		t.Errorf("pause after a refused password: %v s, want 5 minutes", pause["pause"])
	}
	d.await(0, 60*time.Second, segmentOf("camera2"))

	c := newClient(t, d, "")
	var cam struct {
		apiCamera
		DiscoveryError string `json:"discoveryError"`
		LastExit       *struct {
			Reason string `json:"reason"`
		} `json:"lastExit"`
	}
	c.json("GET", "/api/v1/cameras/camera1", 200, &cam)
	if cam.LastExit == nil || cam.LastExit.Reason != "auth" || !strings.Contains(cam.DiscoveryError, "refused the user name or password") {
		t.Errorf("camera1: state %s, last exit %+v, discovery error %q", cam.State, cam.LastExit, cam.DiscoveryError)
	}
	// One discovery so far, with one refusal from ONVIF and one from RTSP.
	if n := strings.Count(d.output(), `"no stream found`); n != 1 {
		t.Errorf("%d discoveries failed by now, want 1 (the backoff after an auth error is long)", n)
	}
	if r := dev.Rejections(); len(r) != 1 || r[0] != "wrong password digest" { // ONVIF refused once, then the known path once
		t.Errorf("the stand-in saw %q", r)
	}
	var gaps struct {
		Gaps []struct {
			Cause string `json:"cause"`
		} `json:"gaps"`
	}
	c.json("GET", "/api/v1/cameras/camera1/gaps", 200, &gaps)
	if len(gaps.Gaps) == 0 || gaps.Gaps[0].Cause != "auth" {
		t.Errorf("gaps %+v, want one caused by auth", gaps.Gaps)
	}
	stopDaemon(t, d)
	assertNoSecret(t, d.output(), s.minio.SecretKey, wrong)
	if _, err := os.Stat(filepath.Join(s.savePath, "camera1")); err == nil {
		t.Error("camera1 has recordings")
	}
}
