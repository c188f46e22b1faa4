package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/cctvd/cctvd/internal/fixture"
)

// reload: the footage hole at a reload that changes a recording camera
// (its videoDuration, between 2 and 3 s), against the same camera
// restarted by an operator's stop and start through the API, in one
// daemon: the new run's first frame time minus the old run's last (from the
// catalog's times of the two runs' segments; negative: they overlap). The
// goal (issue 27): no hole, the new ffmpeg recording before the old stops.
func (b *bench) reload(ctx context.Context) error {
	cam, err := fixture.StartCamera(fixture.CameraOptions{Mounts: map[string]string{"/cam1": "1280x720@25"}, GOPSeconds: 1})
	if err != nil {
		return err
	}
	defer cam.Stop()
	dir := filepath.Join(b.opts.Work, "reload")
	cams := []camSpec{{Name: "cam1", URL: cam.URL("/cam1"), FPS: 25, Res: "1280x720", Dur: 2, Mode: "copy", NoActivity: true}}
	o := daemonOpts{clear: false}
	d, err := b.startDaemonWith(dir, cams, o)
	if err != nil {
		return err
	}
	defer d.stop()
	var reloads, restarts []float64
	for rep := range b.opts.Repeats {
		cams[0].Dur = 3 - rep%2 // a change every time: 3, 2, 3...
		hole, err := d.hole(ctx, func() error {
			if err := b.writeConfig(dir, cams, o, d.port); err != nil {
				return err
			}
			return d.post("/api/v1/reload")
		})
		if err != nil {
			return fmt.Errorf("reload: %w (see %s)", err, filepath.Join(dir, "cctvd.log"))
		}
		reloads = append(reloads, hole)
		hole, err = d.hole(ctx, func() error {
			if err := d.post("/api/v1/cameras/cam1/stop"); err != nil { // returns once ffmpeg exited
				return err
			}
			return d.post("/api/v1/cameras/cam1/start")
		})
		if err != nil {
			return fmt.Errorf("stop and start: %w (see %s)", err, filepath.Join(dir, "cctvd.log"))
		}
		restarts = append(restarts, hole)
	}
	r, s := median(reloads), median(restarts)
	b.add(Row{Name: "reload: footage hole at a reload that changes a camera (new run's first frame - old run's last; negative: overlap), 720p25 copy",
		Value: fmt.Sprintf("%.2f s", r), Baseline: fmt.Sprintf("%.2f s (stop + start through the API)", s), Ratio: "-",
		Target: "≤ 0 s (no hole)", Met: met(r <= 0)})
	return nil
}

// post makes a POST to the daemon's API and wants a 200.
func (d *daemon) post(path string) error {
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d%s", d.port, path), "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, body)
	}
	return nil
}

// hole runs change (which replaces cam1's running ffmpeg) and returns the
// footage hole it left, in seconds: the new run's first segment's start
// minus the end of the old run's last, on the catalog's times.
func (d *daemon) hole(ctx context.Context, change func() error) (float64, error) {
	var oldRun string
	for _, e := range d.snapshot() {
		if e.Message == "ffmpeg started" {
			oldRun = e.Run
		}
	}
	mark := len(d.snapshot())
	if err := change(); err != nil {
		return 0, err
	}
	// Done when the old run exited and the new one closed two segments
	// after that: the old run's last is moved by then.
	var newRun string
	var segs map[string][]string // run -> its segments' names
	deadline := time.After(time.Minute)
	for {
		exited, after := false, 0
		newRun, segs = "", map[string][]string{}
		for _, e := range d.snapshot()[mark:] {
			switch {
			case e.Message == "ffmpeg exited" && e.Run == oldRun:
				exited = true
			case e.Message == "ffmpeg started" && e.Run != oldRun:
				newRun = e.Run
			case e.Message == "segment closed":
				segs[e.Run] = append(segs[e.Run], e.Segment)
				if exited && e.Run == newRun && newRun != "" {
					after++
				}
			}
		}
		if after >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case err := <-d.exited:
			return 0, fmt.Errorf("cctvd exited: %v", err)
		case <-deadline:
			return 0, errors.New("the new run did not record two segments within a minute")
		case <-time.After(100 * time.Millisecond): // polling the daemon's log from outside
		}
	}
	times, err := d.recordingTimes()
	if err != nil {
		return 0, err
	}
	var oldEnd, newStart time.Time
	for _, name := range segs[oldRun] {
		if t, ok := times[name]; ok && t[1].After(oldEnd) {
			oldEnd = t[1]
		}
	}
	for _, name := range segs[newRun] {
		if t, ok := times[name]; ok && (newStart.IsZero() || t[0].Before(newStart)) {
			newStart = t[0]
		}
	}
	if oldEnd.IsZero() || newStart.IsZero() {
		return 0, fmt.Errorf("no segments of the runs %s and %s in the catalog", oldRun, newRun)
	}
	return newStart.Sub(oldEnd).Seconds(), nil
}

// recordingTimes returns every cam1 segment's start and end, by name,
// from the catalog through the API.
func (d *daemon) recordingTimes() (map[string][2]time.Time, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/recordings?camera=cam1&limit=1000", d.port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list struct {
		Recordings []struct {
			Name       string
			Start, End time.Time
		} `json:"recordings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("recordings: %w", err)
	}
	out := map[string][2]time.Time{}
	for _, r := range list.Recordings {
		out[r.Name] = [2]time.Time{r.Start, r.End}
	}
	return out, nil
}
