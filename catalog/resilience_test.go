package catalog

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// filledCatalog writes a catalog of n rows at path (closed, checkpointed)
// and returns its size.
func filledCatalog(t *testing.T, save, path string, n int) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := Open(ctx, path, save, nil)
	if err != nil {
		t.Fatal(err)
	}
	segs := make([]segment.Segment, n)
	for i := range segs {
		start := t0.Add(time.Duration(i) * 10 * time.Second)
		segs[i] = segment.Segment{Camera: "cam1", FeedID: "xx", Start: start, End: start.Add(10 * time.Second),
			Path: filepath.Join(save, layout.DayRel("cam1", start), segment.Name("cam1", "xx", start, start.Add(10*time.Second), 0)), Size: 1000}
	}
	if err := c.AddMany(ctx, segs, key); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // the last connection checkpoints the WAL into the file
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func overwritePage(t *testing.T, path string, page int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	rand.Read(junk)
	if _, err := f.WriteAt(junk, int64(page)*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestCorruptionIsFound: a file that is not a database, or a catalog with
// one page overwritten, is found corrupt when it is opened or, for a page
// the first reads do not touch, by QuickCheck; never taken for a good one.
func TestCorruptionIsFound(t *testing.T) {
	ctx := context.Background()
	t.Run("garbage", func(t *testing.T) {
		save := t.TempDir()
		path := filepath.Join(save, layout.CatalogName)
		junk := make([]byte, 64<<10)
		rand.Read(junk)
		os.WriteFile(path, junk, 0o644)
		_, err := Open(ctx, path, save, nil)
		if !IsCorrupt(err) {
			t.Fatalf("Open of garbage: %v, want a corruption error", err)
		}
	})
	// One catalog of 3 000 rows, copied for each case.
	tmplSave := t.TempDir()
	tmpl := filepath.Join(tmplSave, layout.CatalogName)
	size := filledCatalog(t, tmplSave, tmpl, 3000)
	good, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []int{0, 1, 2, 3, 10, 40, 100} {
		t.Run(fmt.Sprintf("page %d overwritten", page), func(t *testing.T) {
			save := t.TempDir()
			path := filepath.Join(save, layout.CatalogName)
			os.WriteFile(path, good, 0o644)
			if int64(page+1)*4096 > size {
				t.Fatalf("the catalog has only %d pages", size/4096)
			}
			overwritePage(t, path, page)
			c, err := Open(ctx, path, save, nil)
			if err != nil {
				if !IsCorrupt(err) {
					t.Fatalf("Open: %v, want a corruption error", err)
				}
				return
			}
			defer c.Close()
			if err := c.QuickCheck(ctx); !IsCorrupt(err) {
				t.Fatalf("QuickCheck after page %d was overwritten: %v", page, err)
			}
		})
	}
	t.Run("intact", func(t *testing.T) {
		save := t.TempDir()
		path := filepath.Join(save, layout.CatalogName)
		os.WriteFile(path, good, 0o644)
		c, err := Open(ctx, path, save, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.QuickCheck(ctx); err != nil {
			t.Fatalf("QuickCheck of a good catalog: %v", err)
		}
	})
}

// TestCorruptionFoundWhileRunningIsReported: a query that meets a damaged
// page calls OnCorrupt, once.
func TestCorruptionFoundWhileRunningIsReported(t *testing.T) {
	ctx := context.Background()
	save := t.TempDir()
	path := filepath.Join(save, layout.CatalogName)
	size := filledCatalog(t, save, path, 3000)
	calls := 0
	c, err := OpenWith(ctx, Options{Path: path, SavePath: save, OnCorrupt: func(error) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Damage every page after the first few while it is open, then read
	// them all.
	for p := 8; int64(p+1)*4096 <= size; p += 3 {
		overwritePage(t, path, p)
	}
	_, _, err1 := c.List(ctx, Filter{Limit: 5000})
	err2 := c.QuickCheck(ctx)
	if !IsCorrupt(err1) && !IsCorrupt(err2) {
		t.Fatalf("reads of damaged pages: %v, %v", err1, err2)
	}
	if calls != 1 {
		t.Errorf("OnCorrupt called %d times, want once", calls)
	}
}

func TestMoveAsideKeepsEveryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, layout.CatalogName)
	for _, s := range []string{"", "-wal", "-shm"} {
		os.WriteFile(path+s, []byte("x"+s), 0o644)
	}
	now := time.Date(2026, 3, 1, 10, 20, 30, 0, time.UTC)
	got, err := MoveAside(path, "corrupt", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".corrupt-20260301T102030.000Z"; got != want {
		t.Errorf("moved to %s, want %s", got, want)
	}
	for _, s := range []string{"", "-wal", "-shm"} {
		if b, err := os.ReadFile(got + s); err != nil || string(b) != "x"+s {
			t.Errorf("%s: %q %v", got+s, b, err)
		}
		if _, err := os.Stat(path + s); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", path+s)
		}
	}
	// Without -wal and -shm (a cleanly closed catalog), only the file moves.
	os.WriteFile(path, []byte("y"), 0o644)
	if got, err := MoveAside(path, "corrupt", now.Add(time.Second)); err != nil || !strings.HasSuffix(got, "T102031.000Z") {
		t.Errorf("%s %v", got, err)
	}
}

func TestNewerSchemaIsNamed(t *testing.T) {
	save := t.TempDir()
	path := filepath.Join(save, layout.CatalogName)
	c, err := Open(context.Background(), path, save, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)+1))
	c.Close()
	_, err = Open(context.Background(), path, save, nil)
	if !errors.Is(err, ErrNewerSchema) || IsCorrupt(err) {
		t.Fatalf("Open: %v, want ErrNewerSchema", err)
	}
}

// TestReconcileFoldersGone: rows of a day folder, and of a whole camera
// folder, that vanished are marked missing; other days are untouched; more
// changes than one transaction holds all land.
func TestReconcileFoldersGone(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	day := 24 * time.Hour
	var segs []segment.Segment
	for d := range 3 {
		for i := range 5 {
			segs = append(segs, writeSegment(t, save, "cam1", t0.Add(time.Duration(d)*day+time.Duration(i)*10*time.Second), 10))
		}
	}
	for i := range 4 {
		segs = append(segs, writeSegment(t, save, "cam2", t0.Add(time.Duration(i)*10*time.Second), 10))
	}
	// More files than one reconcile transaction holds, all new.
	for i := range reconcileBatch + 500 {
		writeSegment(t, save, "cam3", t0.Add(time.Duration(i)*10*time.Second), 10)
	}
	if err := c.AddMany(ctx, segs, key); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(save, "cam1", t0.Add(day).Format(layout.DayFormat)))
	os.RemoveAll(filepath.Join(save, "cam2"))
	res, err := c.Reconcile(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if res != (ReconcileResult{Added: reconcileBatch + 500, Missing: 9}) {
		t.Errorf("result %+v", res)
	}
	for _, s := range segs {
		r, err := c.ByPath(ctx, s.Path)
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(s.Path)
		if want := map[bool]LocalState{true: Present, false: Missing}[statErr == nil]; r.Local != want {
			t.Errorf("%s: %s, want %s", s.Name(), r.Local, want)
		}
	}
	if tot, _ := c.Totals(ctx); tot.Count != 10+reconcileBatch+500 {
		t.Errorf("totals %+v", tot)
	}
	if res, _ := c.Reconcile(ctx, key); res != (ReconcileResult{}) {
		t.Errorf("second pass %+v", res)
	}
}

func TestPruneKeepsWhatIsOnDisk(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	type row struct {
		age      time.Duration
		uploaded bool
		local    LocalState
		kept     bool
	}
	now := t0.Add(100 * 24 * time.Hour)
	cases := []row{
		{40 * 24 * time.Hour, true, Deleted, false},  // old, uploaded, gone locally
		{40 * 24 * time.Hour, true, Missing, false},  // old, uploaded, vanished
		{40 * 24 * time.Hour, false, Deleted, false}, // old, lost footage
		{40 * 24 * time.Hour, true, Present, true},   // old but on disk
		{40 * 24 * time.Hour, false, Present, true},  // old, on disk, waiting for S3
		{10 * 24 * time.Hour, true, Deleted, true},   // recent
	}
	var ids []int64
	for i, cs := range cases {
		seg := writeSegment(t, save, fmt.Sprintf("cam%d", i), now.Add(-cs.age), 10)
		r, err := c.Add(ctx, seg, "k")
		if err != nil {
			t.Fatal(err)
		}
		if cs.uploaded {
			c.MarkUploaded(ctx, r.ID, "e", "test")
		}
		if cs.local != Present {
			c.exec(ctx, "set local", `UPDATE segments SET local = ? WHERE id = ?`, cs.local, r.ID)
		}
		ids = append(ids, r.ID)
	}
	c.AddGap(ctx, Gap{Camera: "cam0", Start: now.Add(-41 * 24 * time.Hour), End: now.Add(-40 * 24 * time.Hour), Cause: "stall"})
	recent, _ := c.AddGap(ctx, Gap{Camera: "cam0", Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour), Cause: "stall"})
	open, _ := c.AddGap(ctx, Gap{Camera: "cam1", Start: now.Add(-50 * 24 * time.Hour), Cause: "auth"})
	before, _ := c.Totals(ctx)

	res, err := c.Prune(ctx, now.Add(-30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res != (PruneResult{Segments: 3, Gaps: 1}) {
		t.Errorf("pruned %+v", res)
	}
	for i, cs := range cases {
		_, err := c.Get(ctx, ids[i])
		if kept := err == nil; kept != cs.kept {
			t.Errorf("case %d (%+v): kept %v", i, cs, kept)
		}
	}
	gaps, _ := c.gaps(ctx, `ORDER BY id`)
	if len(gaps) != 2 || gaps[0].ID != recent || gaps[1].ID != open {
		t.Errorf("gaps left: %+v", gaps)
	}
	if after, _ := c.Totals(ctx); after != before {
		t.Errorf("totals changed by pruning: %+v -> %+v", before, after)
	}
}

func TestPruneInBatches(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	n := 2*pruneBatch + 7
	segs := make([]segment.Segment, n)
	for i := range segs {
		start := t0.Add(time.Duration(i) * time.Second)
		segs[i] = segment.Segment{Camera: "cam1", FeedID: "xx", Start: start, End: start.Add(time.Second),
			Path: filepath.Join(save, layout.DayRel("cam1", start), segment.Name("cam1", "xx", start, start.Add(time.Second), 0)), Size: 1}
	}
	c.AddMany(ctx, segs, key)
	c.exec(ctx, "all gone", `UPDATE segments SET upload = 'uploaded', local = 'deleted'`)
	res, err := c.Prune(ctx, t0.Add(time.Duration(n)*time.Second))
	if err != nil || res.Segments != int64(n) {
		t.Fatalf("pruned %+v, %v; want %d", res, err, n)
	}
}

func TestImportRemote(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	present := writeSegment(t, save, "cam1", t0, 10)
	gone := writeSegment(t, save, "cam1", t0.Add(10*time.Second), 10)
	mismatch := writeSegment(t, save, "cam1", t0.Add(20*time.Second), 10)
	for _, s := range []segment.Segment{present, gone, mismatch} {
		c.Add(ctx, s, key(rel(save, s.Path)))
	}
	for _, s := range []segment.Segment{gone, mismatch} {
		r, _ := c.ByPath(ctx, s.Path)
		c.MarkLocalDeleted(ctx, r.ID, CauseVanished)
	}
	newStart := t0.Add(time.Hour)
	newRel := "cam1/2026-01-06/" + segment.Name("cam1", "xx", newStart, newStart.Add(10*time.Second), 0)
	objs := []RemoteObject{
		{Key: key(rel(save, present.Path)), Rel: rel(save, present.Path), Bytes: 10, SHA256: "aa", ETag: `"e1"`},
		{Key: key(rel(save, gone.Path)), Rel: rel(save, gone.Path), Bytes: 10, SHA256: "bb", ETag: `"e2"`},
		{Key: key(rel(save, mismatch.Path)), Rel: rel(save, mismatch.Path), Bytes: 11, SHA256: "cc", ETag: `"e3"`},
		{Key: key(newRel), Rel: newRel, Info: segment.Info{Camera: "cam1", FeedID: "xx", Start: newStart.Add(123 * time.Millisecond),
			End: newStart.Add(10 * time.Second)}, Bytes: 99, SHA256: "dd", ETag: `"0123456789abcdef0123456789abcdef"`, LastModified: t0},
	}
	states, err := c.RowStates(ctx, []string{objs[0].Rel, objs[1].Rel, newRel})
	if err != nil || len(states) != 2 || states[objs[1].Rel].Local != Deleted {
		t.Fatalf("row states %+v %v", states, err)
	}
	res, err := c.ImportRemote(ctx, objs, "rebuild", "cursor-1")
	if err != nil {
		t.Fatal(err)
	}
	if res != (ImportResult{Added: 1, Confirmed: 1}) {
		t.Errorf("import %+v", res)
	}
	check := func(path string, upload UploadState, local LocalState) Record {
		t.Helper()
		r, err := c.ByPath(ctx, path)
		if err != nil || r.Upload != upload || r.Local != local {
			t.Errorf("%s: %s %s %v, want %s %s", filepath.Base(path), r.Upload, r.Local, err, upload, local)
		}
		return r
	}
	check(present.Path, Pending, Present) // the uploader's to check
	if r := check(gone.Path, Uploaded, Deleted); r.SHA256 != "bb" || r.ETag != `"e2"` {
		t.Errorf("confirmed row %+v", r)
	}
	check(mismatch.Path, Pending, Deleted) // another size: not the same footage
	r := check(filepath.Join(save, newRel), Uploaded, Deleted)
	if r.Bytes != 99 || r.SHA256 != "dd" || r.MD5 != "0123456789abcdef0123456789abcdef" || r.Key != key(newRel) ||
		r.DeleteCause != CauseNotOnDisk || !r.Start.Equal(newStart.Add(123*time.Millisecond)) || !r.UploadedAt.Equal(t0) {
		t.Errorf("imported row %+v", r)
	}
	if v, ok, _ := c.State(ctx, "rebuild"); !ok || v != "cursor-1" {
		t.Errorf("cursor %q %v", v, ok)
	}
	// Importing again changes nothing.
	if res, _ := c.ImportRemote(ctx, objs, "rebuild", "cursor-2"); res != (ImportResult{}) {
		t.Errorf("second import %+v", res)
	}
	if tot, _ := c.Totals(ctx); tot.Count != 1 {
		t.Errorf("totals %+v: imported rows are not on disk", tot)
	}
}

func rel(save, path string) string {
	r, _ := filepath.Rel(save, path)
	return filepath.ToSlash(r)
}

// TestReconcileMemoryDoesNotGrowWithRows: rows of footage no longer on
// disk (most of a catalog that runs for years) cost reconcile nothing; the
// former version loaded every path into a map (several MB for these rows).
func TestReconcileMemoryDoesNotGrowWithRows(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	for i := range 100 {
		writeSegment(t, save, "cam1", t0.Add(time.Duration(i)*10*time.Minute), 10)
	}
	if _, err := c.Reconcile(ctx, key); err != nil {
		t.Fatal(err)
	}
	allocs := func() uint64 {
		t.Helper()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		res, err := c.Reconcile(ctx, key)
		runtime.ReadMemStats(&after)
		if err != nil || res != (ReconcileResult{}) {
			t.Fatalf("%+v %v", res, err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	base := max(allocs(), allocs())
	// 30 000 rows of segments uploaded and deleted, in one statement.
	if err := c.exec(ctx, "generate", `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
		INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, local, created_ns)
		SELECT 'cam1', 'xx', i, i + 1, printf('cam1/2025-01-01/cam1_xx_%09d.mp4', i), 1, 'uploaded', 'k', 'deleted', 1 FROM n`); err != nil {
		t.Fatal(err)
	}
	with := allocs()
	t.Logf("reconcile allocated %d kB, %d kB with 30 000 more rows", base>>10, with>>10)
	if with > base+1<<20 { // the former version: 8.5 MB more
		t.Errorf("30 000 rows not on disk made reconcile allocate %d kB more", (with-base)>>10)
	}
}
