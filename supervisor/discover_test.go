package supervisor

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/discovery"
	"github.com/cctvd/cctvd/internal/fakeclock"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
)

// scriptedFinder is a fake StreamFinder for the state machine: it answers
// from a script, one entry per call (the last repeats), and counts calls.
// Real discovery against the stand-in ONVIF device and the real camera is
// tested in package discovery and in cmd/cctvd.
type scriptedFinder struct {
	mu      sync.Mutex
	script  []func(ctx context.Context) (Stream, error)
	calls   int
	entered chan struct{}
}

func (f *scriptedFinder) FindStream(ctx context.Context, cam config.Camera, _ zerolog.Logger) (Stream, error) {
	f.mu.Lock()
	step := f.script[min(f.calls, len(f.script)-1)]
	f.calls++
	f.mu.Unlock()
	if f.entered != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
	}
	if cam.RTSPPath != "" || cam.StreamURL != "" {
		return Stream{}, fmt.Errorf("FindStream called for a camera with a path (%q, %q)", cam.RTSPPath, cam.StreamURL)
	}
	return step(ctx)
}

func (f *scriptedFinder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func found(uri, source string) func(context.Context) (Stream, error) {
	return func(context.Context) (Stream, error) { return Stream{URI: uri, Source: source}, nil }
}

func failing(err error) func(context.Context) (Stream, error) {
	return func(context.Context) (Stream, error) { return Stream{}, err }
}

// memStore is an in-memory StreamStore (a fake of the catalog's table,
// which catalog's own tests cover).
type memStore struct {
	mu sync.Mutex
	m  map[string]Stream
}

func (s *memStore) Get(_ context.Context, camera string) (Stream, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[camera]
	return st, ok, nil
}

func (s *memStore) Put(_ context.Context, camera string, st Stream) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[camera] = st
	return nil
}

func (s *memStore) get(camera string) Stream {
	st, _, _ := s.Get(context.Background(), camera)
	return st
}

// discoveryCamera is the design note's kind of camera: no path.
var discoveryCamera = config.Camera{CameraName: "cam1", IPAddress: "127.0.0.1", UserName: "admin", Password: testPassword,
	FrameRate: 2, Resolution: "640x360", VideoDuration: 4, VideoFeedID: "xx", RTSPPort: 1, ONVIFPort: 2,
	Discovery: config.DiscoveryAuto, RTSPTransport: "tcp", Mode: config.ModeTranscode}

// startDiscovering is start for a camera without a path, with a finder and
// a store.
func startDiscovering(t *testing.T, modes string, finder StreamFinder, store StreamStore) *harness {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte(modes), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := standIn(t, dir)
	clock, waits := fakeclock.New(time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), 1000)
	h := &harness{t: t, clock: clock, waits: waits, events: make(chan Event, 1000), logs: &testenv.Buffer{}, dir: dir, done: make(chan error, 1)}
	cfg := Config{SavePath: dir, Owner: "test", FFmpegPath: fake, StallTimeout: time.Hour, StopTimeout: 2 * time.Second}
	h.sup = New(cfg, []config.Camera{discoveryCamera}, nil, Deps{
		Log:      zerolog.New(redact.NewWriter(redact.New(testPassword), h.logs)),
		Redactor: redact.New(testPassword),
		Now:      clock.Now,
		After:    clock.After,
		OnEvent:  func(ev Event) { h.events <- ev },
		Finder:   finder,
		Streams:  store,
	})
	h.cam, _ = h.sup.Camera("cam1")
	ctx, cancel := context.WithCancelCause(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.sup.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func ffmpegStarts(h *harness) int {
	b, err := os.ReadFile(filepath.Join(h.dir, "script.count"))
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(strings.TrimSpace(string(b)), &n)
	return n
}

func TestDiscoveredStreamIsRecordedAndRemembered(t *testing.T) {
	finder := &scriptedFinder{script: []func(context.Context) (Stream, error){found("rtsp://127.0.0.1:1/Streaming/Channels/101", "known path /Streaming/Channels/101")}}
	store := &memStore{m: map[string]Stream{}}
	h := startDiscovering(t, "record", finder, store)
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == Recording }); err != nil {
		t.Fatalf("not recording: %+v", h.cam.Status())
	}
	st := h.cam.Status()
	if st.Source != "known path /Streaming/Channels/101" || st.StreamURL != "rtsp://admin:***@127.0.0.1:1/Streaming/Channels/101" || st.DiscoveryError != "" {
		t.Errorf("status source %q, url %q, discovery error %q", st.Source, st.StreamURL, st.DiscoveryError)
	}
	if !strings.Contains(h.logs.String(), `"url":"rtsp://admin:***@127.0.0.1:1/Streaming/Channels/101"`) {
		t.Errorf("ffmpeg was not started on the found stream:\n%s", h.logs.String())
	}
	saved := store.get("cam1")
	if saved.URI != "rtsp://127.0.0.1:1/Streaming/Channels/101" || saved.Key != streamKey(discoveryCamera) || saved.FoundAt.IsZero() {
		t.Errorf("stored %+v", saved)
	}
	h.stop()

	// The next start records the remembered stream without discovering.
	h2 := startDiscovering(t, "record", finder, store)
	if err := h2.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == Recording }); err != nil {
		t.Fatalf("not recording after restart: %+v", h2.cam.Status())
	}
	if finder.count() != 1 || h2.cam.Status().Source != "known path /Streaming/Channels/101" {
		t.Errorf("finder called %d times (want 1), source %q", finder.count(), h2.cam.Status().Source)
	}
	assertNoSecret(t, h.logs.String()+h2.logs.String())
}

// The camera refuses the remembered stream (401): the next run finds the
// stream again and remembers the new one.
func TestRefusedStreamIsFoundAgain(t *testing.T) {
	finder := &scriptedFinder{script: []func(context.Context) (Stream, error){found("rtsp://127.0.0.1:1/new", `onvif profile "mainStream"`)}}
	store := &memStore{m: map[string]Stream{"cam1": {Key: streamKey(discoveryCamera), URI: "rtsp://127.0.0.1:1/old", Source: "known path /old"}}}
	h := startDiscovering(t, "auth,record", finder, store)
	h.pauses(1)
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == Recording }); err != nil {
		t.Fatalf("not recording: %+v", h.cam.Status())
	}
	if finder.count() != 1 || store.get("cam1").URI != "rtsp://127.0.0.1:1/new" || h.cam.Status().Source != `onvif profile "mainStream"` {
		t.Errorf("finder calls %d, stored %+v, status %+v", finder.count(), store.get("cam1"), h.cam.Status())
	}
	if !strings.Contains(h.logs.String(), "recording the stream found before") || !strings.Contains(h.logs.String(), "will be discovered again") {
		t.Errorf("logs:\n%s", h.logs.String())
	}
}

// A stream remembered for another address (the camera was re-addressed in
// the config) is not used.
func TestChangedAddressIsDiscoveredAgain(t *testing.T) {
	old := discoveryCamera
	old.IPAddress = "127.0.0.9"
	finder := &scriptedFinder{script: []func(context.Context) (Stream, error){found("rtsp://127.0.0.1:1/cam", "known path /cam")}}
	store := &memStore{m: map[string]Stream{"cam1": {Key: streamKey(old), URI: "rtsp://127.0.0.9:1/cam", Source: "known path /cam"}}}
	h := startDiscovering(t, "record", finder, store)
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == Recording }); err != nil {
		t.Fatalf("not recording: %+v", h.cam.Status())
	}
	if finder.count() != 1 || store.get("cam1").URI != "rtsp://127.0.0.1:1/cam" {
		t.Errorf("finder calls %d, stored %+v", finder.count(), store.get("cam1"))
	}
}

// A refused password found by discovery: an auth error at the first
// attempt, then five minutes between attempts (each may fail two logins,
// and cameras lock out addresses that keep failing), ffmpeg never started.
func TestDiscoveryAuthErrorWaitsLong(t *testing.T) {
	finder := &scriptedFinder{script: []func(context.Context) (Stream, error){
		failing(fmt.Errorf("rtsp /Streaming/Channels/101: RTSP 401 after a digest answer: %w", discovery.ErrAuth))}}
	h := startDiscovering(t, "record", finder, &memStore{m: map[string]Stream{}})
	ev := h.event(EventExited)
	if ev.Exit.Reason != ReasonAuth || finder.count() != 1 {
		t.Fatalf("first exit %+v after %d discoveries, want auth after one", ev.Exit, finder.count())
	}
	for i, d := range h.pauses(3) {
		if d != 5*time.Minute {
			t.Errorf("pause %d = %v, want 5m", i, d)
		}
	}
	st := h.cam.Status()
	if st.State != Backoff && st.State != Discovering {
		t.Errorf("state %s", st.State)
	}
	if !strings.Contains(st.DiscoveryError, "refused the user name or password") || st.LastError != st.DiscoveryError || st.LastExit.Reason != ReasonAuth {
		t.Errorf("status %+v", st)
	}
	if n := ffmpegStarts(h); n != 0 {
		t.Errorf("ffmpeg started %d times without a stream", n)
	}
	// A start through the API tries at once, without waiting the pause.
	n := finder.count()
	h.sup.Start("cam1")
	if err := h.cam.WaitFor(ctxT(t), func(Status) bool { return finder.count() > n }); err != nil {
		t.Errorf("a start did not try again: %d discoveries", finder.count())
	}
}

// Nothing found backs off long too; an unreachable camera only briefly.
func TestDiscoveryNotFoundAndUnreachable(t *testing.T) {
	for _, tt := range []struct {
		err    error
		reason ExitReason
		cap    time.Duration
	}{
		{fmt.Errorf("none of the 20 known paths answered with video on port 554: %w", discovery.ErrNotFound), ReasonNotFound, 60 * time.Second},
		{fmt.Errorf("rtsp /Streaming/Channels/101: connection refused: %w", discovery.ErrUnreachable), ReasonUnreachable, 10 * time.Second},
	} {
		t.Run(string(tt.reason), func(t *testing.T) {
			finder := &scriptedFinder{script: []func(context.Context) (Stream, error){failing(tt.err)}}
			h := startDiscovering(t, "record", finder, nil)
			got := h.pauses(8)
			if last := got[len(got)-1]; !within(last, tt.cap) {
				t.Errorf("pauses %v, want them to reach %v", got, tt.cap)
			}
			st := h.cam.Status()
			if st.LastExit == nil || st.LastExit.Reason != tt.reason || !strings.Contains(st.DiscoveryError, tt.err.Error()) {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// A stop while the stream is being looked for ends the search at once.
func TestStopWhileDiscovering(t *testing.T) {
	finder := &scriptedFinder{entered: make(chan struct{}, 1), script: []func(context.Context) (Stream, error){
		func(ctx context.Context) (Stream, error) { <-ctx.Done(); return Stream{}, ctx.Err() }}}
	h := startDiscovering(t, "record", finder, nil)
	select {
	case <-finder.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("discovery never started")
	}
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == Discovering }); err != nil {
		t.Fatalf("state %+v", h.cam.Status())
	}
	if err := h.sup.Stop(ctxT(t), "cam1"); err != nil {
		t.Fatal(err)
	}
	ev := h.event(EventExited)
	if ev.Exit.Reason != ReasonStopped || ev.Exit.Message != "stopped by operator" {
		t.Errorf("exit %+v", ev.Exit)
	}
	if st := h.cam.Status(); st.State != Stopped || st.DiscoveryError != "" {
		t.Errorf("status %+v", st)
	}
}

func mustStatus(s *Supervisor, name string) Status {
	st, _ := s.Status(name)
	return st
}

func closedTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// legacyStore is a memStore that says the camera was recorded before any
// stream was found for it (an upgrade from cctvd 0.1).
type legacyStore struct{ memStore }

func (s *legacyStore) RecordedBefore(context.Context, string) (bool, error) { return true, nil }

// A camera cctvd 0.1 recorded without rtspPath (at rtsp://ip:port/) keeps
// that stream after the upgrade, without discovery; when the camera refuses
// it, discovery runs.
func TestUpgradeKeepsTheStreamRecordedBefore(t *testing.T) {
	finder := &scriptedFinder{script: []func(context.Context) (Stream, error){found("rtsp://127.0.0.1:1/Streaming/Channels/101", "known path /Streaming/Channels/101")}}
	store := &legacyStore{memStore{m: map[string]Stream{}}}
	h := startDiscovering(t, "record", finder, store)
	if err := h.cam.WaitFor(ctxT(t), func(s Status) bool { return s.State == Recording }); err != nil {
		t.Fatalf("not recording: %+v", h.cam.Status())
	}
	if st := h.cam.Status(); st.Source != sourceBefore || st.StreamURL != "rtsp://admin:***@127.0.0.1:1/" || finder.count() != 0 {
		t.Fatalf("source %q, url %q, finder calls %d: want the stream recorded before, no discovery", st.Source, st.StreamURL, finder.count())
	}
	if saved := store.get("cam1"); saved.URI != "rtsp://127.0.0.1:1/" || saved.Key != streamKey(discoveryCamera) {
		t.Errorf("stored %+v", saved)
	}
}
