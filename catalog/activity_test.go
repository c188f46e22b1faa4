package catalog

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/activity"
)

func summary(score float64, ivls ...activity.Interval) activity.Summary {
	s := activity.Summary{Score: score, Frames: 10, Intervals: ivls}
	s.Heatmap[3], s.Heatmap[200] = 9, 255
	return s
}

func ivl(start, end, peak time.Duration, level float64) activity.Interval {
	return activity.Interval{Start: start, End: end, Peak: peak, Level: level}
}

func TestActivityRoundTripsAndJoinsAcrossSegments(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	a := writeSegment(t, save, "cam1", t0, 10)
	b := writeSegment(t, save, "cam1", t0.Add(10*time.Second), 10)
	other := writeSegment(t, save, "cam2", t0, 10)
	ra, _ := c.Add(ctx, a, "k/a")
	rb, _ := c.Add(ctx, b, "k/b")
	rq, _ := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(20*time.Second), 10), "k/q")
	// One interval from 6 s into a to 3 s into b (cut at the boundary),
	// another later in b; cam2's own.
	sa := summary(0.4, ivl(6*time.Second, 10*time.Second, 8*time.Second, 0.05))
	sb := summary(0.5, ivl(0, 3*time.Second, time.Second, 0.08), ivl(5*time.Second, 7*time.Second, 6*time.Second, 0.02))
	for _, err := range []error{
		c.SetActivity(ctx, a.Path, "cam1", a.Start, a.End, sa),
		c.SetActivity(ctx, b.Path, "cam1", b.Start, b.End, sb),
		c.SetActivity(ctx, other.Path, "cam2", other.Start, other.End, summary(1, ivl(0, 10*time.Second, 0, 0.3))),
		// Another file's activity: not the unanalysed segment q's.
		c.SetActivity(ctx, filepath.Join(save, "cam1/2026-01-06/q.mp4"), "cam1", t0.Add(20*time.Second), t0.Add(30*time.Second), summary(0)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := c.SegmentActivity(ctx, rb.ID)
	if err != nil || !ok || got.Score != 0.5 || got.Frames != 10 || got.Heatmap != sb.Heatmap || !slices.Equal(got.Intervals, sb.Intervals) {
		t.Errorf("segment b's activity = %+v, %v, %v; want %+v", got, ok, err, sb)
	}
	if _, ok, err := c.SegmentActivity(ctx, rq.ID); ok || err != nil {
		t.Errorf("a segment never analysed has activity: %v, %v", ok, err)
	}
	ivs, err := c.Activity(ctx, "cam1", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []ActivityInterval{
		{Camera: "cam1", Start: t0.Add(6 * time.Second), End: t0.Add(13 * time.Second), Peak: t0.Add(11 * time.Second), Level: 0.08},
		{Camera: "cam1", Start: t0.Add(15 * time.Second), End: t0.Add(17 * time.Second), Peak: t0.Add(16 * time.Second), Level: 0.02},
	}
	if !slices.Equal(ivs, want) {
		t.Errorf("cam1's activity = %+v\nwant %+v", ivs, want)
	}
	// A range that cuts into the first interval still finds it; one after
	// both finds nothing.
	if ivs, _ := c.Activity(ctx, "cam1", t0.Add(12*time.Second), t0.Add(14*time.Second)); len(ivs) != 1 || !ivs[0].Start.Equal(t0.Add(6*time.Second)) {
		t.Errorf("activity of [12 s, 14 s) = %+v", ivs)
	}
	if ivs, _ := c.Activity(ctx, "cam1", t0.Add(9*time.Second), t0.Add(9500*time.Millisecond)); len(ivs) != 1 || !ivs[0].End.Equal(t0.Add(13*time.Second)) {
		t.Errorf("activity of [9 s, 9.5 s) = %+v, want the interval to 13 s", ivs)
	}
	// Up to a limit: the first, whole (joined across the boundary).
	if ivs, err := c.ActivityUpTo(ctx, "cam1", t0, t0.Add(time.Hour), 1); err != nil || !slices.Equal(ivs, want[:1]) {
		t.Errorf("the first interval = %+v, %v; want %+v", ivs, err, want[:1])
	}
	if ivs, _ := c.Activity(ctx, "cam1", t0.Add(17*time.Second), t0.Add(time.Hour)); len(ivs) != 0 {
		t.Errorf("activity after the last interval = %+v", ivs)
	}
	scores, err := c.ActivityScores(ctx, []int64{ra.ID, rb.ID, rq.ID})
	if err != nil || len(scores) != 2 || scores[ra.ID] != 0.4 || scores[rb.ID] != 0.5 {
		t.Errorf("scores = %v, %v", scores, err)
	}
	// Recorded again (a late final): replaced, not added to.
	if err := c.SetActivity(ctx, b.Path, "cam1", b.Start, b.End, summary(0.1, ivl(0, time.Second, 0, 0.01))); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := c.SegmentActivity(ctx, rb.ID); got.Score != 0.1 || len(got.Intervals) != 1 {
		t.Errorf("after recording b again: %+v", got)
	}
}

func TestActivityGoesWithItsSegment(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	seg := writeSegment(t, save, "cam1", t0, 10)
	r, _ := c.Add(ctx, seg, "k/a")
	if err := c.SetActivity(ctx, seg.Path, "cam1", seg.Start, seg.End, summary(0.3, ivl(time.Second, 2*time.Second, time.Second, 0.1))); err != nil {
		t.Fatal(err)
	}
	// Moved to the quarantine: the activity follows the path.
	q := filepath.Join(save, ".quarantine", "cam1", seg.Name())
	if err := c.MarkQuarantined(ctx, r.ID, q, "test"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.SegmentActivity(ctx, r.ID); !ok {
		t.Error("the activity of a quarantined segment is lost")
	}
	// Pruned: gone with the row.
	if err := c.MarkUploaded(ctx, r.ID, "e", "test"); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkLocalDeleted(ctx, r.ID, CauseClearAfterUpload); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prune(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var n int
	c.db.QueryRow(`SELECT (SELECT COUNT(*) FROM activity) + (SELECT COUNT(*) FROM activity_segments)`).Scan(&n)
	if n != 0 {
		t.Errorf("%d activity rows outlive their pruned segment", n)
	}
}

// preActivityMigrations is how many migrations the catalog had before
// the activity index (main's decode lane, buckets and resume records).
var preActivityMigrations = slices.Index(migrations, migrateActivity)

// A catalog of the schema before activity gains the tables and keeps
// every row.
func TestActivityMigrationKeepsEveryRow(t *testing.T) {
	save := t.TempDir()
	ctx := context.Background()
	var rows []string
	for i := range 5 {
		rows = append(rows, fmt.Sprintf(`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, s3_key, created_ns)
			VALUES ('cam1', 'xx', %d, %d, 'cam1/2026-01-06/%d.mp4', 10, 'k%d', 1)`, 10*i+1, 10*i+11, i, i))
	}
	path := oldCatalog(t, save, preActivityMigrations, rows...)
	c2, err := Open(ctx, path, save, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var n, version int
	c2.db.QueryRow(`SELECT COUNT(*) FROM segments`).Scan(&n)
	c2.db.QueryRow(`PRAGMA user_version`).Scan(&version)
	if n != 5 || version != len(migrations) {
		t.Errorf("after the migration: %d rows (want 5), schema %d (want %d)", n, version, len(migrations))
	}
	seg := writeSegment(t, save, "cam1", t0.Add(time.Hour), 10)
	if _, err := c2.Add(ctx, seg, "k"); err != nil {
		t.Fatal(err)
	}
	if err := c2.SetActivity(ctx, seg.Path, "cam1", seg.Start, seg.End, summary(0.5)); err != nil {
		t.Errorf("the migrated catalog takes no activity: %v", err)
	}
}

func TestRetentionKeepsRecentActivityLonger(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	var ids []int64
	// Six segments, oldest first: 0-3 uploaded, 4-5 not; 1, 3 and 5 have
	// activity, 1 older than the horizon.
	for i := range 6 {
		seg := writeSegment(t, save, "cam1", t0.Add(time.Duration(i)*time.Hour), 10)
		r, err := c.Add(ctx, seg, "k")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		if i < 4 {
			c.MarkUploaded(ctx, r.ID, "e", "test")
		}
		score := 0.0
		if i%2 == 1 {
			score = 0.2
		}
		if err := c.SetActivity(ctx, seg.Path, "cam1", seg.Start, seg.End, summary(score)); err != nil {
			t.Fatal(err)
		}
	}
	order := func(rs []Record) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	horizon := t0.Add(2 * time.Hour) // segment 1 (at 1 h) had its activity before it
	got, err := c.RetentionCandidatesKeepingActive(ctx, 10, horizon)
	if err != nil {
		t.Fatal(err)
	}
	// 1's activity is older than the horizon: it goes as quiet.
	want := []int64{ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]}
	if !slices.Equal(order(got), want) {
		t.Errorf("order = %v, want %v", order(got), want)
	}
	// A later horizon keeps 3 and 1 back too: quiet uploaded, active
	// uploaded, quiet others, active others.
	got, _ = c.RetentionCandidatesKeepingActive(ctx, 10, t0)
	if want := []int64{ids[0], ids[2], ids[1], ids[3], ids[4], ids[5]}; !slices.Equal(order(got), want) {
		t.Errorf("order with every activity recent = %v, want %v", order(got), want)
	}
	if got, _ := c.RetentionCandidatesKeepingActive(ctx, 2, t0); !slices.Equal(order(got), []int64{ids[0], ids[2]}) {
		t.Errorf("the first two = %v", order(got))
	}
	plain, _ := c.RetentionCandidates(ctx, 10)
	if !slices.Equal(order(plain), []int64{ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]}) {
		t.Errorf("without keepActiveDays the order changed: %v", order(plain))
	}
}

func TestActivityQueriesUseIndexes(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	for i := range 50 {
		seg := writeSegment(t, save, "cam1", t0.Add(-time10s(i)), 1)
		c.Add(ctx, seg, "k")
		c.SetActivity(ctx, seg.Path, "cam1", seg.Start, seg.End, summary(0.1, ivl(0, time.Second, 0, 0.1)))
	}
	for _, q := range []struct {
		name, sql string
		args      []any
		want      string
	}{
		{"Activity", qActivity, []any{"cam1", 1, 2, 3}, "PRIMARY KEY (camera=? AND start_ns>? AND start_ns<?)"},
		{"SegmentActivity", qSegmentActivity, []any{1}, "INTEGER PRIMARY KEY (rowid=?)"},
		{"SegmentIntervals", qSegmentIntervals, []any{"x"}, "activity_path (path=?)"},
		{"Retention (uploaded, quiet)", `SELECT ` + columns + ` FROM segments ` + qRetentionUploadedQuiet, []any{false, 1, 64}, "segments_retention_uploaded (sub=?)"},
		{"Retention (others, active)", `SELECT ` + columns + ` FROM segments ` + qRetentionOthersActive, []any{true, 1, 64}, "segments_retention_others (sub=?"},
	} {
		plan := queryPlan(t, c, q.sql, q.args...)
		joined := strings.Join(plan, " | ")
		for _, step := range plan {
			if readsEveryRow(step) {
				t.Errorf("%s reads every row: %s", q.name, joined)
			}
		}
		if !strings.Contains(joined, q.want) {
			t.Errorf("%s does not search %s: %s", q.name, q.want, joined)
		}
	}
}
