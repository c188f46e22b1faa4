package retention

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

// fsImmutableFL is FS_IMMUTABLE_FL (linux/fs.h), which x/sys/unix does not name.
const fsImmutableFL = 0x00000010

// TestNothingDeletableLeft: when what is over the limit is the segments
// being written, every closed one goes and retention says so; it is no
// error, and the open segments are untouched.
func TestNothingDeletableLeft(t *testing.T) {
	e := newEnv(t, "", 2, 1000, 1)
	dir := layout.StagingDir(e.save, "cam1")
	os.MkdirAll(dir, 0o755)
	open := filepath.Join(dir, staging.SegmentName("R", 0))
	os.WriteFile(open, make([]byte, 5000), 0o644)
	r, deleted := e.retention(Config{LimitBytes: 3000}, plenty)
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.present(); len(got) != 0 || len(*deleted) != 2 {
		t.Errorf("left %v, deleted %v: both closed segments must go", got, *deleted)
	}
	if _, err := os.Stat(open); err != nil {
		t.Errorf("the segment being written was touched: %v", err)
	}
	if !strings.Contains(e.logs.String(), "nothing left to delete") || !strings.Contains(e.logs.String(), `"stillToFree":2150`) {
		t.Errorf("want a warning with what is still to free (2150):\n%s", e.logs.String())
	}
	if st := r.Status(); st.DeletedNotUploaded != 1 || st.DeletedUploaded != 1 || st.UsedBytes != 5000 {
		t.Errorf("status %+v", st)
	}
}

// TestQuarantineCounts: quarantined files are cctvd's and count toward the
// limit from the start of Run (and at each cross-check); within their
// bound (here nine tenths of the limit) they are not deleted.
func TestQuarantineCounts(t *testing.T) {
	e := newEnv(t, "", 5, 1000, 5)
	q := layout.QuarantineDir(e.save, "cam1")
	os.MkdirAll(q, 0o755)
	os.WriteFile(filepath.Join(q, "R1-00000.mp4"), make([]byte, 3000), 0o644)
	r, _ := e.retention(Config{LimitBytes: 6000, Interval: time.Hour, MinGap: time.Millisecond, QuarantineShare: 0.9}, plenty)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, func(st Status) bool { return st.Decisions >= 1 }); err != nil { // finished, deletions done
		t.Fatal("no decision within 20 s of Run")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of its context's end")
	}
	// 5000 + 3000 quarantined = 8000 over 6000: down to 5700, three go.
	if got := e.present(); !slices.Equal(got, []int{3, 4}) {
		t.Errorf("left %v, want [3 4]: quarantined bytes count", got)
	}
	if _, err := os.Stat(filepath.Join(q, "R1-00000.mp4")); err != nil {
		t.Errorf("a quarantined file was touched: %v", err)
	}
	if st := r.Status(); st.UsedBytes != 5000 {
		t.Errorf("used after the decision %d, want 5000 (2 segments and the quarantine)", st.UsedBytes)
	}

	// The cross-check sums the quarantine again.
	os.WriteFile(filepath.Join(q, "R2-00000.mp4"), make([]byte, 2000), 0o644)
	r.crossCheck(context.Background())
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.present(); len(got) != 0 {
		t.Errorf("left %v after 2000 more bytes were quarantined, want none", got)
	}
}

func TestDefaultFloor(t *testing.T) {
	for _, tt := range []struct {
		total uint64
		want  int64
	}{
		{8 << 30, 8 << 30 / 20},       // 5% of a small disk
		{20e9, 1e9},                   // where the two meet
		{4e12, 1e9},                   // 1 GB on a big one
		{19, 0},                       // rounding down
		{1 << 40, min(1e9, 1<<40/20)}, // a terabyte
	} {
		if got := DefaultFloor(tt.total); got != tt.want {
			t.Errorf("DefaultFloor(%d) = %d, want %d", tt.total, got, tt.want)
		}
	}
}

// TestDefaultFloorApplies: without minFreeGB, the floor is 5% of a small
// filesystem: below it, the oldest go until 5% above it.
func TestDefaultFloorApplies(t *testing.T) {
	e := newEnv(t, "", 10, 1000, 10)
	// 20000-byte disk: floor 1000. 10000 held and 9500 of others: 500 free,
	// so 1000 + 50 - 500 = 550 to free: one segment.
	other := filepath.Join(e.save, "other")
	os.WriteFile(other, make([]byte, 9500), 0o644)
	r, deleted := e.retention(Config{LimitBytes: 1 << 30}, fakeDisk(e.save, 20000))
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.present(); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("left %v, deleted %v", got, *deleted)
	}
	st := r.Status()
	if st.FloorBytes != 1000 || st.TotalBytes != 20000 || st.FreeBytes != 1500 || st.UsedBytes != 9000 || st.LimitBytes != 1<<30 {
		t.Errorf("status %+v, want floor 1000, total 20000, free 1500, used 9000", st)
	}
	if len(*deleted) != 1 || !strings.HasSuffix((*deleted)[0], catalog.CauseFreeSpace) {
		t.Errorf("deleted %v, want one for free space", *deleted)
	}
}

// TestStatusAndReconfigure: the status shows the figures of the last
// decision; a new limit applies to the next decision, savePath stays.
func TestStatusAndReconfigure(t *testing.T) {
	e := newEnv(t, "", 4, 1000, 4)
	r, _ := e.retention(Config{LimitBytes: 10000, MinFreeBytes: 7}, plenty)
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	if st.UsedBytes != 4000 || st.LimitBytes != 10000 || st.FloorBytes != 7 || st.TotalBytes != 1<<40 || st.FreeBytes != 1<<39 || st.LastDecision.IsZero() {
		t.Errorf("status %+v", st)
	}
	r.Reconfigure(Config{SavePath: "/elsewhere", LimitBytes: 2000, LowWater: 0.5})
	if r.Status().LimitBytes != 2000 {
		t.Errorf("limit in the status after Reconfigure: %d", r.Status().LimitBytes)
	}
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 4000 over 2000: down to half of it, 1000.
	if got := e.present(); !slices.Equal(got, []int{3}) {
		t.Errorf("left %v, want [3]: the new limit and low-water mark, in the old savePath", got)
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, lw := range []float64{0, -1, 1, 1.5} {
		c := Config{LowWater: lw}
		c.setDefaults()
		if c.LowWater != 0.95 || c.Interval != time.Minute || c.CrossCheck != time.Hour || c.MinGap != time.Second {
			t.Errorf("LowWater %v: defaults %+v", lw, c)
		}
	}
	c := Config{LowWater: 0.5, Interval: 2 * time.Second, CrossCheck: 3 * time.Second, MinGap: 4 * time.Millisecond}
	c.setDefaults()
	if c.LowWater != 0.5 || c.Interval != 2*time.Second || c.CrossCheck != 3*time.Second || c.MinGap != 4*time.Millisecond {
		t.Errorf("set values changed: %+v", c)
	}
}

// TestDecisionEdges: the edges of each threshold.
func TestDecisionEdges(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		disk    int64 // fake disk capacity; 0: plenty
		present []int
		cause   string
	}{
		// 10000 held, limit 10000, low water 90%: exactly 1000 to free,
		// so exactly one segment goes, not two.
		{"exactly one segment's worth to free", Config{LimitBytes: 10000, LowWater: 0.9}, 0, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, catalog.CauseSizeLimit},
		{"one byte under the limit", Config{LimitBytes: 10001}, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ""},
		// 12000-byte disk with 10000 held: 2000 free, at the floor: nothing.
		{"free space exactly at the floor", Config{LimitBytes: 1 << 30, MinFreeBytes: 2000}, 12000, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ""},
		// 11600-byte disk: 1600 free under a 2000 floor, 2100 - 1600 = 500
		// to free, as much as the size limit's 10000 - 9500: a tie is the
		// size limit's.
		{"as much for the floor as for the limit", Config{LimitBytes: 10000, MinFreeBytes: 2000}, 11600, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, catalog.CauseSizeLimit},
		{"a byte more for the floor", Config{LimitBytes: 10000, MinFreeBytes: 2001}, 11600, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, catalog.CauseFreeSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "", 10, 1000, 10)
			usage := plenty
			if tt.disk > 0 {
				usage = fakeDisk(e.save, tt.disk)
			}
			r, deleted := e.retention(tt.cfg, usage)
			if err := r.Decide(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.present(); !slices.Equal(got, tt.present) {
				t.Errorf("left %v, want %v", got, tt.present)
			}
			for _, d := range *deleted {
				if !strings.HasSuffix(d, " "+tt.cause) {
					t.Errorf("deleted %q, want cause %s", d, tt.cause)
				}
			}
			if acted := strings.Contains(e.logs.String(), "deleting the oldest"); acted != (tt.cause != "") {
				t.Errorf("logged a cleanup: %v, want %v:\n%s", acted, tt.cause != "", e.logs.String())
			}
		})
	}
}

// TestCrossCheckAgrees: a catalog that matches the disk is left alone,
// whatever else savePath holds: quarantined segments, the staging folder,
// files that are not segments.
func TestCrossCheckAgrees(t *testing.T) {
	e := newEnv(t, "", 3, 1000, 1)
	q := layout.QuarantineDir(e.save, "cam1")
	os.MkdirAll(q, 0o755)
	os.WriteFile(filepath.Join(q, e.recs[0].Name()), make([]byte, 700), 0o644) // a segment's name, quarantined
	st := layout.StagingDir(e.save, "cam1")
	os.MkdirAll(st, 0o755)
	os.WriteFile(filepath.Join(st, staging.SegmentName("R", 3)), make([]byte, 500), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(e.recs[0].Path), "notes.txt"), []byte("not a segment"), 0o644)
	r, _ := e.retention(Config{LimitBytes: 1 << 30}, plenty)
	r.crossCheck(context.Background())
	if strings.Contains(e.logs.String(), "disagree") {
		t.Errorf("a matching catalog was found to disagree:\n%s", e.logs.String())
	}
	if r.quar.bytes != 700 || len(r.quar.files) != 1 {
		t.Errorf("quarantine summed to %d bytes in %d files, want 700 in 1", r.quar.bytes, len(r.quar.files))
	}
}

// TestCrossCheckFindsANewFile: a segment on disk the catalog lacks gets a
// row, keyed by the uploader's key function (the path itself by default).
func TestCrossCheckFindsANewFile(t *testing.T) {
	e := newEnv(t, "", 2, 1000, 0)
	start := t0.Add(time.Hour)
	p := filepath.Join(e.save, layout.DayRel("cam1", start), segment.Name("cam1", "xx", start, start.Add(10*time.Second), 0))
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, make([]byte, 1000), 0o644)
	r, _ := e.retention(Config{LimitBytes: 1 << 30}, plenty) // no KeyFor
	r.crossCheck(context.Background())
	recs, err := e.cat.RetentionCandidates(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(e.save, p)
	i := slices.IndexFunc(recs, func(r catalog.Record) bool { return r.Path == p })
	if i < 0 || recs[i].Key != rel {
		t.Fatalf("the new file's row: %+v, want key %q", recs, rel)
	}
	if !strings.Contains(e.logs.String(), `"added":1`) {
		t.Errorf("reconciliation not logged with what it added:\n%s", e.logs.String())
	}
}
