//go:build integration

package discovery

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/onvifsim"
	"github.com/cctvd/cctvd/internal/testenv"
)

// cameras shared by the tests: a digest camera with Hikvision's paths and a
// basic-auth camera with a path no list knows. Started once.
var (
	camsOnce       sync.Once
	digestCam      *testenv.Camera
	basicCam       *testenv.Camera
	camsStartError error
)

func cameras(t *testing.T) (digest, basic *testenv.Camera) {
	t.Helper()
	testenv.RequireTools(t)
	camsOnce.Do(func() {
		// Started outside any test's cleanup: stopped in TestMain.
		c, err := startCam(map[string]string{"/Streaming/Channels/101": "640x360@5", "/Streaming/Channels/102": "320x180@5"}, "digest")
		if err != nil {
			camsStartError = err
			return
		}
		digestCam = c
		if basicCam, err = startCam(map[string]string{"/custom/stream": "320x180@5"}, "basic"); err != nil {
			camsStartError = err
		}
	})
	if camsStartError != nil {
		t.Fatal(camsStartError)
	}
	return digestCam, basicCam
}

func target(cam *testenv.Camera, password string) Target {
	return Target{Host: "127.0.0.1", RTSPPort: cam.Port, ONVIFPort: closedPort(), User: camUser, Password: password,
		Width: 640, Height: 360, FPS: 5}
}

// onvifFailure is the ONVIF step's error, if it was reported.
func (a *attempts) onvifFailure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.list {
		if x.Path == "" {
			return x.Err
		}
	}
	return nil
}

// The design note's camera with the test camera's address and password, no
// path: the first known path is Hikvision's main stream, found at once.
func TestKnownPathHikvision(t *testing.T) {
	cam, _ := cameras(t)
	var a attempts
	found, err := fastFinder().Paths(context.Background(), target(cam, camPassword), a.report)
	if err != nil {
		t.Fatal(err)
	}
	if want := "rtsp://127.0.0.1:" + strconv.Itoa(cam.Port) + "/Streaming/Channels/101"; found.URI != want {
		t.Errorf("URI %s, want %s", found.URI, want)
	}
	if found.Source != "known path /Streaming/Channels/101" || found.Codec != "H264" {
		t.Errorf("found %+v", found)
	}
	if p := a.paths(); len(p) != 1 {
		t.Errorf("attempts %v, want one", p)
	}
	if r := a.list[0].Result; !r.Authenticated || r.Status != 200 || !r.Video || !strings.Contains(r.Server, "GStreamer") || a.list[0].Err != nil {
		t.Errorf("description %+v", r)
	}
}

// A wrong password: the camera refuses the digest answer on the first path
// and the search stops there, with an auth error, after one attempt.
func TestWrongPasswordStopsAtOnce(t *testing.T) {
	cam, _ := cameras(t)
	var a attempts
	_, err := fastFinder().Paths(context.Background(), target(cam, "not-the-password"), a.report)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err %v, want ErrAuth", err)
	}
	if p := a.paths(); len(p) != 1 {
		t.Errorf("attempts %v, want one: a refused password must stop the probing", p)
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("the error shows the password: %v", err)
	}
	// No credentials at all: also an auth error, at once.
	a = attempts{}
	tg := target(cam, "")
	tg.User = ""
	if _, err := fastFinder().Paths(context.Background(), tg, a.report); !errors.Is(err, ErrAuth) || len(a.paths()) != 1 {
		t.Errorf("without credentials: err %v after %v", err, a.paths())
	}
}

// Basic authentication, and a path found after others answered 404.
func TestBasicAuthAndALaterPath(t *testing.T) {
	_, cam := cameras(t)
	f := New(Config{Paths: []KnownPath{{"/Streaming/Channels/101", "a"}, {"/cam/realmonitor?channel=1&subtype=0", "b"}, {"/custom/stream", "c"}},
		PathInterval: time.Millisecond, PathBurst: 10})
	var a attempts
	found, err := f.Paths(context.Background(), target(cam, camPassword), a.report)
	if err != nil {
		t.Fatalf("%v after %v", err, a.paths())
	}
	if found.Source != "known path /custom/stream" || len(a.paths()) != 3 {
		t.Errorf("found %+v after %v", found, a.paths())
	}
	if r := a.list[1].Result; r.Status != 404 {
		t.Errorf("Dahua's path answered %+v, want 404", r)
	}
	if r := a.list[2].Result; !r.Authenticated || !r.Video {
		t.Errorf("the basic-auth path: %+v", r)
	}
	if _, err := f.Paths(context.Background(), target(cam, "wrong"), nil); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong basic password: err %v, want ErrAuth", err)
	}
}

// A camera whose path no list knows: every known path is tried, then a
// clear not-found error.
func TestUnknownPath(t *testing.T) {
	_, cam := cameras(t)
	var a attempts
	_, err := fastFinder().Paths(context.Background(), target(cam, camPassword), a.report)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
	if n := len(a.paths()); n != len(KnownPaths) {
		t.Errorf("%d attempts, want all %d known paths", n, len(KnownPaths))
	}
	if !strings.Contains(err.Error(), "none of the 20 known paths answered with video") {
		t.Errorf("error %q", err)
	}
}

// Probing is paced per address: after the burst, one attempt per interval,
// across calls.
func TestPathProbingIsPaced(t *testing.T) {
	_, cam := cameras(t)
	const interval = 150 * time.Millisecond
	paths := []KnownPath{{"/a", ""}, {"/b", ""}, {"/c", ""}, {"/d", ""}, {"/e", ""}}
	f := New(Config{Paths: paths, PathInterval: interval, PathBurst: 2})
	var a attempts
	if _, err := f.Paths(context.Background(), target(cam, camPassword), a.report); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := f.Paths(context.Background(), target(cam, camPassword), a.report); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.at) != 10 {
		t.Fatalf("%d attempts", len(a.at))
	}
	// Attempt k (k ≥ burst) cannot start before (k-burst+1) intervals after
	// the first; a small margin for the limiter's own reading of the clock.
	for k := 2; k < len(a.at); k++ {
		min := time.Duration(k-1)*interval - 10*time.Millisecond
		if got := a.at[k].Sub(a.at[0]); got < min {
			t.Errorf("attempt %d came %v after the first, before the pace allows (%v)", k+1, got, min)
		}
	}
}

// wrongClock is a device clock three hours and a bit behind.
func wrongClock() time.Time { return time.Now().Add(-3*time.Hour - 7*time.Second) }

func startDevice(t *testing.T, cam *testenv.Camera, password string) *onvifsim.Device {
	t.Helper()
	base := "rtsp://127.0.0.1:" + strconv.Itoa(cam.Port)
	d, err := onvifsim.Start(onvifsim.Config{User: camUser, Password: password, Clock: wrongClock, Profiles: []onvifsim.Profile{
		{Token: "Profile_101", Name: "mainStream", Encoding: "H264", Width: 640, Height: 360, FPS: 25, URI: base + "/Streaming/Channels/101"},
		{Token: "Profile_102", Name: "subStream", Encoding: "H264", Width: 320, Height: 180, FPS: 5, URI: base + "/Streaming/Channels/102"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// ONVIF first: the stand-in device (with a wrong clock) lists two profiles;
// the one that can be copied at the configured size and rate is chosen,
// its URI (the real test camera's) checked with DESCRIBE.
func TestFindThroughONVIF(t *testing.T) {
	cam, _ := cameras(t)
	d := startDevice(t, cam, camPassword)
	tg := target(cam, camPassword)
	tg.ONVIFPort, tg.Width, tg.Height, tg.FPS = d.Port(), 320, 180, 5
	var a attempts
	found, err := fastFinder().Find(context.Background(), tg, a.report)
	if err != nil {
		t.Fatal(err)
	}
	if found.Source != `onvif profile "subStream"` || found.Choice == nil || !found.Choice.Copy ||
		found.URI != "rtsp://127.0.0.1:"+strconv.Itoa(cam.Port)+"/Streaming/Channels/102" {
		t.Errorf("found %+v (choice %+v)", found, found.Choice)
	}
	if len(a.paths()) != 0 {
		t.Errorf("known paths tried although ONVIF answered: %v", a.paths())
	}
	if r := d.Rejections(); len(r) != 0 {
		t.Errorf("the device refused calls: %q", r)
	}

	// At 640x360 and 2 fps nothing copies: the main stream, transcoded.
	tg.Width, tg.Height, tg.FPS = 640, 360, 2
	found, rep, err := fastFinder().ONVIF(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if found.Source != `onvif profile "mainStream"` || found.Choice.Copy {
		t.Errorf("found %+v (choice %+v)", found, found.Choice)
	}
	if off := rep.ClockOffset; (off + 3*time.Hour + 7*time.Second).Abs() > 1500*time.Millisecond {
		t.Errorf("clock offset %v, want about -3h0m7s", off)
	}
	if len(rep.URIs) != 2 || rep.Info.Model != "onvifsim" {
		t.Errorf("report %+v", rep)
	}
}

// ONVIF refuses the password (an ONVIF user that differs, as on many
// Hikvision cameras): the known paths are tried, and refuse it too.
func TestFindWrongPasswordEverywhere(t *testing.T) {
	cam, _ := cameras(t)
	d := startDevice(t, cam, camPassword)
	tg := target(cam, "wrong")
	tg.ONVIFPort = d.Port()
	var a attempts
	_, err := fastFinder().Find(context.Background(), tg, a.report)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err %v, want ErrAuth", err)
	}
	if len(a.paths()) != 1 || len(d.Rejections()) != 1 {
		t.Errorf("attempts %v, device rejections %q: want one each", a.paths(), d.Rejections())
	}
	if err := a.onvifFailure(); !errors.Is(err, ErrAuth) {
		t.Errorf("ONVIF step reported %v, want ErrAuth", err)
	}

	// The ONVIF user differs from the RTSP one: ONVIF refuses, the known
	// path works.
	d2 := startDevice(t, cam, "the-onvif-password")
	tg = target(cam, camPassword)
	tg.ONVIFPort = d2.Port()
	found, err := fastFinder().Find(context.Background(), tg, nil)
	if err != nil || found.Source != "known path /Streaming/Channels/101" {
		t.Errorf("found %+v, err %v", found, err)
	}
}

// discovery "onvif" without ONVIF: unreachable, no path tried.
func TestONVIFOnly(t *testing.T) {
	cam, _ := cameras(t)
	tg := target(cam, camPassword)
	tg.Method = MethodONVIF
	var n atomic.Int32
	_, err := fastFinder().Find(context.Background(), tg, func(Attempt) { n.Add(1) })
	if !errors.Is(err, ErrUnreachable) || n.Load() != 0 {
		t.Errorf("err %v after %d path attempts", err, n.Load())
	}
}

// configureCam is a stand-in whose main profile sends 640x360 at 25 fps
// and can be set to 5 fps, served then by the test camera's 5 fps mount.
func configureCam(t *testing.T, cam *testenv.Camera) *onvifsim.Device {
	t.Helper()
	uri := "rtsp://127.0.0.1:" + strconv.Itoa(cam.Port) + "/Streaming/Channels/101" // 640x360@5
	d, err := onvifsim.Start(onvifsim.Config{User: camUser, Password: camPassword, Profiles: []onvifsim.Profile{
		{Token: "Profile_101", Name: "mainStream", Encoding: "H264", Width: 640, Height: 360, FPS: 25, URI: uri,
			Modes: []onvifsim.Mode{{Width: 640, Height: 360, FPS: 25, URI: uri}, {Width: 320, Height: 180, FPS: 25, URI: uri}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestConfigureCameraAsksForTheConfiguredStream: no profile sends 640x360
// at 5 fps; with Configure, discovery asks the camera for it on the chosen
// profile (SetVideoEncoderConfiguration, which the strict stand-in checks
// against the schema and its encoder's options), reads the profiles
// again, and the profile is now recorded as it comes. Without Configure
// the camera is left alone; a rate the camera does not offer is not asked
// for, and says why.
func TestConfigureCameraAsksForTheConfiguredStream(t *testing.T) {
	cam, _ := cameras(t)
	d := configureCam(t, cam)
	tg := target(cam, camPassword)
	tg.ONVIFPort = d.Port()

	found, _, err := fastFinder().ONVIF(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if found.Choice.Copy || found.Configured != "" || d.Calls("SetVideoEncoderConfiguration") != 0 {
		t.Fatalf("without configureCamera: %+v (choice %+v), %d sets", found, found.Choice, d.Calls("SetVideoEncoderConfiguration"))
	}

	tg.Configure, tg.Width, tg.Height = true, 1280, 720 // a size the encoder does not offer
	found, _, err = fastFinder().ONVIF(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if found.Choice.Copy || !strings.Contains(found.ConfigureError, "offers 640x360, 320x180, not 1280x720") || d.Calls("SetVideoEncoderConfiguration") != 0 {
		t.Fatalf("1280x720: %+v, %d sets", found, d.Calls("SetVideoEncoderConfiguration"))
	}

	tg.Width, tg.Height = 640, 360
	found, rep, err := fastFinder().ONVIF(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if !found.Choice.Copy || found.ConfigureError != "" || d.Calls("SetVideoEncoderConfiguration") != 1 ||
		found.Configured != `asked the camera for H264 640x360 at 5 fps on profile "mainStream"` {
		t.Fatalf("configured: %+v (choice %+v), %d sets", found, found.Choice, d.Calls("SetVideoEncoderConfiguration"))
	}
	if p := rep.Profiles[0]; p.FPS != 5 || p.Width != 640 {
		t.Errorf("the camera's profile after: %+v", p)
	}
	if r := d.Rejections(); len(r) != 0 {
		t.Errorf("the device refused calls: %q", r)
	}
}
