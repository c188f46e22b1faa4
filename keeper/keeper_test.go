package keeper

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

var t0 = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	save  string
	path  string
	logs  *testenv.Buffer
	mu    sync.Mutex
	ready []bool // fresh, per Ready call
	uses  int
	used  chan struct{} // a Use began
}

func newEnv(t *testing.T) *env {
	save := t.TempDir()
	return &env{t: t, save: save, path: filepath.Join(save, ".cctvd", layout.CatalogName), logs: &testenv.Buffer{},
		used: make(chan struct{}, 10)}
}

func (e *env) keeper(cfg Config) *Keeper {
	cfg.Path, cfg.SavePath = e.path, e.save
	if cfg.Retry == 0 {
		cfg.Retry = 50 * time.Millisecond
	}
	cfg.ReserveBytes = 1 << 20
	return New(cfg, Deps{Log: zerolog.New(e.logs),
		Ready: func(ctx context.Context, cat *catalog.Catalog, fresh bool) error {
			e.mu.Lock()
			e.ready = append(e.ready, fresh)
			e.mu.Unlock()
			return nil
		},
		Use: func(ctx context.Context, cat *catalog.Catalog) error {
			e.mu.Lock()
			e.uses++
			e.mu.Unlock()
			e.used <- struct{}{}
			<-ctx.Done()
			return nil
		}})
}

// run runs the keeper until the test ends.
func run(t *testing.T, k *Keeper) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the keeper did not stop")
		}
	})
	return ctx
}

func waitReady(t *testing.T, k *Keeper, n int) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.WaitFor(ctx, func(s Status) bool { return s.State == Ready && len(s.MovedAside) >= n }); err != nil {
		t.Fatalf("catalog not ready: %+v", k.Status())
	}
	return k.Status()
}

func writeSegment(t *testing.T, save string, start time.Time) segment.Segment {
	t.Helper()
	end := start.Add(10 * time.Second)
	p := filepath.Join(save, layout.DayRel("cam1", start), segment.Name("cam1", "xx", start, end, 0))
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	return segment.Segment{Camera: "cam1", FeedID: "xx", Start: start, End: end, Path: p, Size: 4}
}

// TestGarbageCatalogIsMovedAsideAndRebuilt: a catalog.db that is not a
// database is kept under another name, and a new one holds the disk's
// segments.
func TestGarbageCatalogIsMovedAsideAndRebuilt(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		writeSegment(t, e.save, t0.Add(time.Duration(i)*10*time.Second))
	}
	os.MkdirAll(filepath.Dir(e.path), 0o755)
	junk := make([]byte, 20000)
	rand.Read(junk)
	os.WriteFile(e.path, junk, 0o644)
	os.WriteFile(e.path+"-wal", []byte("wal"), 0o644) // not read: the file is not a database

	k := e.keeper(Config{})
	run(t, k)
	st := waitReady(t, k, 1)
	if !st.Fresh || len(st.MovedAside) != 1 || st.Reconciled == nil || st.Reconciled.Added != 3 {
		t.Fatalf("status %+v", st)
	}
	if b, err := os.ReadFile(st.MovedAside[0]); err != nil || string(b) != string(junk) {
		t.Errorf("the corrupt catalog was not kept whole: %v", err)
	}
	if b, _ := os.ReadFile(st.MovedAside[0] + "-wal"); string(b) != "wal" {
		t.Error("its -wal was not kept")
	}
	if !strings.HasPrefix(filepath.Base(st.MovedAside[0]), "catalog.db.corrupt-") {
		t.Errorf("moved to %s", st.MovedAside[0])
	}
	recs, _, err := k.List(context.Background(), catalog.Filter{Limit: 10})
	if err != nil || len(recs) != 3 {
		t.Errorf("rows %d %v", len(recs), err)
	}
	// Use starts on its own goroutine once the state says ready.
	await.Recv(t, e.used, 10*time.Second, "a use of the catalog")
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.ready) != 1 || !e.ready[0] || e.uses != 1 {
		t.Errorf("ready %v uses %d", e.ready, e.uses)
	}
	if !strings.Contains(e.logs.String(), `"level":"error"`) || !strings.Contains(e.logs.String(), st.MovedAside[0]) {
		t.Errorf("the move was not logged as an error with its path:\n%s", e.logs.String())
	}
}

// TestWorkIsHeldUntilTheCatalogIsReady: Do before the catalog opens runs
// after, in order; the reading methods say the catalog is unavailable.
func TestWorkIsHeldUntilTheCatalogIsReady(t *testing.T) {
	e := newEnv(t)
	// The state folder is a file: the catalog cannot be opened.
	os.WriteFile(filepath.Join(e.save, ".cctvd"), nil, 0o644)
	k := e.keeper(Config{})
	run(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.WaitFor(ctx, func(s Status) bool { return s.State == Unavailable }); err != nil {
		t.Fatalf("%+v", k.Status())
	}
	if _, err := k.Backlog(ctx); !errors.Is(err, catalog.ErrUnavailable) {
		t.Errorf("Backlog while unavailable: %v", err)
	}
	var order []int
	var mu sync.Mutex
	for i := range 5 {
		seg := writeSegment(t, e.save, t0.Add(time.Duration(i)*10*time.Second))
		k.Do(func(cat *catalog.Catalog) {
			if _, err := cat.Add(context.Background(), seg, "k"); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	if st := k.Status(); st.Held != 5 {
		t.Errorf("held %d", st.Held)
	}
	os.Remove(filepath.Join(e.save, ".cctvd")) // the operator fixes it
	waitReady(t, k, 0)
	mu.Lock()
	if len(order) != 5 || order[0] != 0 || order[4] != 4 {
		t.Errorf("held work ran as %v", order)
	}
	mu.Unlock()
	ran := false
	k.Do(func(*catalog.Catalog) { ran = true })
	if !ran {
		t.Error("Do did not run at once on a ready catalog")
	}
	if b, err := k.Backlog(ctx); err != nil || b.Count != 5 {
		t.Errorf("backlog %+v %v", b, err)
	}
}

func TestHeldWorkIsBounded(t *testing.T) {
	e := newEnv(t)
	k := e.keeper(Config{HoldLimit: 3})
	var ran []int
	for i := range 5 {
		k.Do(func(*catalog.Catalog) { ran = append(ran, i) })
	}
	st := k.Status()
	if st.Held != 3 || st.Dropped != 2 {
		t.Errorf("status %+v", st)
	}
	run(t, k)
	waitReady(t, k, 0)
	if len(ran) != 3 || ran[0] != 2 {
		t.Errorf("ran %v: want the newest 3", ran)
	}
}

// TestCorruptionWhileRunning: a query that meets a damaged page has the
// catalog moved aside and rebuilt while the daemon runs; what needs the
// catalog is stopped and started again on the new one.
func TestCorruptionWhileRunning(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A catalog bigger than SQLite's page cache, so that reads meet the
	// damage on disk: 40 000 rows of footage no longer on disk.
	c, err := catalog.Open(ctx, e.path, e.save, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	db, err := sql.Open("sqlite", e.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
		INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, local, created_ns)
		SELECT 'cam1', 'xx', i, i + 1, printf('cam1/2025-01-01/cam1_xx_%09d.mp4', i), 1, 'uploaded', 'k', 'deleted', 1 FROM n`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	writeSegment(t, e.save, t0) // one file on disk

	// The full check runs soon after start-up, and finds the damage.
	k := e.keeper(Config{CheckAfter: 300 * time.Millisecond})
	run(t, k)
	waitReady(t, k, 0)
	f, _ := os.OpenFile(e.path, os.O_WRONLY, 0)
	fi, _ := f.Stat()
	junk := make([]byte, 4096)
	for off := int64(40 * 4096); off+4096 <= fi.Size(); off += 7 * 4096 {
		rand.Read(junk)
		f.WriteAt(junk, off)
	}
	f.Close()
	k.List(ctx, catalog.Filter{Limit: 5000}) // meets the damage
	st := waitReady(t, k, 1)
	if !st.Fresh {
		t.Errorf("status %+v", st)
	}
	recs, _, err := k.List(ctx, catalog.Filter{Limit: 5000})
	if err != nil || len(recs) != 1 {
		t.Errorf("after the rebuild: %d rows, %v", len(recs), err)
	}
	for range 2 { // Use ran on the first catalog, and runs on the new one
		select {
		case <-e.used:
		case <-time.After(30 * time.Second):
			t.Fatal("Use did not run on the new catalog")
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.uses != 2 || len(e.ready) != 2 || !e.ready[1] {
		t.Errorf("uses %d ready %v\n%s", e.uses, e.ready, e.logs.String())
	}
}

// TestPruneRuns: the keeper prunes rows older than RetentionDays.
func TestPruneRuns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := catalog.Open(ctx, e.path, e.save, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-40 * 24 * time.Hour)
	seg := writeSegment(t, e.save, old)
	r, _ := c.Add(ctx, seg, "k")
	c.MarkUploaded(ctx, r.ID, "e", "test")
	c.Close()
	os.Remove(seg.Path) // deleted: its row goes missing at reconcile, then is pruned
	k := e.keeper(Config{RetentionDays: 30, PruneAfter: time.Millisecond})
	run(t, k)
	waitReady(t, k, 0)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := k.WaitFor(wctx, func(s Status) bool { return s.Pruned.Segments == 1 }); err != nil {
		t.Fatalf("%+v", k.Status())
	}
	if _, err := k.Get(ctx, r.ID); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("pruned row: %v", err)
	}
}

// TestNewerCatalogIsMovedAside: a catalog written by a newer cctvd (after a
// downgrade) is kept aside under its own name, and recording's catalog is
// rebuilt, rather than uploads and retention stopping for good.
func TestNewerCatalogIsMovedAside(t *testing.T) {
	e := newEnv(t)
	c, err := catalog.Open(context.Background(), e.path, e.save, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	db, _ := sql.Open("sqlite", e.path)
	if _, err := db.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	k := e.keeper(Config{})
	run(t, k)
	st := waitReady(t, k, 1)
	if !st.Fresh || !strings.HasPrefix(filepath.Base(st.MovedAside[0]), "catalog.db.newer-") {
		t.Errorf("status %+v", st)
	}
}

// TestUploadedRowsGetTheConfiguredBucket: a catalog whose uploaded rows do
// not say their bucket (written before rows kept it; here, opened without
// one) is given the keeper's bucket when the keeper opens it, and the
// locations it uploaded to are read through the keeper.
func TestUploadedRowsGetTheConfiguredBucket(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := catalog.Open(ctx, e.path, e.save, nil)
	if err != nil {
		t.Fatal(err)
	}
	seg := writeSegment(t, e.save, t0)
	rel, _ := filepath.Rel(e.save, seg.Path)
	r, _ := c.Add(ctx, seg, "rec/2025/"+filepath.ToSlash(rel))
	c.MarkUploaded(ctx, r.ID, "e", "test")
	c.Close()
	k := e.keeper(Config{Bucket: "bkt", Prefix: "rec/2025"})
	run(t, k)
	waitReady(t, k, 0)
	if got, err := k.Get(ctx, r.ID); err != nil || got.Bucket != "bkt" {
		t.Errorf("row after the keeper opened the catalog: bucket %q, %v", got.Bucket, err)
	}
	if locs, err := k.Locations(ctx); err != nil || len(locs) != 1 || locs[0].Bucket != "bkt" || locs[0].Prefix != "rec/2025" {
		t.Errorf("locations %+v, %v", locs, err)
	}
}
