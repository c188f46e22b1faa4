package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// latency: from ffmpeg closing a ~10 MB segment (the next segment's file
// appears: the segment muxer closes a file before it opens the next) to
// cctvd logging it uploaded and verified in MinIO.
func (b *bench) latency(ctx context.Context) error {
	src := filepath.Join(b.opts.Work, "src-1080p-27M.mp4")
	if err := makeSource(src, "1920x1080", 25, 12, "27M", true); err != nil {
		return err
	}
	cams := []camSpec{
		{Name: "hi1", URL: "file://" + src, FPS: 25, Res: "1920x1080", Dur: 3, Mode: "copy"},
		{Name: "hi2", URL: "file://" + src, FPS: 25, Res: "1920x1080", Dur: 3, Mode: "copy"},
		{Name: "hi3", URL: "file://" + src, FPS: 25, Res: "1920x1080", Dur: 3, Mode: "copy"},
	}
	dir := filepath.Join(b.opts.Work, "latency")
	d, err := b.startDaemon(dir, cams, "")
	if err != nil {
		return err
	}
	defer d.stop()

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	for _, c := range cams {
		if err := w.Add(layout.StagingDir(filepath.Join(dir, "rec"), c.Name)); err != nil {
			return err
		}
	}
	type key struct {
		run string
		i   int
	}
	var mu sync.Mutex
	closedAt := map[key]time.Time{}
	go func() {
		for ev := range w.Events {
			if !ev.Has(fsnotify.Create) {
				continue
			}
			if kind, run, i := staging.Classify(filepath.Base(ev.Name)); kind == staging.Segment && i > 0 {
				mu.Lock()
				closedAt[key{run, i - 1}] = time.Now()
				mu.Unlock()
			}
		}
	}()

	var lat []float64
	deadline := time.Now().Add(3 * time.Minute)
	for len(lat) < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Second) // collecting samples as segments close
		lat = lat[:0]
		perRun := map[string]int{}
		name := map[string]key{}
		for _, e := range d.snapshot() {
			switch e.Message {
			case "segment closed":
				name[e.Segment] = key{e.Run, perRun[e.Run]}
				perRun[e.Run]++
			case "uploaded and verified":
				k, ok := name[e.Segment]
				mu.Lock()
				at, seen := closedAt[k]
				mu.Unlock()
				if ok && seen {
					lat = append(lat, e.Time.Sub(at).Seconds())
				}
			}
		}
	}
	if len(lat) < 50 {
		return fmt.Errorf("only %d latency samples", len(lat))
	}
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	b.add(Row{Name: fmt.Sprintf("close-to-S3 latency, ~10 MB segments, p50 (%d samples)", len(lat)), Value: fmt.Sprintf("%.3f s", p50),
		Baseline: "-", Ratio: "-", Target: "≤ 0.3 s", Met: met(p50 <= 0.3)})
	b.add(Row{Name: "close-to-S3 latency, ~10 MB segments, p99", Value: fmt.Sprintf("%.3f s", p99),
		Baseline: "-", Ratio: "-", Target: "≤ 1 s", Met: met(p99 <= 1)})
	return nil
}
