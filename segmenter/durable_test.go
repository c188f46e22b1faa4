//go:build integration

package segmenter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

// TestBoxes reads a segment's box structure: only a file ffmpeg wrote to
// its end (the trailer, mfra, last) is whole; any shorter prefix of it,
// even one cut at a box boundary, is not; a header alone holds no fragment.
func TestBoxes(t *testing.T) {
	testenv.RequireTools(t)
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.mp4")
	makeClip(t, whole, 3)
	data, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	mfra := strings.LastIndex(string(data), "mfra") - 4
	if mfra < 0 {
		t.Fatal("the clip has no mfra box")
	}
	all := strings.Count(string(data), "moof") // the clip: one fragment a second
	if all < 3 {
		t.Fatalf("the clip has %d fragments", all)
	}
	tests := []struct {
		name      string
		keep      int
		fragments int
		whole     bool
	}{
		{"whole", len(data), all, true},
		{"empty", 0, 0, false},
		{"a box header cut", 5, 0, false},
		{"header only", strings.Index(string(data), "moof") - 4, 0, false},
		{"every fragment, no trailer", mfra, all, false},
		{"trailer cut", len(data) - 3, all, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".mp4")
			write(t, p, string(data[:tt.keep]))
			if n, whole, err := boxes(p); err != nil || n != tt.fragments || whole != tt.whole {
				t.Errorf("boxes(%d of %d bytes) = %d fragments, whole %v, %v; want %d, %v", tt.keep, len(data), n, whole, err, tt.fragments, tt.whole)
			}
		})
	}
	// Cut inside a fragment: the fragments before it, not whole.
	p := filepath.Join(dir, "cut.mp4")
	write(t, p, string(data[:len(data)*6/10]))
	if n, whole, err := boxes(p); err != nil || whole || n < 1 || n >= all {
		t.Errorf("cut inside a fragment: %d fragments, whole %v, %v", n, whole, err)
	}
}

// TestListedButNotWholeIsSalvaged: after a power cut, a run left by the
// earlier daemon had listed segment 1 as closed, but only part of it
// reached the disk. It is named from what it holds (salvaged), never with
// the list's times, which are the whole segment's (and its S3 key); the
// whole segment 0 keeps the list's name.
func TestListedButNotWholeIsSalvaged(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := layout.StagingDir(savePath, "cam1")
	os.MkdirAll(dir, 0o755)
	epoch := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	run := staging.Run{Dir: dir, ID: "20260106T120000-000000000"}
	makeClip(t, run.SegmentPath(0), 4)
	makeClip(t, run.SegmentPath(1), 4)
	truncate(t, run.SegmentPath(1), 0.6)
	makeClip(t, run.SegmentPath(2), 4)
	truncate(t, run.SegmentPath(2), 0.5)
	write(t, run.ListPath(), run.ID+"_00000.mp4,0.000000,4.000000\n"+run.ID+"_00001.mp4,4.000000,8.000000\n")
	staging.WriteMeta(run.MetaPath(), staging.Meta{RunID: run.ID, Camera: "cam1", FeedID: "f1", Owner: "dead-daemon", Epoch: epoch})

	got := runSegmenterOnce(t, Config{SavePath: savePath, Owner: "new-daemon"})
	if len(got) != 3 {
		t.Fatalf("got %d segments, want 3: %+v", len(got), got)
	}
	if s := got[0]; s.Salvaged || !s.Start.Equal(epoch) || !s.End.Equal(epoch.Add(4*time.Second)) {
		t.Errorf("whole listed segment: %+v", s)
	}
	short := got[1]
	if !short.Salvaged || !short.Start.Equal(epoch.Add(4*time.Second)) || short.Duration() >= 3500*time.Millisecond || short.Duration() < time.Second {
		t.Errorf("listed segment cut short: %v to %v (%v), salvaged=%v; want salvaged, from 4 s, shorter than listed", short.Start, short.End, short.Duration(), short.Salvaged)
	}
	if name := filepath.Base(short.Path); name == segment.Name("cam1", "f1", epoch.Add(4*time.Second), epoch.Add(8*time.Second), 0) {
		t.Errorf("the short file took the whole segment's name %s", name)
	}
	if open := got[2]; !open.Salvaged || !open.Start.Equal(epoch.Add(8*time.Second)) {
		t.Errorf("open segment: %+v", open)
	}
	for _, s := range got {
		testenv.ProbeFile(t, s.Path)
	}
}

// TestNamesAvoidTheCatalogAndFollowTheEpoch: a live run closes a segment;
// the wall clock steps back an hour, so the supervisor moves the run's
// epoch; the next segment is named on the new clock, and since the catalog
// already holds that name and its "-1" (segments of an hour ago, uploaded
// and deleted), it gets "-2": its own row, its own S3 key.
func TestNamesAvoidTheCatalogAndFollowTheEpoch(t *testing.T) {
	testenv.RequireTools(t)
	ctx := context.Background()
	savePath := t.TempDir()
	cat, err := catalog.Open(ctx, layout.Catalog(layout.DefaultStateDir(savePath)), savePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	dir := layout.StagingDir(savePath, "cam1")
	os.MkdirAll(dir, 0o755)
	epoch := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	stepped := epoch.Add(-time.Hour)
	for seq := range 2 { // an hour ago: recorded, uploaded, deleted
		start := stepped.Add(4 * time.Second)
		p := filepath.Join(savePath, layout.DayRel("cam1", start), segment.Name("cam1", "f1", start, start.Add(4*time.Second), seq))
		r, err := cat.Add(ctx, segment.Segment{Camera: "cam1", FeedID: "f1", Start: start, End: start.Add(4 * time.Second), Path: p, Size: 10}, "k")
		if err != nil {
			t.Fatal(err)
		}
		cat.MarkUploaded(ctx, r.ID, "etag", "test")
		cat.MarkLocalDeleted(ctx, r.ID, catalog.CauseClearAfterUpload)
	}

	var got []segment.Segment
	s := New(Config{SavePath: savePath, Owner: "me"}, Deps{Log: zerolog.Nop(),
		OnSegment: func(sg segment.Segment) { got = append(got, sg) },
		NameTaken: func(rel string) bool {
			taken, err := cat.PathTaken(ctx, rel)
			if err != nil {
				t.Error(err)
			}
			return taken
		}})
	run := staging.Run{Dir: dir, ID: "20260106T120000-000000000"}
	meta := staging.Meta{RunID: run.ID, Camera: "cam1", FeedID: "f1", Owner: "me", PID: liveFFmpeg(t, run.ID), Epoch: epoch, EpochSettled: true}
	staging.WriteMeta(run.MetaPath(), meta)
	makeClip(t, run.SegmentPath(0), 4)
	makeClip(t, run.SegmentPath(1), 4)
	write(t, run.ListPath(), run.ID+"_00000.mp4,0.000000,4.000000\n")
	s.processDir(dir)

	meta.Epoch = stepped
	staging.WriteMeta(run.MetaPath(), meta)
	makeClip(t, run.SegmentPath(2), 1)
	f, _ := os.OpenFile(run.ListPath(), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(run.ID + "_00001.mp4,4.000000,8.000000\n")
	f.Close()
	s.processDir(dir)

	var names []string
	for _, sg := range got {
		names = append(names, filepath.Base(sg.Path))
	}
	want := []string{
		"cam1_f1_20260106T120000Z_20260106T120004Z.mp4",
		"cam1_f1_20260106T110004Z_20260106T110008Z-2.mp4",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	if !got[0].Epoch.Equal(epoch) || !got[1].Epoch.Equal(stepped) {
		t.Errorf("epochs %v, %v; want each segment's own", got[0].Epoch, got[1].Epoch)
	}
	if _, err := cat.Add(ctx, got[1], "k2"); err != nil {
		t.Errorf("the renamed segment cannot be recorded: %v", err)
	}
}

// TestLiveRunNamesNothingBeforeItsEpochSettles: ffmpeg's first progress
// block comes seconds late (it buffered the stream's frames while probing
// it), so the supervisor's first epoch is seconds late; a short first
// segment closed before the next block once got that late name, and the
// next segment, named on the corrected epoch, the same times and a "-1".
// The segment waits until the metadata says the epoch has settled.
func TestLiveRunNamesNothingBeforeItsEpochSettles(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := layout.StagingDir(savePath, "cam1")
	os.MkdirAll(dir, 0o755)
	var got []segment.Segment
	s := New(Config{SavePath: savePath, Owner: "me"}, Deps{Log: zerolog.Nop(), OnSegment: func(sg segment.Segment) { got = append(got, sg) }})
	run := staging.Run{Dir: dir, ID: "20260106T120000-000000000"}
	epoch := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	meta := staging.Meta{RunID: run.ID, Camera: "cam1", FeedID: "f1", Owner: "me", PID: liveFFmpeg(t, run.ID), Epoch: epoch.Add(2300 * time.Millisecond)}
	staging.WriteMeta(run.MetaPath(), meta)
	makeClip(t, run.SegmentPath(0), 2)
	makeClip(t, run.SegmentPath(1), 1)
	write(t, run.ListPath(), run.ID+"_00000.mp4,0.000000,2.000000\n")
	s.processDir(dir)
	if len(got) != 0 {
		t.Fatalf("named %s on an epoch not settled yet", filepath.Base(got[0].Path))
	}
	meta.Epoch, meta.EpochSettled = epoch, true
	staging.WriteMeta(run.MetaPath(), meta)
	s.processDir(dir)
	if len(got) != 1 || filepath.Base(got[0].Path) != "cam1_f1_20260106T120000Z_20260106T120002Z.mp4" {
		t.Fatalf("got %+v, want the segment named on the settled epoch", got)
	}
}

// TestListedSegmentWithoutFramesIsNotReported: ffmpeg can list a segment it
// closed before its first fragment (a run ending at once); a file with no
// frame is removed, never cataloged and uploaded as a recording.
func TestListedSegmentWithoutFramesIsNotReported(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	dir := layout.StagingDir(savePath, "cam1")
	os.MkdirAll(dir, 0o755)
	run := staging.Run{Dir: dir, ID: "20260106T120000-000000000"}
	headerOnly(t, run.SegmentPath(0))
	makeClip(t, run.SegmentPath(1), 1)
	write(t, run.ListPath(), run.ID+"_00000.mp4,0.000000,0.200000\n")
	staging.WriteMeta(run.MetaPath(), staging.Meta{RunID: run.ID, Camera: "cam1", FeedID: "f1", Owner: "me", PID: liveFFmpeg(t, run.ID),
		Epoch: time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), EpochSettled: true})
	var got []segment.Segment
	s := New(Config{SavePath: savePath, Owner: "me"}, Deps{Log: zerolog.Nop(), OnSegment: func(sg segment.Segment) { got = append(got, sg) }})
	s.processDir(dir)
	if len(got) != 0 {
		t.Errorf("reported %+v", got)
	}
	if _, err := os.Stat(run.SegmentPath(0)); !os.IsNotExist(err) {
		t.Errorf("the frameless segment is still there: %v", err)
	}
}

// TestProbeDuration: what salvage makes of a file ffmpeg did not close: a
// duration when at least its first frame decodes; no frames when its first
// fragment was cut short (ffprobe still reports a duration for it) or
// absent; no video when it is not an MP4 at all.
func TestProbeDuration(t *testing.T) {
	testenv.RequireTools(t)
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	makeClip(t, clip, 3)
	data, _ := os.ReadFile(clip)
	moof := strings.Index(string(data), "moof") - 4
	second := strings.Index(string(data[moof+8:]), "moof") + moof + 8 - 4
	tests := []struct {
		name    string
		content string
		want    error
	}{
		{"whole", string(data), nil},
		{"two fragments and a half", string(data[:len(data)*8/10]), nil},
		{"first fragment cut short", string(data[:moof+(second-moof)/2]), media.ErrNoFrames},
		{"header only", string(data[:moof]), media.ErrNoFrames},
		{"not a video", "junk junk junk", media.ErrNoVideo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".mp4")
			write(t, p, tt.content)
			d, err := media.Duration(context.Background(), "ffprobe", p)
			if !errors.Is(err, tt.want) || (tt.want == nil && d <= 0) {
				t.Errorf("probeDuration = %v, %v; want %v", d, err, tt.want)
			}
		})
	}
}
