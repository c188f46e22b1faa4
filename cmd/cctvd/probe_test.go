package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/onvifsim"
	"github.com/cctvd/cctvd/internal/testenv"
)

// onboardCamera is the real test camera with Hikvision's paths (digest
// auth, the e2e password full of @:/#%).
func onboardCamera(t *testing.T) *testenv.Camera {
	t.Helper()
	testenv.RequireTools(t)
	return testenv.StartCamera(t, testenv.CameraOptions{
		Mounts: map[string]string{"/Streaming/Channels/101": "640x360@5", "/Streaming/Channels/102": "320x180@5"},
		User:   "admin", Password: e2ePassword, Auth: "digest"})
}

// standIn is an ONVIF stand-in device, its clock an hour and a bit
// behind, whose profiles point at the test camera's mounts.
func standIn(t *testing.T, cam *testenv.Camera) *onvifsim.Device {
	t.Helper()
	base := "rtsp://127.0.0.1:" + strconv.Itoa(cam.Port)
	d, err := onvifsim.Start(onvifsim.Config{User: "admin", Password: e2ePassword,
		Clock: func() time.Time { return time.Now().Add(-time.Hour - 4*time.Second) },
		Profiles: []onvifsim.Profile{
			{Token: "Profile_101", Name: "mainStream", Encoding: "H264", Width: 640, Height: 360, FPS: 5, URI: base + "/Streaming/Channels/101"},
			{Token: "Profile_102", Name: "subStream", Encoding: "H264", Width: 320, Height: 180, FPS: 5, URI: base + "/Streaming/Channels/102"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func runCLI(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, args, &stdout, &stderr, func(k string) string { return env[k] }, time.Now)
	return stdout.String(), stderr.String(), err
}

func TestProbeCameraUsage(t *testing.T) {
	for _, args := range [][]string{
		{"probe-camera"},
		{"probe-camera", "--ip", "127.0.0.1", "--resolution", "640*360", "--fps", "5"},
		{"probe-camera", "--ip", "127.0.0.1", "--resolution", "640x360"},
		{"probe-camera", "--ip", "127.0.0.1", "--discovery", "magic"},
		{"discover", "--timeout", "0s"},
	} {
		_, stderr, err := runCLI(t, nil, args...)
		if !errors.Is(err, errUsage) || stderr == "" {
			t.Errorf("%v: err %v, stderr %q; want a usage error", args, err, stderr)
		}
	}
}

// discover on loopback: a unicast probe to the stand-in.
func TestDiscoverUnicast(t *testing.T) {
	d, err := onvifsim.Start(onvifsim.Config{User: "admin", Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.ServeDiscovery(ctx, conn, nil) }()
	defer func() { cancel(); await.Recv(t, done, 10*time.Second, "end of the discovery responder") }()
	out, _, err := runCLI(t, nil, "discover", "--to", conn.LocalAddr().String(), "--timeout", "500ms")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1 ONVIF device(s) answered") || !strings.Contains(out, "127.0.0.1  StandIn  onvifsim  "+d.DeviceURL()) {
		t.Errorf("output:\n%s", out)
	}
}
