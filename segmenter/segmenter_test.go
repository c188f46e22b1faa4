package segmenter

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []row
		wantErr bool
	}{
		{"ffmpeg rows", "R_00000.mp4,0.000000,6.000000\nR_00001.mp4,6.000000,12.000000\n",
			[]row{{"R_00000.mp4", 0, 0, 6}, {"R_00001.mp4", 1, 6, 12}}, false},
		{"empty", "", nil, false},
		{"not a segment", "notes.txt,0,1\n", nil, true},
		{"end before start", "R_00000.mp4,5,1\n", nil, true},
		{"two fields", "R_00000.mp4,5\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseList([]byte(tt.in))
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("parseList = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestWallTimes(t *testing.T) {
	epoch := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	mtime := time.Date(2026, 1, 6, 13, 0, 0, 0, time.UTC)
	s, e := wallTimes(staging.Meta{Epoch: epoch}, 6, 12, mtime)
	if !s.Equal(epoch.Add(6*time.Second)) || !e.Equal(epoch.Add(12*time.Second)) {
		t.Errorf("with epoch: %v - %v", s, e)
	}
	s, e = wallTimes(staging.Meta{}, 6, 12, mtime)
	if !e.Equal(mtime) || !s.Equal(mtime.Add(-6*time.Second)) {
		t.Errorf("without epoch: %v - %v, want it to end at the mtime", s, e)
	}
}

// makeClip records seconds of a test pattern as ffmpeg's segment muxer
// writes it (fragmented MP4).
func makeClip(t *testing.T, path string, seconds int) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=5", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-pix_fmt", "yuv420p",
		"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
}

// TestSalvagesWhatAnEarlierDaemonLeft builds a staging folder as a crashed
// daemon leaves it and checks that everything of value comes out named,
// and nothing is deleted that holds footage.
func TestSalvagesWhatAnEarlierDaemonLeft(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := staging.CameraDir(savePath, "cam1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2026, 1, 6, 23, 59, 50, 0, time.UTC)

	// Run A: segment 0 listed but not moved yet; segment 1 open when the
	// power went (a truncated fragmented MP4); segment 2 opened, no frames.
	a := staging.Run{Dir: dir, ID: "20260106T235950-000000000"}
	makeClip(t, a.SegmentPath(0), 6)
	makeClip(t, a.SegmentPath(1), 4)
	truncate(t, a.SegmentPath(1), 0.8)
	headerOnly(t, a.SegmentPath(2))
	write(t, a.ListPath(), a.ID+"_00000.mp4,0.000000,6.000000\n")
	if err := staging.WriteMeta(a.MetaPath(), staging.Meta{RunID: a.ID, Camera: "cam1", FeedID: "f1", Owner: "old-daemon", PID: 999999, Epoch: epoch}); err != nil {
		t.Fatal(err)
	}
	// Run B: no metadata, no list, one segment; and junk.
	b := staging.Run{Dir: dir, ID: "20260107T000500-000000000"}
	makeClip(t, b.SegmentPath(0), 3)
	mtime := time.Date(2026, 1, 7, 0, 5, 3, 0, time.UTC)
	if err := os.Chtimes(b.SegmentPath(0), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "20260107T000600-000000000_00000.mp4"), "not a video at all")
	write(t, filepath.Join(dir, "20260107T000700-000000000_00000.mp4"), "")

	got := runSegmenterOnce(t, Config{SavePath: savePath, Owner: "new-daemon", FeedIDs: map[string]string{"cam1": "f9"}})

	if len(got) != 3 {
		t.Fatalf("got %d segments, want 3: %+v", len(got), got)
	}
	// The truncated segment keeps whole fragments only: about 3 of 4
	// seconds. It starts where the listed segment 0 ended.
	salvaged := got[1]
	if d := salvaged.Duration(); d < 2*time.Second || d > 4*time.Second || !salvaged.Salvaged || !salvaged.Start.Equal(epoch.Add(6*time.Second)) {
		t.Errorf("salvaged segment: %v to %v, salvaged=%v", salvaged.Start, salvaged.End, salvaged.Salvaged)
	}
	want := []string{
		// Listed: named from the list and the run's epoch.
		"cam1/2026-01-06/cam1_f1_20260106T235950Z_20260106T235956Z.mp4",
		// Salvaged: as long as ffprobe says; the folder is its start's day.
		"cam1/2026-01-06/" + segment.Name("cam1", "f1", salvaged.Start, salvaged.End, 0),
		// No metadata: ends at its mtime; the feed id comes from the config.
		"cam1/2026-01-07/cam1_f9_20260107T000500Z_20260107T000503Z.mp4",
	}
	var names []string
	for _, s := range got {
		rel, _ := filepath.Rel(savePath, s.Path)
		names = append(names, rel)
		testenv.ProbeFile(t, s.Path)
	}
	if !slices.Equal(names, want) {
		t.Errorf("segments:\n got %q\nwant %q", names, want)
	}
	// The junk is quarantined, not deleted; the empty and frameless files
	// and the runs' bookkeeping are gone; staging is empty.
	if _, err := os.Stat(filepath.Join(savePath, QuarantineDir, "cam1", "20260107T000600-000000000_00000.mp4")); err != nil {
		t.Errorf("junk not quarantined: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("staging still holds %v", entries)
	}
}

// TestWaitsForAnOrphanFFmpegThenKillsIt: a daemon killed with -9 leaves its
// ffmpeg finishing (or hung); its files are salvaged only once it is gone.
func TestWaitsForAnOrphanFFmpegThenKillsIt(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := staging.CameraDir(savePath, "cam1")
	os.MkdirAll(dir, 0o755)
	run := staging.Run{Dir: dir, ID: "20260106T120000-000000000"}
	makeClip(t, run.SegmentPath(0), 2)
	// A stand-in for the orphan: a process whose command line names the run.
	orphan := exec.Command("sh", "-c", "sleep 600", run.ID)
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { orphan.Wait(); close(exited) }()
	staging.WriteMeta(run.MetaPath(), staging.Meta{RunID: run.ID, Camera: "cam1", FeedID: "f", Owner: "dead-daemon", PID: orphan.Process.Pid,
		Epoch: time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)})

	segs := make(chan segment.Segment, 10)
	s := New(Config{SavePath: savePath, Owner: "me", Rescan: 50 * time.Millisecond, OrphanKill: 300 * time.Millisecond},
		Deps{Log: zerolog.Nop(), OnSegment: func(sg segment.Segment) { segs <- sg }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); await.Recv(t, done, 30*time.Second, "segmenter stop") }()

	select {
	case sg := <-segs:
		t.Fatalf("salvaged %s while its ffmpeg still ran", sg.Path)
	case <-exited: // killed by the segmenter after OrphanKill
	case <-time.After(10 * time.Second):
		t.Fatal("orphan not killed")
	}
	select {
	case sg := <-segs:
		if !strings.HasSuffix(sg.Path, "cam1_f_20260106T120000Z_20260106T120002Z.mp4") || !sg.Salvaged {
			t.Errorf("salvaged %+v", sg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing salvaged after the orphan died")
	}
}

// runSegmenterOnce runs a segmenter through its start-up pass and returns
// the segments it reported.
func runSegmenterOnce(t *testing.T, cfg Config) []segment.Segment {
	t.Helper()
	var got []segment.Segment
	s := New(cfg, Deps{Log: zerolog.Nop(), OnSegment: func(sg segment.Segment) { got = append(got, sg) }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run makes its start-up pass and a last pass, then returns
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return got
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, keep float64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(fi.Size())*keep)); err != nil {
		t.Fatal(err)
	}
}

// headerOnly writes what ffmpeg leaves when it dies right after opening a
// segment: a valid fragmented-MP4 header and no fragment.
func headerOnly(t *testing.T, path string) {
	t.Helper()
	makeClip(t, path, 1)
	data, _ := os.ReadFile(path)
	i := strings.Index(string(data), "moof")
	if i < 4 {
		t.Fatal("no moof box in the clip")
	}
	write(t, path, string(data[:i-4]))
}

func TestMeaningfulEvents(t *testing.T) {
	tests := []struct {
		name string
		op   fsnotify.Op
		want bool
	}{
		{"R_00001.mp4", fsnotify.Create, true}, // the next segment opened
		{"R_00001.mp4", fsnotify.Write, false}, // ffmpeg writing the open segment
		{"R.csv", fsnotify.Write, true},        // a segment listed
		{"R.json", fsnotify.Create, true},      // metadata renamed into place
		{"R.json.tmp", fsnotify.Write, false},  // metadata being written
		{"R.json.tmp", fsnotify.Create, false},
		{"R_00000.mp4", fsnotify.Remove, true},
		{"notes.txt", fsnotify.Create, false},
	}
	for _, tt := range tests {
		if got := meaningful(fsnotify.Event{Name: "/s/.staging/cam/" + tt.name, Op: tt.op}); got != tt.want {
			t.Errorf("%s %v: %v, want %v", tt.name, tt.op, got, tt.want)
		}
	}
}

// TestOwnRunWhoseFFmpegIsGoneEnds: this daemon's run whose ffmpeg exited
// without its exit being recorded (the supervisor could not write the
// metadata: a full or failing disk) is ended all the same: its listed
// segment is moved, not held in staging until a restart.
func TestOwnRunWhoseFFmpegIsGoneEnds(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := staging.CameraDir(savePath, "cam1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	run := staging.Run{Dir: dir, ID: "20260106T120000-000000000"}
	makeClip(t, run.SegmentPath(0), 3)
	write(t, run.ListPath(), run.ID+"_00000.mp4,0.000000,3.000000\n")
	if err := staging.WriteMeta(run.MetaPath(), staging.Meta{RunID: run.ID, Camera: "cam1", FeedID: "f1", Owner: "me",
		PID: gone.Process.Pid, Epoch: epoch}); err != nil {
		t.Fatal(err)
	}
	got := runSegmenterOnce(t, Config{SavePath: savePath, Owner: "me"})
	if len(got) != 1 || filepath.Base(got[0].Path) != "cam1_f1_20260106T120000Z_20260106T120003Z.mp4" {
		t.Fatalf("segments %+v: want the listed segment moved", got)
	}
}
