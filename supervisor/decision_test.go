package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/fakeclock"
	"github.com/cctvd/cctvd/internal/loginbudget"
	"github.com/cctvd/cctvd/internal/testenv"
)

// TestAutoDecisionOutlivesAnUnreachableCamera: mode auto decides copy or
// transcode from a probe. A run that never recorded because the camera
// could not be reached (rebooting) keeps the decision, so the camera's
// next start needs no probe (about 1.5 s before ffmpeg on loopback); a
// run that reached the camera and still recorded nothing drops it (the
// stream may have changed), and the next start probes again.
func TestAutoDecisionOutlivesAnUnreachableCamera(t *testing.T) {
	for _, tt := range []struct {
		name, stderr string
		reason       ExitReason
		keep         bool
	}{
		{"unreachable", "[tcp @ 0x5] Connection to tcp://127.0.0.1:1?timeout=0 failed: Connection refused", ReasonUnreachable, true},
		{"exited", "[mp4 @ 0x5] Could not find tag for codec pcm_alaw in stream #1", ReasonExited, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ffmpeg := filepath.Join(dir, "ffmpeg") // a stand-in: says why, exits 1
			os.WriteFile(ffmpeg, []byte("#!/bin/sh\necho '"+tt.stderr+"' >&2\nexit 1\n"), 0o755)
			clock, _ := fakeclock.New(time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), 1000)
			cam := config.Camera{CameraName: "cam1", IPAddress: "127.0.0.1", FrameRate: 2, Resolution: "640x360", VideoDuration: 4,
				VideoFeedID: "xx", RTSPPort: 1, RTSPPath: "/cam", RTSPTransport: "tcp", Mode: config.ModeAuto}
			sup := New(Config{SavePath: dir, Owner: "test", FFmpegPath: ffmpeg, ProbePath: filepath.Join(dir, "no-ffprobe"),
				StallTimeout: time.Hour, StopTimeout: 2 * time.Second}, []config.Camera{cam}, nil,
				Deps{Log: zerolog.New(&testenv.Buffer{}), Now: clock.Now, Mono: clock.Mono, After: clock.After, Logins: loginbudget.New(clock.Mono)})
			c, err := sup.Camera("cam1")
			if err != nil {
				t.Fatal(err)
			}
			c.decision, c.codec = "copy", "h264" // an earlier probe's
			exit, se := c.runOnce(context.Background())
			if se != nil || exit.Reason != tt.reason {
				t.Fatalf("run: %+v, %v; want %s", exit, se, tt.reason)
			}
			if kept := c.decision == "copy"; kept != tt.keep {
				t.Errorf("after a run that ended %s: decision %q, want kept %v", tt.reason, c.decision, tt.keep)
			}
		})
	}
}

// TestDiskGoneDuringABackoffIsSaid: ffmpeg failed (as it does when the
// disk goes under it) and the camera waits to restart; the disk is then
// found gone and recording stops. The camera says its run ended for the
// disk (an exit with ReasonStorage), so the gap already open is the
// disk's, not an ffmpeg failure's.
func TestDiskGoneDuringABackoffIsSaid(t *testing.T) {
	h := start(t, "exit3", nil)
	h.nextWait() // in its backoff pause
	h.cancel(ErrStorageUnavailable)
	for {
		ev := h.event(EventExited)
		if ev.Exit != nil && ev.Exit.Reason == ReasonStorage {
			break
		}
	}
}
