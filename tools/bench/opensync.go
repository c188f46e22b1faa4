package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cctvd/cctvd/tools/internal/loopfs"
)

// openSync: what flushing the segments ffmpeg is writing every 2 s (the
// default storageConfig.syncInterval, which bounds a power cut's loss)
// costs, against the same daemon with it off ("0": the kernel flushes
// within about 30 s): cctvd's own CPU, and what the disk is asked to do —
// bytes written, write requests and cache flushes a second. savePath is an
// ext4 on a loop device of its own, so the device's counters are cctvd's
// alone (the loop device writes into the page cache of its image file:
// these are the requests a real disk would get, not its speed).
func (b *bench) openSync(ctx context.Context) error {
	if err := loopfs.Check(); err != nil {
		b.logf("sync: not measured: %v", err)
		b.add(Row{Name: "flushing open segments every 2 s", Value: "not measured: " + err.Error(), Baseline: "-", Ratio: "-", Target: "-", Met: "-"})
		return nil
	}
	src, err := b.lowSource()
	if err != nil {
		return err
	}
	img := filepath.Join(b.opts.Work, "sync.img")
	if err := loopfs.MkfsImage(img, 8<<30); err != nil {
		return err
	}
	fs, err := loopfs.Mount(img, filepath.Join(b.opts.Work, "sync"))
	if err != nil {
		return err
	}
	defer fs.Unmount()

	type sample struct{ cpu, mbps, writes, flushes float64 }
	measure := func(n int, interval string, rep int) (sample, error) {
		dir := filepath.Join(fs.Dir, fmt.Sprintf("sync-%d-%s-%d", n, interval, rep))
		d, err := b.startDaemon(dir, copyCams(n, src, 10), "", fmt.Sprintf(`, "syncInterval": %q`, interval))
		if err != nil {
			return sample{}, err
		}
		time.Sleep(warmup) // measuring a steady state
		s0, err := fs.Stat()
		if err != nil {
			d.stop()
			return sample{}, err
		}
		c0, t0 := procCPU(d.pid()), time.Now()
		time.Sleep(window)
		c1, wall := procCPU(d.pid()), time.Since(t0).Seconds()
		s1, err := fs.Stat()
		if stopErr := d.stop(); err == nil {
			err = stopErr
		}
		return sample{
			cpu:     100 * (c1 - c0) / wall,
			mbps:    float64(s1.WriteSectors-s0.WriteSectors) * 512 / 1e6 / wall,
			writes:  float64(s1.WriteIOs-s0.WriteIOs) / wall,
			flushes: float64(s1.Flushes-s0.Flushes) / wall,
		}, err
	}
	for _, n := range []int{16, 64} {
		var on, off [4][]float64
		for rep := range b.opts.Repeats {
			for _, interval := range []string{"2s", "0"} {
				s, err := measure(n, interval, rep)
				if err != nil {
					return err
				}
				dst := &on
				if interval == "0" {
					dst = &off
				}
				for i, v := range []float64{s.cpu, s.mbps, s.writes, s.flushes} {
					dst[i] = append(dst[i], v)
				}
				b.logf("%d cameras, syncInterval %s, run %d: cctvd %.2f%% of a core, %.2f MB/s, %.1f writes/s, %.1f flushes/s",
					n, interval, rep+1, s.cpu, s.mbps, s.writes, s.flushes)
			}
		}
		what := fmt.Sprintf("%d copy cameras, 10 s segments, open segments flushed every 2 s vs not", n)
		for i, m := range []struct{ name, unit string }{
			{"cctvd's own CPU", "% of a core"}, {"disk writes", " MB/s"}, {"disk write requests", "/s"}, {"disk cache flushes", "/s"},
		} {
			v, base := median(on[i]), median(off[i])
			ratio := "-"
			if base > 0 {
				ratio = fmt.Sprintf("%.2f", v/base)
			}
			b.add(Row{Name: m.name + ", " + what, Value: fmt.Sprintf("%.2f%s", v, m.unit), Baseline: fmt.Sprintf("off: %.2f%s", base, m.unit),
				Ratio: ratio, Target: "-", Met: "-"})
		}
	}
	return nil
}
