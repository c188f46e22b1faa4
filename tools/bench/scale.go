package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// scale: the most copy-mode cameras this box records with every segment
// uploaded within one segment length of closing (32, 64, 128, ...).
func (b *bench) scale(ctx context.Context) error {
	src, err := b.lowSource()
	if err != nil {
		return err
	}
	const dur = 4
	best, bestLag := 0, 0.0
	for _, n := range []int{64, 128, 192} {
		d, err := b.startDaemon(filepath.Join(b.opts.Work, fmt.Sprintf("scale-%d", n)), copyCams(n, src, dur), "")
		if err != nil {
			b.logf("%d cameras: %v", n, err)
			break
		}
		start := time.Now()
		const run = 20 * time.Second
		time.Sleep(run) // recording under load
		events := d.snapshot()
		d.stop()
		closed := map[string]time.Time{}
		var lags []float64
		for _, e := range events {
			switch e.Message {
			case "segment closed":
				closed[e.Segment] = e.Time
			case "uploaded and verified":
				if at, ok := closed[e.Segment]; ok && at.After(start) {
					lags = append(lags, e.Time.Sub(at).Seconds())
				}
			}
		}
		worst := percentile(lags, 1)
		// Every segment closed in the window must have gone up.
		pending := 0
		for name, at := range closed {
			if at.After(start) && at.Before(start.Add(run-dur*time.Second)) {
				found := false
				for _, e := range events {
					if e.Message == "uploaded and verified" && e.Segment == name {
						found = true
						break
					}
				}
				if !found {
					pending++
				}
			}
		}
		b.logf("%d cameras: %d segments up, worst lag %.2f s, %d not up", n, len(lags), worst, pending)
		if len(lags) < n*3 || worst > dur || pending > 0 {
			break
		}
		best, bestLag = n, worst
	}
	b.add(Row{Name: fmt.Sprintf("scale: copy cameras (360p, 256 kbit/s) with every %d s segment up within %d s", dur, dur),
		Value: fmt.Sprintf("%d cameras (worst lag %.2f s)", best, bestLag), Baseline: "-", Ratio: "-", Target: "-", Met: "-"})
	return nil
}
