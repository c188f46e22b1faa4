package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

var t0 = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)

func open(t *testing.T) (*Catalog, string) {
	t.Helper()
	return openAt(t, t0)
}

// openAt is open with the catalog's clock standing at now.
func openAt(t *testing.T, now time.Time) (*Catalog, string) {
	t.Helper()
	save := t.TempDir()
	c, err := Open(context.Background(), filepath.Join(save, ".cctvd", layout.CatalogName), save, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, save
}

// writeSegment creates a segment file under save starting at start.
func writeSegment(t *testing.T, save, camera string, start time.Time, size int) segment.Segment {
	t.Helper()
	end := start.Add(10 * time.Second)
	dir := filepath.Join(save, layout.DayRel(camera, start))
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, segment.Name(camera, "xx", start, end, 0))
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return segment.Segment{Camera: camera, FeedID: "xx", Start: start, End: end, Path: p, Size: int64(size)}
}

func key(rel string) string { return "rec/" + rel }

func TestAddRoundTripsAndRefusesATakenPath(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	seg := writeSegment(t, save, "cam1", t0, 100)
	seg.Salvaged = true
	r, err := c.Add(ctx, seg, "rec/x.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != seg.Path || !r.Start.Equal(seg.Start) || !r.End.Equal(seg.End) || r.Bytes != 100 || !r.Salvaged ||
		r.Upload != Pending || r.Local != Present || r.Camera != "cam1" || r.FeedID != "xx" || !r.CreatedAt.Equal(t0) || r.Key != "rec/x.mp4" {
		t.Errorf("row = %+v", r)
	}
	// The same path again: an error, and the first row unchanged.
	if again, err := c.Add(ctx, seg, "rec/other.mp4"); !errors.Is(err, ErrPathTaken) {
		t.Fatalf("second Add = %+v, %v; want ErrPathTaken", again, err)
	}
	// A clock stepped back: a new file under the name of one uploaded and
	// deleted long ago is never recorded as that old row.
	c.MarkUploaded(ctx, r.ID, "etag", "test")
	c.MarkLocalDeleted(ctx, r.ID, CauseClearAfterUpload)
	newer := seg
	newer.Size, newer.Salvaged = 300, false
	if got, err := c.Add(ctx, newer, "rec/x.mp4"); !errors.Is(err, ErrPathTaken) {
		t.Fatalf("Add over an uploaded, deleted row = %+v, %v; want ErrPathTaken", got, err)
	}
	if back, _ := c.Get(ctx, r.ID); back.Bytes != 100 || back.Upload != Uploaded || back.Local != Deleted || back.Key != "rec/x.mp4" {
		t.Errorf("the old row changed: %+v", back)
	}
	rel, _ := filepath.Rel(save, seg.Path)
	for path, want := range map[string]bool{filepath.ToSlash(rel): true, "cam1/2026-01-06/cam1_xx_20260106T120000Z_20260106T120010Z-1.mp4": false} {
		if got, err := c.PathTaken(ctx, path); err != nil || got != want {
			t.Errorf("PathTaken(%s) = %v, %v; want %v", path, got, err, want)
		}
	}
	if _, err := c.Get(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(999) = %v", err)
	}
	if _, err := c.Add(ctx, segment.Segment{Path: "/elsewhere/x.mp4"}, "k"); err == nil {
		t.Error("a path outside savePath was accepted")
	}
}

// TestAddAfterReconcileFoundTheFile: the hourly reconcile can find a file
// between its rename and its Add; Add then returns reconcile's row of that
// same file, not an error.
func TestAddAfterReconcileFoundTheFile(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	seg := writeSegment(t, save, "cam1", t0.Add(500*time.Millisecond), 4321)
	if _, err := c.Reconcile(ctx, key); err != nil {
		t.Fatal(err)
	}
	r, err := c.Add(ctx, seg, "rec/x.mp4")
	if err != nil || r.Bytes != 4321 || r.Local != Present || !r.VerifyRemote {
		t.Fatalf("Add after reconcile = %+v, %v", r, err)
	}
	// Not when the row says something else of the file (another size).
	seg.Size = 1
	if _, err := c.Add(ctx, seg, "rec/x.mp4"); !errors.Is(err, ErrPathTaken) {
		t.Errorf("Add of another size = %v, want ErrPathTaken", err)
	}
}

// BenchmarkAdd is the cost of recording one segment, each commit synced
// (synchronous=FULL) as cctvd runs it, against NORMAL, which can roll back
// the last commits at a power cut. On the disk of t.TempDir() (set TMPDIR
// to measure another).
func BenchmarkAdd(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			save := b.TempDir()
			c, err := Open(context.Background(), filepath.Join(save, ".cctvd", layout.CatalogName), save, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.db.SetMaxOpenConns(1) // the pragma below holds for this one connection
			if _, err := c.db.Exec("PRAGMA synchronous = " + sync); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				start := t0.Add(time.Duration(i) * 10 * time.Second)
				p := filepath.Join(save, layout.DayRel("cam1", start), segment.Name("cam1", "xx", start, start.Add(10*time.Second), 0))
				if _, err := c.Add(ctx, segment.Segment{Camera: "cam1", FeedID: "xx", Start: start, End: start.Add(10 * time.Second), Path: p, Size: 1e6}, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestQueueOrderBackoffAndStates(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	var ids []int64
	for i, start := range []time.Time{t0.Add(20 * time.Second), t0, t0.Add(10 * time.Second)} {
		r, err := c.Add(ctx, writeSegment(t, save, "cam1", start, 1000*(i+1)), "k")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	due, _ := c.Due(ctx, 10, nil)
	if len(due) != 3 || due[0].ID != ids[1] || due[1].ID != ids[2] || due[2].ID != ids[0] {
		t.Fatalf("Due order = %v, want oldest first", recIDs(due))
	}
	if due, _ := c.Due(ctx, 10, map[int64]bool{ids[1]: true}); len(due) != 2 || due[0].ID != ids[2] {
		t.Errorf("Due with a busy id = %v", recIDs(due))
	}
	b, _ := c.Backlog(ctx)
	if b.Count != 3 || b.Bytes != 6000 || !b.Oldest.Equal(t0) {
		t.Errorf("backlog = %+v", b)
	}

	// An attempt: the row is not due while it runs.
	c.StartAttempt(ctx, ids[1])
	if r, _ := c.Get(ctx, ids[1]); r.Upload != Uploading || r.Attempts != 1 {
		t.Errorf("after StartAttempt: %+v", r)
	}
	if due, _ := c.Due(ctx, 10, nil); len(due) != 2 {
		t.Errorf("a row under way is due: %v", recIDs(due))
	}
	// It fails: due again as far as the catalog knows (the uploader keeps
	// the backoff on the monotonic clock), with the planned time for people.
	c.MarkFailed(ctx, ids[1], "S3 unreachable", t0.Add(time.Minute))
	if due, _ := c.Due(ctx, 10, nil); len(due) != 3 {
		t.Errorf("a failed row is not due: %v", recIDs(due))
	}
	r, _ := c.Get(ctx, ids[1])
	if r.Upload != Pending || r.LastError != "S3 unreachable" || !r.NextAttempt.Equal(t0.Add(time.Minute)) || !r.VerifyRemote {
		t.Errorf("after MarkFailed: %+v", r)
	}

	c.StartAttempt(ctx, ids[2])
	c.SetChecksums(ctx, ids[2], "sha", "md5")
	c.MarkUploaded(ctx, ids[2], `"etag"`, "checksum-sha256")
	r, _ = c.Get(ctx, ids[2])
	if r.Upload != Uploaded || r.ETag != `"etag"` || r.SHA256 != "sha" || r.MD5 != "md5" || !r.UploadedAt.Equal(t0) || r.LastError != "" ||
		r.Verified != "checksum-sha256" {
		t.Errorf("after MarkUploaded: %+v", r)
	}
	c.MarkLocalDeleted(ctx, ids[2], CauseClearAfterUpload)
	r, _ = c.Get(ctx, ids[2])
	if r.Local != Deleted || r.DeleteCause != CauseClearAfterUpload {
		t.Errorf("after MarkLocalDeleted: %+v", r)
	}
	if b, _ := c.Backlog(ctx); b.Count != 2 || b.Bytes != 3000 {
		t.Errorf("backlog = %+v", b)
	}
}

func TestInterruptedUploadsAreRequeued(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	a, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0, 10), "k1")
	b, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(10*time.Second), 10), "k2")
	c.StartAttempt(ctx, a.ID)
	c.SetUploadID(ctx, a.ID, "upload-1")
	c.StartAttempt(ctx, b.ID)
	got, err := c.Interrupted(ctx)
	if err != nil || len(got) != 2 || got[0].UploadID != "upload-1" {
		t.Fatalf("Interrupted = %+v, %v", got, err)
	}
	for _, id := range []int64{a.ID, b.ID} {
		if r, _ := c.Get(ctx, id); r.Upload != Pending || !r.VerifyRemote {
			t.Errorf("row %d after Interrupted: %+v", id, r)
		}
	}
}

func TestReconcile(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	kept := writeSegment(t, save, "cam1", t0, 10)
	vanished := writeSegment(t, save, "cam1", t0.Add(10*time.Second), 10)
	returned := writeSegment(t, save, "cam2", t0, 10)
	var r Record
	for _, s := range []segment.Segment{kept, vanished, returned} {
		var err error
		if r, err = c.Add(ctx, s, "k"); err != nil {
			t.Fatal(err)
		}
	}
	c.MarkLocalDeleted(ctx, r.ID, "retention")
	os.Remove(vanished.Path)
	unknown := writeSegment(t, save, "cam3", t0.Add(time.Hour), 77)
	// Not segments: junk in a camera folder, and the daemon's own folders.
	os.WriteFile(filepath.Join(save, "cam1", "2026-01-06", "notes.txt"), nil, 0o644)
	os.MkdirAll(filepath.Join(save, ".staging", "cam1"), 0o755)
	os.WriteFile(filepath.Join(save, ".staging", "cam1", "x_00000.mp4"), nil, 0o644)

	res, err := c.Reconcile(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if res != (ReconcileResult{Added: 1, Missing: 1, Returned: 1, Ignored: 1}) {
		t.Errorf("result = %+v", res)
	}
	added, err := c.one(ctx, `WHERE camera = 'cam3'`)
	if err != nil || added.Path != unknown.Path || added.Bytes != 77 || added.Key != "rec/cam3/2026-01-06/"+filepath.Base(unknown.Path) ||
		!added.VerifyRemote || added.Upload != Pending || added.FeedID != "xx" || !added.Start.Equal(unknown.Start) {
		t.Errorf("added row = %+v, %v", added, err)
	}
	gone, _ := c.one(ctx, `WHERE path = ?`, "cam1/2026-01-06/"+filepath.Base(vanished.Path))
	if gone.Local != Missing || gone.DeleteCause != CauseVanished {
		t.Errorf("vanished row = %+v", gone)
	}
	if back, _ := c.Get(ctx, r.ID); back.Local != Present {
		t.Errorf("returned row = %+v", back)
	}
	// A second pass finds nothing to do.
	if res, _ := c.Reconcile(ctx, key); res != (ReconcileResult{Ignored: 1}) {
		t.Errorf("second pass = %+v", res)
	}
}

func TestCatalogSurvivesReopen(t *testing.T) {
	save := t.TempDir()
	path := filepath.Join(save, ".cctvd", layout.CatalogName)
	ctx := context.Background()
	c, err := Open(ctx, path, save, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0, 5), "k")
	c.Close()
	c, err = Open(ctx, path, save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Get(ctx, r.ID); err != nil || got.Key != "k" {
		t.Errorf("after reopen: %+v %v", got, err)
	}
}

func recIDs(rs []Record) []int64 {
	var ids []int64
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestListPagesNewestFirst(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	var ids []int64
	for i := range 5 {
		cam := "cam1"
		if i == 2 {
			cam = "cam2"
		}
		r, _ := c.Add(ctx, writeSegment(t, save, cam, t0.Add(time.Duration(i)*10*time.Second), 10), "k")
		ids = append(ids, r.ID)
	}
	c.MarkUploaded(ctx, ids[0], "e", "checksum-sha256")
	yes, no := true, false
	tests := []struct {
		name string
		f    Filter
		want []int64
		more bool
	}{
		{"first page", Filter{Limit: 2}, []int64{ids[4], ids[3]}, true},
		{"one camera", Filter{Camera: "cam2", Limit: 10}, []int64{ids[2]}, false},
		{"time window overlaps", Filter{From: t0.Add(15 * time.Second), To: t0.Add(25 * time.Second), Limit: 10}, []int64{ids[2], ids[1]}, false},
		{"uploaded", Filter{Uploaded: &yes, Limit: 10}, []int64{ids[0]}, false},
		{"not uploaded", Filter{Uploaded: &no, Limit: 10}, []int64{ids[4], ids[3], ids[2], ids[1]}, false},
		{"next page", Filter{Limit: 2, After: &Cursor{StartNS: t0.Add(30 * time.Second).UnixNano(), ID: ids[3]}}, []int64{ids[2], ids[1]}, true},
		{"present only", Filter{Present: &yes, Limit: 10}, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := c.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(recIDs(got)) != fmt.Sprint(tt.want) || (next != nil) != tt.more {
				t.Errorf("List = %v (next %v), want %v (more %v)", recIDs(got), next, tt.want, tt.more)
			}
		})
	}
}

func TestStoppedCamerasPersist(t *testing.T) {
	c, _ := open(t)
	ctx := context.Background()
	c.SetStopped(ctx, "cam1", true)
	c.SetStopped(ctx, "cam2", true)
	c.SetStopped(ctx, "cam2", false)
	got, err := c.Stopped(ctx)
	if err != nil || len(got) != 1 || !got["cam1"] {
		t.Errorf("Stopped = %v %v", got, err)
	}
}

// TestEveryCommitIsSynced: every connection of the pool runs with
// synchronous=FULL (2), so no commit that precedes an unlink can be rolled
// back by a power cut.
func TestEveryCommitIsSynced(t *testing.T) {
	c, _ := open(t)
	ctx := context.Background()
	var conns []*sql.Conn
	for range 3 { // the pool's size: each is a new connection
		conn, err := c.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		var mode, journal string
		if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil {
			t.Fatal(err)
		}
		if mode != "2" || journal != "wal" {
			t.Errorf("connection %d: synchronous=%s journal_mode=%s, want 2 (FULL) and wal", len(conns), mode, journal)
		}
	}
	for _, conn := range conns {
		conn.Close()
	}
}

// TestReconcilePassesOverFoldersNoCameraOwns: savePath at the top of an
// ext4 disk holds lost+found (root's, mode 0700: unreadable to the cctvd
// user). Reconcile passes over it, and what it finds elsewhere counts.
func TestReconcilePassesOverFoldersNoCameraOwns(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	if err := os.Mkdir(filepath.Join(save, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(save, "lost+found", "#12"), []byte("x"), 0o600)
	s := writeSegment(t, save, "cam1", t0, 10)
	res, err := c.Reconcile(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Ignored != 1 {
		t.Errorf("result = %+v, want the segment added and lost+found ignored", res)
	}
	if _, err := c.ByPath(ctx, s.Path); err != nil {
		t.Errorf("the segment has no row: %v", err)
	}
}

// TestReturnedFileIsCheckedAgainstS3: a row says uploaded and deleted; a
// file is back under its name (a retention crash between record and
// unlink, or, after a clock step, new footage under a repeated name). It
// is not taken for the old upload: it waits to be checked against S3
// (size and sha256), with its own size.
func TestReturnedFileIsCheckedAgainstS3(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	seg := writeSegment(t, save, "cam1", t0, 100)
	r, err := c.Add(ctx, seg, "k")
	if err != nil {
		t.Fatal(err)
	}
	c.SetChecksums(ctx, r.ID, fileSHA256(seg.Path), "bb")
	c.MarkUploaded(ctx, r.ID, `"e"`, "test")
	c.MarkLocalDeleted(ctx, r.ID, CauseClearAfterUpload)
	// The same file back (a crash between record and unlink): still uploaded.
	if res, err := c.Reconcile(ctx, key); err != nil || res.Returned != 1 {
		t.Fatalf("reconcile = %+v, %v", res, err)
	}
	if back, _ := c.Get(ctx, r.ID); back.Local != Present || back.Upload != Uploaded || back.VerifyRemote {
		t.Errorf("the same file back: row = %+v, want present and uploaded", back)
	}
	c.MarkLocalDeleted(ctx, r.ID, CauseClearAfterUpload)
	if err := os.WriteFile(seg.Path, make([]byte, 300), 0o644); err != nil { // other footage, same name
		t.Fatal(err)
	}
	if res, err := c.Reconcile(ctx, key); err != nil || res.Returned != 1 {
		t.Fatalf("reconcile = %+v, %v", res, err)
	}
	back, _ := c.Get(ctx, r.ID)
	if back.Local != Present || back.Upload != Pending || !back.VerifyRemote || back.Bytes != 300 || back.SHA256 != "" {
		t.Errorf("returned row = %+v: want present, pending, to be checked, 300 bytes, no checksum", back)
	}
	if tot, _ := c.Totals(ctx); tot.Bytes != 300 || tot.Count != 1 {
		t.Errorf("totals = %+v", tot)
	}
}
