package live

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cctvd/cctvd/staging"
)

// The staging folder as ffmpeg and the supervisor leave it: the newest
// segment of each run, runs newest first; where a segment starts in its
// run's stream, from ffmpeg's list; no open segment without a live ffmpeg.
func TestLocate(t *testing.T) {
	dir := t.TempDir()
	touch := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	older, newer := staging.Run{Dir: dir, ID: "20260106T120000-000000001"}, staging.Run{Dir: dir, ID: "20260106T130000-000000001"}
	for _, r := range []staging.Run{older, newer} {
		if err := staging.WriteMeta(r.MetaPath(), staging.Meta{RunID: r.ID, Camera: "door", PID: 0, Exited: true, StartedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	touch(filepath.Base(older.SegmentPath(4)), "")
	touch(filepath.Base(newer.SegmentPath(0)), "")
	touch(filepath.Base(newer.SegmentPath(2)), "")
	touch("notes.txt", "")
	touch(filepath.Base(newer.ListPath()), staging.SegmentName(newer.ID, 0)+",0.000000,3.040000\n"+staging.SegmentName(newer.ID, 1)+",3.040000,6.000000\n")

	runs, err := scanStaging(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].id != newer.ID || runs[0].newest != 2 || !runs[0].meta || runs[1].newest != 4 {
		t.Errorf("runs: %+v", runs)
	}
	for _, tt := range []struct {
		index int
		start float64
		ok    bool
	}{{0, 0, true}, {1, 3.04, true}, {2, 6, true}, {3, 0, false}} {
		if start, ok := segmentStart(newer, tt.index); start != tt.start || ok != tt.ok {
			t.Errorf("segment %d starts at %v (%v), want %v (%v)", tt.index, start, ok, tt.start, tt.ok)
		}
	}
	// Every run has exited: nothing is being written.
	if seg, ok, err := locate(dir); ok || err != nil {
		t.Errorf("locate with every run exited: %+v %v %v", seg, ok, err)
	}
	if _, ok, err := locate(filepath.Join(dir, "no-such-camera")); ok || err != nil {
		t.Errorf("locate in a folder that does not exist: %v %v", ok, err)
	}
	epoch := time.Date(2026, 1, 6, 13, 0, 0, 0, time.UTC)
	if w := wallStart(staging.Meta{Epoch: epoch}, 3.04); !w.Equal(epoch.Add(3040 * time.Millisecond)) {
		t.Errorf("wallStart %v", w)
	}
	if w := wallStart(staging.Meta{}, 3.04); !w.IsZero() {
		t.Errorf("wallStart without an epoch: %v", w)
	}
}
