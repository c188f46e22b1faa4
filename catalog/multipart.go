package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Multipart is the record of a multipart upload under way, kept so that an
// upload cut by a crash, a restart or the network resumes where it
// stopped: the upload S3 gave, what the file was when it began (size,
// mtime, checksums: a file that changed is never completed from old
// parts), and every part S3 confirmed.
type Multipart struct {
	SegmentID int64
	UploadID  string
	Key       string
	Bucket    string
	PartSize  int64
	// FileSize and MTime are the file's when the upload began.
	FileSize int64
	MTime    time.Time
	// SHA256 (hex), CRC64 (the whole file's CRC-64/NVME, base64), PartCRCs
	// (each part's, base64, by part number - 1) and ETag (the multipart
	// ETag of the parts' MD5s) are the file's checksums when it began.
	SHA256   string
	CRC64    string
	PartCRCs []string
	ETag     string
	Created  time.Time
	// Parts are the parts S3 confirmed, by number.
	Parts []Part
}

// Part is one part S3 confirmed.
type Part struct {
	Number int32
	Size   int64
	CRC64  string // base64, as sent and as S3 answered
	ETag   string
}

const mpColumns = `segment_id, upload_id, s3_key, bucket, part_size, file_size, mtime_ns, sha256, crc64, part_crcs, etag, created_ns`

// StartMultipart records a multipart upload as S3 created it, before any
// part is sent, in place of any earlier record of the segment; the row's
// upload_id names it too.
func (c *Catalog) StartMultipart(ctx context.Context, m Multipart) error {
	return c.write(func() error {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("catalog: start multipart: %w", err)
		}
		defer tx.Rollback()
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM multipart_parts WHERE segment_id = ?`, []any{m.SegmentID}},
			{`INSERT OR REPLACE INTO multipart (` + mpColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				[]any{m.SegmentID, m.UploadID, m.Key, m.Bucket, m.PartSize, m.FileSize, toNS(m.MTime), m.SHA256, m.CRC64,
					strings.Join(m.PartCRCs, ","), m.ETag, toNS(c.now())}},
			{`UPDATE segments SET upload_id = ? WHERE id = ?`, []any{m.UploadID, m.SegmentID}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return fmt.Errorf("catalog: start multipart: %w", err)
			}
		}
		return tx.Commit()
	})
}

// AddPart records a part S3 confirmed (again, for a part sent anew).
func (c *Catalog) AddPart(ctx context.Context, segmentID int64, p Part) error {
	return c.exec(ctx, "add part", `INSERT OR REPLACE INTO multipart_parts (segment_id, part, size, crc64, etag) VALUES (?, ?, ?, ?, ?)`,
		segmentID, p.Number, p.Size, p.CRC64, p.ETag)
}

// EndMultipart forgets the segment's multipart upload: completed, or
// aborted.
func (c *Catalog) EndMultipart(ctx context.Context, segmentID int64) error {
	return c.write(func() error {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("catalog: end multipart: %w", err)
		}
		defer tx.Rollback()
		for _, q := range []string{`DELETE FROM multipart_parts WHERE segment_id = ?`, `DELETE FROM multipart WHERE segment_id = ?`,
			`UPDATE segments SET upload_id = '' WHERE id = ?`} {
			if _, err := tx.ExecContext(ctx, q, segmentID); err != nil {
				return fmt.Errorf("catalog: end multipart: %w", err)
			}
		}
		return tx.Commit()
	})
}

// MultipartOf returns the segment's multipart upload record, with its
// parts; false when there is none.
func (c *Catalog) MultipartOf(ctx context.Context, segmentID int64) (Multipart, bool, error) {
	ms, err := c.multiparts(ctx, `WHERE segment_id = ?`, segmentID)
	if err != nil || len(ms) == 0 {
		return Multipart{}, false, err
	}
	m := ms[0]
	rows, err := c.db.QueryContext(ctx, `SELECT part, size, crc64, etag FROM multipart_parts WHERE segment_id = ? ORDER BY part`, segmentID)
	if err != nil {
		return m, false, c.check(fmt.Errorf("catalog: parts: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var p Part
		if err := rows.Scan(&p.Number, &p.Size, &p.CRC64, &p.ETag); err != nil {
			return m, false, c.check(fmt.Errorf("catalog: parts: %w", err))
		}
		m.Parts = append(m.Parts, p)
	}
	return m, true, c.check(rows.Err())
}

// Multiparts returns every multipart upload record (without parts): the
// uploads cctvd knows of, which the start-up sweep keeps.
func (c *Catalog) Multiparts(ctx context.Context) ([]Multipart, error) {
	return c.multiparts(ctx, `ORDER BY segment_id`)
}

func (c *Catalog) multiparts(ctx context.Context, where string, args ...any) ([]Multipart, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+mpColumns+` FROM multipart `+where, args...)
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: multipart: %w", err))
	}
	defer rows.Close()
	var out []Multipart
	for rows.Next() {
		var m Multipart
		var mtime, created int64
		var crcs string
		if err := rows.Scan(&m.SegmentID, &m.UploadID, &m.Key, &m.Bucket, &m.PartSize, &m.FileSize, &mtime, &m.SHA256, &m.CRC64,
			&crcs, &m.ETag, &created); err != nil {
			return nil, c.check(fmt.Errorf("catalog: multipart: %w", err))
		}
		m.MTime, m.Created = fromNS(mtime), fromNS(created)
		if crcs != "" {
			m.PartCRCs = strings.Split(crcs, ",")
		}
		out = append(out, m)
	}
	return out, c.check(rows.Err())
}

// Production is what a camera recorded over a span: the bytes and the
// seconds of footage of the segments that began in it.
type Production struct {
	Camera  string
	Bytes   int64
	Seconds float64
}

const qProduced = `SELECT camera, COALESCE(SUM(bytes), 0), COALESCE(SUM(end_ns - start_ns), 0) FROM segments INDEXED BY segments_start
	WHERE start_ns >= ? GROUP BY camera ORDER BY camera`

// Produced returns, per camera, what the segments that began at or after
// since hold (whatever became of them since).
func (c *Catalog) Produced(ctx context.Context, since time.Time) ([]Production, error) {
	rows, err := c.db.QueryContext(ctx, qProduced, toNS(since))
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: produced: %w", err))
	}
	defer rows.Close()
	var out []Production
	for rows.Next() {
		var p Production
		var ns int64
		if err := rows.Scan(&p.Camera, &p.Bytes, &ns); err != nil {
			return nil, c.check(fmt.Errorf("catalog: produced: %w", err))
		}
		p.Seconds = float64(ns) / 1e9
		out = append(out, p)
	}
	return out, c.check(rows.Err())
}

const (
	qUploadedPresent = `SELECT COALESCE(SUM(bytes), 0) FROM segments WHERE upload = 'uploaded' AND local = 'present'`
	qWaitingBefore   = `SELECT COALESCE(SUM(bytes), 0) FROM segments WHERE upload IN ('pending', 'uploading') AND local = 'present' AND start_ns < ?`
)

// UploadedPresent is the bytes of uploaded segments still on the disk:
// what retention deletes before any segment S3 lacks.
func (c *Catalog) UploadedPresent(ctx context.Context) (int64, error) {
	var n int64
	if err := c.db.QueryRowContext(ctx, qUploadedPresent).Scan(&n); err != nil {
		return 0, c.check(fmt.Errorf("catalog: uploaded present: %w", err))
	}
	return n, nil
}

// WaitingBefore is the bytes of the segments waiting for upload (or
// going up) that began before start: what retention deletes before a
// waiting segment that began at start, once nothing uploaded is left.
func (c *Catalog) WaitingBefore(ctx context.Context, start time.Time) (int64, error) {
	var n int64
	if err := c.db.QueryRowContext(ctx, qWaitingBefore, toNS(start)).Scan(&n); err != nil {
		return 0, c.check(fmt.Errorf("catalog: waiting before: %w", err))
	}
	return n, nil
}
