package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cctvd/cctvd/segment"
)

// scale: the most copy-mode cameras this box records with every camera's
// footage arriving in S3 on time over a window, as a user sees it, and
// where the box runs out and why.
//
// The rule, per camera: at every instant of the window, the newest of its
// footage verified in S3 ends (the end time in its segment's name, to the
// second) no more than scaleStale before that instant: one segment being
// recorded plus one segment length for its close, upload and verification.
// A camera that stops recording, falls behind or whose uploads queue up
// breaks it; a camera merely not `recording` at one poll of the API does
// not. The window starts once every camera has a segment in S3 (its
// start-up, bounded); the counts run on (32, 64, ...) until a count fails
// or the last, so the step's runtime is bounded (at most
// len(scaleCounts) × (start-up + window + stop)).
//
// Where it runs out: the window's machine CPU (every core, /proc/stat),
// its iowait, cctvd's own CPU and cctvd's with its ffmpegs (a cgroup), and
// the uploads' lag from a segment's end to its verification, for the
// count that passed and the one that failed; the failing one is put down
// to the CPU (the machine ≥ 90 % busy), the disk (iowait ≥ 10 %), else the
// stage that fell behind: closing (p99 from a segment's end to its close
// over a segment length), the upload (from its close to S3), or recording
// (a camera's segments stopped coming). The machine's figures are of the
// whole box: on a shared one, other work is in them.
func (b *bench) scale(ctx context.Context) error {
	src, err := b.lowSource()
	if err != nil {
		return err
	}
	var passed, failed *scaleRun
	for _, n := range scaleCounts {
		r, err := b.scaleOnce(ctx, n, src)
		if err != nil {
			return err
		}
		b.logf("%d cameras: %s", n, r)
		if !r.ok() {
			failed = r
			break
		}
		passed = r
	}
	best := "none"
	if passed != nil {
		best = fmt.Sprintf("%d cameras (worst camera %.1f s stale; %s)", passed.n, passed.worstStale, passed.load())
	}
	why := fmt.Sprintf("every count up to %d passed", scaleCounts[len(scaleCounts)-1])
	if failed != nil {
		why = fmt.Sprintf("%d fail: %s; %s", failed.n, failed.why(), failed.load())
	}
	b.add(Row{Name: fmt.Sprintf("scale: copy cameras (360p, 256 kbit/s, %d s segments), every camera's footage in S3 at most %.0f s old through a %.0f s window",
		scaleDur, scaleStale.Seconds(), scaleWindow.Seconds()),
		Value: best, Baseline: why, Ratio: "-", Target: "-", Met: "-"})
	return nil
}

const scaleDur = 4 // segment seconds

var (
	scaleCounts = []int{64, 128, 192, 256}
	// scaleStale: one segment recording, one more for its close and upload.
	scaleStale  = 2 * scaleDur * time.Second
	scaleWindow = 32 * time.Second
	// scaleWarmup bounds the wait for every camera's first segment.
	scaleWarmup = 90 * time.Second
)

// scaleRun is one count's window.
type scaleRun struct {
	n                 int
	started           int     // cameras with a segment in S3 before the window
	late              int     // cameras whose footage was older than scaleStale at some instant
	gaps              int     // of those, cameras with no segment closed for over two segment lengths
	worstStale        float64 // seconds, the worst camera
	medianStale       float64
	lagP99            float64 // seconds from a segment's end to its verification, over the window
	closeP99, upP99   float64 // of which: its end to its close (the segmenter), its close to its verification (the upload)
	busy, iowait      float64 // the machine's, of all its cores (0..1)
	own, withChildren float64 // cores: cctvd's own, cctvd's with its ffmpegs
}

func (r *scaleRun) ok() bool { return r.started == r.n && r.late == 0 }

func (r *scaleRun) String() string {
	return fmt.Sprintf("%d/%d started, %d late (%d with gaps), worst %.1f s stale (median camera %.1f s), lag p99 %.1f s; %s",
		r.started, r.n, r.late, r.gaps, r.worstStale, r.medianStale, r.lagP99, r.load())
}

func (r *scaleRun) load() string {
	return fmt.Sprintf("p99 end to close %.1f s, close to S3 %.1f s; machine %.0f %% busy, %.0f %% iowait, cctvd %.2f cores, with its ffmpegs %.2f", r.closeP99, r.upP99, 100*r.busy, 100*r.iowait, r.own, r.withChildren)
}

func (r *scaleRun) why() string {
	what := fmt.Sprintf("%d of %d cameras late", r.late, r.n)
	if r.started < r.n {
		what = fmt.Sprintf("%d of %d cameras had no segment in S3 within %v of the start", r.n-r.started, r.n, scaleWarmup)
	}
	stage := "recording (segments stopped coming)"
	switch {
	case r.started == r.n && r.closeP99 > scaleDur:
		stage = "closing (segments closed late after their end)"
	case r.started == r.n && r.upP99 > scaleDur:
		stage = "upload (segments closed on time, their uploads late)"
	}
	switch {
	case r.busy >= 0.9:
		return what + ", " + stage + ": CPU (the machine is full)"
	case r.iowait >= 0.1:
		return what + ", " + stage + ": disk (iowait)"
	}
	return what + ", " + stage + ", with CPU and disk to spare"
}

func (b *bench) scaleOnce(ctx context.Context, n int, src string) (*scaleRun, error) {
	cg, err := newCgroup(fmt.Sprintf("cctvd-bench-scale-%d", n))
	if err != nil {
		return nil, err
	}
	defer cg.remove()
	dir := filepath.Join(b.opts.Work, fmt.Sprintf("scale-%d", n))
	if err := os.RemoveAll(dir); err != nil { // an earlier run's segments would be a backlog
		return nil, err
	}
	d, err := b.startDaemonWith(dir, copyCams(n, src, scaleDur),
		daemonOpts{clear: true, cgroup: cg, noWait: true})
	if err != nil {
		return nil, err
	}
	defer d.stop()
	r := &scaleRun{n: n}
	// Start-up: until every camera has footage in S3, or the bound.
	for deadline := time.Now().Add(scaleWarmup); ; {
		r.started = len(camerasUp(d.snapshot()))
		if r.started == n || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-d.exited:
			return nil, fmt.Errorf("cctvd exited: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	c0, err := cg.cpu()
	if err != nil {
		return nil, err
	}
	busy0, wait0, all0 := machineTimes()
	o0, start := procCPU(d.pid()), time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(scaleWindow):
	}
	end := time.Now()
	c1, err := cg.cpu()
	if err != nil {
		return nil, err
	}
	busy1, wait1, all1 := machineTimes()
	wall := end.Sub(start).Seconds()
	r.own, r.withChildren = (procCPU(d.pid())-o0)/wall, (c1-c0)/wall
	if all := all1 - all0; all > 0 {
		r.busy, r.iowait = (busy1-busy0)/all, (wait1-wait0)/all
	}
	r.judge(d.snapshot(), start, end)
	return r, nil
}

// camerasUp are the cameras with a segment verified in S3 among events.
func camerasUp(events []event) map[string]bool {
	out := map[string]bool{}
	for _, e := range events {
		if e.Message != "uploaded and verified" {
			continue
		}
		if info, err := segment.Parse(e.Segment); err == nil {
			out[info.Camera] = true
		}
	}
	return out
}

// camState is one camera's footage as judge follows it.
type camState struct {
	newest    time.Time // end of the newest footage verified
	worst     time.Duration
	lastClose time.Time
	gap       bool
}

// judge finds each camera's staleness over [start, end]: the time since the
// end of its newest footage verified in S3, at its worst (just before each
// upload in the window, and at the window's end).
func (r *scaleRun) judge(events []event, start, end time.Time) {
	cams := map[string]*camState{}
	for i := range r.n {
		cams[fmt.Sprintf("cam%03d", i+1)] = &camState{}
	}
	var lags, closeLags, upLags []float64
	closedAt := map[string]time.Time{}
	for _, e := range events { // in the order logged
		info, err := segment.Parse(e.Segment)
		c := cams[info.Camera]
		if err != nil || c == nil || e.Time.After(end) {
			continue
		}
		switch e.Message {
		case "segment closed":
			if e.Time.After(start) && !c.lastClose.IsZero() && e.Time.Sub(c.lastClose) > 2*scaleDur*time.Second {
				c.gap = true
			}
			c.lastClose = e.Time
			closedAt[e.Segment] = e.Time
			if e.Time.After(start) {
				closeLags = append(closeLags, e.Time.Sub(info.End).Seconds())
			}
		case "uploaded and verified":
			if e.Time.After(start) {
				c.worst = max(c.worst, c.staleAt(e.Time, start))
				lags = append(lags, e.Time.Sub(info.End).Seconds())
				if at, ok := closedAt[e.Segment]; ok {
					upLags = append(upLags, e.Time.Sub(at).Seconds())
				}
			}
			if info.End.After(c.newest) {
				c.newest = info.End
			}
		}
	}
	var stale []float64
	for _, c := range cams {
		c.worst = max(c.worst, c.staleAt(end, start))
		if c.lastClose.IsZero() || end.Sub(c.lastClose) > 2*scaleDur*time.Second {
			c.gap = true
		}
		if c.worst > scaleStale {
			r.late++
			if c.gap {
				r.gaps++
			}
		}
		stale = append(stale, c.worst.Seconds())
	}
	slices.Sort(stale)
	r.worstStale, r.medianStale = stale[len(stale)-1], median(stale)
	r.lagP99, r.closeP99, r.upP99 = percentile(lags, 0.99), percentile(closeLags, 0.99), percentile(upLags, 0.99)
}

// staleAt is how old the camera's newest footage in S3 is at t; a camera
// with none is over the bound by the window so far.
func (c *camState) staleAt(t, start time.Time) time.Duration {
	if c.newest.IsZero() {
		return t.Sub(start) + scaleStale + time.Second
	}
	return t.Sub(c.newest)
}

// machineTimes are the machine's busy, iowait and total CPU seconds over
// every core since boot (/proc/stat).
func machineTimes() (busy, iowait, total float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		if i >= 8 { // guest time is already in user
			break
		}
		x, _ := strconv.ParseFloat(v, 64)
		total += x
		switch i {
		case 3: // idle
		case 4:
			iowait += x
		default:
			busy += x
		}
	}
	return busy / 100, iowait / 100, total / 100
}
