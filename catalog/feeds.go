package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A camera's two feeds. A segment of a camera's sub feed (its second,
// low-resolution stream) has Record.Sub set: the upload queue sends the
// feeds by the policy (sub feeds first, main feeds held or scheduled),
// retention deletes a camera's main footage before its sub footage, and
// exports take the main copy where it exists and the sub copy where it
// is gone. Rows of the previous releases, which recorded one feed, are
// main rows. Rows rebuilt from the disk or the bucket, which cannot tell,
// are marked by MarkSubFeeds from the config.

// migrationFeeds is migration 13, after the activity index (12): every
// row keeps its values (sub 0: the previous releases recorded the main
// feed only); the feeds' queue and retention walks get partial indexes of
// their own; upload requests (an incident's range of a camera's main
// feed, sent ahead of everything) survive a restart.
const migrationFeeds = `ALTER TABLE segments ADD COLUMN sub INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX segments_due_feed ON segments(sub, start_ns, id) WHERE upload = 'pending' AND local = 'present' AND decode_check != 'waiting';
	CREATE INDEX segments_retention_uploaded ON segments(sub, start_ns, id) WHERE local = 'present' AND upload = 'uploaded';
	CREATE INDEX segments_retention_others ON segments(sub, start_ns, id) WHERE local = 'present' AND upload != 'uploaded';
	CREATE INDEX segments_feed ON segments(camera, feed_id, start_ns);
	CREATE TABLE upload_requests (
		id         INTEGER PRIMARY KEY,
		camera     TEXT    NOT NULL,
		from_ns    INTEGER NOT NULL,
		to_ns      INTEGER NOT NULL,
		created_ns INTEGER NOT NULL,
		done_ns    INTEGER NOT NULL DEFAULT 0
	);`

// Queries of the feeds (named, so that a test can check each plan uses an
// index).
const (
	qDueFeed = `INDEXED BY segments_due_feed WHERE sub = ? AND upload = 'pending' AND local = 'present' AND decode_check != 'waiting'
			AND (start_ns, id) > (?, ?) ORDER BY start_ns, id LIMIT ?`
	qDueFeedNewest = `INDEXED BY segments_due_feed WHERE sub = ? AND upload = 'pending' AND local = 'present' AND decode_check != 'waiting'
			AND (start_ns, id) < (?, ?) ORDER BY start_ns DESC, id DESC LIMIT ?`
	qRetentionUploadedFeed = `INDEXED BY segments_retention_uploaded WHERE sub = ? AND local = 'present' AND upload = 'uploaded'
			ORDER BY start_ns, id LIMIT ?`
	qRetentionOthersFeed = `INDEXED BY segments_retention_others WHERE sub = ? AND local = 'present' AND upload != 'uploaded'
			ORDER BY start_ns, id LIMIT ?`
	// The main rows an open request covers, due for upload.
	qRequestedDue = `WHERE id IN (SELECT s.id FROM upload_requests r JOIN segments s INDEXED BY segments_camera
			ON s.camera = r.camera AND s.start_ns > r.from_ns - ` + maxSpanNS + ` AND s.start_ns < r.to_ns AND s.end_ns > r.from_ns
			WHERE r.done_ns = 0 AND s.sub = 0 AND s.upload = 'pending' AND s.local = 'present' AND s.decode_check != 'waiting')
			AND (start_ns, id) > (?, ?) ORDER BY start_ns, id LIMIT ?`
	// What retention deletes before a row (SubReach): the main rows
	// waiting that start before its main time, the sub rows waiting that
	// start before its sub time.
	qWaitingBeforeFeed = `SELECT COALESCE(SUM(bytes), 0) FROM segments WHERE upload IN ('pending', 'uploading') AND local = 'present'
			AND ((sub = 0 AND start_ns < ?) OR (sub = 1 AND start_ns < ?))`
	qLatestFeed = `INDEXED BY segments_feed WHERE camera = ? AND feed_id = ? ORDER BY start_ns DESC, id DESC LIMIT 1`
)

// DueFeed is Due for one feed: the sub feeds' rows (sub) or the main
// feeds', oldest first (newest first with newest).
func (c *Catalog) DueFeed(ctx context.Context, sub, newest bool, limit int, skip map[int64]bool) ([]Record, error) {
	q, after := qDueFeed, Cursor{StartNS: -1 << 63}
	if newest {
		q, after = qDueFeedNewest, Cursor{StartNS: 1<<63 - 1, ID: 1<<63 - 1}
	}
	return c.dueWith(ctx, func(cur Cursor, page int) ([]Record, error) {
		return c.many(ctx, q, sub, cur.StartNS, cur.ID, page)
	}, after, limit, skip)
}

// RequestedDue returns up to limit main-feed rows due for upload that an
// open upload request covers, oldest first, leaving out skip.
func (c *Catalog) RequestedDue(ctx context.Context, limit int, skip map[int64]bool) ([]Record, error) {
	return c.dueWith(ctx, func(cur Cursor, page int) ([]Record, error) {
		return c.many(ctx, qRequestedDue, cur.StartNS, cur.ID, page)
	}, Cursor{StartNS: -1 << 63}, limit, skip)
}

// dueWith pages through a due query (see due).
func (c *Catalog) dueWith(ctx context.Context, read func(Cursor, int) ([]Record, error), after Cursor, limit int, skip map[int64]bool) ([]Record, error) {
	var out []Record
	page := min(max(limit+len(skip), 32), 512)
	for len(out) < limit {
		rows, err := read(after, page)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if !skip[r.ID] && len(out) < limit {
				out = append(out, r)
			}
		}
		if len(rows) < page {
			break
		}
		last := rows[len(rows)-1]
		after = Cursor{StartNS: toNS(last.Start), ID: last.ID}
	}
	return out, nil
}

// SubReach is how much further back a camera's sub feed reaches than its
// main feed: retention deletes the oldest footage first, across cameras,
// counting a sub segment's age at 1/SubReach. So a camera's main footage
// goes long before its sub copy of the same time (which then stands in for
// it), a camera without a sub feed is never emptied to keep another's sub
// copy, and the sub feeds' share of the disk stays bounded (a sub feed at
// a tenth of its main's bitrate holds about 0.4 of its main's share).
const SubReach = 4

// retentionAt is the time retention treats a row as starting at: a main
// row's start; a sub row's start moved towards now by (1 - 1/SubReach) of
// its age (a row from a clock ahead of now, age 0: its start).
func retentionAt(r Record, now time.Time) time.Time {
	if !r.Sub || !r.Start.Before(now) {
		return r.Start
	}
	return now.Add(-now.Sub(r.Start) / SubReach)
}

// subStartFor is the inverse for a sub row: the start a sub row has when
// retention treats it as starting at at.
func subStartFor(at, now time.Time) time.Time {
	if !at.Before(now) {
		return at
	}
	return now.Add(-now.Sub(at) * SubReach)
}

// mergeFeeds merges main and sub candidates (each in retention's walk,
// oldest first) by retentionAt, up to n; a tie goes to the main row.
func mergeFeeds(mains, subs []Record, n int, now time.Time) []Record {
	out := make([]Record, 0, min(n, len(mains)+len(subs)))
	for len(out) < n && (len(mains) > 0 || len(subs) > 0) {
		if len(subs) == 0 || (len(mains) > 0 && !retentionAt(subs[0], now).Before(retentionAt(mains[0], now))) {
			out, mains = append(out, mains[0]), mains[1:]
		} else {
			out, subs = append(out, subs[0]), subs[1:]
		}
	}
	return out
}

// retentionMerged reads up to n main and n sub candidates of one walk (q
// with its arguments after sub) and merges them.
func (c *Catalog) retentionMerged(ctx context.Context, n int, q string, args ...any) ([]Record, error) {
	var feeds [2][]Record
	for i, sub := range []bool{false, true} {
		recs, err := c.many(ctx, q, append(append([]any{sub}, args...), n)...)
		if err != nil {
			return nil, err
		}
		feeds[i] = recs
	}
	return mergeFeeds(feeds[0], feeds[1], n, c.now()), nil
}

// retentionFeeds returns up to n candidates for retention: uploaded rows,
// then the others, each oldest first by retentionAt (SubReach). Without
// sub rows it is the order of one feed.
func (c *Catalog) retentionFeeds(ctx context.Context, n int) ([]Record, error) {
	var out []Record
	for _, q := range []string{qRetentionUploadedFeed, qRetentionOthersFeed} {
		if len(out) >= n {
			break
		}
		more, err := c.retentionMerged(ctx, n-len(out), q)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// WaitingBeforeFeed is WaitingBefore in retention's order of the feeds:
// the bytes waiting for upload that retention deletes before a segment of
// this kind (sub) starting at start.
func (c *Catalog) WaitingBeforeFeed(ctx context.Context, sub bool, start time.Time) (int64, error) {
	// The row's time in retention's walk, then the main and sub starts
	// that come before it there.
	now := c.now()
	at := retentionAt(Record{Sub: sub, Start: start}, now)
	var n int64
	if err := c.db.QueryRowContext(ctx, qWaitingBeforeFeed, toNS(at), toNS(subStartFor(at, now))).Scan(&n); err != nil {
		return 0, c.check(fmt.Errorf("catalog: waiting before: %w", err))
	}
	return n, nil
}

// LatestFeed is Latest for one feed of a camera.
func (c *Catalog) LatestFeed(ctx context.Context, camera, feedID string) (Record, error) {
	return c.one(ctx, qLatestFeed, camera, feedID)
}

// MarkSubFeeds marks the rows of the cameras' sub feeds (camera → its sub
// feed's videoFeedId) as sub rows, for rows rebuilt from the disk or the
// bucket; it returns how many it marked.
// It remembers them: every Reconcile marks the rows it adds the same way.
func (c *Catalog) MarkSubFeeds(ctx context.Context, subs map[string]string) (int64, error) {
	c.subFeeds.Clear()
	for camera, feed := range subs {
		c.subFeeds.Store(camera, feed)
	}
	return c.markSubFeeds(ctx, subs)
}

// knownSubFeeds are the sub feeds MarkSubFeeds was last given.
func (c *Catalog) knownSubFeeds() map[string]string {
	out := map[string]string{}
	c.subFeeds.Range(func(k, v any) bool {
		out[k.(string)] = v.(string)
		return true
	})
	return out
}

func (c *Catalog) markSubFeeds(ctx context.Context, subs map[string]string) (int64, error) {
	var n int64
	for camera, feed := range subs {
		err := c.write(func() error {
			res, err := c.db.ExecContext(ctx, `UPDATE segments SET sub = 1 WHERE camera = ? AND feed_id = ? AND sub = 0`, camera, feed)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			n += k
			return err
		})
		if err != nil {
			return n, c.check(fmt.Errorf("catalog: mark sub feeds: %w", err))
		}
	}
	return n, nil
}

// UploadRequest is a request to send a camera's main feed over a range
// ahead of everything else (an incident).
type UploadRequest struct {
	ID       int64     `json:"id"`
	Camera   string    `json:"camera"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Created  time.Time `json:"created"`
	Done     time.Time `json:"done,omitzero"`
	Waiting  int64     `json:"waiting"`  // main segments in the range not yet in S3
	Uploaded int64     `json:"uploaded"` // main segments in the range in S3
}

// MaxOpenUploadRequests bounds the requests open at once.
const MaxOpenUploadRequests = 64

// ErrTooManyRequests is AddUploadRequest's answer past MaxOpenUploadRequests.
var ErrTooManyRequests = errors.New("too many upload requests open")

// AddUploadRequest records a request (durably: a restart keeps it).
func (c *Catalog) AddUploadRequest(ctx context.Context, camera string, from, to time.Time) (UploadRequest, error) {
	var id int64
	err := c.write(func() error {
		var open int
		if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM upload_requests WHERE done_ns = 0`).Scan(&open); err != nil {
			return err
		}
		if open >= MaxOpenUploadRequests {
			return ErrTooManyRequests
		}
		return c.db.QueryRowContext(ctx, `INSERT INTO upload_requests (camera, from_ns, to_ns, created_ns) VALUES (?, ?, ?, ?) RETURNING id`,
			camera, toNS(from), toNS(to), toNS(c.now())).Scan(&id)
	})
	if errors.Is(err, ErrTooManyRequests) {
		return UploadRequest{}, err
	}
	if err != nil {
		return UploadRequest{}, c.check(fmt.Errorf("catalog: add upload request: %w", err))
	}
	return c.uploadRequest(ctx, id)
}

const qUploadRequests = `SELECT r.id, r.camera, r.from_ns, r.to_ns, r.created_ns, r.done_ns,
	(SELECT COUNT(*) FROM segments s INDEXED BY segments_camera WHERE s.camera = r.camera AND s.start_ns > r.from_ns - ` + maxSpanNS + ` AND s.start_ns < r.to_ns AND s.end_ns > r.from_ns
		AND s.sub = 0 AND s.local = 'present' AND s.upload IN ('pending', 'uploading')),
	(SELECT COUNT(*) FROM segments s INDEXED BY segments_camera WHERE s.camera = r.camera AND s.start_ns > r.from_ns - ` + maxSpanNS + ` AND s.start_ns < r.to_ns AND s.end_ns > r.from_ns
		AND s.sub = 0 AND s.upload = 'uploaded')
	FROM upload_requests r`

func (c *Catalog) uploadRequest(ctx context.Context, id int64) (UploadRequest, error) {
	rs, err := c.uploadRequests(ctx, ` WHERE r.id = ?`, id)
	if err != nil {
		return UploadRequest{}, err
	}
	if len(rs) == 0 {
		return UploadRequest{}, ErrNotFound
	}
	return rs[0], nil
}

// UploadRequests returns the open requests, and those done since since,
// oldest first.
func (c *Catalog) UploadRequests(ctx context.Context, since time.Time) ([]UploadRequest, error) {
	return c.uploadRequests(ctx, ` WHERE r.done_ns = 0 OR r.done_ns >= ? ORDER BY r.id`, toNS(since))
}

func (c *Catalog) uploadRequests(ctx context.Context, where string, args ...any) ([]UploadRequest, error) {
	rows, err := c.db.QueryContext(ctx, qUploadRequests+where, args...)
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: upload requests: %w", err))
	}
	defer rows.Close()
	var out []UploadRequest
	for rows.Next() {
		var r UploadRequest
		var from, to, created, done int64
		if err := rows.Scan(&r.ID, &r.Camera, &from, &to, &created, &done, &r.Waiting, &r.Uploaded); err != nil {
			return nil, c.check(fmt.Errorf("catalog: upload requests: %w", err))
		}
		r.From, r.To, r.Created, r.Done = fromNS(from), fromNS(to), fromNS(created), fromNS(done)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, c.check(fmt.Errorf("catalog: upload requests: %w", err))
	}
	return out, nil
}

// CloseUploadRequests closes the open requests whose range holds no main
// segment waiting for upload and whose camera recorded past its end (the
// footage of the range is all closed), or that ended before giveUpBefore
// (a camera that never recorded past it). It returns how many it closed.
func (c *Catalog) CloseUploadRequests(ctx context.Context, giveUpBefore time.Time) (int64, error) {
	var n int64
	err := c.write(func() error {
		res, err := c.db.ExecContext(ctx, `UPDATE upload_requests AS r SET done_ns = ? WHERE done_ns = 0
			AND NOT EXISTS (SELECT 1 FROM segments s INDEXED BY segments_camera WHERE s.camera = r.camera AND s.start_ns > r.from_ns - `+maxSpanNS+` AND s.start_ns < r.to_ns
				AND s.end_ns > r.from_ns AND s.sub = 0 AND s.local = 'present' AND s.upload IN ('pending', 'uploading'))
			AND (r.to_ns < ? OR EXISTS (SELECT 1 FROM segments s INDEXED BY segments_camera WHERE s.camera = r.camera
				AND s.start_ns > r.to_ns - `+maxSpanNS+` AND s.sub = 0 AND s.end_ns >= r.to_ns))`, toNS(c.now()), toNS(giveUpBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, c.check(fmt.Errorf("catalog: close upload requests: %w", err))
	}
	return n, nil
}

// FeedReach is how far back one feed of a camera reaches.
type FeedReach struct {
	FeedID string `json:"feedId"`
	Sub    bool   `json:"sub"`
	// Local is the start of the oldest segment on the box, Remote of the
	// oldest in S3 (zero: none); Newest the end of the newest recorded.
	Local  time.Time `json:"local,omitzero"`
	Remote time.Time `json:"remote,omitzero"`
	Newest time.Time `json:"newest,omitzero"`
}

// Reach says how far back each feed of camera reaches, the main feed
// first.
func (c *Catalog) Reach(ctx context.Context, camera string) ([]FeedReach, error) {
	// Each answer is a seek on an index, never an aggregate over the
	// camera's rows (the page asks at every refresh, of every camera):
	// the feeds by skipping through segments_feed, then per feed its
	// newest row, its oldest on the box and its oldest in S3.
	rows, err := c.db.QueryContext(ctx, `WITH RECURSIVE f(id) AS (
		SELECT (SELECT MIN(feed_id) FROM segments INDEXED BY segments_feed WHERE camera = ?1)
		UNION ALL SELECT (SELECT MIN(feed_id) FROM segments INDEXED BY segments_feed WHERE camera = ?1 AND feed_id > f.id) FROM f WHERE f.id IS NOT NULL)
		SELECT id FROM f WHERE id IS NOT NULL`, camera)
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: reach: %w", err))
	}
	var feeds []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, c.check(fmt.Errorf("catalog: reach: %w", err))
		}
		feeds = append(feeds, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, c.check(fmt.Errorf("catalog: reach: %w", err))
	}
	out := make([]FeedReach, 0, len(feeds))
	for _, id := range feeds {
		f := FeedReach{FeedID: id}
		var newest int64
		var local, remote sql.NullInt64
		err := c.db.QueryRowContext(ctx, `SELECT end_ns, sub FROM segments INDEXED BY segments_feed WHERE camera = ? AND feed_id = ?
			ORDER BY start_ns DESC LIMIT 1`, camera, id).Scan(&newest, &f.Sub)
		if err == nil {
			err = c.db.QueryRowContext(ctx, `SELECT MIN(start_ns) FROM (SELECT start_ns FROM segments INDEXED BY segments_local
				WHERE local = 'present' AND camera = ? AND feed_id = ? ORDER BY start_ns LIMIT 1)`, camera, id).Scan(&local)
		}
		if err == nil {
			err = c.db.QueryRowContext(ctx, `SELECT MIN(start_ns) FROM (SELECT start_ns FROM segments INDEXED BY segments_feed
				WHERE camera = ? AND feed_id = ? AND upload = 'uploaded' ORDER BY start_ns LIMIT 1)`, camera, id).Scan(&remote)
		}
		if err != nil {
			return nil, c.check(fmt.Errorf("catalog: reach: %w", err))
		}
		f.Local, f.Remote, f.Newest = fromNS(local.Int64), fromNS(remote.Int64), fromNS(newest)
		if !local.Valid {
			f.Local = time.Time{}
		}
		if !remote.Valid {
			f.Remote = time.Time{}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b FeedReach) int {
		if a.Sub != b.Sub {
			if a.Sub {
				return 1
			}
			return -1
		}
		return strings.Compare(a.FeedID, b.FeedID)
	})
	return out, nil
}

// FeedLoad is what one kind of feed (the cameras' main feeds, or their
// sub feeds) has waiting for upload, and records, for the upload plan.
type FeedLoad struct {
	BacklogBytes   int64
	BacklogCount   int64
	BacklogSeconds float64
	Oldest         time.Time
	// Recorded is the bytes a second the feeds record (each camera's
	// bytes over the seconds it recorded since since, summed).
	Recorded float64
}

// FeedLoads returns the main feeds' load and the sub feeds'.
func (c *Catalog) FeedLoads(ctx context.Context, since time.Time) (main, sub FeedLoad, err error) {
	pick := func(s bool) *FeedLoad {
		if s {
			return &sub
		}
		return &main
	}
	rows, err := c.db.QueryContext(ctx, `SELECT sub, COUNT(*), COALESCE(SUM(bytes), 0), MIN(start_ns), COALESCE(SUM(end_ns - start_ns), 0)
		FROM segments WHERE upload IN ('pending', 'uploading') AND local = 'present' GROUP BY sub`)
	if err != nil {
		return main, sub, c.check(fmt.Errorf("catalog: feed loads: %w", err))
	}
	for rows.Next() {
		var s bool
		var oldest sql.NullInt64
		var ns int64
		var l FeedLoad
		if err := rows.Scan(&s, &l.BacklogCount, &l.BacklogBytes, &oldest, &ns); err != nil {
			rows.Close()
			return main, sub, c.check(fmt.Errorf("catalog: feed loads: %w", err))
		}
		l.BacklogSeconds, l.Oldest = float64(ns)/1e9, fromNS(oldest.Int64)
		*pick(s) = l
	}
	rows.Close()
	rows, err = c.db.QueryContext(ctx, `SELECT sub, COALESCE(SUM(bytes), 0), COALESCE(SUM(end_ns - start_ns), 0) FROM segments INDEXED BY segments_start
		WHERE start_ns >= ? GROUP BY sub, camera`, toNS(since))
	if err != nil {
		return main, sub, c.check(fmt.Errorf("catalog: feed loads: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var s bool
		var bytes, ns int64
		if err := rows.Scan(&s, &bytes, &ns); err != nil {
			return main, sub, c.check(fmt.Errorf("catalog: feed loads: %w", err))
		}
		if ns > 0 {
			pick(s).Recorded += float64(bytes) / (float64(ns) / 1e9)
		}
	}
	return main, sub, c.check(rows.Err())
}
