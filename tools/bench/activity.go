package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cctvd/cctvd/internal/fixture"
)

// activity: what the activity index costs and how well it finds motion.
//
//   - CPU: cctvd plus its ffmpegs, per camera, with the activity index on
//     against off, two daemons side by side on the same looping files (the
//     same machine state for both): copy 1080p25 with a keyframe every 1 s
//     and every 4 s, and transcode 720p to 5 fps.
//   - accuracy: the test camera's scripted scene (a square moving on and
//     off, the lights switched on still footage), copied with 1 s and 4 s
//     keyframe intervals and transcoded: each interval found against the
//     script, its edges' error;
//   - false positives: ten minutes of the still scene with its noise (and
//     the lights switched four times), the intervals found in them.
func (b *bench) activity(ctx context.Context) error {
	if err := b.activityCPU(ctx); err != nil {
		return err
	}
	return b.activityAccuracy(ctx)
}

func (b *bench) activityCPU(ctx context.Context) error {
	type setup struct {
		name, src, res, mode string
		fps                  float64
		gop                  int // the source's keyframe interval, in frames
	}
	setups := []setup{
		{"copy 1080p25, 1 s GOP", "src-1080p-4M-gop1.mp4", "1920x1080", "copy", 25, 25},
		{"copy 1080p25, 4 s GOP", "src-1080p-4M-gop4.mp4", "1920x1080", "copy", 25, 100},
		{"transcode 720p to 5 fps", "src-720p-2M-gop2.mp4", "1280x720", "transcode", 5, 50},
	}
	n := b.opts.Repeats
	for i, s := range setups {
		src := filepath.Join(b.opts.Work, s.src)
		w, h, _ := strings.Cut(s.res, "x")
		if err := makeSourceGOP(src, w+"x"+h, 25, 20, map[string]string{"1920x1080": "4M", "1280x720": "2M"}[s.res], false, s.gop); err != nil {
			return err
		}
		cams := func(prefix string, off bool) []camSpec {
			out := make([]camSpec, n)
			for j := range out {
				out[j] = camSpec{Name: fmt.Sprintf("%s%d-%d", prefix, i, j), URL: "file://" + src, FPS: s.fps, Res: s.res, Dur: 10, Mode: s.mode, NoActivity: off}
			}
			return out
		}
		on, err := b.startDaemon(filepath.Join(b.opts.Work, fmt.Sprintf("act-on-%d", i)), cams("on", false), "")
		if err != nil {
			return err
		}
		off, err := b.startDaemon(filepath.Join(b.opts.Work, fmt.Sprintf("act-off-%d", i)), cams("off", true), "")
		if err != nil {
			on.stop()
			return err
		}
		time.Sleep(2 * warmup) // a steady state
		type sample struct {
			pids []int
			cpu0 []float64
		}
		take := func(d *daemon) sample {
			ps := append([]int{d.pid()}, children(d.pid())...)
			c := make([]float64, len(ps))
			for j, p := range ps {
				c[j] = procCPU(p)
			}
			return sample{ps, c}
		}
		son, soff := take(on), take(off)
		t0 := time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
		}
		wall := time.Since(t0).Seconds()
		perCam := func(s sample) (total, own float64) {
			for j, p := range s.pids {
				d := procCPU(p) - s.cpu0[j]
				total += d
				if j == 0 {
					own = d
				}
			}
			return 100 * total / wall / float64(n), 100 * own / wall / float64(n)
		}
		onTotal, onOwn := perCam(son)
		offTotal, offOwn := perCam(soff)
		on.stop()
		off.stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.add(Row{Name: fmt.Sprintf("cctvd + ffmpeg CPU per camera, %s, activity index on vs off (%d cameras each, side by side)", s.name, n),
			Value:    fmt.Sprintf("%.2f%% of a core (cctvd's own %.2f%%)", onTotal, onOwn),
			Baseline: fmt.Sprintf("off: %.2f%% (cctvd's own %.2f%%)", offTotal, offOwn),
			Ratio:    fmt.Sprintf("+%.2f%%", onTotal-offTotal), Target: "≤ +1% of a core", Met: met(onTotal-offTotal <= 1)})
	}
	return nil
}

type span struct{ from, to time.Time }

func (b *bench) activityAccuracy(ctx context.Context) error {
	g1, err := fixture.StartCamera(fixture.CameraOptions{Mounts: map[string]string{"/cam": "640x360@25"}, Scene: true, GOPSeconds: 1})
	if err != nil {
		return err
	}
	defer g1.Stop()
	g4, err := fixture.StartCamera(fixture.CameraOptions{Mounts: map[string]string{"/cam": "640x360@25"}, Scene: true, GOPSeconds: 4})
	if err != nil {
		return err
	}
	defer g4.Stop()
	cams := []camSpec{
		{Name: "act-g1", URL: g1.URL("/cam"), FPS: 25, Res: "640x360", Dur: 10, Mode: "copy"},
		{Name: "act-g4", URL: g4.URL("/cam"), FPS: 25, Res: "640x360", Dur: 10, Mode: "copy"},
		{Name: "act-tc", URL: g1.URL("/cam"), FPS: 5, Res: "640x360", Dur: 10, Mode: "transcode"},
	}
	d, err := b.startDaemon(filepath.Join(b.opts.Work, "act-accuracy"), cams, "")
	if err != nil {
		return err
	}
	defer d.stop()
	script := func(cmd string) time.Time {
		for _, c := range []*fixture.Camera{g1, g4} {
			if err := c.Script(cmd); err != nil {
				b.logf("script %q: %v", cmd, err)
			}
		}
		return time.Now()
	}
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	if !wait(15 * time.Second) { // the backgrounds learnt
		return ctx.Err()
	}
	// Intervals of motion (seconds on, then still), the lights switched
	// twice in the still spells.
	plan := []struct {
		on, still float64
		lights    string
	}{{6, 12, ""}, {10, 15, "0.35"}, {4, 12, "0"}, {15, 10, ""}, {8, 15, ""}}
	begin := time.Now()
	var truth []span
	for _, p := range plan {
		on := script("motion on")
		if !wait(time.Duration(p.on * float64(time.Second))) {
			return ctx.Err()
		}
		off := script("motion off")
		truth = append(truth, span{on, off})
		if p.lights != "" {
			wait(time.Duration(p.still / 2 * float64(time.Second)))
			script("lights " + p.lights)
			wait(time.Duration(p.still / 2 * float64(time.Second)))
		} else if !wait(time.Duration(p.still * float64(time.Second))) {
			return ctx.Err()
		}
	}
	scripted := time.Now()
	// Ten minutes of the still scene, the lights switched every 2.5 min.
	b.logf("activity: %d scripted intervals done; 10 minutes of the still scene", len(truth))
	stillFrom := time.Now()
	for _, l := range []string{"0.35", "0", "0.35", "0"} {
		if !wait(150 * time.Second) {
			return ctx.Err()
		}
		script("lights " + l)
	}
	stillTo := time.Now()
	if !wait(25 * time.Second) { // the last segments closed and summarised
		return ctx.Err()
	}
	gop := map[string]time.Duration{"act-g1": time.Second, "act-g4": 4 * time.Second, "act-tc": 10 * time.Second}
	what := map[string]string{"act-g1": "copy, 1 s GOP", "act-g4": "copy, 4 s GOP", "act-tc": "transcode to 5 fps (2 frames a second analysed; its GOP 10 s)"}
	var fp []string
	fpOK := true
	for _, c := range cams {
		found, err := d.activity(c.Name, begin.Add(-time.Minute), scripted)
		if err != nil {
			return err
		}
		for _, f := range found {
			b.logf("activity: %s found %s to %s (%.1f s)", c.Name, f.from.Format("15:04:05.00"), f.to.Format("15:04:05.00"), f.to.Sub(f.from).Seconds())
		}
		for _, tr := range truth {
			b.logf("activity: scripted %s to %s", tr.from.Format("15:04:05.00"), tr.to.Format("15:04:05.00"))
		}
		var errs []float64
		matched, extra := 0, 0
		used := make([]bool, len(found))
		for _, tr := range truth {
			best := -1
			for j, f := range found {
				if !used[j] && f.from.Before(tr.to.Add(gop[c.Name])) && f.to.After(tr.from.Add(-gop[c.Name])) {
					best = j
					break
				}
			}
			if best < 0 {
				continue
			}
			used[best] = true
			matched++
			errs = append(errs, found[best].from.Sub(tr.from).Seconds(), found[best].to.Sub(tr.to).Seconds())
		}
		for _, u := range used {
			if !u {
				extra++
			}
		}
		var abs []float64
		worst := 0.0
		for _, e := range errs {
			abs = append(abs, max(e, -e))
			worst = max(worst, max(e, -e))
		}
		sort.Float64s(errs)
		b.add(Row{Name: fmt.Sprintf("activity index accuracy, scripted motion (%d intervals, the lights switched twice between), %s", len(truth), what[c.Name]),
			Value: fmt.Sprintf("%d/%d found, %d extra; edges off by %.2f s at most (median %.2f s off, signed %+.2f to %+.2f s)",
				matched, len(truth), extra, worst, median(abs), first(errs), last(errs)),
			Baseline: "the script's commands", Ratio: "-", Target: fmt.Sprintf("every edge within a GOP (%v)", gop[c.Name]),
			Met: met(matched == len(truth) && extra == 0 && worst <= gop[c.Name].Seconds())})
		still, err := d.activity(c.Name, stillFrom, stillTo)
		if err != nil {
			return err
		}
		var secs float64
		for _, f := range still {
			secs += minT(f.to, stillTo).Sub(maxT(f.from, stillFrom)).Seconds()
		}
		fp = append(fp, fmt.Sprintf("%s %d (%.1f s)", c.Name, len(still), secs))
		fpOK = fpOK && len(still) == 0
	}
	b.add(Row{Name: fmt.Sprintf("activity index false positives, %.0f min of the still scene with noise, the lights switched 4 times", stillTo.Sub(stillFrom).Minutes()),
		Value: "intervals: " + strings.Join(fp, ", "), Baseline: "-", Ratio: "-", Target: "none", Met: met(fpOK)})
	return nil
}

func first(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[0]
}

func last(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)-1]
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// activity asks the daemon's API for a camera's activity in [from, to).
func (d *daemon) activity(camera string, from, to time.Time) ([]span, error) {
	q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/cameras/%s/activity?%s", d.port, camera, q.Encode()))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var a struct {
		Intervals []struct {
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
		} `json:"intervals"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("activity of %s: HTTP %d", camera, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return nil, err
	}
	out := make([]span, len(a.Intervals))
	for i, iv := range a.Intervals {
		out[i] = span{iv.Start, iv.End}
	}
	return out, nil
}
