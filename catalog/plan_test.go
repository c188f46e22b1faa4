package catalog

import (
	"context"
	"strings"
	"testing"
	"time"
)

// startupQueries are the queries the daemon runs at start-up and on every
// pass over the catalog, with placeholder arguments. Each must find its rows
// through an index: with a million rows a scan costs seconds.
var startupQueries = []struct {
	name, sql string
	args      []any
	// want is in the plan: the index search that bounds the rows read.
	want string
	// sorts: the rows found are few (open gaps, uploads cut short), so
	// sorting them is fine.
	sorts bool
}{
	{"Interrupted", `SELECT ` + columns + ` FROM segments ` + qInterrupted, nil, "segments_queue (upload=?)", true},
	{"Backlog", qBacklog, nil, "segments_queue (upload=? AND local=?)", false},
	{"Latest", `SELECT ` + columns + ` FROM segments ` + qLatest, []any{"cam1"}, "segments_camera (camera=?)", false},
	{"OpenGaps", `SELECT id FROM gaps ` + qOpenGaps, nil, "gaps_end (end_ns=?)", true},
	{"Stopped", qStopped, nil, "cameras_stopped", false},
	{"Totals", qTotals, nil, "PRIMARY KEY (rowid=?)", false},
	{"Due", `SELECT ` + columns + ` FROM segments ` + qDue, []any{1, 2, 3}, "segments_due (start_ns>?)", false},
	{"DueNewest", `SELECT ` + columns + ` FROM segments ` + qDueNewest, []any{1, 2, 3}, "segments_due (start_ns<?)", false},
	{"Produced", qProduced, []any{1}, "segments_start (start_ns>?)", true},
	{"UploadedPresent", qUploadedPresent, nil, "segments_queue (upload=? AND local=?)", false},
	{"WaitingBefore", qWaitingBefore, []any{1}, "segments_queue (upload=? AND local=? AND start_ns<?)", false},
	{"WaitingBeforeFeed", qWaitingBeforeFeed, []any{1, 2}, "segments_queue (upload=? AND local=?", false},
	{"DecodeDue", `SELECT ` + columns + ` FROM segments ` + qDecodeDue, []any{-1, 0, 0, 3}, "segments_decoding ((decode_tries,start_ns)>(?,?))", false},
	{"Backlog (decoding)", qDecodeWaiting, nil, "segments_decoding", false},
	{"RetentionCandidates (uploaded)", `SELECT ` + columns + ` FROM segments ` + qRetentionUploadedFeed, []any{false, 64}, "segments_retention_uploaded (sub=?)", false},
	{"RetentionCandidates (others)", `SELECT ` + columns + ` FROM segments ` + qRetentionOthersFeed, []any{true, 64}, "segments_retention_others (sub=?)", false},
	{"DueFeed", `SELECT ` + columns + ` FROM segments ` + qDueFeed, []any{true, 1, 2, 3}, "segments_due_feed (sub=? AND start_ns>?)", false},
	{"DueFeed (newest)", `SELECT ` + columns + ` FROM segments ` + qDueFeedNewest, []any{false, 1, 2, 3}, "segments_due_feed (sub=? AND start_ns<?)", false},
	{"LatestFeed", `SELECT ` + columns + ` FROM segments ` + qLatestFeed, []any{"cam1", "xx"}, "segments_feed (camera=? AND feed_id=?)", false},
	{"Reconcile (a day's rows)", qDayRows, []any{"cam1/2026-01-06/", "cam1/2026-01-060"}, "(path>? AND path<?)", false},
	{"Reconcile (next present row)", qNextPresent, []any{""}, "segments_present_path (path>?)", false},
	{"Reconcile (quarantined rows)", qQuarantined, nil, "segments_local (local=?)", false},
	{"Prune (segments)", qPruneSegments, []any{1, 2}, "segments_queue (upload=? AND local=? AND start_ns<?)", false},
	{"Prune (gaps)", qPruneGaps, []any{1, 2}, "gaps_end (end_ns>? AND end_ns<?)", false},
}

// partialIndexes hold only the rows a query wants: reading one whole is
// not a scan of the table.
var partialIndexes = []string{"cameras_stopped", "segments_upload_id", "segments_present_path", "segments_due", "segments_decoding",
	"segments_due_feed", "segments_retention_uploaded", "segments_retention_others"}

// readsEveryRow says whether a step of a plan reads a whole table (or a
// whole index of it).
func readsEveryRow(step string) bool {
	if !strings.HasPrefix(step, "SCAN ") {
		return false
	}
	for _, p := range partialIndexes {
		if strings.HasSuffix(step, " INDEX "+p) {
			return false
		}
	}
	return true
}

func TestStartupQueriesUseIndexes(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	for i := range 50 {
		writeSegment(t, save, "cam1", t0.Add(-time10s(i)), 1)
	}
	if _, err := c.Reconcile(ctx, key); err != nil {
		t.Fatal(err)
	}
	for _, q := range startupQueries {
		plan := queryPlan(t, c, q.sql, q.args...)
		for _, step := range plan {
			if readsEveryRow(step) || (!q.sorts && strings.Contains(step, "TEMP B-TREE FOR ORDER BY")) {
				t.Errorf("%s reads every row: %s", q.name, strings.Join(plan, " | "))
			}
		}
		if !strings.Contains(strings.Join(plan, " | "), q.want) {
			t.Errorf("%s does not search %s: %s", q.name, q.want, strings.Join(plan, " | "))
		}
		t.Logf("%s: %s", q.name, strings.Join(plan, " | "))
	}
}

func time10s(i int) time.Duration { return time.Duration(i) * 10 * time.Second }

// queryPlan is SQLite's plan of query: one detail per step.
func queryPlan(t *testing.T, c *Catalog, query string, args ...any) []string {
	t.Helper()
	rows, err := c.db.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatalf("plan of %s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}
