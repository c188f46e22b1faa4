package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cctvd/cctvd/internal/fixture"
)

// firstFrame: how long a start costs before the first recorded frame, on
// loopback from the RTSP test camera (720p25, a keyframe every second):
// from ffmpeg's start to the run's first frame written (cctvd's own
// "ffmpeg started" and "recording" log lines), and from cctvd's start (the
// process started) to that frame, in copy mode and in auto mode (whose
// ffprobe runs before ffmpeg starts). Each repeat starts a new cctvd on a
// new folder; medians. The goal (issue 27): the first frame within GOP +
// 0.5 s of ffmpeg's start.
func (b *bench) firstFrame(ctx context.Context) error {
	const gop = 1.0
	cam, err := fixture.StartCamera(fixture.CameraOptions{Mounts: map[string]string{"/cam1": "1280x720@25"}, GOPSeconds: gop})
	if err != nil {
		return err
	}
	defer cam.Stop()
	for _, mode := range []string{"copy", "auto"} {
		var fromFFmpeg, fromDaemon []float64
		for rep := range b.opts.Repeats {
			dir := filepath.Join(b.opts.Work, fmt.Sprintf("first-%s-%d", mode, rep))
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			cams := []camSpec{{Name: "cam1", URL: cam.URL("/cam1"), FPS: 25, Res: "1280x720", Dur: 10, Mode: mode}}
			began := time.Now()
			d, err := b.startDaemonWith(dir, cams, daemonOpts{clear: true, noWait: true})
			if err != nil {
				return err
			}
			started, recording, err := d.firstRecording(ctx, time.Minute)
			d.stop()
			if err != nil {
				return fmt.Errorf("%s: %w (see %s)", mode, err, filepath.Join(dir, "cctvd.log"))
			}
			fromFFmpeg = append(fromFFmpeg, recording.Sub(started).Seconds())
			fromDaemon = append(fromDaemon, recording.Sub(began).Seconds())
		}
		goal := gop + 0.5
		f := median(fromFFmpeg)
		b.add(Row{Name: fmt.Sprintf("start: ffmpeg's start to the first recorded frame, %s mode, 720p25 with a %.0f s GOP over loopback RTSP", mode, gop),
			Value: fmt.Sprintf("%.2f s", f), Baseline: fmt.Sprintf("GOP + 0.5 s = %.1f s", goal), Ratio: fmt.Sprintf("%.2f", f/goal),
			Target: "≤ GOP + 0.5 s", Met: met(f <= goal)})
		b.add(Row{Name: fmt.Sprintf("start: cctvd's start to the first recorded frame, %s mode (auto: its ffprobe first)", mode),
			Value: fmt.Sprintf("%.2f s", median(fromDaemon)), Baseline: "-", Ratio: "-", Target: "-", Met: "-"})
	}
	return nil
}

// firstRecording waits for the first run's "ffmpeg started" and its
// "recording" (the first frame written) and returns when each was logged.
func (d *daemon) firstRecording(ctx context.Context, timeout time.Duration) (started, recording time.Time, err error) {
	deadline := time.After(timeout)
	for {
		for _, e := range d.snapshot() {
			switch {
			case e.Message == "ffmpeg started" && started.IsZero():
				started = e.Time
			case e.Message == "recording" && !started.IsZero() && recording.IsZero():
				recording = e.Time
			}
		}
		if !recording.IsZero() {
			return started, recording, nil
		}
		started = time.Time{}
		select {
		case <-ctx.Done():
			return started, recording, ctx.Err()
		case err := <-d.exited:
			return started, recording, fmt.Errorf("cctvd exited: %v", err)
		case <-deadline:
			return started, recording, fmt.Errorf("no recording within %v", timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
