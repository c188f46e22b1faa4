package supervisor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/staging"
)

// TestProbeKey: a probe holds for the stream it was made of, whatever the
// password; another stream, transport, mode, size or rate is probed again.
func TestProbeKey(t *testing.T) {
	base := config.Camera{CameraName: "c", IPAddress: "10.0.0.5", RTSPPort: 554, RTSPPath: "/s1", RTSPTransport: "tcp",
		UserName: "admin", Password: "one", Mode: config.ModeAuto, Resolution: "1280x720", FrameRate: 5}
	key := probeKey(base)
	if strings.Contains(key, "one") {
		t.Errorf("key %q holds the password", key)
	}
	for _, tt := range []struct {
		name   string
		change func(*config.Camera)
		same   bool
	}{
		{"new password", func(c *config.Camera) { c.Password = "two" }, true},
		{"another user", func(c *config.Camera) { c.UserName = "viewer" }, false},
		{"another path", func(c *config.Camera) { c.RTSPPath = "/s2" }, false},
		{"another address", func(c *config.Camera) { c.IPAddress = "10.0.0.6" }, false},
		{"udp", func(c *config.Camera) { c.RTSPTransport = "udp" }, false},
		{"another size", func(c *config.Camera) { c.Resolution = "1920x1080" }, false},
		{"another rate", func(c *config.Camera) { c.FrameRate = 25 }, false},
		{"mode copy", func(c *config.Camera) { c.Mode = config.ModeCopy }, false},
		{"another segment length", func(c *config.Camera) { c.VideoDuration = 60 }, true},
	} {
		c := base
		tt.change(&c)
		if got := probeKey(c) == key; got != tt.same {
			t.Errorf("%s: same key %v, want %v", tt.name, got, tt.same)
		}
	}
}

func TestTightProbing(t *testing.T) {
	rtsp := config.Camera{IPAddress: "10.0.0.5", RTSPPort: 554, RTSPPath: "/s1"}
	file := config.Camera{StreamURL: "file:///srv/loop.mp4"}
	for _, tt := range []struct {
		name         string
		cam          config.Camera
		known, loose bool
		want         bool
	}{
		{"rtsp, recorded before", rtsp, true, false, true},
		{"rtsp, never recorded", rtsp, false, false, false},
		{"rtsp, a tight start failed", rtsp, true, true, false},
		{"a file", file, true, false, false},
	} {
		if got := tightProbing(tt.cam, tt.known, tt.loose); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	cam := rtsp
	cam.FrameRate, cam.Resolution, cam.VideoDuration, cam.RTSPTransport = 5, "640x360", 10, "tcp"
	run := staging.Run{Dir: "/s", ID: "r"}
	args := Args(cam, run, Encoding{Copy: true, Tight: true})
	i := slices.Index(args, "-i")
	if n := len(tightArgs); i < n || !slices.Equal(args[i-n:i], tightArgs) {
		t.Errorf("tight args %v: want %v just before -i", args, tightArgs)
	}
	if slices.Contains(Args(cam, run, Encoding{Copy: true}), "-probesize") {
		t.Error("probesize without Tight")
	}
	// Copying with the activity feed: the probe must not wait for a frame
	// rate it cannot measure from keyframes alone.
	if a := Args(cam, run, Encoding{Copy: true, Activity: true}); !slices.Contains(a, "-fpsprobesize") {
		t.Errorf("copy with activity, first start: %v, want -fpsprobesize 0", a)
	}
}

// TestUntilBoundary: a run switching mode stops switchLead before its next
// segment boundary (stream time from the latest progress block, advanced
// by the time since), or the one after when that is under a second away.
func TestUntilBoundary(t *testing.T) {
	for _, tt := range []struct {
		name          string
		dur           float64
		out, at, mono time.Duration
		want          time.Duration
	}{
		{"mid segment", 10, 3 * time.Second, 0, 0, 7*time.Second - switchLead},
		{"time passed since the block", 10, 3 * time.Second, 0, 2 * time.Second, 5*time.Second - switchLead},
		{"too close: the next one", 10, 9500 * time.Millisecond, 0, 0, 10500*time.Millisecond - switchLead},
		{"later segment", 2, 7 * time.Second, 0, 0, 3*time.Second - switchLead},
	} {
		a := &attempt{cam: config.Camera{VideoDuration: tt.dur}, lastOut: tt.out, lastOutMono: tt.at}
		if got := a.untilBoundary(tt.mono); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTightFailed(t *testing.T) {
	for _, tt := range []struct {
		tight    bool
		reason   ExitReason
		recorded bool
		want     bool
	}{
		{true, ReasonExited, false, true},
		{true, ReasonStalled, false, true},
		{true, ReasonUnreachable, false, false}, // the camera was away, not its description
		{true, ReasonAuth, false, false},
		{true, ReasonExited, true, false},
		{false, ReasonExited, false, false},
	} {
		if got := tightFailed(Encoding{Tight: tt.tight}, tt.reason, tt.recorded); got != tt.want {
			t.Errorf("%+v: %v", tt, got)
		}
	}
}

func TestLacksParameters(t *testing.T) {
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"[rtsp @ 0x1] Could not find codec parameters for stream 0 (Video: h264, none): unspecified size", true},
		{"[mp4 @ 0x2] dimensions not set", true},
		{"[rtsp @ 0x1] method DESCRIBE failed: 503 Service Unavailable", false},
		{"Invalid data found when processing input", false},
	} {
		if got := lacksParameters([]string{"[info] Input #0", tt.line}); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.line, got, tt.want)
		}
	}
}
