package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cctvd/cctvd/activity"
)

// migrateActivity adds the activity tables. A segment analysed has a row
// in activity_segments (score, frames analysed, heatmap) and one in
// activity per interval (wall-clock times); a segment without a row was
// not analysed (activity off, an older cctvd), which is not the same as
// still. Rows go with their segment's row (pruned, or rebuilt away) and
// follow its path (moved to the quarantine).
const migrateActivity = `CREATE TABLE activity_segments (
		path     TEXT PRIMARY KEY, -- the segment's, as segments.path
		camera   TEXT    NOT NULL,
		start_ns INTEGER NOT NULL,
		end_ns   INTEGER NOT NULL,
		score    REAL    NOT NULL,
		frames   INTEGER NOT NULL,
		heatmap  BLOB    NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE activity (
		camera   TEXT    NOT NULL,
		start_ns INTEGER NOT NULL,
		end_ns   INTEGER NOT NULL,
		peak_ns  INTEGER NOT NULL,
		level    REAL    NOT NULL,
		path     TEXT    NOT NULL,
		PRIMARY KEY (camera, start_ns, path)
	) WITHOUT ROWID;
	CREATE INDEX activity_path ON activity(path);
	CREATE TRIGGER activity_forget AFTER DELETE ON segments BEGIN
		DELETE FROM activity WHERE path = OLD.path;
		DELETE FROM activity_segments WHERE path = OLD.path;
	END;
	CREATE TRIGGER activity_moved AFTER UPDATE OF path ON segments BEGIN
		UPDATE activity SET path = NEW.path WHERE path = OLD.path;
		UPDATE activity_segments SET path = NEW.path WHERE path = OLD.path;
	END;`

// SegmentActivity is a segment's activity as the catalog keeps it.
type SegmentActivity struct {
	// Rel is the segment's path relative to savePath (as S3 keys mirror
	// it), Camera its camera, Start and End its times.
	Rel        string
	Camera     string
	Start, End time.Time
	// Summary's intervals are offsets from Start.
	Summary activity.Summary
}

// ActivityInterval is a stretch of activity on the wall clock.
type ActivityInterval struct {
	Camera     string
	Start, End time.Time
	// Peak is the time of its strongest frame, Level that frame's changed
	// share of the picture (0-1).
	Peak  time.Time
	Level float64
}

// Queries of the activity tables (named for the plan test).
const (
	// Intervals start no earlier than their segment, and no segment is
	// longer than a day and a GOP: that bounds the index search.
	qActivity = `SELECT camera, start_ns, end_ns, peak_ns, level FROM activity
		WHERE camera = ? AND start_ns >= ? AND start_ns < ? AND end_ns > ? ORDER BY start_ns`
	qSegmentActivity = `SELECT a.start_ns, a.score, a.frames, a.heatmap, s.path FROM segments s
		JOIN activity_segments a ON a.path = s.path WHERE s.id = ?`
	qSegmentIntervals = `SELECT start_ns, end_ns, peak_ns, level FROM activity WHERE path = ? ORDER BY start_ns`
)

// maxSegmentSpan bounds how far before a range an interval overlapping
// it may start: segments last at most a day (videoDuration), plus the
// keyframe a copied stream cuts on.
const maxSegmentSpan = 2 * 24 * time.Hour

// MergeGap: intervals of consecutive segments this close are one (a
// segment's boundary cuts an interval in two).
const MergeGap = time.Second

// SetActivity records a closed segment's activity (path absolute, as
// Record.Path), replacing what was recorded of it before.
func (c *Catalog) SetActivity(ctx context.Context, path, camera string, start, end time.Time, s activity.Summary) error {
	rel, err := c.rel(path)
	if err != nil {
		return err
	}
	return c.ImportActivity(ctx, []SegmentActivity{{Rel: rel, Camera: camera, Start: start, End: end, Summary: s}})
}

// ImportActivity records the activity of segments, by path, in one
// transaction, replacing what was recorded of them; their rows may come
// later (a rebuild from S3 writes the activity of a page before its rows).
func (c *Catalog) ImportActivity(ctx context.Context, acts []SegmentActivity) error {
	if len(acts) == 0 {
		return nil
	}
	err := c.write(func() error {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, a := range acts {
			if _, err := tx.ExecContext(ctx, `DELETE FROM activity WHERE path = ?`, a.Rel); err != nil {
				return err
			}
			s := a.Summary
			if _, err := tx.ExecContext(ctx, `INSERT INTO activity_segments (path, camera, start_ns, end_ns, score, frames, heatmap)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET camera = excluded.camera, start_ns = excluded.start_ns,
				end_ns = excluded.end_ns, score = excluded.score, frames = excluded.frames, heatmap = excluded.heatmap`,
				a.Rel, a.Camera, toNS(a.Start), toNS(a.End), s.Score, s.Frames, s.Heatmap[:]); err != nil {
				return err
			}
			for _, iv := range s.Intervals {
				if _, err := tx.ExecContext(ctx, `INSERT INTO activity (camera, start_ns, end_ns, peak_ns, level, path)
					VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
					a.Camera, toNS(a.Start.Add(iv.Start)), toNS(a.Start.Add(iv.End)), toNS(a.Start.Add(iv.Peak)), iv.Level, a.Rel); err != nil {
					return err
				}
			}
		}
		return tx.Commit()
	})
	if err != nil {
		return fmt.Errorf("catalog: record activity: %w", err)
	}
	return nil
}

// SegmentActivity returns the activity of the segment with this id;
// false when it was not analysed.
func (c *Catalog) SegmentActivity(ctx context.Context, id int64) (activity.Summary, bool, error) {
	var s activity.Summary
	var startNS int64
	var heat []byte
	var rel string
	err := c.db.QueryRowContext(ctx, qSegmentActivity, id).Scan(&startNS, &s.Score, &s.Frames, &heat, &rel)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, c.check(fmt.Errorf("catalog: segment activity: %w", err))
	}
	copy(s.Heatmap[:], heat)
	rows, err := c.db.QueryContext(ctx, qSegmentIntervals, rel)
	if err != nil {
		return s, false, c.check(fmt.Errorf("catalog: segment activity: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var st, en, pk int64
		var iv activity.Interval
		if err := rows.Scan(&st, &en, &pk, &iv.Level); err != nil {
			return s, false, c.check(fmt.Errorf("catalog: segment activity: %w", err))
		}
		iv.Start, iv.End, iv.Peak = time.Duration(st-startNS), time.Duration(en-startNS), time.Duration(pk-startNS)
		s.Intervals = append(s.Intervals, iv)
	}
	return s, true, c.check(rows.Err())
}

// Activity returns the camera's activity intervals overlapping [from,
// to), in order, the pieces of one interval that segment boundaries cut
// (within MergeGap) joined again.
func (c *Catalog) Activity(ctx context.Context, camera string, from, to time.Time) ([]ActivityInterval, error) {
	return c.ActivityUpTo(ctx, camera, from, to, 0)
}

// ActivityUpTo is Activity's first limit intervals (all with limit 0): the
// rows past them are not read.
func (c *Catalog) ActivityUpTo(ctx context.Context, camera string, from, to time.Time, limit int) ([]ActivityInterval, error) {
	rows, err := c.db.QueryContext(ctx, qActivity, camera, toNS(from.Add(-maxSegmentSpan)), toNS(to), toNS(from))
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: activity: %w", err))
	}
	defer rows.Close() // closed early below, before extend's queries
	var out []ActivityInterval
	for rows.Next() {
		var iv ActivityInterval
		var st, en, pk int64
		if err := rows.Scan(&iv.Camera, &st, &en, &pk, &iv.Level); err != nil {
			return nil, c.check(fmt.Errorf("catalog: activity: %w", err))
		}
		iv.Start, iv.End, iv.Peak = fromNS(st), fromNS(en), fromNS(pk)
		if n := len(out); n > 0 && !iv.Start.After(out[n-1].End.Add(MergeGap)) {
			last := &out[n-1]
			if iv.End.After(last.End) {
				last.End = iv.End
			}
			if iv.Level > last.Level {
				last.Peak, last.Level = iv.Peak, iv.Level
			}
			continue
		}
		if limit > 0 && len(out) == limit {
			break // the next would be past the limit: the last is whole
		}
		out = append(out, iv)
	}
	if err := c.check(rows.Err()); err != nil {
		return nil, err
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	// An interval the range cuts may go on in pieces outside it, in the
	// segments before and after: joined too.
	if err := c.extend(ctx, camera, &out[0], true); err != nil {
		return nil, err
	}
	return out, c.extend(ctx, camera, &out[len(out)-1], false)
}

// extend joins to iv the pieces of activity that continue it, one segment
// at a time, before it (back) or after it.
func (c *Catalog) extend(ctx context.Context, camera string, iv *ActivityInterval, back bool) error {
	q := `SELECT start_ns, end_ns, peak_ns, level FROM activity WHERE camera = ? AND start_ns < ? ORDER BY start_ns DESC LIMIT 1`
	if !back {
		q = `SELECT start_ns, end_ns, peak_ns, level FROM activity WHERE camera = ? AND start_ns > ? ORDER BY start_ns LIMIT 1`
	}
	for range 10000 { // a bound: pieces of a day-long interval of 10 s segments
		at := iv.Start
		if !back {
			at = iv.End.Add(-time.Nanosecond)
		}
		var st, en, pk int64
		var level float64
		err := c.db.QueryRowContext(ctx, q, camera, toNS(at)).Scan(&st, &en, &pk, &level)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return c.check(fmt.Errorf("catalog: activity: %w", err))
		}
		s, e := fromNS(st), fromNS(en)
		if back && (e.Add(MergeGap).Before(iv.Start) || !s.Before(iv.Start)) || !back && s.After(iv.End.Add(MergeGap)) {
			return nil
		}
		if !back && !e.After(iv.End) {
			return nil
		}
		iv.Start, iv.End = minTime(iv.Start, s), maxTime(iv.End, e)
		if level > iv.Level {
			iv.Peak, iv.Level = fromNS(pk), level
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ActivityScores returns the activity scores of the segments with these
// ids that were analysed (the upload queue may send active segments first
// when the uplink cannot keep up).
func (c *Catalog) ActivityScores(ctx context.Context, ids []int64) (map[int64]float64, error) {
	out := make(map[int64]float64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := c.db.QueryContext(ctx, `SELECT s.id, a.score FROM segments s JOIN activity_segments a ON a.path = s.path
		WHERE s.id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: activity scores: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var score float64
		if err := rows.Scan(&id, &score); err != nil {
			return nil, c.check(fmt.Errorf("catalog: activity scores: %w", err))
		}
		out[id] = score
	}
	return out, c.check(rows.Err())
}

// Retention's order when recent activity is kept longer: within uploaded
// segments, then within the others, a camera's main feeds before its sub
// feeds (feeds.go), and within each those without activity since a time
// before those with. A camera analysed on its sub feed
// (config.Camera.AnalysesActivity) has no activity rows for its main
// segments: a main segment its camera's intervals overlap had activity.
const (
	activeSince = `start_ns >= ? AND (EXISTS (SELECT 1 FROM activity_segments a WHERE a.path = segments.path AND a.score > 0)
		OR (sub = 0 AND EXISTS (SELECT 1 FROM activity i WHERE i.camera = segments.camera AND i.start_ns >= segments.start_ns - ` + maxSpanNS + `
			AND i.start_ns < segments.end_ns AND i.end_ns > segments.start_ns)))`
	maxSpanNS                = "172800000000000" // maxSegmentSpan
	qRetentionUploadedQuiet  = `WHERE sub = ? AND upload = 'uploaded' AND local = 'present' AND NOT (` + activeSince + `) ORDER BY start_ns, id LIMIT ?`
	qRetentionUploadedActive = `WHERE sub = ? AND upload = 'uploaded' AND local = 'present' AND ` + activeSince + ` ORDER BY start_ns, id LIMIT ?`
	qRetentionOthersQuiet    = `WHERE sub = ? AND local = 'present' AND upload != 'uploaded' AND NOT (` + activeSince + `) ORDER BY start_ns, id LIMIT ?`
	qRetentionOthersActive   = `WHERE sub = ? AND local = 'present' AND upload != 'uploaded' AND ` + activeSince + ` ORDER BY start_ns, id LIMIT ?`
)

// RetentionCandidatesKeepingActive is RetentionCandidates with segments
// that had activity and started at or after since kept back: uploaded
// segments without such activity oldest first, then uploaded ones with it,
// then, only once no uploaded one is left, the others in the same order;
// in each kind main and sub by retentionAt (SubReach).
func (c *Catalog) RetentionCandidatesKeepingActive(ctx context.Context, n int, since time.Time) ([]Record, error) {
	var out []Record
	for _, step := range []struct {
		quiet, active string
	}{{qRetentionUploadedQuiet, qRetentionUploadedActive}, {qRetentionOthersQuiet, qRetentionOthersActive}} {
		for _, q := range []string{step.quiet, step.active} {
			if len(out) >= n {
				return out, nil
			}
			more, err := c.retentionMerged(ctx, n-len(out), q, toNS(since))
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
	}
	return out, nil
}

// Under an upload deficit, segments with activity go up first (the
// uploader's queue): a feed's due rows that had activity, a sub segment
// by its own score, a main segment also by its camera's intervals over it
// (a camera analysed on its sub feed has no scores for its main). The
// walk is the queue's (the due rows by start), each row checked by key.
const (
	hadActivity = `(EXISTS (SELECT 1 FROM activity_segments a WHERE a.path = segments.path AND a.score > 0)
		OR (sub = 0 AND EXISTS (SELECT 1 FROM activity i WHERE i.camera = segments.camera AND i.start_ns >= segments.start_ns - ` + maxSpanNS + `
			AND i.start_ns < segments.end_ns AND i.end_ns > segments.start_ns)))`
	qDueActiveFeed = `INDEXED BY segments_due_feed WHERE sub = ? AND upload = 'pending' AND local = 'present' AND decode_check != 'waiting'
		AND (start_ns, id) > (?, ?) AND ` + hadActivity + ` ORDER BY start_ns, id LIMIT ?`
	qDueActiveFeedNewest = `INDEXED BY segments_due_feed WHERE sub = ? AND upload = 'pending' AND local = 'present' AND decode_check != 'waiting'
		AND (start_ns, id) < (?, ?) AND ` + hadActivity + ` ORDER BY start_ns DESC, id DESC LIMIT ?`
)

// DueActiveFeed returns up to limit rows of one kind of feed (sub or
// main) due for upload that had activity, oldest (or newest) first,
// leaving out skip.
func (c *Catalog) DueActiveFeed(ctx context.Context, sub, newest bool, limit int, skip map[int64]bool) ([]Record, error) {
	q, after := qDueActiveFeed, Cursor{StartNS: -1 << 63}
	if newest {
		q, after = qDueActiveFeedNewest, Cursor{StartNS: 1<<63 - 1, ID: 1<<63 - 1}
	}
	return c.dueWith(ctx, func(cur Cursor, page int) ([]Record, error) {
		return c.many(ctx, q, sub, cur.StartNS, cur.ID, page)
	}, after, limit, skip)
}
