package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cctvd/cctvd/supervisor"
)

// modes: ffmpeg's CPU per camera-minute by recording mode, under cctvd,
// against the cheapest correct line for the same output, run beside it
// (three cameras of each at once: the three repeats).
func (b *bench) modes(ctx context.Context) error {
	src1080 := filepath.Join(b.opts.Work, "src-1080p-4M.mp4")
	src720 := filepath.Join(b.opts.Work, "src-720p-2M.mp4")
	if err := makeSource(src1080, "1920x1080", 25, 20, "4M", false); err != nil {
		return err
	}
	if err := makeSource(src720, "1280x720", 25, 20, "2M", false); err != nil {
		return err
	}
	modes := []struct {
		name     string
		src      string
		fps      float64
		res      string
		mode     string
		cheapest supervisor.Encoding
		extra    []string
		lines    string
	}{
		{"copy (1080p25 camera)", src1080, 25, "1920x1080", "copy", supervisor.Encoding{Copy: true}, nil, "the same line bare"},
		{"transcode 1080p→2 fps", src1080, 2, "1920x1080", "transcode", supervisor.Encoding{Preset: "ultrafast"}, []string{"-threads", "1"},
			"ultrafast, one thread"},
		{"transcode 720p→5 fps", src720, 5, "1280x720", "transcode", supervisor.Encoding{Preset: "ultrafast"}, []string{"-threads", "1"},
			"ultrafast, one thread"},
	}
	for i, m := range modes {
		cams := make([]camSpec, b.opts.Repeats)
		for j := range cams {
			cams[j] = camSpec{Name: fmt.Sprintf("m%d-%d", i, j), URL: "file://" + m.src, FPS: m.fps, Res: m.res, Dur: 10, Mode: m.mode}
		}
		d, err := b.startDaemon(filepath.Join(b.opts.Work, fmt.Sprintf("mode-%d", i)), cams, "")
		if err != nil {
			return err
		}
		cheap, err := bareFFmpeg(filepath.Join(b.opts.Work, fmt.Sprintf("mode-%d-cheap", i)), cams, m.cheapest, m.extra)
		if err != nil {
			killAll(cheap)
			d.stop()
			return err
		}
		time.Sleep(warmup) // a steady state
		kids, cp := children(d.pid()), pids(cheap)
		k0 := make([]float64, len(kids))
		c0 := make([]float64, len(cp))
		for j, p := range kids {
			k0[j] = procCPU(p)
		}
		for j, p := range cp {
			c0[j] = procCPU(p)
		}
		t0 := time.Now()
		time.Sleep(15 * time.Second)
		wall := time.Since(t0).Minutes()
		var ours, base []float64
		for j, p := range kids {
			ours = append(ours, (procCPU(p)-k0[j])/wall)
		}
		for j, p := range cp {
			base = append(base, (procCPU(p)-c0[j])/wall)
		}
		killAll(cheap)
		if err := d.stop(); err != nil {
			return err
		}
		o, c := median(ours), median(base)
		b.add(Row{Name: "ffmpeg CPU-s per camera-minute, " + m.name + ", vs " + m.lines, Value: fmt.Sprintf("%.2f", o),
			Baseline: fmt.Sprintf("%.2f", c), Ratio: fmt.Sprintf("%.2f", o/c), Target: "-", Met: "-"})
	}
	return nil
}
