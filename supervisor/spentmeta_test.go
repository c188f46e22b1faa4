package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/fakeclock"
	"github.com/cctvd/cctvd/internal/loginbudget"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/staging"
)

// TestSpentBudgetInsideARunLeavesNoLiveMeta: the budget is checked before
// a run, but it can be spent by the time the run takes its logins (another
// camera at the address, or discovery, took the last one in between). The
// run then ends unreported; it used to leave its metadata behind, owned by
// this daemon, with no pid and not exited, so staging.Meta.Ended stayed
// false and the segmenter never cleaned the run up. Each mode takes its
// logins at a different point (copy: ffmpeg's; auto: the probe's first).
func TestSpentBudgetInsideARunLeavesNoLiveMeta(t *testing.T) {
	for _, tt := range []struct {
		name, mode string
		refuse     bool // the probe's login is refused (the budget has room)
	}{{"copy", config.ModeCopy, false}, {"auto", config.ModeAuto, false}, {"transcode", config.ModeTranscode, false},
		{"auto, the probe refused", config.ModeAuto, true}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// A stand-in ffprobe, refused by the camera as ffprobe says it.
			probe := filepath.Join(dir, "ffprobe")
			os.WriteFile(probe, []byte("#!/bin/sh\necho '[rtsp @ 0x5] method DESCRIBE failed: 401 Unauthorized' >&2\nexit 1\n"), 0o755)
			clock, _ := fakeclock.New(time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), 1000)
			logins := loginbudget.New(clock.Mono)
			cam := config.Camera{CameraName: "cam1", IPAddress: "127.0.0.1", UserName: "admin", Password: testPassword,
				FrameRate: 2, Resolution: "640x360", VideoDuration: 4, VideoFeedID: "xx", RTSPPort: 1, RTSPPath: "/cam",
				RTSPTransport: "tcp", Mode: tt.mode, MaxFailedLogins: 2}
			// A stand-in that must never run: the run ends before ffmpeg.
			sup := New(Config{SavePath: dir, Owner: "test", FFmpegPath: filepath.Join(dir, "no-ffmpeg"), ProbePath: probe,
				StallTimeout: time.Hour, StopTimeout: 2 * time.Second}, []config.Camera{cam}, nil,
				Deps{Log: zerolog.New(&testenv.Buffer{}), Now: clock.Now, Mono: clock.Mono, After: clock.After, Logins: logins})
			c, err := sup.Camera("cam1")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.refuse {
				// Two other logins at the address are in flight, counted as
				// if they would fail: with a budget of two, this run's may
				// not go.
				for _, user := range []string{"other", "another"} {
					other, err := logins.Take(loginbudget.Host("127.0.0.1"), loginbudget.Key(user, "pw"), loginbudget.Limit{Max: 2, Window: time.Hour})
					if err != nil {
						t.Fatal(err)
					}
					defer other.Release()
				}
			}
			exit, se := c.runOnce(context.Background())
			switch {
			case tt.refuse && (se != nil || exit.Reason != ReasonAuth):
				t.Fatalf("the refused probe ended the run with %+v, %v; want an auth exit", exit, se)
			case !tt.refuse && se == nil:
				t.Fatalf("the run went ahead with the budget spent: %+v", exit)
			}
			entries, _ := os.ReadDir(c.dir)
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".json") {
					continue
				}
				m, err := staging.ReadMeta(filepath.Join(c.dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if !m.Ended("test") {
					t.Errorf("the run's metadata %s is left not ended (%+v): the segmenter never cleans it up", e.Name(), m)
				}
			}
		})
	}
}
