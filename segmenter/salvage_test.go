//go:build integration

package segmenter

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

// TestSalvagesWhatAnEarlierDaemonLeft builds a staging folder as a crashed
// daemon leaves it and checks that everything of value comes out named,
// and nothing is deleted that holds footage.
func TestSalvagesWhatAnEarlierDaemonLeft(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := layout.StagingDir(savePath, "cam1")
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
	if _, err := os.Stat(filepath.Join(savePath, layout.QuarantineName, "cam1", "20260107T000600-000000000_00000.mp4")); err != nil {
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
	dir := layout.StagingDir(savePath, "cam1")
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
	s := New(Config{SavePath: savePath, Owner: "me", Rescan: time.Hour, Retry: 50 * time.Millisecond, OrphanKill: 300 * time.Millisecond},
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

// TestOwnRunWhoseFFmpegIsGoneEnds: this daemon's run whose ffmpeg exited
// without its exit being recorded (the supervisor could not write the
// metadata: a full or failing disk) is ended all the same: its listed
// segment is moved, not held in staging until a restart.
func TestOwnRunWhoseFFmpegIsGoneEnds(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := layout.StagingDir(savePath, "cam1")
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
