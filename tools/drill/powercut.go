package drill

// The power-cut drill proves cctvd's order of writes (data on disk before
// the name, the name before the record, the record durable before a
// delete) the way a box finds it when power returns.
//
// savePath is an ext4 in an image file on a loop device; that image lives
// on a second ext4 (also in an image on a loop device), which the drill can
// freeze. At the cut, cctvd and its ffmpegs are stopped (SIGSTOP), the outer
// filesystem is frozen, so the inner image's file stops changing, and the
// image is copied: the copy holds exactly what had reached the "device"
// then, as after a power cut; nothing is synced first. Then everything is
// killed. The copy is checked with e2fsck -fy, mounted, and checked: every
// segment closed at least 3 s before the cut is whole (same bytes as cctvd
// reported, it decodes without an error, its length matches its name) and
// recorded in the catalog (uploaded when S3 had verified it). cctvd is
// restarted on the copy against the same MinIO; once it has salvaged what
// the cut left and uploaded its backlog, S3 is checked against what it held
// before the restart: no object replaced, emptied or shortened; every new
// object whole. The open segment's loss is the cut's time minus the end of
// the last footage the restarted cctvd found of that run.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/fixture"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/tools/internal/loopfs"
)

// PowerCutOptions configure a power-cut drill.
type PowerCutOptions struct {
	// Binary is the cctvd binary under test.
	Binary string
	// WorkDir holds the images, MinIO's data and the logs.
	WorkDir string
	// Cuts is the number of power cuts, each followed by a restart on the
	// disk as the cut left it. Default 1.
	Cuts int
	// Record is how long cctvd records before each cut (at least; the cut
	// then falls at a random point of a segment). Default 16s.
	Record time.Duration
	// Segment is videoDuration in seconds. Default 4.
	Segment int
	// Cameras is the number of cameras. Default 1.
	Cameras int
	// Progress, if set, receives a line per step.
	Progress io.Writer
}

// Targets of the power-cut drill.
const (
	// ClosedBefore: a segment closed this long before the cut must be whole.
	ClosedBefore = 3 * time.Second
	// MaxOpenLoss bounds what the cut may cost of the segment being
	// written: the 2 s flush period, the half-second fragment ffmpeg has
	// not written yet, and the stream's latency.
	MaxOpenLoss = 3 * time.Second
)

// CutResult is what one cut cost, as measured.
type CutResult struct {
	N  int
	At time.Time
	// Closed counts segments closed at least ClosedBefore before the cut;
	// Whole, those found whole on the copy (all, or the drill fails).
	Closed, Whole int
	// Recent counts segments closed in the last ClosedBefore, found whole.
	Recent int
	// Loss is, per camera, the footage the cut cost of the open segment.
	Loss map[string]time.Duration
	// Fsck is e2fsck's exit code on the copy (0 clean, 1 fixed).
	Fsck int
	// Before and After count the objects in S3 before the restart and
	// after it had uploaded its backlog; Kept those unchanged.
	Before, After, Kept int
}

// PowerCutReport is a power-cut drill's outcome.
type PowerCutReport struct {
	Cuts     []CutResult
	Problems []string
}

// OK says whether every check passed.
func (r *PowerCutReport) OK() bool { return len(r.Problems) == 0 && len(r.Cuts) > 0 }

// MaxLoss is the largest loss of an open segment over every cut and camera.
func (r *PowerCutReport) MaxLoss() time.Duration {
	var m time.Duration
	for _, c := range r.Cuts {
		for _, l := range c.Loss {
			m = max(m, l)
		}
	}
	return m
}

// Write prints the report.
func (r *PowerCutReport) Write(w io.Writer) {
	fmt.Fprintf(w, "power-cut drill: %d cut(s)\n", len(r.Cuts))
	for _, c := range r.Cuts {
		var losses []string
		for _, cam := range sortedNames(c.Loss) {
			losses = append(losses, fmt.Sprintf("%s %.2fs", cam, c.Loss[cam].Seconds()))
		}
		fmt.Fprintf(w, "  cut %d at %s: e2fsck exit %d; closed ≥%v before: %d, whole %d; closed just before, whole: %d; open segment lost: %s; S3 objects %d before restart, %d after, %d unchanged\n",
			c.N, c.At.Format("15:04:05.000"), c.Fsck, ClosedBefore, c.Closed, c.Whole, c.Recent, strings.Join(losses, ", "), c.Before, c.After, c.Kept)
	}
	fmt.Fprintf(w, "  largest loss of an open segment: %.2fs (target ≤ %v)\n", r.MaxLoss().Seconds(), MaxOpenLoss)
	if r.OK() {
		fmt.Fprintln(w, "  every check passed")
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, "  FAIL:", p)
	}
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pcEvent is a log line of cctvd the drill follows.
type pcEvent struct {
	Message  string    `json:"message"`
	Camera   string    `json:"camera"`
	Run      string    `json:"run"`
	Segment  string    `json:"segment"`
	Bytes    int64     `json:"bytes"`
	Seconds  float64   `json:"seconds"`
	Salvaged bool      `json:"salvaged"`
	Time     time.Time `json:"time"`
	Address  string    `json:"address"`
	Level    string    `json:"level"`
	daemon   int
}

// s3Object is what S3 says of one object.
type s3Object struct {
	Size       int64
	ETag, SHA  string
	Start, End time.Time
}

type powercut struct {
	opts    PowerCutOptions
	rep     *PowerCutReport
	minio   *fixture.MinIO
	cams    []*fixture.Camera
	names   []string
	cfgPath string
	save    string
	outer   *loopfs.FS
	disk    *loopfs.FS
	frozen  bool

	mu      sync.Mutex
	daemons int
	cmd     *exec.Cmd
	exited  chan error
	started time.Time
	events  []pcEvent
	live    map[string]string // segment name -> sha256 read as it closed
	log     *os.File
}

func (p *powercut) logf(format string, args ...any) {
	if p.opts.Progress != nil {
		fmt.Fprintf(p.opts.Progress, "power-cut drill %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

func (p *powercut) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.logf("FAIL: %s", msg)
	p.rep.Problems = append(p.rep.Problems, msg)
}

// RunPowerCut runs a power-cut drill and returns its report. An error
// means the drill could not run (ErrCannotCut: this machine cannot cut);
// a failed check is in the report. Every mount, loop device and process it
// made is gone when it returns.
func RunPowerCut(ctx context.Context, opts PowerCutOptions) (*PowerCutReport, error) {
	if opts.Cuts <= 0 {
		opts.Cuts = 1
	}
	if opts.Record <= 0 {
		opts.Record = 16 * time.Second
	}
	if opts.Segment <= 0 {
		opts.Segment = 4
	}
	if opts.Cameras <= 0 {
		opts.Cameras = 1
	}
	if err := CanCut(); err != nil {
		return nil, err
	}
	if err := fixture.CheckTools(); err != nil {
		return nil, err
	}
	work, err := filepath.Abs(opts.WorkDir)
	if err != nil {
		return nil, err
	}
	opts.WorkDir = work
	p := &powercut{opts: opts, rep: &PowerCutReport{}, save: filepath.Join(work, "recordings"), live: map[string]string{}}
	defer p.cleanup()
	if err := p.setup(); err != nil {
		return nil, err
	}
	if err := p.startDaemon(); err != nil {
		return nil, err
	}
	for n := 1; n <= opts.Cuts; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := p.cutOnce(ctx, n); err != nil {
			return p.rep, err
		}
	}
	if err := p.stopDaemon(); err != nil {
		p.fail("%v", err)
	}
	return p.rep, nil
}

func (p *powercut) setup() error {
	if err := os.MkdirAll(p.opts.WorkDir, 0o755); err != nil {
		return err
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	// The outer filesystem holds the disk images, and is frozen at a cut.
	outerImg := filepath.Join(p.opts.WorkDir, "outer.img")
	if err := loopfs.MkfsImage(outerImg, 4<<30); err != nil {
		return err
	}
	var err error
	if p.outer, err = loopfs.Mount(outerImg, filepath.Join(p.opts.WorkDir, "outer")); err != nil {
		return err
	}
	disk := filepath.Join(p.outer.Dir, "disk-0.img")
	if err := loopfs.MkfsImage(disk, 256<<20); err != nil {
		return err
	}
	if p.disk, err = loopfs.Mount(disk, p.save); err != nil {
		return err
	}
	if p.minio, err = fixture.StartMinIO(filepath.Join(p.opts.WorkDir, "minio")); err != nil {
		return err
	}
	if err := p.minio.CreateBucket(bucket); err != nil {
		return err
	}
	var cams []string
	for i := range p.opts.Cameras {
		c, err := fixture.StartCamera(fixture.CameraOptions{Mounts: map[string]string{"/live": "640x360@25"}})
		if err != nil {
			return err
		}
		p.cams = append(p.cams, c)
		name := fmt.Sprintf("cam%d", i+1)
		p.names = append(p.names, name)
		cams = append(cams, fmt.Sprintf(`{"cameraName": %q, "ipAddress": "127.0.0.1", "frameRate": 5, "resolution": "640x360",
      "videoDuration": %d, "videoFeedId": "cut", "rtspPort": %d, "rtspPath": "/live"}`, name, p.opts.Segment, c.Port))
	}
	cfg := fmt.Sprintf(`{
  "cameras": [%s],
  "s3Config": {"s3Bucket": %q, "s3Path": %q, "endpoint": %q},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q, "region": "us-east-1"},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": 0.2},
  "api": {"listen": "127.0.0.1:0"},
  "log": {"format": "json", "level": "debug"}
}`, strings.Join(cams, ",\n    "), bucket, prefix, p.minio.Endpoint, p.minio.AccessKey, p.minio.SecretKey, p.save)
	p.cfgPath = filepath.Join(p.opts.WorkDir, "config.json")
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	p.log, err = os.Create(filepath.Join(p.opts.WorkDir, "cctvd.log"))
	return err
}

// cleanup stops every process, thaws, unmounts and detaches everything the
// drill made, whatever state a failure left.
func (p *powercut) cleanup() {
	if p.frozen {
		p.outer.Thaw()
		p.frozen = false
	}
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd != nil {
		killTree(cmd.Process.Pid)
		<-exited
	}
	for _, c := range p.cams {
		c.Stop()
	}
	if p.minio != nil {
		p.minio.Stop()
	}
	if err := p.disk.Unmount(); err != nil {
		p.logf("cleanup: %v", err)
	}
	if err := p.outer.Unmount(); err != nil {
		p.logf("cleanup: %v", err)
	}
	if p.log != nil {
		p.log.Close()
	}
}

// startDaemon starts cctvd on the current disk and waits for its API.
func (p *powercut) startDaemon() error {
	cmd := exec.Command(p.opts.Binary, "run", "--config", p.cfgPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cctvd: %w", err)
	}
	exited := make(chan error, 1)
	p.mu.Lock()
	p.daemons++
	n := p.daemons
	p.cmd, p.exited, p.started = cmd, exited, time.Now()
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.log.Write(append(sc.Bytes(), '\n'))
			var ev pcEvent
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			ev.daemon = n
			if ev.Message == "segment closed" {
				// What ffmpeg wrote, read as cctvd reports the segment.
				if sum, err := fileSHA(p.segmentPath(ev.Camera, ev.Segment)); err == nil {
					p.mu.Lock()
					p.live[ev.Segment] = sum
					p.mu.Unlock()
				}
			}
			p.mu.Lock()
			p.events = append(p.events, ev)
			p.mu.Unlock()
		}
		exited <- cmd.Wait()
	}()
	_, err = p.await(30*time.Second, "cctvd's API", func(evs []pcEvent) bool {
		return len(filter(evs, func(e pcEvent) bool { return e.daemon == n && e.Message == "API listening" })) > 0
	})
	return err
}

// stopDaemon stops the running cctvd with SIGTERM.
func (p *powercut) stopDaemon() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("cctvd exited on SIGTERM with %v", err)
		}
		return nil
	case <-time.After(90 * time.Second):
		killTree(cmd.Process.Pid)
		<-exited
		return errors.New("cctvd did not stop on SIGTERM")
	}
}

func (p *powercut) snapshot() []pcEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pcEvent(nil), p.events...)
}

func filter(evs []pcEvent, keep func(pcEvent) bool) []pcEvent {
	var out []pcEvent
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// await polls cctvd's log (the drill is an outside observer) until cond
// holds, the daemon exits, or the timeout passes.
func (p *powercut) await(timeout time.Duration, what string, cond func([]pcEvent) bool) ([]pcEvent, error) {
	deadline := time.Now().Add(timeout)
	for {
		evs := p.snapshot()
		if cond(evs) {
			return evs, nil
		}
		if time.Now().After(deadline) {
			return evs, fmt.Errorf("%s: not within %v (see %s)", what, timeout, p.log.Name())
		}
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		select {
		case err := <-exited:
			exited <- err
			if !cond(p.snapshot()) {
				return evs, fmt.Errorf("%s: cctvd exited (%v; see %s)", what, err, p.log.Name())
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *powercut) segmentPath(camera, name string) string {
	info, err := segment.Parse(name)
	if err != nil {
		return filepath.Join(p.save, camera, name)
	}
	return layout.SegmentPath(p.save, camera, info.Start, name)
}

// cutOnce records, cuts the power, checks the disk, restarts cctvd on it
// and checks S3.
func (p *powercut) cutOnce(ctx context.Context, n int) error {
	p.mu.Lock()
	daemon, started := p.daemons, p.started
	p.mu.Unlock()
	// Record, with at least two segments a camera closed long enough before.
	_, err := p.await(p.opts.Record+time.Minute, "recording before the cut", func(evs []pcEvent) bool {
		if time.Since(started) < p.opts.Record {
			return false
		}
		for _, cam := range p.names {
			if len(filter(evs, func(e pcEvent) bool {
				return e.daemon == daemon && e.Camera == cam && e.Message == "segment closed" && time.Since(e.Time) > ClosedBefore
			})) < 2 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	// Anywhere in a segment.
	time.Sleep(rand.N(time.Duration(p.opts.Segment) * time.Second)) // choosing the cut's moment, not waiting for an event
	res := CutResult{N: n, Loss: map[string]time.Duration{}}
	img := filepath.Join(p.opts.WorkDir, fmt.Sprintf("cut-%d.img", n))
	if res.At, err = p.cut(img); err != nil {
		return err
	}
	p.logf("cut %d at %s", n, res.At.Format("15:04:05.000"))
	evs := filter(p.snapshot(), func(e pcEvent) bool { return !e.Time.After(res.At) })
	before, err := p.objects()
	if err != nil {
		return err
	}
	res.Before = len(before)

	out, err := loopfs.Run("e2fsck", "-fy", img)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.Fsck = exit.ExitCode()
	} else if err != nil {
		return err
	}
	if res.Fsck > 2 {
		p.fail("cut %d: e2fsck could not repair the disk (exit %d): %s", n, res.Fsck, out)
		return nil
	}
	// The copy becomes the box's disk, inside the freezable filesystem.
	disk := filepath.Join(p.outer.Dir, fmt.Sprintf("disk-%d.img", n))
	if _, err := loopfs.Run("cp", "--sparse=always", img, disk); err != nil {
		return err
	}
	os.Remove(img)
	if p.disk, err = loopfs.Mount(disk, p.save); err != nil {
		return err
	}
	p.checkDisk(&res, evs)

	// Power is back: cctvd starts on the disk as the cut left it.
	cutRuns := map[string]string{}
	for _, e := range evs {
		if e.Message == "ffmpeg started" && e.daemon == daemon {
			cutRuns[e.Camera] = e.Run
		}
	}
	if err := p.startDaemon(); err != nil {
		return err
	}
	if err := p.awaitRestartSettled(cutRuns); err != nil {
		return err
	}
	after, err := p.objects()
	if err != nil {
		return err
	}
	res.After = len(after)
	p.checkS3(&res, before, after)
	p.measureLoss(&res, cutRuns, after)
	p.rep.Cuts = append(p.rep.Cuts, res)
	p.logf("cut %d: closed %d, whole %d, recent whole %d, loss %v, S3 %d -> %d (%d unchanged)", n, res.Closed, res.Whole, res.Recent, res.Loss, res.Before, res.After, res.Kept)
	return nil
}

// cut stops cctvd and its children, freezes the outer filesystem and
// copies the disk's image: the copy is what had reached the device. Then
// everything is killed, the filesystem thawed and the disk unmounted.
func (p *powercut) cut(img string) (time.Time, error) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	pid := cmd.Process.Pid
	at := time.Now()
	tree := descendants(pid)
	for _, q := range append([]int{pid}, tree...) {
		syscall.Kill(q, syscall.SIGSTOP)
	}
	if err := p.outer.Freeze(); err != nil {
		return at, err
	}
	p.frozen = true
	_, cpErr := loopfs.Run("cp", "--sparse=always", p.disk.Image, img)
	for _, q := range append([]int{pid}, append(tree, descendants(pid)...)...) {
		syscall.Kill(q, syscall.SIGKILL)
	}
	if err := p.outer.Thaw(); err != nil {
		return at, err
	}
	p.frozen = false
	if cpErr != nil {
		return at, cpErr
	}
	<-exited
	waitGone(tree, 10*time.Second)
	if err := p.disk.Unmount(); err != nil {
		return at, err
	}
	p.disk = nil
	return at, nil
}

// checkDisk checks the copy before cctvd restarts on it.
func (p *powercut) checkDisk(res *CutResult, evs []pcEvent) {
	closed := map[string]pcEvent{}
	uploaded := map[string]bool{}
	for _, e := range evs {
		switch e.Message {
		case "segment closed":
			closed[e.Segment] = e
		case "uploaded and verified":
			if e.Time.Before(res.At.Add(-ClosedBefore)) {
				uploaded[e.Segment] = true
			}
		}
	}
	cat, err := catalog.Open(context.Background(), layout.Catalog(layout.DefaultStateDir(p.save)), p.save, nil)
	if err != nil {
		p.fail("cut %d: the catalog does not open after the cut: %v", res.N, err)
	} else {
		defer cat.Close()
	}
	p.mu.Lock()
	live := maps.Clone(p.live)
	p.mu.Unlock()
	for name, e := range closed {
		old := e.Time.Before(res.At.Add(-ClosedBefore))
		if old {
			res.Closed++
		}
		path := p.segmentPath(e.Camera, name)
		problem := wholeProblem(path, e, live[name])
		switch {
		case problem == "" && old:
			res.Whole++
		case problem == "":
			res.Recent++
		case old:
			p.fail("cut %d: %s, closed %v before the cut: %s", res.N, name, res.At.Sub(e.Time).Round(time.Millisecond), problem)
		default: // closed in the last seconds: renamed only once flushed, so whole too
			p.fail("cut %d: %s, closed %v before the cut, is under its name but %s", res.N, name, res.At.Sub(e.Time).Round(time.Millisecond), problem)
		}
		if !old || cat == nil {
			continue
		}
		r, err := cat.ByPath(context.Background(), path)
		switch {
		case err != nil:
			p.fail("cut %d: %s is not in the catalog after the cut: %v", res.N, name, err)
		case r.Bytes != e.Bytes:
			p.fail("cut %d: the catalog says %s holds %d bytes, not %d", res.N, name, r.Bytes, e.Bytes)
		case uploaded[name] && r.Upload != catalog.Uploaded:
			p.fail("cut %d: %s was uploaded and verified before the cut, the catalog after it says %s", res.N, name, r.Upload)
		}
	}
	// No final name on the disk holds less than a whole segment.
	filepath.WalkDir(p.save, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") || d.Name() == "lost+found" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".mp4") {
			return nil
		}
		if _, ok := closed[d.Name()]; ok {
			return nil // checked above
		}
		if problem := decodeProblem(path); problem != "" {
			p.fail("cut %d: %s, named but never reported before the cut: %s", res.N, d.Name(), problem)
		}
		return nil
	})
}

// wholeProblem says what is wrong with a segment on the copy, "" when it
// is whole: the bytes cctvd reported (and read as it closed), decoding
// without an error, as long as its name says.
func wholeProblem(path string, e pcEvent, liveSHA string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing: " + err.Error()
	}
	if fi.Size() != e.Bytes {
		return fmt.Sprintf("%d bytes, %d when it closed", fi.Size(), e.Bytes)
	}
	if liveSHA != "" {
		if sum, err := fileSHA(path); err != nil || sum != liveSHA {
			return "not the bytes ffmpeg wrote (sha256 differs)"
		}
	}
	if !e.Salvaged { // a salvaged file may end in a fragment cut short
		if problem := decodeProblem(path); problem != "" {
			return problem
		}
	}
	probe, err := fixture.ProbeFile(path)
	if err != nil {
		return err.Error()
	}
	info, err := segment.Parse(filepath.Base(path))
	if err != nil {
		return err.Error()
	}
	if d := probe.Duration - info.End.Sub(info.Start); d.Abs() > 1100*time.Millisecond {
		return fmt.Sprintf("plays %v, its name says %v", probe.Duration, info.End.Sub(info.Start))
	}
	return ""
}

// decodeProblem decodes every frame of a file: "" when ffmpeg reports
// nothing wrong.
func decodeProblem(path string) string {
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		return fmt.Sprintf("does not decode cleanly (%v): %s", err, firstLine(string(out)))
	}
	return ""
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// awaitRestartSettled waits until the restarted cctvd has dealt with every
// file the cut left in staging, uploaded its backlog, and records again.
func (p *powercut) awaitRestartSettled(cutRuns map[string]string) error {
	p.mu.Lock()
	daemon := p.daemons
	p.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		left := 0
		for cam, run := range cutRuns {
			entries, _ := os.ReadDir(layout.StagingDir(p.save, cam))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), run) {
					left++
				}
			}
		}
		evs := p.snapshot()
		recording := 0
		for _, cam := range p.names {
			if len(filter(evs, func(e pcEvent) bool {
				return e.daemon == daemon && e.Camera == cam && e.Message == "segment closed" && e.Run != cutRuns[cam]
			})) > 0 {
				recording++
			}
		}
		var st struct {
			Backlog struct {
				Segments int64 `json:"segments"`
			} `json:"backlog"`
		}
		backlog := int64(-1)
		if err := p.api("/api/v1/status", &st); err == nil {
			backlog = st.Backlog.Segments
		}
		if left == 0 && recording == len(p.names) && backlog == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after the restart: %d files of the cut runs still in staging, %d of %d cameras recording, backlog %d (see %s)",
				left, recording, len(p.names), backlog, p.log.Name())
		}
		time.Sleep(250 * time.Millisecond) // polling cctvd and its disk from outside
	}
}

// api GETs a path of the running cctvd's API.
func (p *powercut) api(path string, v any) error {
	var addr string
	p.mu.Lock()
	for i := len(p.events) - 1; i >= 0; i-- {
		if e := p.events[i]; e.daemon == p.daemons && e.Message == "API listening" {
			addr = e.Address
			break
		}
	}
	p.mu.Unlock()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// objects lists the bucket with each object's size, ETag and metadata.
func (p *powercut) objects() (map[string]s3Object, error) {
	list, err := p.minio.List(bucket, prefix+"/")
	if err != nil {
		return nil, err
	}
	out := map[string]s3Object{}
	for _, o := range list {
		head, err := p.minio.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key)})
		if err != nil {
			return nil, err
		}
		start, _ := time.Parse("2006-01-02T15:04:05.000Z", head.Metadata["start"])
		end, _ := time.Parse("2006-01-02T15:04:05.000Z", head.Metadata["end"])
		out[o.Key] = s3Object{Size: aws.ToInt64(head.ContentLength), ETag: aws.ToString(head.ETag), SHA: head.Metadata["sha256"], Start: start, End: end}
	}
	return out, nil
}

// checkS3: nothing S3 held before the restart was replaced, and every
// object since is whole: its bytes match its sha256, it plays (without an
// error unless it was salvaged from a cut).
func (p *powercut) checkS3(res *CutResult, before, after map[string]s3Object) {
	for key, b := range before {
		a, ok := after[key]
		switch {
		case !ok:
			p.fail("cut %d: %s vanished from S3 after the restart", res.N, key)
		case a.Size < b.Size:
			p.fail("cut %d: %s shrank in S3 after the restart: %d bytes, %d before", res.N, key, a.Size, b.Size)
		case a != b:
			p.fail("cut %d: %s was replaced in S3 after the restart: %+v, %+v before", res.N, key, a, b)
		default:
			res.Kept++
		}
	}
	salvaged := map[string]bool{}
	for _, e := range p.snapshot() {
		if e.Message == "segment closed" && e.Salvaged {
			salvaged[e.Segment] = true
		}
	}
	dir, err := os.MkdirTemp(p.opts.WorkDir, "objects-")
	if err != nil {
		p.fail("%v", err)
		return
	}
	defer os.RemoveAll(dir)
	for key, a := range after {
		if _, ok := before[key]; ok {
			continue
		}
		if a.Size == 0 {
			p.fail("cut %d: %s is empty in S3", res.N, key)
			continue
		}
		path := filepath.Join(dir, filepath.Base(key))
		if err := p.download(key, path); err != nil {
			p.fail("cut %d: %s: %v", res.N, key, err)
			continue
		}
		if sum, _ := fileSHA(path); sum != a.SHA {
			p.fail("cut %d: %s in S3 does not match its sha256 metadata", res.N, key)
		}
		if salvaged[filepath.Base(key)] {
			if _, err := fixture.ProbeFile(path); err != nil {
				p.fail("cut %d: salvaged %s does not play: %v", res.N, key, err)
			}
		} else if problem := decodeProblem(path); problem != "" {
			p.fail("cut %d: %s in S3 %s", res.N, key, problem)
		}
	}
}

func (p *powercut) download(key, path string) error {
	out, err := p.minio.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, out.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// measureLoss: for each camera, the cut's time minus the end of the last
// footage of the run it cut, as S3 holds it (to the millisecond).
func (p *powercut) measureLoss(res *CutResult, cutRuns map[string]string, after map[string]s3Object) {
	for _, cam := range p.names {
		var last time.Time
		for _, e := range p.snapshot() {
			if e.Message != "segment closed" || e.Camera != cam || e.Run != cutRuns[cam] {
				continue
			}
			info, err := segment.Parse(e.Segment)
			if err != nil {
				continue
			}
			o, ok := after[prefix+"/"+layout.SegmentRel(cam, info.Start, e.Segment)]
			if !ok {
				p.fail("cut %d: %s, of the run the cut stopped, is not in S3", res.N, e.Segment)
				continue
			}
			if o.End.After(last) {
				last = o.End
			}
		}
		if last.IsZero() {
			p.fail("cut %d: no footage of %s's cut run %s", res.N, cam, cutRuns[cam])
			continue
		}
		loss := res.At.Sub(last)
		res.Loss[cam] = loss
		if loss > MaxOpenLoss {
			p.fail("cut %d: %s lost %v of the open segment, more than %v", res.N, cam, loss.Round(time.Millisecond), MaxOpenLoss)
		}
	}
}

func fileSHA(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// descendants lists every process below pid (cctvd's ffmpegs and probes).
func descendants(pid int) []int {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return nil
	}
	kids, _ := p.Children() // none is an error too
	var out []int
	for _, k := range kids {
		out = append(out, int(k.Pid))
		out = append(out, descendants(int(k.Pid))...)
	}
	return out
}

// killTree kills a process and everything below it.
func killTree(pid int) {
	for _, q := range append(descendants(pid), pid) {
		syscall.Kill(q, syscall.SIGKILL)
	}
}

// waitGone waits until the processes have exited.
func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil || strings.Contains(string(data), ") Z ") {
				break
			}
			time.Sleep(20 * time.Millisecond) // a killed process's exit has no event to await here
		}
	}
}
