package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/internal/fixture"
)

// camSpec is one camera of a measurement.
type camSpec struct {
	Name, URL string
	FPS       float64
	Res       string
	Dur       int
	Mode      string
	// NoActivity turns the camera's activity index off.
	NoActivity bool
}

// event is a log line of interest.
type event struct {
	Message, Camera, Run, Segment string
	Time                          time.Time
}

// daemon is a cctvd under measurement.
type daemon struct {
	cmd    *exec.Cmd
	port   int
	dir    string
	exited chan error

	mu     sync.Mutex
	events []event
}

// startDaemon runs cctvd over cams in dir, uploading to the bench's MinIO
// and clearing each file once uploaded, and waits until every camera
// records. s3extra and storageExtra are more members of s3Config and
// storageConfig, each preceded by a comma.
func (b *bench) startDaemon(dir string, cams []camSpec, s3extra string, storageExtra ...string) (*daemon, error) {
	return b.startDaemonClearing(dir, cams, s3extra, true, storageExtra...)
}

// startDaemonClearing is startDaemon with clearAfterUpload as given.
func (b *bench) startDaemonClearing(dir string, cams []camSpec, s3extra string, clear bool, storageExtra ...string) (*daemon, error) {
	return b.startDaemonWith(dir, cams, daemonOpts{s3extra: s3extra, clear: clear, storageExtra: storageExtra})
}

// daemonOpts are the less common settings of a daemon under measurement.
type daemonOpts struct {
	s3extra      string
	clear        bool
	storageExtra []string
	// cgroup, if set, holds cctvd and every process it starts.
	cgroup *cgroup
	// noWait: return once cctvd runs, without waiting until every camera
	// is recording at one poll of the API.
	noWait bool
}

// startDaemonWith is startDaemon with every setting.
func (b *bench) startDaemonWith(dir string, cams []camSpec, o daemonOpts) (*daemon, error) {
	port, err := fixture.FreePort()
	if err != nil {
		return nil, err
	}
	if err := b.writeConfig(dir, cams, o, port); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "config.json")
	logf, err := os.Create(filepath.Join(dir, "cctvd.log"))
	if err != nil {
		return nil, err
	}
	d := &daemon{port: port, dir: dir, exited: make(chan error, 1)}
	d.cmd = exec.Command(b.opts.Cctvd, "run", "--config", path)
	if o.cgroup != nil {
		d.cmd = o.cgroup.command(b.opts.Cctvd, "run", "--config", path)
	}
	stdout, _ := d.cmd.StdoutPipe()
	d.cmd.Stderr = logf
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			logf.Write(append(sc.Bytes(), '\n'))
			var m struct {
				Message, Camera, Run, Segment string
				Time                          time.Time
			}
			if json.Unmarshal(sc.Bytes(), &m) == nil && (m.Message == "segment closed" || m.Message == "uploaded and verified" ||
				m.Message == "ffmpeg started" || m.Message == "recording" || m.Message == "ffmpeg exited") {
				d.mu.Lock()
				d.events = append(d.events, event(m))
				d.mu.Unlock()
			}
		}
		d.exited <- d.cmd.Wait()
	}()
	if o.noWait {
		return d, nil
	}
	if err := d.waitRecording(len(cams), 90*time.Second); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// writeConfig writes dir/config.json for cams (again, for a reload).
func (b *bench) writeConfig(dir string, cams []camSpec, o daemonOpts, port int) error {
	var cj []string
	for _, c := range cams {
		cj = append(cj, fmt.Sprintf(`{"cameraName": %q, "streamUrl": %q, "frameRate": %v, "resolution": %q, "videoDuration": %d, "videoFeedId": "bench", "mode": %q, "activity": %t}`,
			c.Name, c.URL, c.FPS, c.Res, c.Dur, c.Mode, !c.NoActivity))
	}
	cfg := fmt.Sprintf(`{
  "cameras": [%s],
  "s3Config": {"s3Bucket": "bench", "s3Path": %q, "endpoint": %q %s},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": %t, "clearWhenFilePathReachGB": 50 %s},
  "api": {"listen": "127.0.0.1:%d"},
  "log": {"format": "json"}
}`, strings.Join(cj, ",\n"), filepath.Base(dir), b.minio.Endpoint, o.s3extra, b.minio.AccessKey, b.minio.SecretKey,
		filepath.Join(dir, "rec"), o.clear, strings.Join(o.storageExtra, ""), port)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "config.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path) // whole, as a reload reads it
}

func (d *daemon) waitRecording(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/cameras", d.port))
		if err == nil {
			var list struct {
				Cameras []struct{ State string } `json:"cameras"`
			}
			json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
			rec := 0
			for _, c := range list.Cameras {
				if c.State == "recording" {
					rec++
				}
			}
			if rec == n {
				return nil
			}
		}
		select {
		case err := <-d.exited:
			return fmt.Errorf("cctvd exited: %v (see %s)", err, filepath.Join(d.dir, "cctvd.log"))
		case <-time.After(200 * time.Millisecond): // polling the API from outside
		}
	}
	return errors.New("the cameras did not all record")
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) snapshot() []event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]event(nil), d.events...)
}

// stop sends SIGTERM and waits for cctvd to exit.
func (d *daemon) stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		return err
	case <-time.After(90 * time.Second):
		d.cmd.Process.Kill()
		return errors.New("cctvd did not stop on SIGTERM")
	}
}
