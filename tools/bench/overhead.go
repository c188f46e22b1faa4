package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/staging"
	"github.com/cctvd/cctvd/supervisor"
)

const (
	warmup = 3 * time.Second
	window = 10 * time.Second
)

// lowSource is a cheap camera: 640x360 at 10 fps, 256 kbit/s, like a
// camera's substream.
func (b *bench) lowSource() (string, error) {
	p := filepath.Join(b.opts.Work, "src-360p-256k.mp4")
	return p, makeSource(p, "640x360", 10, 20, "256k", false)
}

func copyCams(n int, src string, dur int) []camSpec {
	return copyCamsActivity(n, src, dur, true)
}

// supervisedCams are the overhead step's cameras: the activity index off,
// as on the bare side (whose lines have no activity feed), so that the two
// sides do the same work and the 600 s case is supervision alone (step
// activity measures the index).
func supervisedCams(n int, src string, dur int) []camSpec {
	return copyCamsActivity(n, src, dur, false)
}

func copyCamsActivity(n int, src string, dur int, activity bool) []camSpec {
	cams := make([]camSpec, n)
	for i := range cams {
		cams[i] = camSpec{Name: fmt.Sprintf("cam%03d", i+1), URL: "file://" + src, FPS: 10, Res: "640x360", Dur: dur, Mode: "copy", NoActivity: !activity}
	}
	return cams
}

// bareArgs is the ffmpeg line cctvd runs for c, as cctvd builds it (with
// its progress period for the default stall timeout), and extra output
// options before the output format.
func bareArgs(dir string, c camSpec, enc supervisor.Encoding, extra []string) ([]string, error) {
	cam := config.Camera{CameraName: c.Name, StreamURL: c.URL, FrameRate: c.FPS, Resolution: c.Res, VideoDuration: float64(c.Dur),
		VideoFeedID: "bench", RTSPTransport: "tcp"}
	run := staging.Run{Dir: filepath.Join(dir, c.Name), ID: "bare"}
	if err := os.MkdirAll(run.Dir, 0o755); err != nil {
		return nil, err
	}
	if enc.ProgressPeriod == 0 {
		enc.ProgressPeriod = supervisor.ProgressPeriod(config.DefaultStallTimeout, time.Duration(c.Dur)*time.Second)
	}
	if enc.Preset == "" {
		enc.Preset = config.DefaultPreset
	}
	args := supervisor.Args(cam, run, enc)
	if len(extra) > 0 {
		for i, a := range args {
			if a == "-f" && i+1 < len(args) && args[i+1] == "segment" {
				args = append(args[:i], append(append([]string{}, extra...), args[i:]...)...)
				break
			}
		}
	}
	return args, nil
}

// bareFFmpeg runs the ffmpeg line cctvd would run for each camera, without
// cctvd, and returns the processes.
func bareFFmpeg(dir string, cams []camSpec, enc supervisor.Encoding, extra []string) ([]*exec.Cmd, error) {
	r, err := startBare(dir, cams, enc, extra, nil)
	if r == nil {
		return nil, err
	}
	return r.cmds, err
}

// bareRun is the bare side of a comparison: the same ffmpeg lines as
// cctvd's, each one's progress read as cctvd reads it.
type bareRun struct {
	cmds []*exec.Cmd
	prog []*progressSeen
	wg   sync.WaitGroup
}

// progressSeen is the latest progress block of one ffmpeg.
type progressSeen struct {
	mu    sync.Mutex
	frame int64
	speed float64
}

func (p *progressSeen) get() (int64, float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frame, p.speed
}

// startBare starts the bare lines, in cg when given.
func startBare(dir string, cams []camSpec, enc supervisor.Encoding, extra []string, cg *cgroup) (*bareRun, error) {
	r := &bareRun{}
	for _, c := range cams {
		args, err := bareArgs(dir, c, enc, extra)
		if err != nil {
			return r, err
		}
		cmd := exec.Command("ffmpeg", args...)
		if cg != nil {
			cmd = cg.command("ffmpeg", args...)
		}
		cmd.Env = media.Env() // as cctvd starts it
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return r, err
		}
		if err := cmd.Start(); err != nil {
			return r, err
		}
		p := &progressSeen{}
		r.cmds, r.prog = append(r.cmds, cmd), append(r.prog, p)
		r.wg.Go(func() { readProgress(out, p) })
	}
	return r, nil
}

func readProgress(out interface{ Read([]byte) (int, error) }, p *progressSeen) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		p.mu.Lock()
		switch k {
		case "frame":
			p.frame, _ = strconv.ParseInt(v, 10, 64)
		case "speed":
			p.speed, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "x"), 64)
		}
		p.mu.Unlock()
	}
}

// waitRecording waits until every bare ffmpeg has written frames.
func (r *bareRun) waitRecording(timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) { // polling the progress read above
		n := 0
		for _, p := range r.prog {
			if f, _ := p.get(); f > 0 {
				n++
			}
		}
		if n == len(r.prog) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d bare ffmpegs recording after %v", n, len(r.prog), timeout)
		}
	}
}

func (r *bareRun) stop() {
	killAll(r.cmds)
	r.wg.Wait()
}

func killAll(cmds []*exec.Cmd) {
	for _, c := range cmds {
		c.Process.Kill()
		c.Wait()
	}
}

func pids(cmds []*exec.Cmd) []int {
	out := make([]int, len(cmds))
	for i, c := range cmds {
		out[i] = c.Process.Pid
	}
	return out
}

// settled is how long after every camera records cctvd's window starts:
// the warmup, and at least a progress period and a second more, so that
// the second progress block of each run, at which the supervisor settles
// and writes its epoch (and the segmenter reads it), falls before the
// window (with the default 5 s period it fell inside a 3 s warmup's window:
// 64 metadata writes and passes, a start-up cost, a third of cctvd's
// samples in the 600 s case).
func settled(segmentSeconds int) time.Duration {
	return max(warmup, supervisor.ProgressPeriod(config.DefaultStallTimeout, time.Duration(segmentSeconds)*time.Second)+time.Second)
}

// errNotSame: a window in which the two sides did not do the same work (an
// ffmpeg restarted or fell behind); the pair is measured again.
var errNotSame = errors.New("not the same work")

// side is one measured window of one side of the comparison.
type side struct {
	total, own float64 // CPU, fraction of a core: every process of the side; cctvd alone
	other      float64 // the rest of the machine's busy time in the window, fraction of a core
	ffmpegs    int     // ffmpegs alive throughout the window (same pids at both ends)
	speed      float64 // the slowest ffmpeg's speed at the window's end (1: real time)
	rss        float64 // cctvd's peak RSS, MB
}

// measure counts cg's CPU over the window, cctvd's own if pid is not 0,
// and checks that the same n ffmpegs ran throughout it.
func measure(cg *cgroup, pid, n int, speed func() (float64, error)) (side, error) {
	before := cg.procs("ffmpeg")
	c0, err := cg.cpu()
	if err != nil {
		return side{}, err
	}
	o0, m0, t0 := procCPU(pid), machineBusy(), time.Now()
	time.Sleep(window)
	c1, err := cg.cpu()
	if err != nil {
		return side{}, err
	}
	o1, m1, wall := procCPU(pid), machineBusy(), time.Since(t0).Seconds()
	after := cg.procs("ffmpeg")
	s := side{total: (c1 - c0) / wall, own: (o1 - o0) / wall}
	s.other = max(0, (m1-m0)/wall-s.total)
	if pid != 0 {
		s.rss = procPeakRSS(pid)
	}
	slices.Sort(before)
	slices.Sort(after)
	if !slices.Equal(before, after) || len(after) != n {
		return s, fmt.Errorf("%w: %d ffmpegs at the window's start, %d at its end (%d of them the same), want %d throughout", errNotSame,
			len(before), len(after), len(intersect(before, after)), n)
	}
	s.ffmpegs = n
	if s.speed, err = speed(); err != nil {
		return s, err
	}
	if s.speed < 0.9 {
		return s, fmt.Errorf("%w: an ffmpeg fell behind real time (speed %.2fx)", errNotSame, s.speed)
	}
	return s, nil
}

func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// daemonSpeed is the slowest camera's ffmpeg speed, from cctvd's API.
func daemonSpeed(d *daemon) (float64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/cameras", d.port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var list struct {
		Cameras []struct {
			State    string `json:"state"`
			Progress *struct {
				Speed float64 `json:"speed"`
			} `json:"live"`
		} `json:"cameras"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return 0, err
	}
	slowest := 0.0
	for i, c := range list.Cameras {
		if c.State != "recording" || c.Progress == nil {
			return 0, fmt.Errorf("%w: a camera is %s (progress %v)", errNotSame, c.State, c.Progress)
		}
		if i == 0 || c.Progress.Speed < slowest {
			slowest = c.Progress.Speed
		}
	}
	return slowest, nil
}

func (r *bareRun) speed() (float64, error) {
	slowest := 0.0
	for i, p := range r.prog {
		if _, s := p.get(); i == 0 || s < slowest {
			slowest = s
		}
	}
	return slowest, nil
}

// overheadPair measures cctvd and the bare lines once each, in the given
// order, each side in a cgroup of its own.
func (b *bench) overheadPair(n, dur, rep int, src string) (ours, bare side, err error) {
	cams := supervisedCams(n, src, dur)
	runBare := func() error {
		cg, err := newCgroup(fmt.Sprintf("cctvd-bench-bare-%d-%d-%d", n, dur, rep))
		if err != nil {
			return err
		}
		defer cg.remove()
		dir := filepath.Join(b.opts.Work, fmt.Sprintf("bare-%d-%d-%d", n, dur, rep))
		r, err := startBare(dir, cams, supervisor.Encoding{Copy: true}, nil, cg)
		defer func() { r.stop(); os.RemoveAll(dir) }()
		if err != nil {
			return err
		}
		if err := r.waitRecording(90 * time.Second); err != nil {
			return err
		}
		time.Sleep(warmup) // a steady state, as after cctvd's start
		bare, err = measure(cg, 0, n, r.speed)
		return err
	}
	runOurs := func() error {
		cg, err := newCgroup(fmt.Sprintf("cctvd-bench-cctvd-%d-%d-%d", n, dur, rep))
		if err != nil {
			return err
		}
		defer cg.remove()
		dir := filepath.Join(b.opts.Work, fmt.Sprintf("overhead-%d-%d-%d", n, dur, rep))
		d, err := b.startDaemonWith(dir, cams, daemonOpts{clear: true, cgroup: cg})
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		time.Sleep(settled(dur))
		ours, err = measure(cg, d.pid(), n, func() (float64, error) { return daemonSpeed(d) })
		if serr := d.stop(); err == nil {
			err = serr
		}
		return err
	}
	first, second := runBare, runOurs
	if rep%2 == 1 { // interleaved: neither side always runs first
		first, second = runOurs, runBare
	}
	if err := first(); err != nil {
		return ours, bare, err
	}
	err = second()
	return ours, bare, err
}

// overhead: cctvd's own CPU and peak RSS with 16 and 64 copy-mode cameras,
// and the total (cctvd and its ffmpegs) against the same lines run bare.
// With 10 s segments cctvd closes, hashes and uploads 6.4 segments a second
// at 64 cameras (60 times the design note's 600 s segments); with 600 s
// segments, no segment closes in the window: supervision alone.
//
// Each side runs in a cgroup of its own, so every process it started is
// counted, exited ones included; the two sides alternate (bare first, then
// cctvd first), so neither always meets the same load; each window counts
// only if the same n ffmpegs ran through it at real-time speed on both
// sides; pairs are repeated until the ratios agree (within 10%) or twice
// the repeats have run.
func (b *bench) overhead(ctx context.Context) error {
	src, err := b.lowSource()
	if err != nil {
		return err
	}
	how := ""
	for _, n := range []int{16, 64} {
		durations := []int{10}
		if n == 64 {
			durations = append(durations, 600)
		}
		for _, dur := range durations {
			if c := b.opts.OverheadCases; c != "" && !strings.Contains(","+c+",", fmt.Sprintf(",%d/%d,", n, dur)) {
				continue
			}
			var own, rss, ratio, bareCPU, oursCPU, other []float64
			discarded := 0
			for rep := 0; len(ratio) < b.opts.Repeats || (rep < 2*b.opts.Repeats && spread(ratio) > 1.1); rep++ {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				ours, bare, err := b.overheadPair(n, dur, rep, src)
				if errors.Is(err, errNotSame) && discarded < b.opts.Repeats {
					discarded++
					b.logf("%d cameras, %d s segments, run %d discarded: %v", n, dur, rep+1, err)
					continue
				}
				if err != nil {
					return fmt.Errorf("%d cameras, %d s segments, run %d: %w", n, dur, rep+1, err)
				}
				own, rss = append(own, 100*ours.own), append(rss, ours.rss)
				oursCPU, bareCPU = append(oursCPU, ours.total), append(bareCPU, bare.total)
				ratio = append(ratio, ours.total/bare.total)
				other = append(other, 100*ours.other, 100*bare.other)
				b.logf("%d cameras, %d s segments, run %d: cctvd %.2f%% of a core, cctvd+ffmpegs %.1f%% (%d ffmpegs, slowest %.2fx), bare %.1f%% (%d ffmpegs, slowest %.2fx), ratio %.3f; the rest of the machine %.0f%% / %.0f%%",
					n, dur, rep+1, 100*ours.own, 100*ours.total, ours.ffmpegs, ours.speed, 100*bare.total, bare.ffmpegs, bare.speed,
					ratio[len(ratio)-1], 100*ours.other, 100*bare.other)
			}
			if b.opts.Profile != "" {
				if err := b.profileDaemon(n, dur, src); err != nil {
					return err
				}
			}
			if how == "" {
				cg, err := newCgroup("cctvd-bench-probe")
				if err != nil {
					return err
				}
				how = cg.how()
				cg.remove()
			}
			what := fmt.Sprintf("%d copy cameras, %d s segments", n, dur)
			if dur == 600 {
				what += " (supervision alone)"
			}
			b.add(Row{Name: "cctvd's own CPU, " + what, Value: fmt.Sprintf("%.2f%% of a core", median(own)),
				Baseline: "-", Ratio: "-", Target: "≤ 0.5% (64 cameras)", Met: metIf(n == 64, median(own) <= 0.5)})
			b.add(Row{Name: "cctvd's peak RSS, " + what, Value: fmt.Sprintf("%.1f MB", median(rss)),
				Baseline: "-", Ratio: "-", Target: "≤ 40 MB (64 cameras)", Met: metIf(n == 64, median(rss) <= 40)})
			b.add(Row{Name: "total CPU (cctvd + ffmpegs) / bare ffmpegs, " + what,
				Value: fmt.Sprintf("%.1f%% of a core", 100*median(oursCPU)),
				Baseline: fmt.Sprintf("bare %.1f%% of a core (each side: %s, %d ffmpegs alive through the window at ≥ 0.9x; %d alternating pairs, ratios %.3f to %.3f; rest of the box %.0f%%)",
					100*median(bareCPU), how, n, len(ratio), slices.Min(ratio), slices.Max(ratio), median(other)),
				Ratio: fmt.Sprintf("%.3f", median(ratio)), Target: "≤ 1.01", Met: met(median(ratio) <= 1.01)})
		}
	}
	return nil
}

// spread is the largest over the smallest of xs (1: all agree).
func spread(xs []float64) float64 {
	if len(xs) < 2 || slices.Min(xs) <= 0 {
		return 1
	}
	return slices.Max(xs) / slices.Min(xs)
}

// metIf is met(ok) where the target applies, "-" elsewhere.
func metIf(applies, ok bool) string {
	if !applies {
		return "-"
	}
	return met(ok)
}

// profileDaemon records a CPU profile of cctvd (perf, user and kernel
// stacks) over one window, in a run of its own (perf's sampling costs the
// process it samples), into Options.Profile: perf.data and its report.
func (b *bench) profileDaemon(n, dur int, src string) error {
	dir := filepath.Join(b.opts.Work, fmt.Sprintf("profile-%d-%d", n, dur))
	d, err := b.startDaemonWith(dir, supervisedCams(n, src, dur), daemonOpts{clear: true})
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	time.Sleep(settled(dur))
	if err := os.MkdirAll(b.opts.Profile, 0o755); err != nil {
		return err
	}
	data := filepath.Join(b.opts.Profile, fmt.Sprintf("cctvd-%d-cameras-%ds.perf.data", n, dur))
	rec := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(d.pid()), "-o", data, "--", "sleep", strconv.Itoa(int(window.Seconds())))
	out, rerr := rec.CombinedOutput()
	if serr := d.stop(); rerr == nil {
		rerr = serr
	}
	if rerr != nil {
		return fmt.Errorf("perf record: %v: %s", rerr, out)
	}
	report, err := SummarizeProfile(data, b.opts.Cctvd)
	if err != nil {
		return err
	}
	txt := strings.TrimSuffix(data, ".perf.data") + ".txt"
	b.logf("profile of cctvd, %d cameras, %d s segments: %s", n, dur, txt)
	return os.WriteFile(txt, []byte(report), 0o644)
}
