//go:build integration

package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/cctvd/cctvd/internal/netnstest"
	"github.com/cctvd/cctvd/internal/onvifsim"
)

func TestProbeCameraThroughONVIF(t *testing.T) {
	cam := onboardCamera(t)
	d := standIn(t, cam)
	port := strconv.Itoa(cam.Port)
	out, _, err := runCLI(t, map[string]string{PasswordEnv: e2ePassword}, "probe-camera", "--ip", "127.0.0.1", "--port", port,
		"--onvif-port", strconv.Itoa(d.Port()), "--user", "admin", "--resolution", "640x360", "--fps", "5")
	t.Logf("output:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ONVIF http://127.0.0.1:" + strconv.Itoa(d.Port()) + "/onvif/device_service",
		"device    cctvd stand-in onvifsim",
		"1h0m4s behind this machine",
		"mainStream  token Profile_101  H264 640x360 at 5 fps  rtsp://admin:***@127.0.0.1:" + port + "/Streaming/Channels/101",
		"subStream   token Profile_102  H264 320x180 at 5 fps  rtsp://admin:***@127.0.0.1:" + port + "/Streaming/Channels/102",
		"cctvd would record onvif profile \"mainStream\"\n  rtsp://admin:***@127.0.0.1:" + port + "/Streaming/Channels/101",
		"mode auto: H264 640x360 at 5 fps is what is configured: recorded as it is (copy)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	assertNoSecret(t, out)
}

func TestProbeCameraKnownPath(t *testing.T) {
	cam := onboardCamera(t)
	port := strconv.Itoa(cam.Port)
	out, _, err := runCLI(t, nil, "probe-camera", "--ip", "127.0.0.1", "--port", port, "--onvif-port", strconv.Itoa(freePort(t)),
		"--user", "admin", "--password", e2ePassword, "--resolution", "640x360", "--fps", "5")
	t.Logf("output:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"connection refused",
		"/Streaming/Channels/101  Hikvision (main stream)  200, video H264",
		"cctvd would record known path /Streaming/Channels/101\n  rtsp://admin:***@127.0.0.1:" + port + "/Streaming/Channels/101",
		"copy if H264 is H.264/H.265 at 640x360 and at most 5 fps",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	assertNoSecret(t, out)

	// A wrong password: one attempt, an error that says so, no password.
	out, _, err = runCLI(t, nil, "probe-camera", "--ip", "127.0.0.1", "--port", port, "--discovery", "paths",
		"--user", "admin", "--password", "Wr0ng-pass")
	if err == nil || !strings.Contains(err.Error(), "refused the user name or password") {
		t.Fatalf("wrong password: err %v", err)
	}
	if n := strings.Count(out, "credentials refused"); n != 1 || strings.Contains(out, "/Streaming/Channels/102") {
		t.Errorf("wrong password tried more than one path:\n%s", out)
	}
	if strings.Contains(out+err.Error(), "Wr0ng-pass") {
		t.Errorf("the password is shown:\n%s\n%v", out, err)
	}
}

// cctvd discover, the real process, in a network namespace the test
// creates, multicasting to a stand-in in another namespace.
func TestDiscoverInNamespaces(t *testing.T) {
	p := netnstest.NewPair(t)
	d := onvifsim.New(onvifsim.Config{XAddrs: "http://" + p.B.IP + "/onvif/device_service"})
	d.ServeDiscoveryIn(t, p.B)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", p.A.Name, self)
	cmd.Env = append(os.Environ(), "CCTVD_TEST_MAIN=1", "CCTVD_TEST_ARGS=discover --interface "+p.A.Iface+" --timeout 1s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cctvd discover: %v\n%s", err, out)
	}
	t.Logf("output:\n%s", out)
	want := p.B.IP + "  StandIn  onvifsim  http://" + p.B.IP + "/onvif/device_service  urn:uuid:"
	if !strings.Contains(string(out), "1 ONVIF device(s) answered on "+p.A.Iface) || !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q", want)
	}
}
