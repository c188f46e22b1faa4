package retention

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

var t0 = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)

type env struct {
	t    *testing.T
	save string
	cat  *catalog.Catalog
	logs *testenv.Buffer
	recs []catalog.Record // in start order
	// lastCtime is the ctime of the last file moved into the quarantine.
	lastCtime time.Time
}

// newEnv writes n real segment files of size bytes, 10 s apart, one camera,
// and records them in a real catalog; the first `uploaded` are uploaded.
func newEnv(t *testing.T, save string, n, size, uploaded int) *env {
	t.Helper()
	if save == "" {
		save = t.TempDir()
	}
	cat, err := catalog.Open(context.Background(), filepath.Join(t.TempDir(), layout.CatalogName), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e := &env{t: t, save: save, cat: cat, logs: &testenv.Buffer{}}
	for i := range n {
		e.add(t0.Add(time.Duration(i)*10*time.Second), size, i < uploaded)
	}
	return e
}

func (e *env) add(start time.Time, size int, uploaded bool) catalog.Record {
	e.t.Helper()
	end := start.Add(10 * time.Second)
	p := filepath.Join(e.save, layout.DayRel("cam1", start), segment.Name("cam1", "xx", start, end, 0))
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, bytes.Repeat([]byte{1}, size), 0o644); err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	r, err := e.cat.Add(ctx, segment.Segment{Camera: "cam1", FeedID: "xx", Start: start, End: end, Path: p, Size: int64(size)}, "k/"+filepath.Base(p))
	if err != nil {
		e.t.Fatal(err)
	}
	if uploaded { // as the uploader leaves it: checksums, then uploaded
		sum := sha256.Sum256(bytes.Repeat([]byte{1}, size))
		e.cat.SetChecksums(ctx, r.ID, hex.EncodeToString(sum[:]), "md5")
		e.cat.MarkUploaded(ctx, r.ID, `"etag"`, "checksum-sha256")
		r.Upload = catalog.Uploaded
	}
	e.recs = append(e.recs, r)
	return r
}

func (e *env) retention(cfg Config, usage DiskUsage) (*Retention, *[]string) {
	var deleted []string
	cfg.SavePath = e.save
	return New(cfg, Deps{Log: zerolog.New(e.logs), Catalog: e.cat, Usage: usage,
		OnDelete: func(r catalog.Record, cause string) { deleted = append(deleted, r.Name()+" "+cause) }}), &deleted
}

// plenty is a disk with room to spare: only the size limit matters.
func plenty(context.Context, string) (Usage, error) { return Usage{Total: 1 << 40, Free: 1 << 39}, nil }

// fakeDisk is a fake filesystem of capacity bytes whose free space is what
// the files under dir leave: deleting a file frees its size, as on a disk.
func fakeDisk(dir string, capacity int64) DiskUsage {
	return func(context.Context, string) (Usage, error) {
		var used int64
		filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					used += fi.Size()
				}
			}
			return nil
		})
		return Usage{Total: uint64(capacity), Free: uint64(max(capacity-used, 0))}, nil
	}
}

func (e *env) present() []int {
	var idx []int
	for i, r := range e.recs {
		if _, err := os.Stat(r.Path); err == nil {
			idx = append(idx, i)
		}
	}
	return idx
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		n        int // segments of 1000 bytes
		uploaded int // the oldest this many are uploaded
		limit    int64
		minFree  int64
		disk     int64 // capacity of a fake disk; 0: plenty of room
		present  []int // indexes left on disk
		warned   int   // deletions of segments S3 does not have
		cause    string
	}{
		{"under the limit", 10, 10, 10001, 0, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 0, ""},
		{"at the limit: down to the low-water mark", 10, 10, 10000, 0, 0, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, 0, catalog.CauseSizeLimit},
		{"well over: oldest first, down to 95%", 10, 10, 5000, 0, 0, []int{6, 7, 8, 9}, 0, catalog.CauseSizeLimit},
		{"uploaded first, even when newer", 10, 0, 8000, 0, 0, nil, 3, catalog.CauseSizeLimit}, // filled in below
		{"not uploaded only when nothing uploaded is left", 10, 3, 5000, 0, 0, []int{6, 7, 8, 9}, 3, catalog.CauseSizeLimit},
		// 12000-byte disk, 10000 used: 2000 free, floor 4000 (+5%): 3 go.
		{"free-space floor below the size limit", 10, 10, 1 << 30, 4000, 12000, []int{3, 4, 5, 6, 7, 8, 9}, 0, catalog.CauseFreeSpace},
		{"floor, nothing uploaded", 10, 0, 1 << 30, 4000, 12000, []int{3, 4, 5, 6, 7, 8, 9}, 3, catalog.CauseFreeSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "", tt.n, 1000, tt.uploaded)
			if tt.name == "uploaded first, even when newer" {
				// Segments 5..9 are uploaded, 0..4 are not: uploaded ones
				// go first although they are newer.
				for i := 5; i < 10; i++ {
					e.cat.MarkUploaded(context.Background(), e.recs[i].ID, `"x"`, "checksum-sha256")
				}
				tt.present, tt.warned = []int{0, 1, 2, 3, 4, 8, 9}, 0
			}
			usage := plenty
			if tt.disk > 0 {
				usage = fakeDisk(e.save, tt.disk)
			}
			r, deleted := e.retention(Config{LimitBytes: tt.limit, MinFreeBytes: tt.minFree}, usage)
			if err := r.Decide(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.present(); !slices.Equal(got, tt.present) {
				t.Errorf("left on disk %v, want %v; deleted %v", got, tt.present, *deleted)
			}
			st := r.Status()
			if int(st.DeletedNotUploaded) != tt.warned || strings.Count(e.logs.String(), "S3 does not have") != tt.warned {
				t.Errorf("not-uploaded deletions: counted %d, warned %d, want %d", st.DeletedNotUploaded, strings.Count(e.logs.String(), "S3 does not have"), tt.warned)
			}
			for _, d := range *deleted {
				if !strings.HasSuffix(d, " "+tt.cause) {
					t.Errorf("deletion %q, want cause %s", d, tt.cause)
				}
			}
			// The catalog agrees with the disk, causes recorded.
			for i, rec := range e.recs {
				got, _ := e.cat.Get(context.Background(), rec.ID)
				onDisk := slices.Contains(tt.present, i)
				if onDisk != (got.Local == catalog.Present) || (!onDisk && got.DeleteCause != tt.cause) {
					t.Errorf("segment %d: on disk %v, catalog %s (%s)", i, onDisk, got.Local, got.DeleteCause)
				}
			}
			if tot, _ := e.cat.Totals(context.Background()); tot.Count != int64(len(tt.present)) || tot.Bytes != int64(1000*len(tt.present)) {
				t.Errorf("totals %+v", tot)
			}
		})
	}
}

func TestEmptyDayFoldersAreRemoved(t *testing.T) {
	e := newEnv(t, "", 0, 0, 0)
	old := e.add(t0.Add(-48*time.Hour), 1000, true)
	e.add(t0, 1000, true)
	r, _ := e.retention(Config{LimitBytes: 1500}, plenty)
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(old.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty day folder %s kept: %v", filepath.Dir(old.Path), err)
	}
	if _, err := os.Stat(filepath.Join(e.save, "cam1")); err != nil {
		t.Errorf("camera folder removed: %v", err)
	}
}

func TestStagingCountsButIsNeverTouched(t *testing.T) {
	e := newEnv(t, "", 5, 1000, 5)
	dir := layout.StagingDir(e.save, "cam1")
	os.MkdirAll(dir, 0o755)
	open := filepath.Join(dir, staging.SegmentName("R", 0))
	os.WriteFile(open, make([]byte, 3000), 0o644)
	r, _ := e.retention(Config{LimitBytes: 6000}, plenty) // 5000 closed + 3000 open
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.present(); !slices.Equal(got, []int{3, 4}) {
		t.Errorf("left %v, want [3 4]: the open segment counts toward the limit", got)
	}
	if _, err := os.Stat(open); err != nil {
		t.Errorf("the segment being written was touched: %v", err)
	}
}

// TestCrashBetweenMarkAndUnlink: retention marks rows deleted, then unlinks.
// A kill in between leaves marked rows with files on disk; reconciliation
// makes them present again and the next decision deletes them properly.
func TestCrashBetweenMarkAndUnlink(t *testing.T) {
	e := newEnv(t, "", 4, 1000, 4)
	ctx := context.Background()
	e.cat.MarkDeleted(ctx, []int64{e.recs[0].ID, e.recs[1].ID}, catalog.CauseSizeLimit) // ...killed here
	res, err := e.cat.Reconcile(ctx, func(rel string) string { return rel })
	if err != nil || res.Returned != 2 {
		t.Fatalf("reconcile: %+v %v", res, err)
	}
	if tot, _ := e.cat.Totals(ctx); tot.Count != 4 {
		t.Fatalf("after reconcile: %+v", tot)
	}
	r, _ := e.retention(Config{LimitBytes: 3000}, plenty)
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.present(); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("left %v", got)
	}
	// The other order, unlinked but not marked, is repaired too.
	os.Remove(e.recs[2].Path)
	if res, _ := e.cat.Reconcile(ctx, func(rel string) string { return rel }); res.Missing != 1 {
		t.Errorf("unlinked file not found missing: %+v", res)
	}
}

func TestCrossCheckReconciles(t *testing.T) {
	e := newEnv(t, "", 3, 1000, 0)
	os.Remove(e.recs[0].Path) // deleted behind cctvd's back
	r, _ := e.retention(Config{LimitBytes: 1 << 30}, plenty)
	r.crossCheck(context.Background())
	if !strings.Contains(e.logs.String(), "disagree") {
		t.Error("the mismatch was not found")
	}
	if tot, _ := e.cat.Totals(context.Background()); tot.Count != 2 {
		t.Errorf("totals after cross-check: %+v", tot)
	}
}

func BenchmarkDecide(b *testing.B) {
	for _, rows := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			save := b.TempDir()
			ctx := context.Background()
			cat, err := catalog.Open(ctx, filepath.Join(b.TempDir(), layout.CatalogName), save, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cat.Close()
			segs := make([]segment.Segment, rows)
			for i := range segs {
				start := t0.Add(time.Duration(i) * 10 * time.Second)
				segs[i] = segment.Segment{Camera: "cam1", FeedID: "xx", Start: start, End: start.Add(10 * time.Second),
					Path: filepath.Join(save, layout.DayRel("cam1", start), segment.Name("cam1", "xx", start, start.Add(10*time.Second), 0)), Size: 1000}
			}
			if err := cat.AddMany(ctx, segs, func(rel string) string { return rel }); err != nil {
				b.Fatal(err)
			}
			// Half the rows uploaded; the limit just below what is held,
			// so every decision, like the one after each closed segment,
			// deletes about one segment (no file exists: the unlink's
			// ENOENT is ignored, so this times the decision itself).
			for i := 1; i <= rows/2; i++ {
				cat.MarkUploaded(ctx, int64(i), "e", "checksum-sha256")
			}
			r := New(Config{SavePath: save, LimitBytes: int64(rows) * 1000, LowWater: 0.99999}, Deps{Log: zerolog.Nop(), Catalog: cat, Usage: plenty})
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				start := t0.Add(time.Duration(rows+i) * 10 * time.Second)
				cat.Add(ctx, segment.Segment{Camera: "cam1", FeedID: "xx", Start: start, End: start.Add(10 * time.Second),
					Path: filepath.Join(save, segment.Name("cam1", "xx", start, start.Add(10*time.Second), 0)), Size: 1000}, "k")
				b.StartTimer()
				if err := r.Decide(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
