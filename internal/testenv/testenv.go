// Package testenv starts the real parts that cctvd's tests run against: a
// simulated IP camera (GStreamer's RTSP server, scripts/testcam.py) on
// 127.0.0.1, and probes recorded files with ffprobe. `make test` installs
// what they need; a test that cannot find a tool fails and says to run
// `make deps`, it is never skipped.
package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Python is Debian's python3, which has the GStreamer bindings (gi); a
// python earlier on PATH may not.
const Python = "/usr/bin/python3"

// RepoRoot returns the repository's root folder (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RequireTools fails the test unless ffmpeg, ffprobe and the GStreamer
// RTSP server are installed.
func RequireTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps` (make test does it)", tool)
		}
	}
	out, err := exec.Command(Python, "-c", `import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer`).CombinedOutput()
	if err != nil {
		t.Fatalf("GStreamer's RTSP server is not installed (%v: %s): run `make deps` (make test does it)", err, out)
	}
}

// CameraOptions configure a test camera.
type CameraOptions struct {
	// Mounts maps paths to "WIDTHxHEIGHT@FPS", e.g. "/cam1": "1920x1080@25".
	Mounts map[string]string
	// User and Password, with Auth "basic" or "digest", protect every mount.
	User, Password, Auth string
	// Port is 0 for a free port.
	Port int
}

// Camera is a running simulated IP camera.
type Camera struct {
	t    testing.TB
	opts CameraOptions
	Port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartCamera starts a camera and stops it when the test ends.
func StartCamera(t testing.TB, opts CameraOptions) *Camera {
	t.Helper()
	c := &Camera{t: t, opts: opts}
	c.start()
	t.Cleanup(c.Stop)
	return c
}

func (c *Camera) start() {
	c.t.Helper()
	script := filepath.Join(RepoRoot(c.t), "scripts", "testcam.py")
	args := []string{script, "--port", strconv.Itoa(c.Port)}
	if c.Port == 0 {
		args[2] = strconv.Itoa(c.opts.Port)
	}
	for path, spec := range c.opts.Mounts {
		args = append(args, "--mount", path+"="+spec)
	}
	if c.opts.Auth != "" {
		args = append(args, "--auth", c.opts.Auth, "--user", c.opts.User, "--password", c.opts.Password)
	}
	// A port just freed by the previous camera process can take a moment
	// to be bindable again; retry briefly.
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		cmd := exec.Command(Python, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			c.t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &lockedWriter{w: &stderr}
		if err := cmd.Start(); err != nil {
			c.t.Fatalf("start testcam: %v", err)
		}
		port, err := readReady(stdout, 15*time.Second)
		if err == nil {
			go io.Copy(io.Discard, stdout)
			c.mu.Lock()
			c.cmd, c.Port = cmd, port
			c.mu.Unlock()
			return
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		lastErr = fmt.Errorf("%v: %s", err, stderr.String())
		if c.Port == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond) // waiting for the kernel to free the port: no event to await
	}
	c.t.Fatalf("testcam did not start: %v", lastErr)
}

func readReady(r io.Reader, timeout time.Duration) (int, error) {
	type result struct {
		port int
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "READY port="); ok {
				n, err := strconv.Atoi(p)
				ch <- result{n, err}
				return
			}
		}
		ch <- result{0, fmt.Errorf("testcam exited before it was ready")}
	}()
	select {
	case r := <-ch:
		return r.port, r.err
	case <-time.After(timeout):
		return 0, fmt.Errorf("testcam not ready after %v", timeout)
	}
}

// URL is the stream URL of a mount, without credentials.
func (c *Camera) URL(path string) string {
	return fmt.Sprintf("rtsp://127.0.0.1:%d%s", c.Port, path)
}

func (c *Camera) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		_ = c.cmd.Process.Signal(sig)
	}
}

// Stall stops every stream's frames while keeping the RTSP sessions up:
// a hung camera.
func (c *Camera) Stall() { c.signal(syscall.SIGUSR1) }

// Resume ends a stall.
func (c *Camera) Resume() { c.signal(syscall.SIGUSR2) }

// Stop stops the camera server.
func (c *Camera) Stop() {
	c.mu.Lock()
	cmd := c.cmd
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// Restart stops the camera server and starts a new one on the same port,
// as when a camera reboots.
func (c *Camera) Restart() {
	c.t.Helper()
	c.Stop()
	c.start()
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Probe is what ffprobe says of a recorded file.
type Probe struct {
	Width, Height int
	// FPS is the video stream's average frame rate.
	FPS float64
	// Duration is the container's duration.
	Duration time.Duration
	Codec    string
	// Frames counts decoded video frames.
	Frames int
}

// ProbeFile runs ffprobe on path, decoding every frame, so a file that does
// not play fails the test.
func ProbeFile(t testing.TB, path string) Probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,avg_frame_rate,nb_read_frames:format=duration", "-of", "json", path).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v %s", path, err, stderr)
	}
	var res struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			AvgFrameRate string `json:"avg_frame_rate"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) == 0 {
		t.Fatalf("ffprobe %s: no video stream in %s (%v)", path, out, err)
	}
	s := res.Streams[0]
	p := Probe{Width: s.Width, Height: s.Height, Codec: s.CodecName}
	if num, den, ok := strings.Cut(s.AvgFrameRate, "/"); ok {
		n, _ := strconv.ParseFloat(num, 64)
		d, _ := strconv.ParseFloat(den, 64)
		if d > 0 {
			p.FPS = n / d
		}
	}
	p.Frames, _ = strconv.Atoi(s.NbReadFrames)
	secs, _ := strconv.ParseFloat(res.Format.Duration, 64)
	p.Duration = time.Duration(secs * float64(time.Second))
	return p
}
