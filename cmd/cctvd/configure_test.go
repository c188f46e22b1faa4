//go:build integration

package main

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/onvifsim"
)

// TestConfigureCameraThroughTheDaemon: with configureCamera, a camera whose
// profiles say 640x360 at 25 fps where 5 fps is configured is asked for 5
// fps once (SetVideoEncoderConfiguration, checked strictly by the stand-in),
// says so, and records its stream as it comes (copy). The flag goes from
// the config through the supervisor to discovery.
func TestConfigureCameraThroughTheDaemon(t *testing.T) {
	s := onboardSetup(t)
	uri := "rtsp://127.0.0.1:" + strconv.Itoa(s.cam.Port) + "/Streaming/Channels/101" // 640x360@5
	dev, err := onvifsim.Start(onvifsim.Config{User: "admin", Password: e2ePassword, Profiles: []onvifsim.Profile{
		{Token: "Profile_101", Name: "mainStream", Encoding: "H264", Width: 640, Height: 360, FPS: 25, URI: uri,
			Modes: []onvifsim.Mode{{Width: 640, Height: 360, FPS: 25, URI: uri}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeCameras(t, s, cfg, designNoteCamera("camera1", e2ePassword, s.cam.Port, dev.Port(), `, "configureCamera": true`))
	d := startDaemon(t, "run", "--config", cfg)
	asked, _ := d.await(0, 60*time.Second, msgIs("the camera now sends what is configured (configureCamera)"))
	if asked["configured"] != `asked the camera for H264 640x360 at 5 fps on profile "mainStream"` {
		t.Errorf("asked: %v", asked)
	}
	d.await(0, 60*time.Second, segmentOf("camera1"))
	if n := dev.Calls("SetVideoEncoderConfiguration"); n != 1 {
		t.Errorf("%d SetVideoEncoderConfiguration calls, want 1", n)
	}
	c := newClient(t, d, "")
	var cam apiCamera
	c.json("GET", "/api/v1/cameras/camera1", 200, &cam)
	if cam.State != "recording" || cam.Mode != "copy" {
		t.Errorf("camera: state %s, mode %q", cam.State, cam.Mode)
	}
	if r := dev.Rejections(); len(r) != 0 {
		t.Errorf("the stand-in refused calls: %q", r)
	}
	stopDaemon(t, d)
}
