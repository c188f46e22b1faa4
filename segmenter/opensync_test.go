package segmenter

import (
	"os"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// TestSyncRoundFlushesTheNewestSegmentOfLiveRuns: the sync loop holds, and
// flushes, exactly the segment each live run's ffmpeg is writing: not the
// closed ones, not those of a run that ended.
func TestSyncRoundFlushesTheNewestSegmentOfLiveRuns(t *testing.T) {
	savePath := t.TempDir()
	dir := layout.StagingDir(savePath, "cam1")
	os.MkdirAll(dir, 0o755)
	live := staging.Run{Dir: dir, ID: "20260106T120000-000000000"}
	ended := staging.Run{Dir: dir, ID: "20260106T110000-000000000"}
	staging.WriteMeta(live.MetaPath(), staging.Meta{RunID: live.ID, Camera: "cam1", FeedID: "f", Owner: "me", PID: liveFFmpeg(t, live.ID)})
	staging.WriteMeta(ended.MetaPath(), staging.Meta{RunID: ended.ID, Camera: "cam1", FeedID: "f", Owner: "me", Exited: true})
	for i := range 3 {
		write(t, live.SegmentPath(i), "frames")
	}
	write(t, ended.SegmentPath(0), "") // removed as empty
	s := New(Config{SavePath: savePath, Owner: "me"}, Deps{Log: zerolog.Nop()})
	s.processDir(dir)
	st := &syncState{files: map[string]*os.File{}, failed: map[string]bool{}}
	defer st.closeAll()
	s.syncRound(st)
	if len(st.files) != 1 || st.files[live.SegmentPath(2)] == nil || len(st.failed) != 0 {
		t.Fatalf("flushed %v (failed %v), want only %s", keys(st.files), st.failed, live.SegmentPath(2))
	}
	// ffmpeg opens the next segment: the loop moves on to it.
	write(t, live.SegmentPath(3), "frames")
	s.processDir(dir)
	s.syncRound(st)
	if len(st.files) != 1 || st.files[live.SegmentPath(3)] == nil {
		t.Fatalf("flushed %v, want only %s", keys(st.files), live.SegmentPath(3))
	}
	// The run ends: nothing is being written any more.
	staging.WriteMeta(live.MetaPath(), staging.Meta{RunID: live.ID, Camera: "cam1", FeedID: "f", Owner: "me", Exited: true})
	s.processDir(dir)
	s.syncRound(st)
	if len(st.files) != 0 {
		t.Errorf("still flushing %v after the run ended", keys(st.files))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
