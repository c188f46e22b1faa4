package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cctvd/cctvd/layout"
)

func TestDueSkipsAcrossPages(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	var ids []int64
	for i := range 100 {
		r, err := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(time.Duration(i)*10*time.Second), 1), "k")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// The 90 oldest wait in their backoff: the queue must reach past them
	// (more than a page) to the 10 that are due.
	skip := map[int64]bool{}
	for _, id := range ids[:90] {
		skip[id] = true
	}
	due, err := c.Due(ctx, 3, skip)
	if err != nil || fmt.Sprint(recIDs(due)) != fmt.Sprint(ids[90:93]) {
		t.Errorf("Due = %v, %v; want %v", recIDs(due), err, ids[90:93])
	}
	for _, id := range ids[90:] {
		skip[id] = true
	}
	if due, err := c.Due(ctx, 3, skip); err != nil || len(due) != 0 {
		t.Errorf("Due with everything skipped = %v, %v", recIDs(due), err)
	}
}

func TestConflictAndQuarantine(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	a, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0, 100), "rec/a.mp4")
	b, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(10*time.Second), 50), "rec/b.mp4")

	// A conflict keeps the first key, however often it happens.
	c.SetConflict(ctx, a.ID, "rec/a.conflict-1.mp4")
	c.SetConflict(ctx, a.ID, "rec/a.conflict-2.mp4")
	got, _ := c.Get(ctx, a.ID)
	if got.Key != "rec/a.conflict-2.mp4" || got.ConflictKey != "rec/a.mp4" {
		t.Errorf("after SetConflict: key %q, conflict %q", got.Key, got.ConflictKey)
	}

	c.StartAttempt(ctx, b.ID)
	q := filepath.Join(save, ".quarantine", "cam1", b.Name())
	if err := c.MarkQuarantined(ctx, b.ID, q, "empty file"); err != nil {
		t.Fatal(err)
	}
	got, _ = c.Get(ctx, b.ID)
	if got.Local != Quarantined || got.Path != q || got.DeleteCause != CauseCorrupt || got.LastError != "empty file" ||
		got.Upload != Pending || got.DeletedAt.IsZero() {
		t.Errorf("after MarkQuarantined: %+v", got)
	}
	if due, _ := c.Due(ctx, 10, nil); len(due) != 1 || due[0].ID != a.ID {
		t.Errorf("a quarantined row is due: %v", recIDs(due))
	}
	if tot, _ := c.Totals(ctx); tot.Count != 1 || tot.Bytes != 100 {
		t.Errorf("totals count a quarantined file: %+v", tot)
	}
	if bl, _ := c.Backlog(ctx); bl.Count != 1 {
		t.Errorf("backlog counts a quarantined file: %+v", bl)
	}
	// Reconcile leaves it alone (its file is not under a camera folder).
	os.MkdirAll(filepath.Dir(q), 0o755)
	os.Rename(b.Path, q)
	if res, err := c.Reconcile(ctx, key); err != nil || res != (ReconcileResult{}) {
		t.Errorf("reconcile = %+v, %v", res, err)
	}
	if got, _ := c.Get(ctx, b.ID); got.Local != Quarantined {
		t.Errorf("after reconcile: %+v", got)
	}
}

// v010Migrations is how many migrations cctvd v0.1.0 had: its catalogs are
// at that schema version.
const v010Migrations = 4

// TestUpgradeFromV010 opens a catalog as cctvd v0.1.0 left it: every row is
// kept with its values, and the new columns start empty.
func TestUpgradeFromV010(t *testing.T) {
	save := t.TempDir()
	path := filepath.Join(save, ".cctvd", layout.CatalogName)
	os.MkdirAll(filepath.Dir(path), 0o755)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:v010Migrations] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("v0.1.0 migration %d: %v", i+1, err)
		}
	}
	db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v010Migrations))
	// v0.1.0's rows: one uploaded, one pending after failures, one deleted.
	for _, q := range []string{
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, sha256, md5, upload, s3_key, etag, uploaded_ns, created_ns)
			VALUES ('cam1', 'xx', 1, 2, 'cam1/2026-01-06/a.mp4', 10, 'sha-a', 'md5-a', 'uploaded', 'rec/a.mp4', '"e"', 3, 1)`,
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, attempts, next_attempt_ns, last_error, verify_remote, created_ns)
			VALUES ('cam1', 'xx', 2, 3, 'cam1/2026-01-06/b.mp4', 20, 'pending', 'rec/b.mp4', 4, 99, 'S3 unreachable', 1, 2)`,
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, local, deleted_ns, delete_cause, created_ns)
			VALUES ('cam2', 'xx', 1, 2, 'cam2/2026-01-06/c.mp4', 30, 'uploaded', 'rec/c.mp4', 'deleted', 5, 'clear-after-upload', 1)`,
		`INSERT INTO gaps (camera, start_ns, end_ns, cause) VALUES ('cam1', 1, 2, 'stall')`,
		`INSERT INTO cameras (camera, stopped, changed_ns) VALUES ('cam2', 1, 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	c, err := Open(context.Background(), path, save, nil)
	if err != nil {
		t.Fatalf("open a v0.1.0 catalog: %v", err)
	}
	defer c.Close()
	ctx := context.Background()
	rows, err := c.many(ctx, `ORDER BY id`)
	if err != nil || len(rows) != 3 {
		t.Fatalf("rows after the upgrade: %d, %v", len(rows), err)
	}
	a, b, d := rows[0], rows[1], rows[2]
	if a.Upload != Uploaded || a.SHA256 != "sha-a" || a.ETag != `"e"` || a.Key != "rec/a.mp4" || a.ConflictKey != "" || a.Verified != "" || a.MustDecode {
		t.Errorf("uploaded row: %+v", a)
	}
	if b.Upload != Pending || b.Attempts != 4 || b.LastError != "S3 unreachable" || !b.VerifyRemote || !b.MustDecode {
		t.Errorf("pending row: %+v", b)
	}
	if d.Local != Deleted || d.DeleteCause != CauseClearAfterUpload {
		t.Errorf("deleted row: %+v", d)
	}
	if tot, _ := c.Totals(ctx); tot.Count != 2 || tot.Bytes != 30 {
		t.Errorf("totals: %+v", tot)
	}
	if g, _ := c.Gaps(ctx, "cam1", time.Time{}, time.Time{}); len(g) != 1 {
		t.Errorf("gaps: %+v", g)
	}
	if s, _ := c.Stopped(ctx); !s["cam2"] {
		t.Errorf("stopped cameras: %v", s)
	}
	// The pending row is due (its old wall-clock next attempt means nothing now).
	if due, _ := c.Due(ctx, 10, nil); len(due) != 1 || due[0].ID != b.ID {
		t.Errorf("due after the upgrade: %v", recIDs(due))
	}
}

// TestMustDecode: rows whose file cctvd did not see close (rebuilt from the
// disk, salvaged, back after being marked gone) are decoded before upload;
// segments the segmenter reports are not.
func TestMustDecode(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	fresh, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0, 10), "k1")
	salv := writeSegment(t, save, "cam1", t0.Add(10*time.Second), 10)
	salv.Salvaged = true
	salvaged, _ := c.Add(ctx, salv, "k2")
	writeSegment(t, save, "cam2", t0, 10)
	gone, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(20*time.Second), 10), "k3")
	c.MarkLocalDeleted(ctx, gone.ID, "retention")
	if _, err := c.Reconcile(ctx, key); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := c.one(ctx, `WHERE camera = 'cam2'`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		id   int64
		want bool
	}{{"fresh", fresh.ID, false}, {"salvaged", salvaged.ID, true}, {"rebuilt", rebuilt.ID, true}, {"returned", gone.ID, true}} {
		if r, _ := c.Get(ctx, tt.id); r.MustDecode != tt.want {
			t.Errorf("%s: MustDecode %v, want %v", tt.name, r.MustDecode, tt.want)
		}
	}
	c.SetDecoded(ctx, rebuilt.ID)
	c.MarkFailed(ctx, rebuilt.ID, "x", t0)
	if r, _ := c.Get(ctx, rebuilt.ID); r.MustDecode {
		t.Error("still to decode after SetDecoded")
	}
}

// TestDecodeLaneQueue: a row handed to the decode lane is not due for
// upload until it has a verdict; the lane takes the rows tried least often
// first; a verdict (passed, skipped) makes it due again, flagged.
func TestDecodeLaneQueue(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	var recs []Record
	for i := range 4 {
		seg := writeSegment(t, save, "cam1", t0.Add(time.Duration(i)*10*time.Second), 10)
		seg.Salvaged = true
		r, err := c.Add(ctx, seg, fmt.Sprint("k", i))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	fresh, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(time.Hour), 10), "fresh")
	for _, r := range recs[:3] {
		c.StartAttempt(ctx, r.ID)
		if err := c.AwaitDecode(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	if due, _ := c.Due(ctx, 10, nil); fmt.Sprint(recIDs(due)) != fmt.Sprint([]int64{recs[3].ID, fresh.ID}) {
		t.Errorf("due for upload: %v, want the row not handed over and the fresh one", recIDs(due))
	}
	if r, _ := c.Get(ctx, recs[0].ID); r.Upload != Pending || r.DecodeCheck != DecodeWaiting || r.Attempts != 0 {
		t.Errorf("handed over: %s, %q, %d attempts", r.Upload, r.DecodeCheck, r.Attempts)
	}
	if b, _ := c.Backlog(ctx); b.Count != 5 || b.Decoding != 3 {
		t.Errorf("backlog %+v, want 5 waiting, 3 of them for a decode", b)
	}
	// The oldest's checker fails: it goes behind the others.
	if n, err := c.DecodeFailedToRun(ctx, recs[0].ID, "ffprobe: signal: killed"); err != nil || n != 1 {
		t.Fatalf("DecodeFailedToRun = %d, %v", n, err)
	}
	if due, _ := c.DecodeDue(ctx, 10, nil); fmt.Sprint(recIDs(due)) != fmt.Sprint([]int64{recs[1].ID, recs[2].ID, recs[0].ID}) {
		t.Errorf("decode lane order %v", recIDs(due))
	}
	if due, _ := c.DecodeDue(ctx, 1, map[int64]bool{recs[1].ID: true}); fmt.Sprint(recIDs(due)) != fmt.Sprint([]int64{recs[2].ID}) {
		t.Errorf("decode lane order with a row in its backoff %v", recIDs(due))
	}
	c.SkipDecode(ctx, recs[0].ID)
	c.SetDecoded(ctx, recs[1].ID)
	c.MarkQuarantined(ctx, recs[2].ID, filepath.Join(save, ".quarantine", "cam1", recs[2].Name()), "undecodable")
	for _, tt := range []struct {
		r     Record
		check string
	}{{recs[0], DecodeSkipped}, {recs[1], DecodePassed}, {recs[2], DecodeFailed}} {
		if r, _ := c.Get(ctx, tt.r.ID); r.DecodeCheck != tt.check || (r.MustDecode && tt.check != DecodeFailed) {
			t.Errorf("%s: decode check %q, must decode %v; want %q", r.Name(), r.DecodeCheck, r.MustDecode, tt.check)
		}
	}
	if due, _ := c.DecodeDue(ctx, 10, nil); len(due) != 0 {
		t.Errorf("the decode lane still has %v", recIDs(due))
	}
	if due, _ := c.Due(ctx, 10, nil); fmt.Sprint(recIDs(due)) != fmt.Sprint([]int64{recs[0].ID, recs[1].ID, recs[3].ID, fresh.ID}) {
		t.Errorf("due for upload after the verdicts: %v", recIDs(due))
	}
	if b, _ := c.Backlog(ctx); b.Decoding != 0 {
		t.Errorf("backlog %+v", b)
	}
}
