package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/config"
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
	cams := make([]camSpec, n)
	for i := range cams {
		cams[i] = camSpec{Name: fmt.Sprintf("cam%03d", i+1), URL: "file://" + src, FPS: 10, Res: "640x360", Dur: dur, Mode: "copy"}
	}
	return cams
}

// bareFFmpeg runs the ffmpeg line cctvd would run for each camera, without
// cctvd, and returns the processes.
func bareFFmpeg(dir string, cams []camSpec, enc supervisor.Encoding, extra []string) ([]*exec.Cmd, error) {
	var cmds []*exec.Cmd
	for _, c := range cams {
		cam := config.Camera{CameraName: c.Name, StreamURL: c.URL, FrameRate: c.FPS, Resolution: c.Res, VideoDuration: float64(c.Dur),
			VideoFeedID: "bench", RTSPTransport: "tcp"}
		run := staging.Run{Dir: filepath.Join(dir, c.Name), ID: "bare"}
		if err := os.MkdirAll(run.Dir, 0o755); err != nil {
			return cmds, err
		}
		args := supervisor.Args(cam, run, enc)
		if len(extra) > 0 { // before the output format: output options
			for i, a := range args {
				if a == "-f" && i+1 < len(args) && args[i+1] == "segment" {
					args = append(args[:i], append(append([]string{}, extra...), args[i:]...)...)
					break
				}
			}
		}
		cmd := exec.Command("ffmpeg", args...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return cmds, err
		}
		cmds = append(cmds, cmd)
	}
	return cmds, nil
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

// overhead: cctvd's own CPU and peak RSS with 16 and 64 copy-mode cameras,
// and the total (cctvd and its ffmpegs) against the same lines run bare.
// With 10 s segments cctvd closes, hashes and uploads 6.4 segments a second
// at 64 cameras (60 times the design note's 600 s segments); with 600 s
// segments, no segment closes in the window: supervision alone.
func (b *bench) overhead(ctx context.Context) error {
	src, err := b.lowSource()
	if err != nil {
		return err
	}
	for _, n := range []int{16, 64} {
		var bareCPU []float64
		for range b.opts.Repeats {
			bare, err := bareFFmpeg(filepath.Join(b.opts.Work, "bare-"+strconv.Itoa(n)), copyCams(n, src, 10), supervisor.Encoding{Copy: true}, nil)
			if err != nil {
				killAll(bare)
				return err
			}
			time.Sleep(warmup) // measuring a steady state
			p := pids(bare)
			b0, t0 := sumCPU(p), time.Now()
			time.Sleep(window)
			bareCPU = append(bareCPU, (sumCPU(p)-b0)/time.Since(t0).Seconds())
			killAll(bare)
		}
		bare := median(bareCPU)
		durations := []int{10}
		if n == 64 {
			durations = append(durations, 600)
		}
		for _, dur := range durations {
			var own, rss, ratio []float64
			for rep := range b.opts.Repeats {
				d, err := b.startDaemon(filepath.Join(b.opts.Work, fmt.Sprintf("overhead-%d-%d-%d", n, dur, rep)), copyCams(n, src, dur), "")
				if err != nil {
					return err
				}
				time.Sleep(warmup)
				kids := children(d.pid())
				c0, k0, t0 := procCPU(d.pid()), sumCPU(kids), time.Now()
				time.Sleep(window)
				c1, k1, wall := procCPU(d.pid()), sumCPU(kids), time.Since(t0).Seconds()
				rss = append(rss, procPeakRSS(d.pid()))
				if err := d.stop(); err != nil {
					return err
				}
				own = append(own, 100*(c1-c0)/wall)
				ratio = append(ratio, (c1-c0+k1-k0)/wall/bare)
				b.logf("%d cameras, %d s segments, run %d: cctvd %.2f%% of a core, ffmpegs %.1f%%, bare %.1f%%, RSS %.1f MB",
					n, dur, rep+1, own[len(own)-1], 100*(k1-k0)/wall, 100*bare, rss[len(rss)-1])
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
				Value: fmt.Sprintf("%.3f", median(ratio)), Baseline: fmt.Sprintf("bare: %.1f%% of a core", 100*bare),
				Ratio: fmt.Sprintf("%.3f", median(ratio)), Target: "≤ 1.01", Met: met(median(ratio) <= 1.01)})
		}
	}
	return nil
}

// metIf is met(ok) where the target applies, "-" elsewhere.
func metIf(applies, ok bool) string {
	if !applies {
		return "-"
	}
	return met(ok)
}
