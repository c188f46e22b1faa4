// Package bench measures cctvd against the bare tools, in one run, and
// prints one table: medians over repeated runs, each row with its
// baseline measured in the same run and the ratio between them.
//
//   - supervisor overhead: cctvd's own CPU and peak RSS with 16 and 64
//     copy-mode cameras (looping local files), against the same ffmpeg
//     command lines run bare;
//   - the cost of flushing open segments every 2 s (power-cut loss bound):
//     cctvd's CPU and the disk's writes and flushes, against it off;
//   - close-to-S3 latency: from ffmpeg closing a ~10 MB segment to the
//     object verified in MinIO, p50 and p99;
//   - upload throughput of one 500 MB file: cctvd's uploader against awscli
//     and against reading the file;
//   - ffmpeg CPU per camera-minute by mode, against the cheapest correct line;
//   - transcode lines for the design note's two cameras: CPU, size and
//     SSIM against the source, and copy from a camera asked for the
//     configured rate and size;
//   - one retention decision with 10k and 100k catalog rows;
//   - start-up (to the API, to recording, to ready) and peak RSS with a
//     million-row catalog, and with a garbage one, against an empty one;
//   - scale: the most copy-mode cameras recorded with every segment uploaded
//     within one segment length of closing.
//   - export: one hour of 10 s segments as one MP4 through the API, from
//     local disk and from MinIO, against the bare ffmpeg concat.
//   - live view: latency from a fragment's wall time to its arrival at a
//     WebSocket client (1 s GOP), the time to the first playable frame, and
//     cctvd's CPU with 16 viewers of one camera and one viewer of each of
//     16 cameras, against none.
//   - firstframe: ffmpeg's start to the first recorded frame on disk, copy
//     and auto mode, first start and restart, over loopback RTSP with a
//     1 s GOP (firstframe.go);
//   - uplink: the upload cap's rate and goodput, the bytes a resumed
//     upload sends again after a SIGKILL, and goodput over a shaped link
//     (rate, loss, round trip) against awscli (uplink.go).
//   - activity: the activity index's CPU per camera on against off, its
//     accuracy on the test camera's scripted motion, and its false
//     positives over ten minutes of a still scene (activity.go).
//   - feeds: with the uplink at 10 % of four cameras' main feeds and
//     uploadFeeds sub, the sub segments' delay to S3, and an incident's
//     5 main-quality minutes after the request (feeds.go).
//   - reload: the footage hole at a reload that changes a recording
//     camera, against a stop and start through the API (reload.go).
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cctvd/cctvd/internal/fixture"
)

// Options configure a run.
type Options struct {
	// Cctvd is the binary under test.
	Cctvd string
	// Work is a folder for sources, recordings and MinIO's data.
	Work string
	// Progress, if set, receives a line per step.
	Progress io.Writer
	// Repeats per measurement. Default 3.
	Repeats int
	// Only, if set, names the steps to run (comma-separated).
	Only string
	// OverheadCases, if set, names the overhead step's cases to run,
	// cameras/segment seconds, comma-separated ("64/600,16/10").
	OverheadCases string
	// Profile, if set, is a folder for CPU profiles of cctvd (perf) in the
	// overhead step, each from a run of its own.
	Profile string
}

// Row is one line of the table.
type Row struct {
	Name     string
	Value    string // cctvd's, median
	Baseline string // what it is compared with, median
	Ratio    string
	Target   string
	Met      string // yes, no, or "-" without a target
	Step     string // the step that measured it (-only)
}

type bench struct {
	opts  Options
	minio *fixture.MinIO
	rows  []Row
	step  string // the step running
}

func (b *bench) logf(format string, args ...any) {
	if b.opts.Progress != nil {
		fmt.Fprintf(b.opts.Progress, "bench %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

func (b *bench) add(r Row) {
	b.logf("%s: %s (baseline %s, ratio %s, target %s)", r.Name, r.Value, r.Baseline, r.Ratio, r.Target)
	r.Step = b.step
	b.rows = append(b.rows, r)
}

// Run runs every measurement and returns the rows.
func Run(ctx context.Context, opts Options) ([]Row, error) {
	if opts.Repeats <= 0 {
		opts.Repeats = 3
	}
	if err := fixture.CheckTools(); err != nil {
		return nil, err
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	b := &bench{opts: opts}
	m, err := fixture.StartMinIO(filepath.Join(opts.Work, "minio"))
	if err != nil {
		return nil, err
	}
	defer m.Stop()
	b.minio = m
	var owned *types.BucketAlreadyOwnedByYou
	if err := m.CreateBucket("bench"); err != nil && !errors.As(err, &owned) { // a reused work folder has it
		return nil, err
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"overhead", b.overhead},
		{"sync", b.openSync},
		{"latency", b.latency},
		{"throughput", b.throughput},
		{"modes", b.modes},
		{"transcode", b.transcode},
		{"retention", b.retention},
		{"catalog", b.catalogStartup},
		{"scale", b.scale},
		{"export", b.exportHour},
		{"live", b.live},
		{"uplink", b.uplink},
		{"activity", b.activity},
		{"firstframe", b.firstFrame},
		{"feeds", b.feeds},
		{"reload", b.reload},
	}
	for _, s := range steps {
		if opts.Only != "" && !strings.Contains(","+opts.Only+",", ","+s.name+",") {
			continue
		}
		start := time.Now()
		b.step = s.name
		if err := s.fn(ctx); err != nil {
			return b.rows, fmt.Errorf("%s: %w", s.name, err)
		}
		b.logf("%s took %v", s.name, time.Since(start).Round(time.Second))
	}
	return b.rows, nil
}

// Write prints the table (Markdown) with the machine it ran on.
func Write(w io.Writer, rows []Row, took time.Duration) {
	WriteNote(w, rows, fmt.Sprintf("Run took %v.", took.Round(time.Second)))
}

// WriteNote is Write with a note after the machine instead of the time taken.
func WriteNote(w io.Writer, rows []Row, note string) {
	fmt.Fprintf(w, "Machine: %s, %d cores, %s; %s; %s. %s\n\n", cpuModel(), runtime.NumCPU(), kernel(), runtime.Version(), ffmpegVersion(), note)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| measurement\t cctvd (median)\t baseline (median)\t ratio\t target\t met\t step\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t---\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "| %s\t %s\t %s\t %s\t %s\t %s\t %s\t\n", r.Name, r.Value, r.Baseline, r.Ratio, r.Target, r.Met, r.Step)
	}
	tw.Flush()
}

// ReadTable reads the rows of a table Write printed (with its step column).
func ReadTable(r io.Reader) []Row {
	var rows []Row
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| measurement") {
			continue
		}
		f := strings.Split(strings.Trim(line, "|"), "|")
		if len(f) != 7 {
			continue
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		rows = append(rows, Row{Name: f[0], Value: f[1], Baseline: f[2], Ratio: f[3], Target: f[4], Met: f[5], Step: f[6]})
	}
	return rows
}

// Merge replaces the rows of the steps in fresh, in place: the others stay
// as an earlier run measured them.
func Merge(old, fresh []Row) []Row {
	ran := map[string]bool{}
	for _, r := range fresh {
		ran[r.Step] = true
	}
	var out []Row
	placed := map[string]bool{}
	for _, r := range old {
		if !ran[r.Step] {
			out = append(out, r)
			continue
		}
		if !placed[r.Step] {
			placed[r.Step] = true
			for _, f := range fresh {
				if f.Step == r.Step {
					out = append(out, f)
				}
			}
		}
	}
	for _, f := range fresh {
		if !placed[f.Step] {
			out = append(out, f)
		}
	}
	return out
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	out, err := exec.Command("uname", "-sr").Output()
	if err != nil {
		return runtime.GOOS
	}
	return strings.TrimSpace(string(out))
}

func ffmpegVersion() string {
	out, err := exec.Command("ffmpeg", "-version").Output()
	if err != nil {
		return "ffmpeg ?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	if f := strings.Fields(line); len(f) >= 3 {
		return "ffmpeg " + f[2]
	}
	return line
}

// procCPU is a process's user+system CPU seconds so far.
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command may hold spaces: the fields start after its ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// procPeakRSS is a process's peak resident set, in MB.
func procPeakRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return nil
	}
	kids, _ := p.Children() // none is an error too
	out := make([]int, 0, len(kids))
	for _, k := range kids {
		out = append(out, int(k.Pid))
	}
	return out
}

func sumCPU(pids []int) float64 {
	var s float64
	for _, p := range pids {
		s += procCPU(p)
	}
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// makeSource encodes a test pattern file: the looping "camera" of the
// copy-mode measurements.
func makeSource(path, size string, fps, seconds int, bitrate string, noise bool) error {
	return makeSourceGOP(path, size, fps, seconds, bitrate, noise, fps*2)
}

// makeSourceGOP is makeSource with a keyframe every gop frames.
func makeSourceGOP(path, size string, fps, seconds int, bitrate string, noise bool, gop int) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	src := fmt.Sprintf("testsrc2=size=%s:rate=%d", size, fps)
	if noise {
		src += ",noise=alls=40:allf=t"
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src, "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop),
		"-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate, "-pix_fmt", "yuv420p", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("make source: %v: %s", err, out)
	}
	return nil
}
