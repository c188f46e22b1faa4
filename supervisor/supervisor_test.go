package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/fakeclock"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// The tests in this file run the test binary itself as a stand-in ffmpeg (a
// fake, for the supervisor's state machine only: the recording pipeline is
// tested with real ffmpeg and a real camera in package segmenter and
// cmd/cctvd), through a link named fakeName: the file "script" beside the
// link holds comma-separated behaviours, one per start; the last repeats.
// (Not an environment variable: ffmpeg gets a minimal environment.)
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == fakeName {
		os.Exit(fakeFFmpeg(filepath.Dir(os.Args[0])))
	}
	os.Exit(m.Run())
}

const fakeName = "fake-ffmpeg"

const testPassword = "s3cr@t:/#%pw"

func fakeFFmpeg(dir string) int {
	script := filepath.Join(dir, "script")
	data, _ := os.ReadFile(script)
	modes := strings.Split(strings.TrimSpace(string(data)), ",")
	counter := script + ".count"
	n, _ := strconv.Atoi(strings.TrimSpace(readOr(counter, "0")))
	os.WriteFile(counter, []byte(strconv.Itoa(n+1)), 0o644)
	mode := modes[min(n, len(modes)-1)]
	u := url.URL{Scheme: "rtsp", User: url.UserPassword("admin", testPassword), Host: "127.0.0.1:1", Path: "/cam"}
	fmt.Fprintf(os.Stderr, "[info] Input #0, rtsp, from '%s':\n", u.String())

	block := func(i int) {
		fmt.Printf("frame=%d\nfps=2.0\nbitrate=  30.0kbits/s\nout_time_us=%d\nspeed=1.0x\nprogress=continue\n", i, i*500000)
	}
	if mode == "env" { // say what environment it got, then record
		os.WriteFile(filepath.Join(dir, "env"), []byte(strings.Join(os.Environ(), "\n")), 0o644)
		mode = "record"
	}
	if mode == "held" { // connected, no frame until the test says so, then record
		os.WriteFile(filepath.Join(dir, "started"), nil, 0o644)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, "frames-go")); err == nil {
				break
			}
		}
		mode = "record"
	}
	switch mode {
	case "exit0":
		return 0
	case "exit3":
		fmt.Fprintln(os.Stderr, "[error] Invalid data found when processing input")
		return 3
	case "auth":
		fmt.Fprintln(os.Stderr, "[rtsp @ 0x55] [error] method DESCRIBE failed: 401 Unauthorized")
		fmt.Fprintf(os.Stderr, "[error] %s: Server returned 401 Unauthorized (authorization failed)\n", u.String())
		return 1
	case "record-exit":
		for i := 1; i <= 5; i++ {
			block(i)
			time.Sleep(10 * time.Millisecond) // pacing a stand-in stream, not waiting for an event
		}
		return 0
	case "hold-record": // start quiet; record once the file "go" exists
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "go")); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // polling a file the test makes
		}
		fallthrough
	case "record":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		for i := 1; ; i++ {
			block(i)
			select {
			case s := <-sigs:
				// Like ffmpeg: finalise, then exit 255.
				os.WriteFile(filepath.Join(dir, "finalised-"+s.String()), nil, 0o644)
				return 255
			case <-time.After(20 * time.Millisecond): // pacing the stand-in stream
			}
		}
	case "stall":
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM) // a hung ffmpeg ignores them
		for i := 1; i <= 3; i++ {
			block(i)
		}
		select {} // until SIGKILL
	}
	fmt.Fprintf(os.Stderr, "unknown fake mode %q\n", mode)
	return 99
}

// standIn links the test binary into dir under fakeName: run through the
// link, it is the stand-in ffmpeg reading dir/script.
func standIn(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, fakeName)
	if err := os.Symlink(self, fake); err != nil {
		t.Fatal(err)
	}
	return fake
}

func readOr(path, def string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return string(b)
}

type harness struct {
	t      *testing.T
	sup    *Supervisor
	cam    *Camera
	clock  *fakeclock.Clock
	waits  <-chan time.Duration
	events chan Event
	logs   *testenv.Buffer
	dir    string
	cancel context.CancelCauseFunc
	done   chan error
	once   sync.Once
	gate   atomic.Pointer[error] // what the Gate answers; nil: go ahead
}

// start runs a one-camera supervisor over the stand-in ffmpeg.
func start(t *testing.T, modes string, tweak func(*Config)) *harness {
	t.Helper()
	return startCam(t, modes, tweak, nil)
}

// run runs the supervisor (again).
func (h *harness) run() {
	ctx, cancel := context.WithCancelCause(context.Background())
	h.cancel, h.once = cancel, sync.Once{}
	go func() { h.done <- h.sup.Run(ctx) }()
}

// stop shuts the supervisor down and waits for Run to return.
func (h *harness) stop() {
	h.once.Do(func() {
		h.cancel(nil)
		select {
		case <-h.done:
		case <-time.After(20 * time.Second):
			h.t.Fatal("supervisor Run did not return after cancel")
		}
	})
}

// event waits for the next event of kind.
func (h *harness) event(kind EventKind) Event {
	h.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			h.t.Fatalf("no %s event", kind)
		}
	}
}

// pauses collects n backoff pauses, advancing the fake clock through each.
// Waits of an hour or more are the watchdog's and are left alone.
func (h *harness) pauses(n int) []time.Duration {
	h.t.Helper()
	var got []time.Duration
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case d := <-h.waits:
			if d >= 30*time.Minute {
				continue
			}
			got = append(got, d)
			h.clock.Advance(d)
		case <-timeout:
			h.t.Fatalf("only %d pauses: %v", len(got), got)
		}
	}
	return got
}

// nextWait returns the next wait shorter than 30 minutes (not the
// watchdog's) without advancing the clock through it.
func (h *harness) nextWait() time.Duration {
	h.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case d := <-h.waits:
			if d < 30*time.Minute {
				return d
			}
		case <-timeout:
			h.t.Fatal("no wait")
		}
	}
}

func within(d, want time.Duration) bool {
	return d >= want*8/10 && d <= want*12/10
}

func TestRestartsAfterEveryExitWithBackoff(t *testing.T) {
	h := start(t, "exit0", nil)
	got := h.pauses(7)
	want := []time.Duration{1, 2, 4, 8, 10, 10, 10} // seconds: doubling, capped for transient failures
	for i, d := range got {
		if !within(d, want[i]*time.Second) {
			t.Errorf("pause %d = %v, want %ds ±20%%", i, d, want[i])
		}
	}
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.Restarts >= 7 }); err != nil {
		t.Fatalf("restarts: %+v", h.cam.Status())
	}
	st := h.cam.Status()
	if st.LastExit == nil || st.LastExit.Code != 0 || st.LastExit.Reason != ReasonExited {
		t.Errorf("last exit = %+v, want code 0, reason exited", st.LastExit)
	}
	if !strings.Contains(st.LastError, "ffmpeg exited with code 0") {
		t.Errorf("last error = %q", st.LastError)
	}
}

// A wrong password: three refused logins, 1 s, 2 s and 4 s apart, then
// the camera waits for its credentials until the first refusal is 30
// minutes old (cameras lock an address out after about five refusals);
// an operator's Retry tries once at once (one more refusal counted), and a
// reload with new credentials tries at once and records. (The stand-in
// ffmpeg prints ffmpeg's 401 lines; the real camera's refusals are counted
// at the camera in cmd/cctvd's TestWrongPasswordDoesNotLockTheCameraOut.)
func TestAuthFailureWaitsForTheCredentials(t *testing.T) {
	h := start(t, "auth,auth,auth,auth,record", nil)
	t0 := h.clock.Mono()
	got := h.pauses(3)
	for i, want := range []time.Duration{1, 2, 4} {
		if !within(got[i], want*time.Second) {
			t.Errorf("pause %d = %v, want %ds ±20%%", i, got[i], want)
		}
	}
	// The wait, not advanced through (the camera waits on): until the
	// first refusal, at once on the fake clock, is 30 minutes old.
	wait := h.nextWait()
	if want := 30*time.Minute - (h.clock.Mono() - t0); wait != want {
		t.Errorf("waited %v for the credentials, want %v (until the first refusal is 30 minutes old)", wait, want)
	}
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == WaitingCredentials }); err != nil {
		t.Fatalf("not waiting for the credentials: %+v", h.cam.Status())
	}
	st := h.cam.Status()
	if st.FailedLogins != 3 || st.LastExit == nil || st.LastExit.Reason != ReasonAuth || st.LastExit.Code != 1 || st.NextAttempt.IsZero() {
		t.Errorf("status %+v, want 3 failed logins, the last exit auth, a next attempt", st)
	}
	if !strings.HasPrefix(st.LastError, "camera refused the credentials: rtsp://admin:***@127.0.0.1:1/cam") {
		t.Errorf("last error = %q", st.LastError)
	}
	if n := ffmpegStarts(h); n != 3 {
		t.Errorf("ffmpeg started %d times, want 3", n)
	}
	// A start does not pass the budget: the camera goes on waiting.
	h.sup.Start("cam1")
	if again := h.nextWait(); again != wait {
		t.Errorf("after a start, a wait of %v, want the same %v", again, wait)
	}
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == WaitingCredentials && !s.NextAttempt.IsZero() }); err != nil {
		t.Fatal(err)
	}
	if n := ffmpegStarts(h); n != 3 {
		t.Errorf("a start made ffmpeg log in again (%d starts)", n)
	}

	// Retry now: one more login at once, refused and counted.
	restarts := h.cam.Status().Restarts
	if err := h.sup.Retry("cam1"); err != nil {
		t.Fatal(err)
	}
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.Restarts > restarts && s.State == Backoff }); err != nil {
		t.Fatalf("retry: %+v", h.cam.Status())
	}
	if st := h.cam.Status(); st.LastExit.Reason != ReasonAuth || ffmpegStarts(h) != 4 {
		t.Fatalf("retry: exit %+v after %d starts", st.LastExit, ffmpegStarts(h))
	}
	h.pauses(1) // the backoff after it
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == WaitingCredentials && s.FailedLogins == 4 }); err != nil {
		t.Fatalf("after a retry: %+v", h.cam.Status())
	}

	// A reload with a new password: at once, past the spent budget.
	cam, _ := h.sup.CameraConfig("cam1")
	cam.Password = "the right one"
	h.sup.mu.Lock()
	cfg := h.sup.cfg
	h.sup.mu.Unlock()
	if res := h.sup.Apply([]config.Camera{cam}, cfg, nil); len(res.Changed) != 1 {
		t.Fatalf("apply: %+v", res)
	}
	h.event(EventRecording)
	if n := ffmpegStarts(h); n != 5 {
		t.Errorf("%d ffmpeg starts, want 5", n)
	}
	if err := h.sup.Stop(ctxT(t), "cam1"); err != nil {
		t.Fatal(err)
	}
	if err := h.sup.Retry("cam1"); !errors.Is(err, ErrStopped) {
		t.Errorf("retry of a stopped camera: %v", err)
	}
	assertNoSecret(t, h.logs.String()+st.LastError)
}

func TestHealthyRunResetsBackoff(t *testing.T) {
	h := start(t, "exit0,exit0,record-exit,exit0", nil)
	go func() {
		// The third run records: make it last a minute of (fake) time,
		// from the event the supervisor sends as recording begins.
		h.event(EventRecording)
		h.clock.Advance(time.Minute)
	}()
	got := h.pauses(4)
	want := []time.Duration{1, 2, 1, 2}
	for i, d := range got {
		if !within(d, want[i]*time.Second) {
			t.Errorf("pause %d = %v, want %ds ±20%% (pauses %v)", i, d, want[i], got)
		}
	}
}

func TestStallIsDetectedAndKilled(t *testing.T) {
	h := start(t, "stall,record", func(c *Config) { c.StallTimeout = 15 * time.Second; c.StopTimeout = 300 * time.Millisecond })
	h.event(EventRecording) // a few frames, then nothing
	stalled := make(chan Event, 1)
	go func() { stalled <- h.event(EventStalled) }()
	// Advance the fake clock through every watchdog wait until it fires.
	timeout := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case d := <-h.waits:
			h.clock.Advance(d)
		case <-stalled:
			done = true
		case <-timeout:
			t.Fatalf("no stall detected: %+v", h.cam.Status())
		}
	}
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.LastExit != nil }); err != nil {
		t.Fatal(err)
	}
	st := h.cam.Status()
	// It ignored SIGTERM, so it was killed after StopTimeout.
	if st.LastExit.Reason != ReasonStalled || st.LastExit.Signal != "killed" || st.Stalls != 1 {
		t.Errorf("status = %+v, exit %+v; want stalled, killed, 1 stall", st, st.LastExit)
	}
	if st.LastError != "stalled: no new frames for 15s" {
		t.Errorf("last error = %q", st.LastError)
	}
}

func TestStopFinalisesThenStartResumes(t *testing.T) {
	h := start(t, "record", nil)
	h.event(EventRecording)
	st := h.cam.Status()
	if st.State != Recording || st.PID == 0 || st.Progress == nil || st.Progress.Frame == 0 {
		t.Fatalf("status = %+v, want recording with a pid and progress", st)
	}
	if pgid, err := syscall.Getpgid(st.PID); err != nil || pgid != st.PID {
		t.Errorf("ffmpeg's process group = %d (%v), want its own (%d)", pgid, err, st.PID)
	}
	if err := h.cam.Stop(ctxT(t)); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "finalised-interrupt")); err != nil {
		t.Errorf("ffmpeg did not get SIGINT to finalise its segment: %v", err)
	}
	if err := syscall.Kill(st.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("ffmpeg %d still exists after Stop: %v", st.PID, err)
	}
	st = h.cam.Status()
	if st.State != Stopped || st.Desired || st.PID != 0 || st.LastExit.Reason != ReasonStopped || st.LastExit.Code != 255 {
		t.Errorf("after Stop: %+v exit %+v", st, st.LastExit)
	}
	if st.LastError != "" {
		t.Errorf("a stop is not an error: %q", st.LastError)
	}
	// Stop is idempotent.
	if err := h.cam.Stop(ctxT(t)); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	h.cam.Start()
	h.event(EventRecording)
	if st := h.cam.Status(); st.State != Recording || !st.Desired || st.Restarts != 0 {
		t.Errorf("after Start: %+v", st)
	}
}

func TestShutdownWaitsForFFmpeg(t *testing.T) {
	h := start(t, "record", nil)
	h.event(EventRecording)
	pid := h.cam.Status().PID
	h.stop()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("Run returned while ffmpeg %d still exists: %v", pid, err)
	}
	if st := h.cam.Status(); st.State != Stopped || st.LastExit.Message != "daemon shut down" {
		t.Errorf("after shutdown: %+v", st)
	}
}

// TestDiskGoneThenBack: Run cancelled because savePath's disk went reports
// the exit as such; Run again, with the gate refusing, starts no ffmpeg and
// backs off; once the gate opens, the camera records again. Restore sets
// the operators' choices without saving them.
func TestDiskGoneThenBack(t *testing.T) {
	h := start(t, "record", nil)
	h.event(EventRecording)
	h.once.Do(func() { h.cancel(ErrStorageUnavailable) })
	await.Recv(t, h.done, 30*time.Second, "end of the camera's run")
	ev := h.event(EventExited)
	if ev.Exit.Reason != ReasonStorage || h.cam.Status().State != Stopped || h.cam.Status().LastError == "" {
		t.Fatalf("exit %+v, status %+v", ev.Exit, h.cam.Status())
	}
	if _, err := os.Stat(filepath.Join(h.dir, "finalised-interrupt")); err != nil {
		t.Error("ffmpeg was not stopped with SIGINT (its segment finalised)")
	}

	h.sup.Restore(map[string]bool{"cam1": true})
	if h.cam.Status().Desired {
		t.Error("Restore did not stop the camera")
	}
	h.sup.Restore(nil)
	refused := fmt.Errorf("%w: test", ErrStorageUnavailable)
	h.gate.Store(&refused)
	started := strings.Count(h.logs.String(), "ffmpeg started")
	h.run()
	ev = h.event(EventExited)
	if ev.Exit.Reason != ReasonStorage || !strings.Contains(ev.Exit.Message, "test") {
		t.Errorf("held start: %+v", ev.Exit)
	}
	if strings.Count(h.logs.String(), "ffmpeg started") != started {
		t.Error("ffmpeg started though the gate refused")
	}
	h.gate.Store(nil)
	h.pauses(1) // it waits, then tries again
	h.event(EventRecording)
}

func TestExitCodeIsRecorded(t *testing.T) {
	h := start(t, "exit3", nil)
	ev := h.event(EventExited)
	if ev.Exit.Code != 3 || ev.Exit.Message != "ffmpeg exited with code 3: Invalid data found when processing input" {
		t.Errorf("exit = %+v", ev.Exit)
	}
}

func TestMissingFFmpegIsAnErrorInTheState(t *testing.T) {
	h := start(t, "exit0", func(c *Config) { c.FFmpegPath = "/nonexistent/ffmpeg" })
	ev := h.event(EventExited)
	if ev.Exit.Reason != ReasonStartFailed || !strings.Contains(ev.Exit.Message, "no such file") {
		t.Errorf("exit = %+v", ev.Exit)
	}
	h.pauses(1) // it backs off and tries again
}

// TestFFmpegGetsAMinimalEnvironment: none of the daemon's variables (the
// API token, AWS credentials) reach ffmpeg, where other processes of the
// service user could read them in /proc/<pid>/environ.
func TestFFmpegGetsAMinimalEnvironment(t *testing.T) {
	t.Setenv("CCTVD_API_TOKEN", "t0ken-s3cret-abc")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-s3cret-key")
	t.Setenv("TZ", "Europe/Paris")
	h := start(t, "env", nil)
	h.event(EventRecording)
	env := strings.Split(readOr(filepath.Join(h.dir, "env"), ""), "\n")
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(append([]string{"TZ", "LANG", "LC_ALL"}, media.Passed...), name) {
			t.Errorf("ffmpeg got %s", name)
		}
	}
	for _, want := range []string{"TZ=UTC", "LANG=C", "LC_ALL=C", "PATH=" + os.Getenv("PATH")} {
		if !slices.Contains(env, want) {
			t.Errorf("ffmpeg's environment lacks %s: %q", want, env)
		}
	}
}

func TestUnknownCamera(t *testing.T) {
	h := start(t, "record", nil)
	if _, err := h.sup.Camera("nope"); !errors.Is(err, ErrUnknownCamera) {
		t.Errorf("err = %v", err)
	}
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, form := range []string{testPassword, url.QueryEscape(testPassword), url.PathEscape(testPassword), url.UserPassword("", testPassword).String()[1:]} {
		if strings.Contains(s, form) {
			t.Errorf("output holds the password as %q", form)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestStreamEpochFollowsAWallClockStep: while ffmpeg records, the wall
// clock steps back an hour, then forward two. The run's epoch in its
// metadata (from which the segmenter names segments) follows each step at
// once, and the camera goes on recording: no stall, no restart.
func TestStreamEpochFollowsAWallClockStep(t *testing.T) {
	h := start(t, "record", nil)
	h.event(EventRecording)
	run := staging.Run{Dir: layout.StagingDir(h.dir, "cam1"), ID: h.cam.Status().RunID}
	first := h.awaitMeta(run, "an epoch", func(m staging.Meta) bool { return !m.Epoch.IsZero() }).Epoch
	// The stand-in's stream time runs ahead of the frozen fake clock, so
	// the estimate creeps back by half a second a block: allow a minute.
	near := func(want time.Time) func(staging.Meta) bool {
		return func(m staging.Meta) bool { d := m.Epoch.Sub(want); return d <= 0 && d > -time.Minute }
	}
	h.clock.StepWall(-time.Hour)
	h.awaitMeta(run, "the epoch an hour earlier", near(first.Add(-time.Hour)))
	h.clock.StepWall(2 * time.Hour)
	h.awaitMeta(run, "the epoch an hour later", near(first.Add(time.Hour)))
	if st := h.cam.Status(); st.State != Recording || st.Restarts != 0 || st.Stalls != 0 || st.RunID != run.ID {
		t.Errorf("after the steps: %+v", st)
	}
}

// awaitMeta waits, on fsnotify events, until the run's metadata satisfies cond.
func (h *harness) awaitMeta(run staging.Run, what string, cond func(staging.Meta) bool) staging.Meta {
	h.t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		h.t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(run.Dir); err != nil {
		h.t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	var m staging.Meta
	for {
		if m, err = staging.ReadMeta(run.MetaPath()); err == nil && cond(m) {
			return m
		}
		select {
		case <-w.Events:
		case err := <-w.Errors:
			h.t.Fatal(err)
		case <-deadline:
			h.t.Fatalf("run metadata never showed %s: %+v (%v)", what, m, err)
		}
	}
}

// startCam is start with the camera's config tweaked too.
func startCam(t *testing.T, modes string, tweak func(*Config), camTweak func(*config.Camera)) *harness {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte(modes), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := standIn(t, dir)
	clock, waits := fakeclock.New(time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), 1000)
	h := &harness{t: t, clock: clock, waits: waits, events: make(chan Event, 1000), logs: &testenv.Buffer{}, dir: dir, done: make(chan error, 1)}
	cfg := Config{
		SavePath: dir, Owner: "test", FFmpegPath: fake,
		StallTimeout: time.Hour, StopTimeout: 2 * time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	cam := config.Camera{CameraName: "cam1", IPAddress: "127.0.0.1", UserName: "admin", Password: testPassword,
		FrameRate: 2, Resolution: "640x360", VideoDuration: 4, VideoFeedID: "xx", RTSPPort: 1, RTSPPath: "/cam", RTSPTransport: "tcp"}
	if camTweak != nil {
		camTweak(&cam)
	}
	h.sup = New(cfg, []config.Camera{cam}, nil, Deps{
		Log:      zerolog.New(redact.NewWriter(redact.New(testPassword), h.logs)),
		Redactor: redact.New(testPassword),
		Now:      clock.Now,
		Mono:     clock.Mono,
		After:    clock.After,
		OnEvent:  func(ev Event) { h.events <- ev },
		Gate: func() error {
			if err := h.gate.Load(); err != nil {
				return *err
			}
			return nil
		},
	})
	h.cam, _ = h.sup.Camera("cam1")
	h.run()
	t.Cleanup(h.stop)
	return h
}
