package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/fakeclock"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
)

// waitFile waits for a file the stand-ins write (they run as processes of
// their own: a file is what they can tell the test).
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 30 s", filepath.Base(path))
		}
	}
}

// TestStallTimeoutCountsFromFFmpegsStart: in mode auto the stream is
// probed before ffmpeg starts, which can take seconds on a loaded box.
// The stall watchdog counts from ffmpeg's start, not the probe's: a slow
// probe must not make a healthy camera "stall" before its first frame
// (the continuity drill found every camera killed so at start-up and
// after a restart, recording 10 to 70 s late).
func TestStallTimeoutCountsFromFFmpegsStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script"), []byte("held"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := standIn(t, dir)
	// The stand-in ffprobe: says it is probing, waits to be let go, fails
	// (the run then transcodes).
	probe := filepath.Join(dir, "fake-ffprobe")
	script := fmt.Sprintf("#!/bin/sh\n: > %[1]s/probing\nwhile [ ! -e %[1]s/probe-go ]; do sleep 0.01; done\nexit 1\n", dir)
	if err := os.WriteFile(probe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	clock, waits := fakeclock.New(time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), 1000)
	events := make(chan Event, 1000)
	const stall = 15 * time.Second
	cam := config.Camera{CameraName: "cam1", IPAddress: "127.0.0.1", FrameRate: 2, Resolution: "640x360", VideoDuration: 4,
		VideoFeedID: "xx", RTSPPort: 1, RTSPPath: "/cam", RTSPTransport: "tcp", Mode: config.ModeAuto}
	sup := New(Config{SavePath: dir, Owner: "test", FFmpegPath: fake, ProbePath: probe, StallTimeout: stall, StopTimeout: 2 * time.Second},
		[]config.Camera{cam}, nil, Deps{Log: zerolog.New(&testenv.Buffer{}), Redactor: redact.New(), Now: clock.Now, Mono: clock.Mono,
			After: clock.After, OnEvent: func(ev Event) { events <- ev }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() { cancel(); await.Recv(t, done, 30*time.Second, "supervisor stop") }()

	waitFile(t, filepath.Join(dir, "probing"))
	for len(waits) > 0 { // whatever waited before the probe
		<-waits
	}
	clock.Advance(2 * stall) // the probe takes twice the stall timeout
	os.WriteFile(filepath.Join(dir, "probe-go"), nil, 0o644)
	waitFile(t, filepath.Join(dir, "started")) // ffmpeg runs, no frame yet

	// The watchdog's first wait is the whole timeout, from now.
	if d := await.Recv(t, waits, 30*time.Second, "the watchdog's wait"); d < stall {
		t.Fatalf("the watchdog waits %v after ffmpeg's start, want the whole %v: it counted the probe", d, stall)
	}
	os.WriteFile(filepath.Join(dir, "frames-go"), nil, 0o644)
	for {
		ev := await.Recv(t, events, 30*time.Second, "the recording event")
		if ev.Kind == EventStalled {
			t.Fatal("a camera whose first frame came within the stall timeout of ffmpeg's start was stalled")
		}
		if ev.Kind == EventRecording {
			break
		}
	}
}
