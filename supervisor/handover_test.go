package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/await"
)

// reload applies cam changed by change, in the background (Apply returns
// once the old ffmpeg has exited); the channel has its result.
func (h *harness) reload(change func(*config.Camera)) <-chan Applied {
	h.t.Helper()
	cam, err := h.sup.CameraConfig("cam1")
	if err != nil {
		h.t.Fatal(err)
	}
	change(&cam)
	h.clock.Advance(time.Second) // the new run's id (its start's time) differs from the old one's
	h.sup.mu.Lock()
	cfg := h.sup.cfg
	h.sup.mu.Unlock()
	out := make(chan Applied, 1)
	go func() { out <- h.sup.Apply([]config.Camera{cam}, cfg, nil) }()
	return out
}

// newRun waits for the start of a run other than old's.
func (h *harness) newRun(old string) Event {
	h.t.Helper()
	for {
		if ev := h.event(EventStarted); ev.RunID != old {
			return ev
		}
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestReloadHandsOverWithoutAGap: a reload that changes a recording camera
// starts the new ffmpeg while the old one records, and stops the old one
// (SIGINT: it finalises) only once the new one records; meanwhile the
// camera's status is the new run's. Issue 27: the restart left a hole of
// the stop plus ffmpeg's start.
func TestReloadHandsOverWithoutAGap(t *testing.T) {
	h := start(t, "record,held", nil)
	h.event(EventRecording)
	old := h.cam.Status()

	applied := h.reload(func(c *config.Camera) { c.VideoDuration = 6 })
	next := h.newRun(old.RunID)
	if !alive(old.PID) {
		t.Fatal("the old ffmpeg was stopped before the new one started")
	}
	if st := h.cam.Status(); st.State != Recording || st.RunID != old.RunID {
		t.Errorf("the old run while the new one starts: %+v", st)
	}
	if st, _ := h.sup.Status("cam1"); st.RunID != next.RunID || st.State != Starting {
		t.Errorf("status during the handover: %+v, want the new run %s starting", st, next.RunID)
	}
	if cfg, _ := h.sup.CameraConfig("cam1"); cfg.VideoDuration != 6 {
		t.Errorf("config during the handover: %+v", cfg)
	}
	select {
	case res := <-applied:
		t.Fatalf("Apply returned (%+v) before the new run recorded", res)
	default:
	}

	if err := os.WriteFile(filepath.Join(h.dir, "frames-go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The new run records first; the old one exits after it, reconfigured.
	var order []string
	for len(order) < 2 {
		ev := await.Recv(t, h.events, 20*time.Second, "the handover's events")
		switch {
		case ev.Kind == EventRecording && ev.RunID == next.RunID:
			order = append(order, "new recording")
		case ev.Kind == EventExited && ev.RunID == old.RunID:
			order = append(order, "old exited")
			if ev.Exit.Reason != ReasonReconfigured {
				t.Errorf("the old run's exit: %+v", ev.Exit)
			}
		}
	}
	if order[0] != "new recording" {
		t.Errorf("events %v: the old run stopped before the new one recorded", order)
	}
	res := await.Recv(t, applied, 20*time.Second, "Apply's return")
	if len(res.Changed) != 1 {
		t.Errorf("applied %+v", res)
	}
	if alive(old.PID) {
		t.Errorf("Apply returned with the old ffmpeg %d still running", old.PID)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "finalised-interrupt")); err != nil {
		t.Errorf("the old ffmpeg did not get SIGINT to finalise its segment: %v", err)
	}
	if st, _ := h.sup.Status("cam1"); st.State != Recording || st.RunID != next.RunID {
		t.Errorf("after the handover: %+v", st)
	}
}

// TestReloadHandoverEndsWhenTheNewRunFails: a new config the camera
// refuses does not keep the old run going (it would hide the failure): it
// stops once the new run failed.
func TestReloadHandoverEndsWhenTheNewRunFails(t *testing.T) {
	h := start(t, "record,auth", nil)
	h.event(EventRecording)
	old := h.cam.Status()
	applied := h.reload(func(c *config.Camera) { c.Password = "wrong" })
	await.Recv(t, applied, 20*time.Second, "Apply's return")
	if alive(old.PID) {
		t.Errorf("the old ffmpeg %d still runs after the new one failed", old.PID)
	}
	st, _ := h.sup.Status("cam1")
	if st.LastExit == nil || st.LastExit.Reason != ReasonAuth {
		t.Errorf("status after the reload: %+v", st)
	}
}

// TestShutdownDuringAHandoverStopsBoth: Run returns only once both the old
// ffmpeg and the new one have exited, and Apply returns too.
func TestShutdownDuringAHandoverStopsBoth(t *testing.T) {
	h := start(t, "record,held", nil)
	h.event(EventRecording)
	old := h.cam.Status()
	applied := h.reload(func(c *config.Camera) { c.VideoDuration = 6 })
	h.newRun(old.RunID)
	next, _ := h.sup.Status("cam1")
	h.stop()
	for _, pid := range []int{old.PID, next.PID} {
		if pid == 0 || alive(pid) {
			t.Errorf("ffmpeg %d after Run returned (old %d, new %d)", pid, old.PID, next.PID)
		}
	}
	await.Recv(t, applied, 20*time.Second, "Apply's return")
}

// TestReloadOfAStoppedCameraDoesNotStartIt: no handover for a camera an
// operator stopped: the new config is kept, nothing runs.
func TestReloadOfAStoppedCameraDoesNotStartIt(t *testing.T) {
	h := start(t, "record", nil)
	h.event(EventRecording)
	if err := h.sup.Stop(ctxT(t), "cam1"); err != nil {
		t.Fatal(err)
	}
	starts := ffmpegStarts(h)
	await.Recv(t, h.reload(func(c *config.Camera) { c.VideoDuration = 6 }), 20*time.Second, "Apply's return")
	st, _ := h.sup.Status("cam1")
	if st.State != Stopped || st.Desired {
		t.Errorf("after the reload: %+v", st)
	}
	if cfg, _ := h.sup.CameraConfig("cam1"); cfg.VideoDuration != 6 || ffmpegStarts(h) != starts {
		t.Errorf("after the reload: config %+v, %d ffmpeg starts (%d before)", cfg, ffmpegStarts(h), starts)
	}
}

// TestHandoverActivityFeedFollowsOneRun: the activity tracker follows one
// run of a camera at a time; during a handover the old run's frames go on
// until the new run's first frame, and stop there (its end still goes).
func TestHandoverActivityFeedFollowsOneRun(t *testing.T) {
	var got []string
	deps := Deps{Now: time.Now, Frames: func(f Frame) {
		s := f.Run
		if f.End {
			s += " end"
		}
		got = append(got, s)
	}}
	cam := config.Camera{CameraName: "cam1", IPAddress: "127.0.0.1", RTSPPath: "/cam", FrameRate: 2, Resolution: "640x360", VideoDuration: 4}
	old := newHandle(cam, Config{}, deps, nil, true)
	next := newHandle(cam, Config{}, deps, nil, true)
	next.replaces.Store(old)
	oldFrame := func(end bool) { old.cam.deps.Frames(Frame{Camera: "cam1", Run: "old", End: end}) }
	newFrame := func() { next.cam.deps.Frames(Frame{Camera: "cam1", Run: "new"}) }
	oldFrame(false)
	newFrame()
	oldFrame(false)
	newFrame()
	oldFrame(true)
	if want := "[old new new old end]"; fmt.Sprint(got) != want {
		t.Errorf("frames passed on: %v, want %s", got, want)
	}
}
