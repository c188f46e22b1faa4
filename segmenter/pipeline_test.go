//go:build integration

package segmenter

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/filesum"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

// These tests run the recording pipeline for real: GStreamer's RTSP server
// as the camera, real ffmpeg under the supervisor, and this package's
// segmenter turning ffmpeg's output into named segments.

const camPassword = "p@ss:/#%w0rd"

type closed struct {
	seg segment.Segment
	at  time.Time // wall clock when the segmenter reported it
}

type pipeline struct {
	t        *testing.T
	savePath string
	sup      *supervisor.Supervisor
	segs     map[string]chan closed // by camera
	events   chan supervisor.Event
	logs     *testenv.Buffer
	cancel   func()
}

// camera is a camera config pointing at the test camera's mount.
func camera(cam *testenv.Camera, name, mount, password string, fps float64, res string, dur float64) config.Camera {
	return config.Camera{CameraName: name, IPAddress: "127.0.0.1", UserName: "admin", Password: password,
		FrameRate: fps, Resolution: res, VideoDuration: dur, VideoFeedID: "xx",
		RTSPPort: cam.Port, RTSPPath: mount, RTSPTransport: "tcp"}
}

func startPipeline(t *testing.T, cams []config.Camera, tweak func(*supervisor.Config)) *pipeline {
	t.Helper()
	p := &pipeline{t: t, savePath: t.TempDir(), segs: map[string]chan closed{}, events: make(chan supervisor.Event, 1000), logs: &testenv.Buffer{}}
	var secrets []string
	for _, c := range cams {
		secrets = append(secrets, c.Password)
		p.segs[c.CameraName] = make(chan closed, 100)
	}
	red := redact.New(secrets...)
	log := zerolog.New(redact.NewWriter(red, p.logs)).With().Timestamp().Logger()
	scfg := supervisor.Config{SavePath: p.savePath, Owner: "test-owner", FFmpegPath: "ffmpeg", StallTimeout: 15 * time.Second, StopTimeout: 5 * time.Second}
	if tweak != nil {
		tweak(&scfg)
	}
	p.sup = supervisor.New(scfg, cams, nil, supervisor.Deps{Log: log, Redactor: red, OnEvent: func(ev supervisor.Event) { p.events <- ev }})
	seg := New(Config{SavePath: p.savePath, Owner: "test-owner", Rescan: time.Second}, Deps{Log: log, OnSegment: func(s segment.Segment) {
		p.segs[s.Camera] <- closed{seg: s, at: time.Now()}
	}})
	supCtx, supCancel := context.WithCancel(context.Background())
	segCtx, segCancel := context.WithCancel(context.Background())
	supDone, segDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(supDone); p.sup.Run(supCtx) }()
	go func() { defer close(segDone); seg.Run(segCtx) }()
	var once sync.Once
	p.cancel = func() {
		once.Do(func() {
			supCancel()
			await.Recv(t, supDone, time.Minute, "supervisor stop")
			segCancel()
			await.Recv(t, segDone, time.Minute, "segmenter stop")
		})
	}
	t.Cleanup(func() {
		p.cancel()
		assertNoPassword(t, p.logs.String(), secrets)
	})
	return p
}

// next waits for the next closed segment of camera.
func (p *pipeline) next(camera string, timeout time.Duration) closed {
	p.t.Helper()
	select {
	case c := <-p.segs[camera]:
		return c
	case <-time.After(timeout):
		p.t.Fatalf("no segment from %s within %v; status %+v", camera, timeout, p.sup.Statuses())
	}
	panic("unreachable")
}

// event waits for an event of kind from camera.
func (p *pipeline) event(camera string, kind supervisor.EventKind, timeout time.Duration) supervisor.Event {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-p.events:
			if ev.Camera == camera && ev.Kind == kind {
				return ev
			}
		case <-deadline:
			p.t.Fatalf("no %s event from %s within %v; status %+v", kind, camera, timeout, p.sup.Statuses())
		}
	}
}

func TestRecordsNamedSegmentsFromARealCamera(t *testing.T) {
	testenv.RequireTools(t)
	cam := testenv.StartCamera(t, testenv.CameraOptions{
		Mounts: map[string]string{"/cam1": "1920x1080@25", "/cam2": "1280x720@25"},
		User:   "admin", Password: camPassword, Auth: "digest",
	})
	// The design note's two cameras, with short segments.
	c1 := camera(cam, "camera1", "/cam1", camPassword, 2, "1920x1080", 6)
	c2 := camera(cam, "camera2", "/cam2", camPassword, 5, "1280x720", 4)
	p := startPipeline(t, []config.Camera{c1, c2}, nil)

	recordingAt := map[string]time.Time{}
	for range 2 {
		ev := await.Recv(t, p.events, time.Minute, "recording event")
		for ev.Kind != supervisor.EventRecording {
			ev = await.Recv(t, p.events, time.Minute, "recording event")
		}
		recordingAt[ev.Camera] = ev.At
	}
	for _, c := range []config.Camera{c1, c2} {
		var got []closed
		for range 3 {
			got = append(got, p.next(c.CameraName, 30*time.Second))
		}
		w, h := c.Size()
		for i, g := range got {
			s := g.seg
			name := filepath.Base(s.Path)
			info, err := segment.Parse(name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			wantPath := filepath.Join(p.savePath, c.CameraName, s.Start.UTC().Format("2006-01-02"), name)
			if s.Path != wantPath || info.Camera != c.CameraName || info.FeedID != "xx" {
				t.Errorf("segment %d at %s, parsed %+v; want it at %s", i, s.Path, info, wantPath)
			}
			if !info.Start.Equal(s.Start.Round(time.Second)) || !info.End.Equal(s.End.Round(time.Second)) {
				t.Errorf("%s: name times %v-%v, segment %v-%v", name, info.Start, info.End, s.Start, s.End)
			}
			// Its checksums, taken in one read as it closed, are the file's.
			if want, err := filesum.File(s.Path); err != nil || s.SHA256 != want.SHA256 || s.CRC64 != want.CRC64 ||
				!bytes.Equal(s.CRC64Blocks, filesum.EncodeBlocks(want.Blocks)) {
				t.Errorf("%s: reported with sha256 %q, crc64 %q, %d bytes of blocks; the file's %+v (%v)", name, s.SHA256, s.CRC64, len(s.CRC64Blocks), want, err)
			}
			pr := testenv.ProbeFile(t, s.Path)
			t.Logf("%s: %v frames=%d fps=%.2f dur=%v reportedAfterEnd=%v startVsPrevEnd=%v", name, s.Duration(), pr.Frames, pr.FPS, pr.Duration, g.at.Sub(s.End), func() time.Duration {
				if i > 0 {
					return s.Start.Sub(got[i-1].seg.End)
				}
				return s.Start.Sub(recordingAt[c.CameraName])
			}())
			if pr.Width != w || pr.Height != h {
				t.Errorf("%s: %dx%d, want %dx%d", name, pr.Width, pr.Height, w, h)
			}
			if pr.FPS < c.FrameRate*0.95 || pr.FPS > c.FrameRate*1.05 {
				t.Errorf("%s: %.2f fps, want %v", name, pr.FPS, c.FrameRate)
			}
			if d := pr.Duration - c.SegmentDuration(); d.Abs() > 500*time.Millisecond {
				t.Errorf("%s: lasts %v, want %v ±0.5s", name, pr.Duration, c.SegmentDuration())
			}
			if d := s.Duration() - pr.Duration; d.Abs() > 500*time.Millisecond {
				t.Errorf("%s: name says %v, content %v", name, s.Duration(), pr.Duration)
			}
			// The name's end is the wall clock when its last frame ended:
			// the segmenter sees it close as the next segment's first
			// frame arrives, within a frame and the debounce.
			if d := g.at.Sub(s.End); d.Abs() > 2*time.Second {
				t.Errorf("%s: ends %v, reported at %v (%v apart)", name, s.End, g.at, d)
			}
			if i > 0 {
				if gap := s.Start.Sub(got[i-1].seg.End); gap.Abs() > time.Second {
					t.Errorf("%s starts %v after the previous segment ends", name, gap)
				}
			}
		}
		// The first frame was recorded as ffmpeg reported its first progress.
		if d := got[0].seg.Start.Sub(recordingAt[c.CameraName]); d.Abs() > 2*time.Second {
			t.Errorf("%s: first segment starts %v, recording began %v", c.CameraName, got[0].seg.Start, recordingAt[c.CameraName])
		}
	}
}

func TestWrongPasswordBacksOffWithoutHurtingOthers(t *testing.T) {
	testenv.RequireTools(t)
	cam := testenv.StartCamera(t, testenv.CameraOptions{
		Mounts: map[string]string{"/cam1": "640x360@25", "/cam2": "640x360@25"},
		User:   "admin", Password: camPassword, Auth: "digest",
	})
	good := camera(cam, "good", "/cam1", camPassword, 5, "640x360", 2)
	bad := camera(cam, "bad", "/cam2", "wrong-"+camPassword, 5, "640x360", 2)
	p := startPipeline(t, []config.Camera{good, bad}, nil)
	for range 2 {
		ev := p.event("bad", supervisor.EventExited, 20*time.Second)
		if ev.Exit.Reason != supervisor.ReasonAuth {
			t.Fatalf("exit = %+v, want an auth failure", ev.Exit)
		}
	}
	c, _ := p.sup.Camera("bad")
	st := c.Status()
	if st.Restarts < 1 || !strings.Contains(st.LastError, "401 Unauthorized") || (st.State != supervisor.Backoff && st.State != supervisor.Starting) {
		t.Errorf("bad camera status = %+v", st)
	}
	// Meanwhile the good camera records.
	for range 2 {
		p.next("good", 20*time.Second)
	}
	if g, _ := p.sup.Camera("good"); g.Status().Restarts != 0 {
		t.Errorf("good camera restarted: %+v", g.Status())
	}
}

func TestRecoversFromStallKillAndCameraRestart(t *testing.T) {
	testenv.RequireTools(t)
	cam := testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@25"}})
	c := camera(cam, "cam", "/cam1", "", 5, "640x360", 3)
	p := startPipeline(t, []config.Camera{c}, func(sc *supervisor.Config) {
		sc.StallTimeout = 3 * time.Second
		sc.StopTimeout = 2 * time.Second
	})
	p.event("cam", supervisor.EventRecording, 20*time.Second)
	first := p.next("cam", 20*time.Second)

	// 1. The camera hangs mid-segment (once the next segment has 1.5s of
	// frames in it): frames stop, the session stays up.
	cc, _ := p.sup.Camera("cam")
	midSegment := time.Duration(3*float64(time.Second)) + 1500*time.Millisecond
	if err := cc.WaitFor(ctxFor(t, 10*time.Second), func(s supervisor.Status) bool {
		return s.Progress != nil && s.Progress.OutTime >= midSegment
	}); err != nil {
		t.Fatalf("no progress past %v after %v: %+v", midSegment, first.seg.Path, cc.Status())
	}
	cam.Stall()
	stalledAt := time.Now()
	ev := p.event("cam", supervisor.EventStalled, 15*time.Second)
	if took := ev.At.Sub(stalledAt); took > 3*time.Second+2*time.Second {
		t.Errorf("stall detected after %v, want within the 3s timeout plus a progress period", took)
	}
	ev = p.event("cam", supervisor.EventExited, 15*time.Second)
	if ev.Exit.Reason != supervisor.ReasonStalled {
		t.Errorf("exit = %+v", ev.Exit)
	}
	// The segment open at the stall was never listed by ffmpeg: it is
	// salvaged. (One listed segment may close just before the stall.)
	s := p.next("cam", 15*time.Second)
	if !s.seg.Salvaged {
		s = p.next("cam", 15*time.Second)
	}
	if !s.seg.Salvaged {
		t.Errorf("segment after the stall = %+v, want a salvaged one", s.seg)
	} else if pr := testenv.ProbeFile(t, s.seg.Path); pr.Frames == 0 || (s.seg.Duration()-pr.Duration).Abs() > 500*time.Millisecond {
		t.Errorf("salvaged %s: %+v, name says %v", s.seg.Path, pr, s.seg.Duration())
	}
	cam.Resume()
	p.event("cam", supervisor.EventRecording, 30*time.Second)

	// 2. ffmpeg is killed.
	if err := syscall.Kill(cc.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev = p.event("cam", supervisor.EventExited, 10*time.Second)
	if ev.Exit.Signal != "killed" || ev.Exit.Reason != supervisor.ReasonExited {
		t.Errorf("exit = %+v", ev.Exit)
	}
	p.event("cam", supervisor.EventRecording, 30*time.Second)

	// 3. The camera server restarts (a reboot).
	cam.Restart()
	ev = p.event("cam", supervisor.EventExited, 30*time.Second)
	t.Logf("exit on camera restart: %+v", ev.Exit)
	p.event("cam", supervisor.EventRecording, 30*time.Second)
	s = p.next("cam", 20*time.Second)
	testenv.ProbeFile(t, s.seg.Path)

	p.cancel()
	entries, _ := os.ReadDir(layout.StagingDir(p.savePath, "cam"))
	if len(entries) != 0 {
		t.Errorf("staging not empty after shutdown: %v", entries)
	}
}

func assertNoPassword(t *testing.T, logs string, secrets []string) {
	t.Helper()
	masked := false
	for _, s := range secrets {
		if s == "" {
			continue
		}
		masked = true
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), strings.ToLower(url.QueryEscape(s)), url.UserPassword("", s).String()[1:]} {
			if strings.Contains(logs, form) {
				t.Errorf("logs hold a password as %q", form)
			}
		}
	}
	if masked && !strings.Contains(logs, "***") && strings.Contains(logs, "Input #0") {
		t.Errorf("logs show ffmpeg's input line but nothing was masked")
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
