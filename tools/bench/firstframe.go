package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cctvd/cctvd/internal/fixture"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// firstFrame: how long a start costs before the first recorded frame, on
// loopback from the RTSP test camera (720p25, a keyframe every second):
// from ffmpeg's start (cctvd's "ffmpeg started" line) to the first
// fragment of the run's first segment on disk (its first moof box, polled
// every 5 ms: the frames a power cut would no longer take), and from
// cctvd's own start to it. Each repeat starts a cctvd on a new folder (a
// first start: nothing known of the camera, mode auto probes it first,
// ffmpeg probes the stream in full) and then again on the same folder (a
// restart: the stream recorded before, mode auto's decision kept, ffmpeg
// starts on the first packet); medians. The goal (issue 27): the first
// frame within GOP + 0.5 s of ffmpeg's start.
func (b *bench) firstFrame(ctx context.Context) error {
	const gop = 1.0
	cam, err := fixture.StartCamera(fixture.CameraOptions{Mounts: map[string]string{"/cam1": "1280x720@25"}, GOPSeconds: gop})
	if err != nil {
		return err
	}
	defer cam.Stop()
	goal := gop + 0.5
	for _, mode := range []string{"copy", "auto"} {
		var fromFFmpeg, fromDaemon [2][]float64 // first start, restart
		for rep := range b.opts.Repeats {
			dir := filepath.Join(b.opts.Work, fmt.Sprintf("first-%s-%d", mode, rep))
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			cams := []camSpec{{Name: "cam1", URL: cam.URL("/cam1"), FPS: 25, Res: "1280x720", Dur: 10, Mode: mode}}
			for life := range 2 {
				began := time.Now()
				d, err := b.startDaemonWith(dir, cams, daemonOpts{clear: true, noWait: true})
				if err != nil {
					return err
				}
				started, frag, err := d.firstFragment(ctx, "cam1", time.Minute)
				d.stop()
				if err != nil {
					return fmt.Errorf("%s: %w (see %s)", mode, err, filepath.Join(dir, "cctvd.log"))
				}
				fromFFmpeg[life] = append(fromFFmpeg[life], frag.Sub(started).Seconds())
				fromDaemon[life] = append(fromDaemon[life], frag.Sub(began).Seconds())
			}
		}
		for life, what := range []string{"first start", "restart"} {
			f := median(fromFFmpeg[life])
			b.add(Row{Name: fmt.Sprintf("start: ffmpeg's start to the first recorded frame on disk, %s mode, %s, 720p25 with a %.0f s GOP over loopback RTSP", mode, what, gop),
				Value: fmt.Sprintf("%.2f s", f), Baseline: fmt.Sprintf("GOP + 0.5 s = %.1f s", goal), Ratio: fmt.Sprintf("%.2f", f/goal),
				Target: "≤ GOP + 0.5 s", Met: met(f <= goal)})
			b.add(Row{Name: fmt.Sprintf("start: cctvd's start to the first recorded frame on disk, %s mode, %s", mode, what),
				Value: fmt.Sprintf("%.2f s", median(fromDaemon[life])), Baseline: "-", Ratio: "-", Target: "-", Met: "-"})
		}
	}
	return nil
}

// firstFragment waits for the daemon's first run of camera ("ffmpeg
// started") and then for the first fragment of that run's first segment
// on disk; it returns when ffmpeg was started (cctvd's line) and when the
// fragment was seen.
func (d *daemon) firstFragment(ctx context.Context, camera string, timeout time.Duration) (started, frag time.Time, err error) {
	deadline := time.After(timeout)
	var run string
	for {
		if run == "" {
			for _, e := range d.snapshot() {
				if e.Message == "ffmpeg started" && e.Camera == camera {
					started, run = e.Time, e.Run
					break
				}
			}
		}
		if run != "" {
			r := staging.Run{Dir: layout.FeedStagingDir(filepath.Join(d.dir, "rec"), camera, ""), ID: run}
			if ok, err := hasFragment(r.SegmentPath(0)); err != nil {
				return started, frag, err
			} else if ok {
				return started, time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return started, frag, ctx.Err()
		case err := <-d.exited:
			return started, frag, fmt.Errorf("cctvd exited: %v", err)
		case <-deadline:
			return started, frag, fmt.Errorf("no fragment on disk within %v", timeout)
		case <-time.After(5 * time.Millisecond): // polling the file ffmpeg writes
		}
	}
}

// hasFragment says whether the MP4 file at path holds a whole moof box
// among its top-level boxes (ftyp, moov, then the fragments); a file not
// there yet holds none.
func hasFragment(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	var head [8]byte
	for off := int64(0); off+8 <= st.Size(); {
		if _, err := f.ReadAt(head[:], off); err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		size := int64(binary.BigEndian.Uint32(head[:4]))
		if size < 8 {
			return false, nil // a 64-bit or open-ended box: not ffmpeg's fragments
		}
		if string(head[4:]) == "moof" {
			return off+size <= st.Size(), nil
		}
		off += size
	}
	return false, nil
}
