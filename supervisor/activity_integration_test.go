//go:build integration

package supervisor

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
)

// With real ffmpeg: a camera recorded with the activity feed writes the
// same segments, frame for frame, as one without (copy and transcode), and
// the feed carries what it should: one small frame per keyframe when
// copying, two a second when transcoding, each a JPEG of the feed's size.
func TestActivityFeedLeavesTheRecordingAlone(t *testing.T) {
	testenv.RequireTools(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "loop.mp4")
	// 12 s of 640x360 at 25 fps, a keyframe every second (as many cameras).
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
		"-i", "testsrc2=size=640x360:rate=25:duration=12", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-bf", "0", "-pix_fmt", "yuv420p", src).CombinedOutput()
	if err != nil {
		t.Fatalf("make the source: %v\n%s", err, out)
	}
	off := false
	cam := func(name, mode string, activity bool) config.Camera {
		c := config.Camera{CameraName: name, StreamURL: "file://" + src, FrameRate: 5, Resolution: "640x360",
			VideoDuration: 2, VideoFeedID: "xx", Mode: mode, RTSPTransport: "tcp"}
		if !activity {
			c.Activity = &off
		}
		return c
	}
	cams := []config.Camera{cam("copyon", config.ModeCopy, true), cam("copyoff", config.ModeCopy, false),
		cam("tcon", config.ModeTranscode, true), cam("tcoff", config.ModeTranscode, false)}
	var mu sync.Mutex
	frames := map[string][]Frame{}
	save := filepath.Join(dir, "rec")
	logs := &testenv.Buffer{}
	sup := New(Config{SavePath: save, Owner: "test", StallTimeout: time.Minute, StopTimeout: 10 * time.Second}, cams, nil,
		Deps{Log: zerolog.New(logs), Redactor: redact.New(), Frames: func(f Frame) {
			mu.Lock()
			frames[f.Camera] = append(frames[f.Camera], f)
			mu.Unlock()
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer wcancel()
	for _, c := range cams { // 9 s of stream: four whole 2 s segments
		if err := sup.WaitFor(wctx, c.CameraName, func(s Status) bool { return s.Progress != nil && s.Progress.OutTime >= 9*time.Second }); err != nil {
			t.Fatalf("%s did not record 9 s: %v\n%s", c.CameraName, err, logs.String())
		}
	}
	cancel()
	<-done

	for _, pair := range [][2]string{{"copyon", "copyoff"}, {"tcon", "tcoff"}} {
		on, offc := segmentFrames(t, save, pair[0]), segmentFrames(t, save, pair[1])
		if len(on) < 4 || len(offc) < 4 {
			t.Fatalf("%s: segments %v and %v, want 4 whole ones each", pair, on, offc)
		}
		for i := range 4 {
			if on[i] != offc[i] || on[i] == 0 {
				t.Errorf("%s segment %d: %d frames with the activity feed, %d without", pair[0], i, on[i], offc[i])
			}
		}
		if pair[0] == "copyon" && on[0] != 50 {
			t.Errorf("copy segment of 2 s at 25 fps holds %d frames, want 50", on[0])
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(frames["copyoff"]) != 0 || len(frames["tcoff"]) != 0 {
		t.Errorf("cameras with activity off sent frames: %d, %d", len(frames["copyoff"]), len(frames["tcoff"]))
	}
	check := func(name string, wantStep time.Duration) {
		var pts []time.Duration
		ended := false
		for _, f := range frames[name] {
			if f.End {
				ended = true
				continue
			}
			pts = append(pts, f.PTS)
			img, err := jpeg.Decode(bytes.NewReader(f.JPEG))
			if err != nil || img.Bounds().Dx() != ActivityWidth || img.Bounds().Dy() != 90 {
				t.Fatalf("%s: frame at %v is not a 160x90 JPEG: %v", name, f.PTS, err)
			}
		}
		if !ended {
			t.Errorf("%s: the run's end never came", name)
		}
		if len(pts) < 9 {
			t.Fatalf("%s: %d frames in 9 s: %v", name, len(pts), pts)
		}
		for i := 1; i < len(pts); i++ {
			if d := pts[i] - pts[i-1]; (d - wantStep).Abs() > wantStep/4 {
				t.Errorf("%s: frames %v and %v are %v apart, want %v", name, pts[i-1], pts[i], d, wantStep)
			}
		}
		if !slices.Contains(pts, 2*time.Second) || !slices.Contains(pts, 4*time.Second) {
			t.Errorf("%s: no frame at the segment boundaries (2 s, 4 s): %v", name, pts)
		}
	}
	check("copyon", time.Second)            // the keyframes
	check("tcon", time.Second/ActivityRate) // sampled
	if strings.Contains(logs.String(), `"level":"warn"`) && strings.Contains(logs.String(), "deprecated") {
		t.Errorf("ffmpeg warns about the feed's pixel format:\n%s", logs.String())
	}
}

// segmentFrames counts the frames of each of a camera's segments in its
// staging folder, in order (ffprobe decodes them all).
func segmentFrames(t *testing.T, savePath, camera string) []int {
	t.Helper()
	dir := layout.StagingDir(savePath, camera)
	lists, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
	if len(lists) != 1 {
		t.Fatalf("%s: %d runs, want 1", camera, len(lists))
	}
	f, err := os.Open(lists[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, r := range rows {
		n, err := media.Frames(context.Background(), "ffprobe", filepath.Join(dir, r[0]), time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", r[0], err)
		}
		out = append(out, n)
	}
	return out
}
