package catalog

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// writeFeedSegment is writeSegment for a camera's sub feed ("xx-sub").
func writeFeedSegment(t *testing.T, save, camera string, start time.Time, size int) segment.Segment {
	t.Helper()
	end := start.Add(10 * time.Second)
	dir := filepath.Join(save, layout.DayRel(camera, start))
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, segment.Name(camera, "xx-sub", start, end, 0))
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return segment.Segment{Camera: camera, FeedID: "xx-sub", Start: start, End: end, Path: p, Size: int64(size), Sub: true}
}

func ids(rs []Record) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// TestRetentionTakesMainBeforeSub: uploaded footage goes first, then the
// rest, oldest first with a sub segment's age counted at 1/SubReach: an
// hour on, the main footage of these minutes goes before their sub copy,
// which so reaches further back.
func TestRetentionTakesMainBeforeSub(t *testing.T) {
	c, save := openAt(t, t0.Add(time.Hour))
	ctx := context.Background()
	add := func(s segment.Segment) Record {
		r, err := c.Add(ctx, s, key(s.Name()))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	subOld := add(writeFeedSegment(t, save, "cam1", t0, 10))
	mainOld := add(writeSegment(t, save, "cam1", t0, 100))
	subNew := add(writeFeedSegment(t, save, "cam1", t0.Add(time.Minute), 10))
	mainNew := add(writeSegment(t, save, "cam1", t0.Add(time.Minute), 100))
	subUp := add(writeFeedSegment(t, save, "cam1", t0.Add(2*time.Minute), 10))
	mainUp := add(writeSegment(t, save, "cam1", t0.Add(3*time.Minute), 100))
	for _, r := range []Record{subUp, mainUp} {
		if err := c.MarkUploaded(ctx, r.ID, "e", "sha256"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.RetentionCandidates(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{mainUp.ID, subUp.ID, mainOld.ID, mainNew.ID, subOld.ID, subNew.ID}
	if g := ids(got); len(g) != len(want) || func() bool {
		for i := range g {
			if g[i] != want[i] {
				return true
			}
		}
		return false
	}() {
		t.Errorf("retention order %v, want %v", g, want)
	}
	if got[4].Sub != true || got[2].Sub != false {
		t.Errorf("rows do not say their feed: %+v", got)
	}
	reach, err := c.Reach(ctx, "cam1")
	if err != nil || len(reach) != 2 || reach[0].FeedID != "xx" || reach[1].FeedID != "xx-sub" || !reach[1].Sub ||
		!reach[0].Local.Equal(t0) || !reach[1].Remote.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("reach = %+v, %v", reach, err)
	}
}

// TestDueFeedAndRequests: each feed's queue, and an upload request's main
// rows, kept across a reopen and closed once its range is in S3.
func TestDueFeedAndRequests(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	var mains, subs []Record
	for i := range 4 {
		r, err := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(time10s(i)), 100), key("m"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		mains = append(mains, r)
		s, err := c.Add(ctx, writeFeedSegment(t, save, "cam1", t0.Add(time10s(i)), 10), key("s"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	got, err := c.DueFeed(ctx, true, false, 10, map[int64]bool{subs[0].ID: true})
	if err != nil || len(got) != 3 || got[0].ID != subs[1].ID || !got[0].Sub {
		t.Fatalf("sub due = %v, %v", ids(got), err)
	}
	got, _ = c.DueFeed(ctx, false, true, 2, nil)
	if len(got) != 2 || got[0].ID != mains[3].ID {
		t.Fatalf("main due, newest first = %v", ids(got))
	}
	if got, _ := c.RequestedDue(ctx, 10, nil); len(got) != 0 {
		t.Fatalf("due on request without a request: %v", ids(got))
	}
	// The range covers the second and third main segments.
	req, err := c.AddUploadRequest(ctx, "cam1", t0.Add(15*time.Second), t0.Add(25*time.Second))
	if err != nil || req.Waiting != 2 {
		t.Fatalf("request = %+v, %v", req, err)
	}
	got, _ = c.RequestedDue(ctx, 10, nil)
	if len(got) != 2 || got[0].ID != mains[1].ID || got[1].ID != mains[2].ID {
		t.Fatalf("requested = %v, want %v", ids(got), []int64{mains[1].ID, mains[2].ID})
	}
	if n, _ := c.CloseUploadRequests(ctx, t0.Add(-time.Hour)); n != 0 {
		t.Fatalf("closed a request whose footage waits")
	}
	for _, r := range got {
		if err := c.MarkUploaded(ctx, r.ID, "e", "sha256"); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	c2, err := Open(ctx, c.Path(), save, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	open, err := c2.UploadRequests(ctx, t0)
	if err != nil || len(open) != 1 || open[0].Waiting != 0 || open[0].Uploaded != 2 || !open[0].Done.IsZero() {
		t.Fatalf("after a reopen: %+v, %v", open, err)
	}
	if n, err := c2.CloseUploadRequests(ctx, t0.Add(-time.Hour)); n != 1 || err != nil {
		t.Fatalf("closed %d, %v", n, err)
	}
	if rs, _ := c2.UploadRequests(ctx, t0.Add(time.Second)); len(rs) != 0 {
		t.Errorf("a closed request is still open: %+v", rs)
	}
}

// TestMarkSubFeeds: rows rebuilt without their feed are marked from the
// config.
func TestMarkSubFeeds(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	s := writeFeedSegment(t, save, "cam1", t0, 10)
	s.Sub = false // as Reconcile would add it
	if _, err := c.Add(ctx, s, key("s")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(ctx, writeSegment(t, save, "cam1", t0, 10), key("m")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.MarkSubFeeds(ctx, map[string]string{"cam1": "xx-sub"}); n != 1 || err != nil {
		t.Fatalf("marked %d, %v", n, err)
	}
	if got, _ := c.DueFeed(ctx, true, false, 10, nil); len(got) != 1 || got[0].FeedID != "xx-sub" {
		t.Errorf("sub rows = %+v", got)
	}
	// A sub file the running daemon's cross-check finds (its Add failed)
	// is a sub row too, not main footage held back by the feed policy.
	writeFeedSegment(t, save, "cam1", t0.Add(time.Minute), 10)
	if _, err := c.Reconcile(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.DueFeed(ctx, true, false, 10, nil); len(got) != 2 {
		t.Errorf("after a reconcile, sub rows = %+v, want the found file among them", got)
	}
	if got, _ := c.DueFeed(ctx, false, false, 10, nil); len(got) != 1 {
		t.Errorf("after a reconcile, main rows = %d, want 1", len(got))
	}
}

// preFeedsMigrations is how many migrations the catalog had before feeds
// (main's, up to the CRC-64 columns).
var preFeedsMigrations = slices.Index(migrations, migrationFeeds)

// TestFeedsMigrationKeepsEveryRow: a catalog of the schema before feeds
// opens with every row as it was, each a main row, and takes requests.
func TestFeedsMigrationKeepsEveryRow(t *testing.T) {
	save := t.TempDir()
	ctx := context.Background()
	path := oldCatalog(t, save, preFeedsMigrations,
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, created_ns)
			VALUES ('cam1', 'xx', 1, 2, 'cam1/2026-01-06/a.mp4', 10, 'pending', 'rec/a.mp4', 1)`,
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, etag, bucket, created_ns)
			VALUES ('cam1', 'xx', 2, 3, 'cam1/2026-01-06/b.mp4', 20, 'uploaded', 'rec/b.mp4', '"e"', 'bkt', 1)`)
	c, err := Open(ctx, path, save, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var version int
	c.db.QueryRow(`PRAGMA user_version`).Scan(&version)
	if version != len(migrations) {
		t.Errorf("schema %d after the migration, want %d", version, len(migrations))
	}
	rows, err := c.many(ctx, `ORDER BY id`)
	if err != nil || len(rows) != 2 || rows[0].Sub || rows[1].Sub || rows[0].Upload != Pending || rows[1].ETag != `"e"` || rows[1].Bucket != "bkt" {
		t.Fatalf("rows after the migration: %+v %v", rows, err)
	}
	if due, err := c.DueFeed(ctx, false, false, 10, nil); err != nil || len(due) != 1 || due[0].ID != rows[0].ID {
		t.Errorf("main due after the migration = %v, %v", ids(due), err)
	}
	if req, err := c.AddUploadRequest(ctx, "cam1", time.Unix(0, 0), time.Unix(0, 10)); err != nil || req.Waiting != 1 || req.Uploaded != 1 {
		t.Errorf("request after the migration = %+v, %v", req, err)
	}
}

// TestRetentionKeepingActiveTakesMainBeforeSub: with recent activity kept
// longer, a camera's main footage still goes before its sub footage, and
// a main segment its camera's activity (analysed on the sub feed)
// overlaps is kept back like an active one.
func TestRetentionKeepingActiveTakesMainBeforeSub(t *testing.T) {
	c, save := openAt(t, t0.Add(time.Hour))
	ctx := context.Background()
	var mains, subs []Record
	for i := range 3 {
		start := t0.Add(time10s(i))
		m, err := c.Add(ctx, writeSegment(t, save, "cam1", start, 100), key("m"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		seg := writeFeedSegment(t, save, "cam1", start, 10)
		s, err := c.Add(ctx, seg, key("s"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		score, ivls := 0.0, []activity.Interval(nil)
		if i == 0 { // the oldest: motion in its middle
			score, ivls = 0.3, []activity.Interval{ivl(2*time.Second, 5*time.Second, 3*time.Second, 0.2)}
		}
		if err := c.SetActivity(ctx, seg.Path, "cam1", seg.Start, seg.End, summary(score, ivls...)); err != nil {
			t.Fatal(err)
		}
		mains, subs = append(mains, m), append(subs, s)
	}
	got, err := c.RetentionCandidatesKeepingActive(ctx, 10, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{mains[1].ID, mains[2].ID, subs[1].ID, subs[2].ID, mains[0].ID, subs[0].ID}
	if !slices.Equal(ids(got), want) {
		t.Errorf("order = %v, want %v (the quiet ones, main before its sub copy, then the active ones)", ids(got), want)
	}
}

// TestWaitingBeforeFeed: an hour on, before a main segment retention
// deletes the main footage waiting before it; before a sub segment, the
// main footage waiting up to its retention time (SubReach: here all of it)
// and the sub footage waiting before it.
func TestWaitingBeforeFeed(t *testing.T) {
	c, save := openAt(t, t0.Add(time.Hour))
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(time10s(i)), 100), key("m"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Add(ctx, writeFeedSegment(t, save, "cam1", t0.Add(time10s(i)), 10), key("s"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(time10s(1)) // the second segments' start
	if n, err := c.WaitingBeforeFeed(ctx, false, at); n != 100 || err != nil {
		t.Errorf("before the second main: %d, %v (want 100)", n, err)
	}
	if n, err := c.WaitingBeforeFeed(ctx, true, at); n != 310 || err != nil {
		t.Errorf("before the second sub: %d, %v (want 310: three mains and one sub)", n, err)
	}
	if n, _ := c.WaitingBefore(ctx, at); n != 110 {
		t.Errorf("WaitingBefore, of both feeds: %d (want 110)", n)
	}
}

// TestDueActiveFeed: of each feed's due segments, those with activity (a
// sub by its score, a main by its camera's intervals over it), in the
// queue's order; uploaded ones and quiet ones are not.
func TestDueActiveFeed(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	var mains, subs []Record
	for i := range 4 {
		start := t0.Add(time10s(i))
		m, err := c.Add(ctx, writeSegment(t, save, "cam1", start, 100), key("m"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		seg := writeFeedSegment(t, save, "cam1", start, 10)
		s, err := c.Add(ctx, seg, key("s"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		score, ivls := 0.0, []activity.Interval(nil)
		if i == 1 || i == 3 { // motion in segments 1 and 3
			score, ivls = 0.3, []activity.Interval{ivl(2*time.Second, 5*time.Second, 3*time.Second, 0.2)}
		}
		if err := c.SetActivity(ctx, seg.Path, "cam1", seg.Start, seg.End, summary(score, ivls...)); err != nil {
			t.Fatal(err)
		}
		mains, subs = append(mains, m), append(subs, s)
	}
	if err := c.MarkUploaded(ctx, subs[3].ID, "e", "test"); err != nil { // already in S3
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sub, newest bool
		want        []int64
	}{
		{true, false, []int64{subs[1].ID}},
		{false, false, []int64{mains[1].ID, mains[3].ID}},
		{false, true, []int64{mains[3].ID, mains[1].ID}},
	} {
		got, err := c.DueActiveFeed(ctx, tt.sub, tt.newest, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("sub %v newest %v: %v, want %v", tt.sub, tt.newest, ids(got), tt.want)
		}
	}
	if got, _ := c.DueActiveFeed(ctx, false, false, 10, map[int64]bool{mains[1].ID: true}); !slices.Equal(ids(got), []int64{mains[3].ID}) {
		t.Errorf("with a skip: %v", ids(got))
	}
	// The plan reads the activity tables and the rows by their keys, never
	// every row of the backlog.
	for _, detail := range queryPlan(t, c, `SELECT `+columns+` FROM segments `+qDueActiveFeed, false, -1<<63, 0, 10) {
		if readsEveryRow(detail) {
			t.Errorf("DueActiveFeed reads every row: %s", detail)
		}
	}
}

// TestReachSeeksNotScans: how far back a camera's feeds reach is answered
// by index seeks, not by reading the camera's rows (the page asks at
// every refresh, of every camera).
func TestReachSeeksNotScans(t *testing.T) {
	c, _ := open(t)
	for _, q := range []string{
		`SELECT end_ns, sub FROM segments INDEXED BY segments_feed WHERE camera = 'cam1' AND feed_id = 'xx' ORDER BY start_ns DESC LIMIT 1`,
		`SELECT start_ns FROM segments INDEXED BY segments_local WHERE local = 'present' AND camera = 'cam1' AND feed_id = 'xx' ORDER BY start_ns LIMIT 1`,
		`SELECT (SELECT MIN(feed_id) FROM segments INDEXED BY segments_feed WHERE camera = 'cam1' AND feed_id > 'xx')`,
	} {
		for _, detail := range queryPlan(t, c, q) {
			if (readsEveryRow(detail) && detail != "SCAN CONSTANT ROW") || strings.Contains(detail, "TEMP B-TREE") {
				t.Errorf("%s: %s", q, detail)
			}
		}
	}
}
