//go:build integration

package segmenter

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

// TestTwoLiveRunsOfACamera: a reload's handover (package supervisor) has
// two ffmpegs of one camera write into its staging folder at once, each
// run its own files. Each run's segments are closed on its own list, and
// two segments named on the same seconds (the runs overlap) both keep
// their file: the second takes the "-1" suffix.
func TestTwoLiveRunsOfACamera(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := layout.StagingDir(savePath, "cam1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var got []segment.Segment
	s := New(Config{SavePath: savePath, Owner: "me"}, Deps{Log: zerolog.Nop(), OnSegment: func(sg segment.Segment) { got = append(got, sg) }})
	epoch := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	var runs []staging.Run
	for _, id := range []string{"20260106T120000-000000000", "20260106T120000-500000000"} {
		run := staging.Run{Dir: dir, ID: id}
		meta := staging.Meta{RunID: id, Camera: "cam1", FeedID: "f1", Owner: "me", PID: liveFFmpeg(t, id), Epoch: epoch, EpochSettled: true}
		if err := staging.WriteMeta(run.MetaPath(), meta); err != nil {
			t.Fatal(err)
		}
		makeClip(t, run.SegmentPath(0), 2)
		makeClip(t, run.SegmentPath(1), 1) // open: segment 0 is closed
		write(t, run.ListPath(), id+"_00000.mp4,0.000000,2.000000\n")
		runs = append(runs, run)
	}
	s.processDir(dir)

	var names, ofRuns []string
	for _, sg := range got {
		names = append(names, filepath.Base(sg.Path))
		ofRuns = append(ofRuns, sg.Run)
		if _, err := os.Stat(sg.Path); err != nil {
			t.Errorf("segment of run %s: %v", sg.Run, err)
		}
	}
	want := []string{"cam1_f1_20260106T120000Z_20260106T120002Z.mp4", "cam1_f1_20260106T120000Z_20260106T120002Z-1.mp4"}
	if !slices.Equal(names, want) || !slices.Equal(ofRuns, []string{runs[0].ID, runs[1].ID}) {
		t.Errorf("segments %q of runs %q, want %q, one of each run", names, ofRuns, want)
	}
	for _, run := range runs { // each run's open segment stays where its ffmpeg writes it
		if _, err := os.Stat(run.SegmentPath(1)); err != nil {
			t.Errorf("run %s's open segment: %v", run.ID, err)
		}
	}
}
