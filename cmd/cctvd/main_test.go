package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
	"github.com/cctvd/cctvd/uploader"
)

// The daemon under test is this test binary itself: with CCTVD_TEST_MAIN=1
// it runs main() instead of the tests, so the tests send real signals to a
// real process without a separate build.
func TestMain(m *testing.M) {
	if path := os.Getenv(catalogHelperEnv); path != "" {
		os.Exit(openCatalogHelper(path, os.Getenv("CCTVD_TEST_SAVEPATH")))
	}
	if os.Getenv("CCTVD_TEST_MAIN") == "1" {
		os.Args = append([]string{"cctvd"}, strings.Fields(os.Getenv("CCTVD_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is a cctvd process whose JSON log lines the test reads.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	added chan struct{}
	exit  chan error
}

// startDaemon runs `cctvd args...` and collects its output.
func startDaemon(t *testing.T, args ...string) *proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return startBinary(t, exec.Command(self), append(os.Environ(), "CCTVD_TEST_MAIN=1", "CCTVD_TEST_ARGS="+strings.Join(args, " ")))
}

// startBinary runs cmd with env and collects its output.
func startBinary(t *testing.T, cmd *exec.Cmd, env []string) *proc {
	t.Helper()
	d := &proc{t: t, added: make(chan struct{}, 1), exit: make(chan error, 1)}
	d.cmd = cmd
	d.cmd.Env = env
	stdout, _ := d.cmd.StdoutPipe()
	d.cmd.Stderr = &lockedWriter{d: d}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			_ = json.Unmarshal(sc.Bytes(), &m)
			d.mu.Lock()
			d.raw.Write(sc.Bytes())
			d.raw.WriteByte('\n')
			if m != nil {
				d.lines = append(d.lines, m)
			}
			d.mu.Unlock()
			select {
			case d.added <- struct{}{}:
			default:
			}
		}
		d.exit <- d.cmd.Wait()
		close(d.added)
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
		}
	})
	return d
}

type lockedWriter struct{ d *proc }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.raw.Write(p)
}

// output is everything the daemon wrote so far.
func (d *proc) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.raw.String()
}

// await returns the first log line from index from on that matches, and
// its index; it waits for the daemon to write it.
func (d *proc) await(from int, timeout time.Duration, match func(map[string]any) bool) (map[string]any, int) {
	d.t.Helper()
	deadline := time.After(timeout)
	for i := from; ; {
		d.mu.Lock()
		for ; i < len(d.lines); i++ {
			if match(d.lines[i]) {
				l := d.lines[i]
				d.mu.Unlock()
				return l, i
			}
		}
		d.mu.Unlock()
		select {
		case _, ok := <-d.added:
			if !ok {
				d.t.Fatalf("daemon exited before the awaited line; output:\n%s", d.output())
			}
		case <-deadline:
			d.t.Fatalf("awaited line not logged within %v; output:\n%s", timeout, d.output())
		}
	}
}

// mark is the number of log lines so far: await(d.mark(), ...) waits for
// a line still to come.
func (d *proc) mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lines)
}

func msgIs(msg string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["message"] == msg }
}

// wait waits for the daemon to exit and returns its error.
func (d *proc) wait(timeout time.Duration) error {
	d.t.Helper()
	select {
	case err := <-d.exit:
		return err
	case <-time.After(timeout):
		d.t.Fatalf("daemon still running after %v", timeout)
		return nil
	}
}

const e2ePassword = "adm1n@cam:/#%"

// setup is what a daemon under test runs against.
type setup struct {
	cam      *testenv.Camera
	minio    *testenv.MinIO
	savePath string
	duration int     // videoDuration
	extra    string  // more top-level JSON members, each followed by a comma
	storage  string  // more storageConfig members, each preceded by a comma
	s3       string  // more s3Config members, each preceded by a comma
	logLevel string  // default info
	endpoint string  // S3's endpoint, default MinIO's (a counting proxy in front of it, say)
	limitGB  float64 // clearWhenFilePathReachGB, default 1
}

// newSetup starts a camera (mount /cam1, digest auth) and MinIO with a bucket.
func newSetup(t *testing.T, duration int) *setup {
	t.Helper()
	testenv.RequireTools(t)
	s := &setup{duration: duration, savePath: t.TempDir()}
	s.cam = testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@25"},
		User: "admin", Password: e2ePassword, Auth: "digest"})
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	return s
}

// writeConfig writes the daemon's config: one camera "door" on /cam1.
func (s *setup) writeConfig(t *testing.T) string {
	t.Helper()
	cfg := fmt.Sprintf(`{
  %s
  "cameras": [{"cameraName": "door", "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
    "frameRate": 5, "resolution": "640x360", "videoDuration": %d, "videoFeedId": "f1",
    "rtspPort": %d, "rtspPath": "/cam1"}],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec/2025", "endpoint": %q %s},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": %v %s},
  "api": {"listen": "127.0.0.1:0"},
  "log": {"format": "json", "level": %q}
}`, s.extra, e2ePassword, s.duration, s.cam.Port, cmp.Or(s.endpoint, s.minio.Endpoint), s.s3, s.minio.AccessKey, s.minio.SecretKey, s.savePath,
		cmp.Or(s.limitGB, 1), s.storage, cmp.Or(s.logLevel, "info"))
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// awaitStagingGrowth waits, on fsnotify events, until a segment in the
// camera's staging folder holds at least n bytes: frames are on disk.
func awaitStagingGrowth(t *testing.T, savePath, camera string, n int64) string {
	t.Helper()
	dir := layout.StagingDir(savePath, camera)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if kind, _, _ := staging.Classify(e.Name()); kind == staging.Segment {
				if fi, err := e.Info(); err == nil && fi.Size() >= n {
					return filepath.Join(dir, e.Name())
				}
			}
		}
		select {
		case <-w.Events:
		case err := <-w.Errors:
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("no segment of %d bytes in %s", n, dir)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"check-config", "--config", "../../config/testdata/design-note.json"}, &out, &errOut, func(string) string { return "" }, time.Now)
	if err != nil {
		t.Fatalf("design note's config: %v %s", err, errOut.String())
	}
	for _, secret := range []string{"password123", "password456", "YOUR_SECRET_KEY"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("check-config printed %q", secret)
		}
	}
	if !strings.Contains(out.String(), `"password": "***"`) || !strings.Contains(out.String(), `"accessKeyId": "YOUR_ACCESS_KEY"`) {
		t.Errorf("check-config output:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"check-config", "--config", "../../config.example.json"}, &out, &errOut, func(string) string { return "" }, time.Now); err != nil {
		t.Fatalf("config.example.json: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(readFile(t, "../../config/testdata/design-note.json"), `"1280x720"`, `"1280*720"`, 1)), 0o600)
	err = run(context.Background(), []string{"check-config", "--config", bad}, &out, &errOut, func(string) string { return "" }, time.Now)
	if err == nil || !strings.Contains(err.Error(), `cameras[1].resolution: "1280*720" is not WIDTHxHEIGHT`) {
		t.Errorf("bad config: %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	var out, errOut bytes.Buffer
	noenv := func(string) string { return "" }
	if err := run(context.Background(), []string{"version"}, &out, &errOut, noenv, time.Now); err != nil || !strings.HasPrefix(out.String(), "cctvd ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	for _, args := range [][]string{nil, {"frobnicate"}, {"run", "extra"}, {"run", "--bogus"}} {
		if err := run(context.Background(), args, &out, &errOut, noenv, time.Now); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	if err := run(context.Background(), []string{"run", "--config", "/nonexistent.json"}, &out, &errOut, noenv, time.Now); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing config: %v", err)
	}
}

// assertNoSecret checks that no secret, in any likely encoding, is in out.
func assertNoSecret(t *testing.T, out string, more ...string) {
	t.Helper()
	for _, secret := range append([]string{e2ePassword}, more...) {
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret),
			strings.ToLower(url.QueryEscape(secret)), url.UserPassword("", secret).String()[1:]} {
			if strings.Contains(out, form) {
				t.Errorf("output holds a secret as %q", form)
			}
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// recordingBytes sums the segment files under savePath's camera folders.
func recordingBytes(t *testing.T, savePath string) (total int64, names []string) {
	t.Helper()
	filepath.WalkDir(filepath.Join(savePath, "door"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				total += fi.Size()
				names = append(names, e.Name())
			}
		}
		return nil
	})
	return total, names
}

// metaMatchesName checks the object's start and end metadata (to the
// millisecond) against its name's (to the second).
func metaMatchesName(meta map[string]string, info segment.Info) bool {
	start, err1 := time.Parse(uploader.MetaTimeLayout, meta["start"])
	end, err2 := time.Parse(uploader.MetaTimeLayout, meta["end"])
	return err1 == nil && err2 == nil && start.Round(time.Second).Equal(info.Start) && end.Round(time.Second).Equal(info.End)
}

// TestWarnsOnAReadableConfig: the config holds secrets; a config other
// users can read is warned about at start. (The camera and S3 here are
// closed ports on 127.0.0.1: nothing is needed to start.)
func TestWarnsOnAReadableConfig(t *testing.T) {
	cfg := fmt.Sprintf(`{
  "cameras": [{"cameraName": "c", "ipAddress": "127.0.0.1", "rtspPort": 1, "frameRate": 1, "resolution": "640x360", "videoDuration": 10, "videoFeedId": "f"}],
  "s3Config": {"s3Bucket": "b-b-b", "endpoint": "http://127.0.0.1:1"},
  "awsCredentials": {"accessKeyId": "k", "secretAccessKey": "s3cret-value"},
  "storageConfig": {"savePath": %q, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:0"},
  "log": {"format": "json"}
}`, t.TempDir())
	path := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(path, []byte(cfg), 0o644)
	d := startDaemon(t, "run", "--config", path)
	line, _ := d.await(0, 30*time.Second, func(m map[string]any) bool { return m["level"] == "warn" && m["config"] == path })
	if !strings.Contains(fmt.Sprint(line["message"]), "chmod 600 "+path) {
		t.Errorf("warning: %v", line["message"])
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.output())
	}
	assertNoSecret(t, d.output(), "s3cret-value")
}
