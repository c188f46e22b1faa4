package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Queries of the upload queue (named, so that a test can check each one's
// plan uses an index).
const (
	// The rows waiting for their decode check are not due: the queue's
	// partial index leaves them out, so they are never read here.
	qDue = `INDEXED BY segments_due WHERE upload = 'pending' AND local = 'present' AND decode_check != 'waiting'
			AND (start_ns, id) > (?, ?) ORDER BY start_ns, id LIMIT ?`
	qDueNewest = `INDEXED BY segments_due WHERE upload = 'pending' AND local = 'present' AND decode_check != 'waiting'
			AND (start_ns, id) < (?, ?) ORDER BY start_ns DESC, id DESC LIMIT ?`
	// The decode lane's queue: the rows tried least often first, then the
	// oldest, so a row whose checker failed waits behind every row not yet
	// tried as often.
	qDecodeDue = `INDEXED BY segments_decoding WHERE decode_check = 'waiting' AND upload = 'pending' AND local = 'present'
			AND (decode_tries, start_ns, id) > (?, ?, ?) ORDER BY decode_tries, start_ns, id LIMIT ?`
	qDecodeWaiting = `SELECT COUNT(*) FROM segments INDEXED BY segments_decoding
		WHERE decode_check = 'waiting' AND upload = 'pending' AND local = 'present'`
	// Two index searches (the queue index, the partial index of upload
	// ids), not a scan of every row.
	qInterrupted = `WHERE id IN (SELECT id FROM segments WHERE upload = 'uploading'
		UNION SELECT id FROM segments INDEXED BY segments_upload_id WHERE upload_id != '') ORDER BY id`
	// The states spelt out, so that the queue index finds the rows waiting
	// instead of every present file being read.
	qBacklog = `SELECT COUNT(*), COALESCE(SUM(bytes), 0), MIN(start_ns), COALESCE(SUM(end_ns - start_ns), 0) FROM segments
		WHERE upload IN ('pending', 'uploading') AND local = 'present'`
)

// Due returns up to limit segments that wait for upload, oldest first,
// leaving out the ids in skip (uploads under way, segments in their
// backoff). When a segment is due is the uploader's business, kept on the
// monotonic clock: the catalog's next_attempt_ns is only for people to read,
// so a wall clock stepped back cannot stall the queue.
func (c *Catalog) Due(ctx context.Context, limit int, skip map[int64]bool) ([]Record, error) {
	return c.due(ctx, qDue, Cursor{StartNS: -1 << 63}, limit, skip)
}

// DueNewest is Due, newest first.
func (c *Catalog) DueNewest(ctx context.Context, limit int, skip map[int64]bool) ([]Record, error) {
	return c.due(ctx, qDueNewest, Cursor{StartNS: 1<<63 - 1, ID: 1<<63 - 1}, limit, skip)
}

func (c *Catalog) due(ctx context.Context, query string, after Cursor, limit int, skip map[int64]bool) ([]Record, error) {
	return c.dueWith(ctx, func(cur Cursor, page int) ([]Record, error) {
		return c.many(ctx, query, cur.StartNS, cur.ID, page)
	}, after, limit, skip)
}

// DecodeDue returns up to limit rows waiting for their decode check, those
// tried least often first, then the oldest, leaving out the ids in skip
// (rows in their backoff after the checker failed).
func (c *Catalog) DecodeDue(ctx context.Context, limit int, skip map[int64]bool) ([]Record, error) {
	var out []Record
	page := min(max(limit+len(skip), 32), 512)
	var tries, start, id int64 = -1, 0, 0
	for len(out) < limit {
		rows, err := c.many(ctx, qDecodeDue, tries, start, id, page)
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
		tries, start, id = int64(last.DecodeTries), toNS(last.Start), last.ID
	}
	return out, nil
}

// AwaitDecode hands a row whose attempt found it must be decoded (and S3
// lacks it) to the decode lane: it is pending, not due for upload, until
// the lane records a verdict. The attempt that found it does not count.
func (c *Catalog) AwaitDecode(ctx context.Context, id int64) error {
	return c.exec(ctx, "await decode", `UPDATE segments SET upload = 'pending', decode_check = 'waiting',
		attempts = max(attempts - 1, 0) WHERE id = ?`, id)
}

// SetDecoded records that the file decoded fine: it need not be again, and
// it is due for upload.
func (c *Catalog) SetDecoded(ctx context.Context, id int64) error {
	return c.exec(ctx, "set decoded", `UPDATE segments SET must_decode = 0,
		decode_check = CASE WHEN decode_check = 'waiting' THEN 'passed' ELSE decode_check END WHERE id = ?`, id)
}

// DecodeFailedToRun records that the decode check could not run (not the
// file's fault), why, and returns how often that has happened to the row.
func (c *Catalog) DecodeFailedToRun(ctx context.Context, id int64, msg string) (int, error) {
	var tries int
	err := c.write(func() error {
		return c.db.QueryRowContext(ctx, `UPDATE segments SET decode_tries = decode_tries + 1, last_error = ?
			WHERE id = ? RETURNING decode_tries`, msg, id).Scan(&tries)
	})
	if err != nil {
		return 0, fmt.Errorf("catalog: decode failed to run: %w", err)
	}
	return tries, nil
}

// SkipDecode gives up the decode check of a row whose checker failed too
// often: it is due for upload with the cheap structural check only,
// flagged DecodeSkipped.
func (c *Catalog) SkipDecode(ctx context.Context, id int64) error {
	return c.exec(ctx, "skip decode", `UPDATE segments SET must_decode = 0, decode_check = 'skipped' WHERE id = ?`, id)
}

// StartAttempt marks an upload attempt as under way.
func (c *Catalog) StartAttempt(ctx context.Context, id int64) error {
	return c.exec(ctx, "start attempt", `UPDATE segments SET upload = 'uploading', attempts = attempts + 1 WHERE id = ?`, id)
}

// SetChecksums records the file's checksums, as hex. The row's CRC-64 is
// forgotten: it was not taken in the same read (SetSums).
func (c *Catalog) SetChecksums(ctx context.Context, id int64, sha256, md5 string) error {
	return c.exec(ctx, "set checksums", `UPDATE segments SET sha256 = ?, md5 = ?, crc64 = '', crc64_blocks = x'' WHERE id = ?`, sha256, md5, id)
}

// SetSums records the file's sha256 (hex) and CRC-64/NVME (base64), taken
// in one read; a crc64 of "" says the pair no longer holds for the file
// (its next upload reads it whole first), the sha256 staying to say what
// it was. The MD5 and the CRCs by block (taken at close) are forgotten.
func (c *Catalog) SetSums(ctx context.Context, id int64, sha256, crc64 string) error {
	return c.exec(ctx, "set checksums", `UPDATE segments SET sha256 = ?, crc64 = ?, crc64_blocks = x'', md5 = '' WHERE id = ?`, sha256, crc64, id)
}

// SetUploadID records (or, with "", clears) the multipart upload under way,
// so that a crash does not leave it behind on the server.
func (c *Catalog) SetUploadID(ctx context.Context, id int64, uploadID string) error {
	return c.exec(ctx, "set upload id", `UPDATE segments SET upload_id = ? WHERE id = ?`, uploadID, id)
}

// SetConflict records that S3 holds different content under the segment's
// key: that key is kept in conflict_key (the first one, if this happens
// again) and the segment goes up under key instead.
func (c *Catalog) SetConflict(ctx context.Context, id int64, key string) error {
	return c.exec(ctx, "set conflict", `UPDATE segments SET conflict_key = CASE WHEN conflict_key = '' THEN s3_key ELSE conflict_key END,
		s3_key = ? WHERE id = ?`, key, id)
}

// MarkQuarantined records that the segment's file is damaged and was moved
// to path (under savePath/.quarantine), and why. It is never uploaded.
func (c *Catalog) MarkQuarantined(ctx context.Context, id int64, path, why string) error {
	rel, err := c.rel(path)
	if err != nil {
		return err
	}
	return c.exec(ctx, "mark quarantined", `UPDATE segments SET local = 'quarantined', path = ?, upload_id = '',
		upload = CASE WHEN upload = 'uploading' THEN 'pending' ELSE upload END,
		decode_check = CASE WHEN decode_check = 'waiting' THEN 'failed' ELSE decode_check END,
		deleted_ns = ?, delete_cause = ?, last_error = ? WHERE id = ?`, rel, toNS(c.now()), CauseCorrupt, why, id)
}

// unquarantineSQL puts a quarantined row back at path (its file never
// moved), present, to be checked again: against S3 first, and decoded
// whole (the triggers of a row whose file is back start its decode check
// afresh).
const unquarantineSQL = `UPDATE segments SET local = 'present', path = ?, deleted_ns = 0, delete_cause = '', verify_remote = 1
	WHERE id = ? AND local = 'quarantined'`

// Unquarantine undoes MarkQuarantined for a file that could not be moved
// into the quarantine: the row is present again at path, where the file
// still is. (The uploader records a quarantine before it moves the file,
// so that a file in the quarantine always has its row.)
func (c *Catalog) Unquarantine(ctx context.Context, id int64, path string) error {
	rel, err := c.rel(path)
	if err != nil {
		return err
	}
	return c.exec(ctx, "unquarantine", unquarantineSQL, rel, id)
}

// MarkFailed puts a segment back in the queue after a failed attempt, to
// be checked against S3 first; next is when the uploader means to try
// again, for people to read (the uploader keeps the schedule itself).
func (c *Catalog) MarkFailed(ctx context.Context, id int64, msg string, next time.Time) error {
	return c.exec(ctx, "mark failed", `UPDATE segments SET upload = 'pending', last_error = ?, next_attempt_ns = ?,
		verify_remote = 1 WHERE id = ?`, msg, toNS(next), id)
}

// Requeue puts a segment whose attempt was cut short (shutdown) back in
// the queue, due at once, to be checked against S3 first.
func (c *Catalog) Requeue(ctx context.Context, id int64) error {
	return c.exec(ctx, "requeue", `UPDATE segments SET upload = 'pending', verify_remote = 1 WHERE id = ?`, id)
}

// MarkLocalDeleted records that the local file was deleted, and why.
func (c *Catalog) MarkLocalDeleted(ctx context.Context, id int64, cause string) error {
	return c.exec(ctx, "mark deleted", `UPDATE segments SET local = 'deleted', deleted_ns = ?, delete_cause = ? WHERE id = ?`,
		toNS(c.now()), cause, id)
}

// Interrupted returns the segments whose upload was under way when the
// daemon stopped without finishing it (a crash or kill), and puts them back
// in the queue to be checked against S3 first. Their UploadID, if any,
// names a multipart upload to abort.
func (c *Catalog) Interrupted(ctx context.Context) ([]Record, error) {
	rows, err := c.many(ctx, qInterrupted)
	if err != nil {
		return nil, err
	}
	if err := c.exec(ctx, "requeue interrupted", `UPDATE segments SET upload = 'pending', verify_remote = 1 WHERE upload = 'uploading'`); err != nil {
		return nil, err
	}
	return rows, nil
}

// Backlog is what waits for upload.
type Backlog struct {
	Count int64
	Bytes int64
	// Oldest is the start of the oldest segment waiting, zero if none.
	Oldest time.Time
	// Seconds is the footage they hold.
	Seconds float64
	// Decoding counts the segments among them that wait for their decode
	// check (or are being checked) before they may go up.
	Decoding int64
}

// Backlog sums the segments not yet uploaded whose file still exists.
func (c *Catalog) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var oldest sql.NullInt64
	var ns int64
	err := c.db.QueryRowContext(ctx, qBacklog).Scan(&b.Count, &b.Bytes, &oldest, &ns)
	b.Seconds = float64(ns) / 1e9
	if err != nil {
		return b, c.check(fmt.Errorf("catalog: backlog: %w", err))
	}
	if oldest.Valid {
		b.Oldest = time.Unix(0, oldest.Int64).UTC()
	}
	if err := c.db.QueryRowContext(ctx, qDecodeWaiting).Scan(&b.Decoding); err != nil {
		return b, c.check(fmt.Errorf("catalog: backlog: %w", err))
	}
	return b, nil
}

// Cameras lists the cameras the catalog holds footage of, sorted (the
// uploader's start-up sweep, which touches only their keys when s3Path is
// empty).
func (c *Catalog) Cameras(ctx context.Context) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT DISTINCT camera FROM segments ORDER BY camera`)
	if err != nil {
		return nil, fmt.Errorf("list cameras: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var cam string
		if err := rows.Scan(&cam); err != nil {
			return nil, fmt.Errorf("list cameras: %w", err)
		}
		out = append(out, cam)
	}
	return out, rows.Err()
}
