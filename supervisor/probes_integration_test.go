//go:build integration

package supervisor

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/fixture"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// memProbes is a ProbeStore in memory (the daemon's is the catalog, tested
// in package catalog and cmd/cctvd): every Put is also sent on puts.
type memProbes struct {
	mu   sync.Mutex
	rows map[string]Probe
	puts chan Probe
}

func newMemProbes() *memProbes {
	return &memProbes{rows: map[string]Probe{}, puts: make(chan Probe, 100)}
}

func (m *memProbes) GetProbe(_ context.Context, camera string) (Probe, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.rows[camera]
	return p, ok, nil
}

func (m *memProbes) PutProbe(_ context.Context, camera string, p Probe) error {
	m.mu.Lock()
	m.rows[camera] = p
	m.mu.Unlock()
	m.puts <- p
	return nil
}

// probeRig is a real RTSP camera (640x360 at 25 fps, a keyframe a second)
// recorded by real ffmpeg and ffprobe, each behind a wrapper that notes
// its calls (ffmpeg's arguments, one line per start, in ffmpeg.calls;
// ffprobe's starts in ffprobe.calls) and then execs the real one.
type probeRig struct {
	t    *testing.T
	dir  string
	cam  config.Camera
	logs *testenv.Buffer
	// ffmpegWrapper's extra shell, run before it execs ffmpeg.
	ffmpeg, ffprobe string
}

func newProbeRig(t *testing.T, ffmpegPrelude string) *probeRig {
	return newProbeRigOn(t, ffmpegPrelude, fixture.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@25"}, GOPSeconds: 1})
}

// newProbeRigOn is newProbeRig on a camera of opts, serving /cam1 at
// 640x360, 25 fps.
func newProbeRigOn(t *testing.T, ffmpegPrelude string, opts fixture.CameraOptions) *probeRig {
	testenv.RequireTools(t)
	cam, err := fixture.StartCamera(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Stop)
	dir := t.TempDir()
	r := &probeRig{t: t, dir: dir, logs: &testenv.Buffer{},
		cam: config.Camera{CameraName: "cam1", IPAddress: "127.0.0.1", RTSPPort: cam.Port, RTSPPath: "/cam1", RTSPTransport: "tcp",
			Resolution: "640x360", FrameRate: 25, VideoDuration: 2, VideoFeedID: "xx", Mode: config.ModeAuto}}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal(err)
	}
	r.ffmpeg, r.ffprobe = filepath.Join(dir, "ffmpeg"), filepath.Join(dir, "ffprobe")
	os.WriteFile(r.ffmpeg, []byte("#!/bin/sh\necho \"$*\" >> "+dir+"/ffmpeg.calls\n"+ffmpegPrelude+"exec "+ffmpeg+" \"$@\"\n"), 0o755)
	os.WriteFile(r.ffprobe, []byte("#!/bin/sh\necho probe >> "+dir+"/ffprobe.calls\nexec "+ffprobe+" \"$@\"\n"), 0o755)
	return r
}

// calls returns the lines of a wrapper's calls file.
func (r *probeRig) calls(name string) []string {
	data, _ := os.ReadFile(filepath.Join(r.dir, name+".calls"))
	return strings.FieldsFunc(string(data), func(c rune) bool { return c == '\n' })
}

// run starts a supervisor of the camera on store (a daemon's life); it
// returns the supervisor and a stop that ends it and waits.
func (r *probeRig) run(store ProbeStore, onEvent func(Event)) (*Supervisor, func()) {
	sup := New(Config{SavePath: filepath.Join(r.dir, "rec"), Owner: "test", FFmpegPath: r.ffmpeg, ProbePath: r.ffprobe,
		StallTimeout: 20 * time.Second, StopTimeout: 10 * time.Second, BackoffInitial: 50 * time.Millisecond},
		[]config.Camera{r.cam}, nil, Deps{Log: zerolog.New(r.logs), Redactor: redact.New(), Probes: store, OnEvent: onEvent})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	return sup, func() {
		cancel()
		<-done
	}
}

func (r *probeRig) waitFor(sup *Supervisor, what string, cond func(Status) bool) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := sup.WaitFor(ctx, r.cam.CameraName, cond); err != nil {
		st, _ := sup.Status(r.cam.CameraName)
		r.t.Fatalf("%s: %v; status %+v\n%s", what, err, st, r.logs.String())
	}
}

func (r *probeRig) put(store *memProbes, what string, cond func(Probe) bool) Probe {
	r.t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		select {
		case p := <-store.puts:
			if cond(p) {
				return p
			}
		case <-deadline:
			r.t.Fatalf("%s: not kept within 90 s\n%s", what, r.logs.String())
		}
	}
}

var recording = func(s Status) bool { return s.State == Recording }

// TestAutoDecisionOutlivesARestart: mode auto probes a camera's stream
// once; a restarted daemon records on the decision it kept, without
// ffprobe before ffmpeg and with ffmpeg reading only the stream's first
// packet before it writes (tight probing: the stream recorded before), and
// probes again in the background once it records.
func TestAutoDecisionOutlivesARestart(t *testing.T) {
	r := newProbeRig(t, "")
	store := newMemProbes()

	var mu sync.Mutex
	var startedAt, recordingAt time.Time
	probesAtStart := -1
	sup, stop := r.run(store, nil)
	r.waitFor(sup, "the first life records", recording)
	first := r.put(store, "the first life's probe", func(p Probe) bool { return p.Decision == "copy" })
	stop()
	if n := len(r.calls("ffprobe")); n != 1 {
		t.Errorf("the first life probed %d times, want once (before ffmpeg)", n)
	}
	if c := r.calls("ffmpeg"); len(c) != 1 || strings.Contains(c[0], "-probesize") {
		t.Fatalf("the first life's ffmpeg starts %q: want one, probing in full (the stream was not known)", c)
	}
	if first.Key != probeKey(r.cam) || first.Codec != "h264" || first.Loose {
		t.Errorf("kept %+v", first)
	}

	sup, stop2 := r.run(store, func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case EventStarted:
			startedAt, probesAtStart = ev.At, len(r.calls("ffprobe"))
		case EventRecording:
			recordingAt = ev.At
		}
	})
	var stopOnce sync.Once
	stop = func() { stopOnce.Do(stop2) }
	defer stop()
	r.waitFor(sup, "the second life records", recording)
	mu.Lock()
	if probesAtStart != 1 {
		t.Errorf("the second life's ffmpeg started after %d probes, want 1 (the first life's: no probe before it)", probesAtStart)
	}
	t.Logf("second life: ffmpeg's start to its first progress block %v", recordingAt.Sub(startedAt))
	mu.Unlock()
	if c := r.calls("ffmpeg"); len(c) != 2 || !strings.Contains(c[1], strings.Join(tightArgs, " ")+" -i ") {
		t.Errorf("the second life's ffmpeg: %q, want it started with %v (a known stream)", c, tightArgs)
	}
	again := r.put(store, "the background probe", func(p Probe) bool { return p.ProbedAt.After(first.ProbedAt) && p.Stream != "" })
	if again.Decision != "copy" || len(r.calls("ffprobe")) != 2 {
		t.Errorf("background probe kept %+v after %d probes; want copy, 2", again, len(r.calls("ffprobe")))
	}
	if st, _ := sup.Status(r.cam.CameraName); st.State != Recording || st.Mode != "copy" || st.LastExit != nil {
		t.Errorf("after the background probe: %+v, want the same run recording in copy", st)
	}
	// Once a life: the camera's later runs (a restart after a stall, a
	// camera back from a reboot) do not probe again.
	c, err := sup.Camera(r.cam.CameraName)
	if err != nil {
		t.Fatal(err)
	}
	stop() // the run's background ended, its outcome applied
	if c.reprobe {
		t.Error("after the background probe the camera would probe again at its next run")
	}
}

// TestChangedStreamIsRecordedAnewAtASegmentBoundary: the decision kept
// from before says transcode (the camera sent another size then); it now
// sends what is configured. The restarted daemon records at once on the
// kept decision, its background probe finds the stream changed, and the
// run ends just before a segment boundary (its last segment nearly whole,
// not a fragment) for a run that copies.
func TestChangedStreamIsRecordedAnewAtASegmentBoundary(t *testing.T) {
	r := newProbeRig(t, "")
	store := newMemProbes()
	store.rows[r.cam.CameraName] = Probe{Key: probeKey(r.cam), Decision: "transcode", Stream: "h264 1280x720 25 fps", ProbedAt: time.Now().Add(-time.Hour)}
	exits := make(chan Event, 10)
	sup, stop := r.run(store, func(ev Event) {
		if ev.Kind == EventExited {
			exits <- ev
		}
	})
	defer stop()
	r.waitFor(sup, "recording on the kept decision", func(s Status) bool { return s.State == Recording && s.Mode == "transcode" })
	var ended Event
	select {
	case ended = <-exits:
	case <-time.After(60 * time.Second):
		t.Fatalf("the run on the old decision did not end\n%s", r.logs.String())
	}
	if ended.Exit.Reason != ReasonReconfigured || ended.Exit.Message != errReprobed.Error() {
		t.Fatalf("the run ended %+v, want reconfigured: %v", ended.Exit, errReprobed)
	}
	r.waitFor(sup, "recording anew in copy", func(s Status) bool { return s.State == Recording && s.Mode == "copy" })
	if n := len(r.calls("ffprobe")); n != 1 {
		t.Errorf("%d probes, want 1 (the background one)", n)
	}

	// The list of the ended run: its last segment is nearly whole.
	run := staging.Run{Dir: layout.FeedStagingDir(filepath.Join(r.dir, "rec"), r.cam.CameraName, ""), ID: ended.RunID}
	f, err := os.Open(run.ListPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("segment list: %v %v", rows, err)
	}
	t.Logf("the ended run's segments: %v", rows)
	last := rows[len(rows)-1]
	start, err1 := strconv.ParseFloat(last[1], 64)
	end, err2 := strconv.ParseFloat(last[2], 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if d := end - start; d < r.cam.VideoDuration-1 || d > r.cam.VideoDuration+0.5 {
		t.Errorf("the ended run's last segment is %.2f s (segments %v), want nearly %v s: cut at a boundary", d, rows, r.cam.VideoDuration)
	}
}

// TestTightStartThatFailsProbesInFull: a camera whose session
// description lacks the stream's parameters makes an ffmpeg started on
// the first packet fail before it records (here a wrapper fails any start
// with tight probing, as ffmpeg does then: a named stand-in, the camera's
// description cannot be changed). The next run probes in full and
// records, and that is kept for the next start.
func TestTightStartThatFailsProbesInFull(t *testing.T) {
	prelude := "case \"$*\" in *'" + strings.Join(tightArgs, " ") + "'*) echo '[rtsp @ 0x1] Could not find codec parameters for stream 0 (Video: h264, none): unspecified size' >&2; exit 1;; esac\n"
	r := newProbeRig(t, prelude)
	store := newMemProbes()
	store.rows[r.cam.CameraName] = Probe{Key: probeKey(r.cam), Decision: "copy", Codec: "h264", ProbedAt: time.Now().Add(-time.Hour)}
	sup, stop := r.run(store, nil)
	defer stop()
	r.waitFor(sup, "recording", recording)
	c := r.calls("ffmpeg")
	if len(c) != 2 || !strings.Contains(c[0], "-probesize") || strings.Contains(c[1], "-probesize") {
		t.Errorf("ffmpeg starts %q: want a tight one, then one probing in full", c)
	}
	if p := r.put(store, "loose", func(p Probe) bool { return p.Loose }); p.Key != probeKey(r.cam) {
		t.Errorf("kept %+v", p)
	}
	if !slices.ContainsFunc(strings.Split(r.logs.String(), "\n"), func(l string) bool { return strings.Contains(l, "probes the stream in full from now on") }) {
		t.Errorf("no log line says why\n%s", r.logs.String())
	}
}

// TestTightStartOnACameraWithAudio: most cameras send audio beside the
// video. ffmpeg started with tight probing reads one packet, often the
// audio's, and then has no size for the video ("dimensions not set": a
// copy cannot start). A restarted daemon must still record such a camera
// on its first ffmpeg start, with tight probing: the start must not fail
// (a hole of a failed start, a backoff and a full probe) and the camera
// must not be marked loose for good (review5; fails without
// -allowed_media_types video in tightArgs).
func TestTightStartOnACameraWithAudio(t *testing.T) {
	av := "( videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=25/1 ! x264enc tune=zerolatency key-int-max=25 ! " +
		"rtph264pay name=pay0 pt=96 audiotestsrc is-live=true ! audio/x-raw,rate=8000 ! alawenc ! rtppcmapay name=pay1 pt=8 )"
	r := newProbeRigOn(t, "", fixture.CameraOptions{Launches: map[string]string{"/cam1": av}})
	store := newMemProbes()
	store.rows[r.cam.CameraName] = Probe{Key: probeKey(r.cam), Decision: "copy", Codec: "h264", ProbedAt: time.Now().Add(-time.Hour)}
	sup, stop := r.run(store, nil)
	defer stop()
	r.waitFor(sup, "recording", recording)
	c := r.calls("ffmpeg")
	if len(c) != 1 || !strings.Contains(c[0], strings.Join(tightArgs, " ")) {
		t.Errorf("ffmpeg starts %q: want one, with tight probing\n%s", c, r.logs.String())
	}
	if p := r.put(store, "the recording run's probe", func(Probe) bool { return true }); p.Loose {
		t.Errorf("kept %+v: loose, the camera probes in full from now on", p)
	}
}
