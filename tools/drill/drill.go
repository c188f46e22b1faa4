// Package drill is the continuity drill: it runs the real cctvd binary
// with several simulated cameras and a real MinIO for a set time while a
// schedule injects faults (a camera stall, a camera server restart, ffmpeg
// killed, cctvd killed with SIGKILL and restarted, MinIO down for several
// segment lengths, all under a tight size limit), then checks from S3 and
// the disk, not from cctvd's own word, what a person watching would find:
//
//   - footage: each object from its start for as long as it plays
//     (ffprobe), not as long as its name or metadata says;
//   - continuity: footage over each camera's window, from cctvd's first
//     start to the camera's stop, the faults' own time (camera stalled or
//     down, cctvd not running) left out: start-up and every recovery count
//     as loss, which must stay within the targets (start-up within 10 s,
//     each fault's recovery target, 1% besides); the older measure, which
//     also leaves out the recoveries, is reported beside it and must reach
//     99%;
//   - every hole in the footage is a fault's, and the gap log's cause for
//     it is one that fault can leave (ExpectedCauses);
//   - every object plays, its name's start and end match its content to
//     1 s;
//   - footage deleted before S3 had it only when the limit forced it (no
//     uploaded segment left on disk), each in the gap log as retention;
//   - no secret in any log line or API response captured during the drill;
//   - recovery: camera back, recording within 15 s; cctvd restarted,
//     recording within 5 s; S3 back, every segment recorded before in the
//     bucket within 60 s.
package drill

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/internal/fixture"
)

// Options configure a drill.
type Options struct {
	// Binary is the cctvd binary under test.
	Binary string
	// Duration is how long the cameras record; faults are spread over it.
	Duration time.Duration
	// Cameras is the number of cameras (at least 3). Default 3.
	Cameras int
	// Segment is videoDuration in seconds. Default 4.
	Segment int
	// WorkDir holds recordings, MinIO's data and logs.
	WorkDir string
	// Progress, if set, receives a line per step.
	Progress io.Writer
}

const (
	bucket       = "drill"
	prefix       = "drill"
	camPassword  = "dr1ll:p@ss/#%w"
	stallTimeout = 5 * time.Second
	// Recovery targets.
	cameraTarget = 15 * time.Second
	daemonTarget = 5 * time.Second
	// s3Target: every segment recorded before S3 came back is in the
	// bucket within this long of its return.
	s3Target = 60 * time.Second
	// startTarget: each camera's first footage begins within this long of
	// cctvd's first start (the stream's probe, ffmpeg's connection and its
	// first frame included).
	startTarget = 10 * time.Second
)

// drill is one run's state.
type drill struct {
	opts    Options
	minio   *fixture.MinIO
	cams    []*fixture.Camera
	names   []string
	cfgPath string
	save    string
	apiPort int

	mu      sync.Mutex
	daemon  *exec.Cmd
	exited  chan error
	out     bytes.Buffer // everything cctvd wrote
	bodies  bytes.Buffer // every API response
	faults  []*Fault
	samples sampler
	// firstStart is when cctvd was first started (exec), the start of
	// every camera's window.
	firstStart time.Time
	gaps       map[string][]gapEntry // the gap log, read before the stop
}

func (d *drill) logf(format string, args ...any) {
	if d.opts.Progress != nil {
		fmt.Fprintf(d.opts.Progress, "drill %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// Run runs a drill and returns its report. An error means the drill could
// not run; a failed check is in the report (Report.OK).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Cameras < 3 {
		opts.Cameras = 3
	}
	if opts.Segment <= 0 {
		opts.Segment = 4
	}
	if err := fixture.CheckTools(); err != nil {
		return nil, err
	}
	d := &drill{opts: opts, save: filepath.Join(opts.WorkDir, "recordings")}
	defer d.cleanup()
	// cctvd's own output, for a look after the drill (-work keeps it).
	defer func() { os.WriteFile(filepath.Join(opts.WorkDir, "cctvd.log"), []byte(d.output()), 0o644) }()
	if err := d.setup(); err != nil {
		return nil, err
	}
	if err := d.startDaemon(); err != nil {
		return nil, err
	}
	start := time.Now()
	sctx, stopSampling := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); d.samples.run(sctx, d) }()

	if err := d.inject(ctx, start); err != nil {
		stopSampling()
		<-samplerDone
		return nil, err
	}
	stopped, err := d.finish(ctx)
	stopSampling()
	<-samplerDone
	if err != nil {
		return nil, err
	}
	return d.analyse(start, stopped)
}

func (d *drill) setup() error {
	if err := os.MkdirAll(d.opts.WorkDir, 0o755); err != nil {
		return err
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k) // the machine's AWS settings must not change the drill
		}
	}
	m, err := fixture.StartMinIO(filepath.Join(d.opts.WorkDir, "minio"))
	if err != nil {
		return err
	}
	d.minio = m
	if err := m.CreateBucket(bucket); err != nil {
		return err
	}
	var cams []string
	for i := range d.opts.Cameras {
		// One camera server per camera, so faults hit one camera at a time.
		c, err := fixture.StartCamera(fixture.CameraOptions{Mounts: map[string]string{"/live": "640x360@25"},
			User: "admin", Password: camPassword, Auth: "digest"})
		if err != nil {
			return err
		}
		d.cams = append(d.cams, c)
		name := fmt.Sprintf("cam%d", i+1)
		d.names = append(d.names, name)
		cams = append(cams, fmt.Sprintf(`{"cameraName": %q, "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
      "frameRate": 5, "resolution": "640x360", "videoDuration": %d, "videoFeedId": "drill", "rtspPort": %d, "rtspPath": "/live"}`,
			name, camPassword, d.opts.Segment, c.Port))
	}
	if d.apiPort, err = fixture.FreePort(); err != nil {
		return err
	}
	// A tight limit, about 25 segments a camera (a 640x360 5 fps segment
	// of 4 s is about 13 kB): retention deletes (uploaded) recordings from
	// the first minutes on, yet the backlog of the S3 outage fits.
	limitGB := 0.0000033 * float64(d.opts.Cameras*d.opts.Segment*25)
	cfg := fmt.Sprintf(`{
  "cameras": [%s],
  "s3Config": {"s3Bucket": %q, "s3Path": %q, "endpoint": %q},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q, "region": "us-east-1"},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": %v},
  "api": {"listen": "127.0.0.1:%d"},
  "ffmpeg": {"stallTimeout": %q},
  "log": {"format": "json"}
}`, strings.Join(cams, ",\n    "), bucket, prefix, d.minio.Endpoint, d.minio.AccessKey, d.minio.SecretKey, d.save, limitGB,
		d.apiPort, stallTimeout.String())
	d.cfgPath = filepath.Join(d.opts.WorkDir, "config.json")
	return os.WriteFile(d.cfgPath, []byte(cfg), 0o600)
}

func (d *drill) cleanup() {
	d.mu.Lock()
	cmd := d.daemon
	d.mu.Unlock()
	if cmd != nil && cmd.ProcessState == nil {
		cmd.Process.Kill()
		select {
		case <-d.exited:
		case <-time.After(30 * time.Second):
			d.logf("cctvd had not exited 30 s after SIGKILL; going on")
		}
	}
	for _, c := range d.cams {
		c.Stop()
	}
	if d.minio != nil {
		d.minio.Stop()
	}
}

// startDaemon starts cctvd and waits for its API to answer.
func (d *drill) startDaemon() error {
	cmd := exec.Command(d.opts.Binary, "run", "--config", d.cfgPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = &lockedWriter{mu: &d.mu, w: &d.out}
	if d.firstStart.IsZero() {
		d.firstStart = time.Now()
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cctvd: %w", err)
	}
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			d.mu.Lock()
			d.out.Write(sc.Bytes())
			d.out.WriteByte('\n')
			d.mu.Unlock()
		}
		exited <- cmd.Wait()
	}()
	d.mu.Lock()
	d.daemon, d.exited = cmd, exited
	d.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var v map[string]any
		if err := d.api("GET", "/healthz", &v); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("cctvd exited at start: %v\n%s", err, d.output())
		case <-time.After(50 * time.Millisecond): // the API comes up within a second; nothing to wait on but it
		}
	}
	return errors.New("cctvd's API did not answer")
}

func (d *drill) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// api calls cctvd's API and decodes its JSON answer into v.
func (d *drill) api(method, path string, v any) error {
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", d.apiPort, path), nil)
	req.Header.Set("Content-Type", "application/json") // the API's guard against cross-site POSTs
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	d.mu.Lock()
	d.bodies.Write(body)
	d.mu.Unlock()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

type cameraState struct {
	Name  string `json:"name"`
	State string `json:"state"`
	PID   int    `json:"pid"`
}

// waitRecording waits until every camera records (after start-up).
func (d *drill) waitRecording(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var list struct {
			Cameras []cameraState `json:"cameras"`
		}
		if err := d.api("GET", "/api/v1/cameras", &list); err == nil {
			n := 0
			for _, c := range list.Cameras {
				if c.State == "recording" {
					n++
				}
			}
			if n == len(d.names) {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond) // polling the API: the drill is an outside observer
	}
	return errors.New("the cameras did not all start recording")
}

// finish stops every camera through the API (each finalises its segment),
// waits until S3 holds every local segment, reads the gap log, and stops
// cctvd. It returns when each camera stopped.
func (d *drill) finish(ctx context.Context) (map[string]time.Time, error) {
	stopped := map[string]time.Time{}
	for _, name := range d.names {
		var c cameraState
		if err := d.api("POST", "/api/v1/cameras/"+name+"/stop", &c); err != nil {
			return nil, err
		}
		stopped[name] = time.Now()
	}
	d.logf("cameras stopped; waiting for S3 to hold every local segment")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		local := localSegments(d.save)
		objs, err := d.minio.List(bucket, prefix+"/")
		if err == nil {
			inS3 := map[string]bool{}
			for _, o := range objs {
				inS3[o.Key] = true
			}
			missing := 0
			for rel := range local {
				if !inS3[prefix+"/"+rel] {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%d local segments never reached S3", missing)
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond): // polling S3 from outside
		}
	}
	if err := d.readGaps(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	cmd, exited := d.daemon, d.exited
	d.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return nil, fmt.Errorf("cctvd exited on SIGTERM with %v", err)
		}
	case <-time.After(60 * time.Second):
		return nil, errors.New("cctvd did not stop on SIGTERM")
	}
	return stopped, nil
}

// localSegments lists the segment files under savePath, relative to it.
func localSegments(save string) map[string]bool {
	out := map[string]bool{}
	filepath.WalkDir(save, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") {
			return filepath.SkipDir
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".mp4") {
			rel, _ := filepath.Rel(save, p)
			out[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	return out
}

// gapEntry is one gap-log entry from the API.
type gapEntry struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Cause string    `json:"cause"`
}

func (d *drill) readGaps() error {
	d.gaps = map[string][]gapEntry{}
	for _, name := range d.names {
		var res struct {
			Gaps []gapEntry `json:"gaps"`
		}
		if err := d.api("GET", "/api/v1/cameras/"+url.PathEscape(name)+"/gaps", &res); err != nil {
			return err
		}
		d.gaps[name] = res.Gaps
	}
	return nil
}
