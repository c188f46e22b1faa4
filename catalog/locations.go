package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Where S3's copies are. Each uploaded row keeps its bucket, and its key
// holds the prefix (s3Path) it went under; the locations table remembers
// every (bucket, prefix) the catalog has uploaded to, so that after a
// change of s3Bucket or s3Path exports still read each object from where
// it is and still list the bucket for footage whose rows were pruned.

// Location is a bucket and a prefix (s3Path) the catalog has uploaded to.
type Location struct {
	Bucket string
	Prefix string
	// First is when the first upload there was recorded.
	First time.Time
}

// stateFillBuckets marks a catalog whose rows uploaded before it kept
// their bucket are still to be filled.
const stateFillBuckets = "fill-buckets"

// keyPrefixSQL is, in SQL, the prefix a row's key was made under: its
// original key (conflict_key, when the object went beside another)
// without the path relative to savePath it ends with; empty for no prefix,
// NULL for a key that does not end with the row's path.
var keyPrefixSQL = strings.ReplaceAll(
	`(CASE WHEN {key} = path THEN '' WHEN substr({key}, -length(path) - 1) = '/' || path THEN substr({key}, 1, length({key}) - length(path) - 1) END)`,
	"{key}", `(CASE WHEN conflict_key != '' THEN conflict_key ELSE s3_key END)`)

// fillBuckets gives the rows uploaded before the catalog kept each row's
// bucket (an empty one) the bucket configured now, and records the
// locations they went to, with the configured prefix, once: the first time the
// catalog is opened with a bucket after the migration. The assumption,
// which nothing in an old catalog can check: s3Bucket has not changed
// between those uploads and this start. Rows not uploaded get their bucket
// when they go up.
func (c *Catalog) fillBuckets(ctx context.Context, bucket, prefix string) error {
	var one int
	err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM state WHERE key = ?`, stateFillBuckets).Scan(&one)
	if err != nil || one == 0 {
		return err
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := toNS(c.now())
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE segments SET bucket = ? WHERE upload = 'uploaded' AND bucket = ''`, []any{bucket}},
		{`INSERT OR IGNORE INTO locations (bucket, prefix, first_ns)
			SELECT DISTINCT bucket, ` + keyPrefixSQL + `, ? FROM segments WHERE upload = 'uploaded' AND bucket = ? AND ` + keyPrefixSQL + ` IS NOT NULL`,
			[]any{now, bucket}},
		{`INSERT OR IGNORE INTO locations (bucket, prefix, first_ns) VALUES (?, ?, ?)`, []any{bucket, strings.Trim(prefix, "/"), now}},
		{`DELETE FROM state WHERE key = ?`, []any{stateFillBuckets}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("fill buckets: %w", err)
		}
	}
	return tx.Commit()
}

// MarkUploadedTo records that S3 has the segment in bucket, under its key,
// with this ETag, verified the way verified says, and the location it
// went to, in one transaction.
func (c *Catalog) MarkUploadedTo(ctx context.Context, id int64, bucket, etag, verified string) error {
	err := c.write(func() error {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		now := toNS(c.now())
		if _, err := tx.ExecContext(ctx, `UPDATE segments SET upload = 'uploaded', bucket = ?, etag = ?, verified = ?, upload_id = '',
			last_error = '', verify_remote = 0, uploaded_ns = ? WHERE id = ?`, bucket, etag, verified, now, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO locations (bucket, prefix, first_ns)
			SELECT bucket, `+keyPrefixSQL+`, ? FROM segments WHERE id = ? AND bucket != '' AND `+keyPrefixSQL+` IS NOT NULL`, now, id); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return fmt.Errorf("catalog: mark uploaded: %w", err)
	}
	return nil
}

// MarkUploaded is MarkUploadedTo the bucket the catalog was opened with
// (Options.Bucket).
func (c *Catalog) MarkUploaded(ctx context.Context, id int64, etag, verified string) error {
	return c.MarkUploadedTo(ctx, id, c.bucket, etag, verified)
}

// Locations returns every (bucket, prefix) the catalog has uploaded to,
// the earliest first.
func (c *Catalog) Locations(ctx context.Context) ([]Location, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT bucket, prefix, first_ns FROM locations ORDER BY first_ns, bucket, prefix`)
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: locations: %w", err))
	}
	defer rows.Close()
	var out []Location
	for rows.Next() {
		var l Location
		var first int64
		if err := rows.Scan(&l.Bucket, &l.Prefix, &first); err != nil {
			return nil, c.check(fmt.Errorf("catalog: locations: %w", err))
		}
		l.First = fromNS(first)
		out = append(out, l)
	}
	return out, c.check(rows.Err())
}

// addLocation records a location in tx (a rebuild found objects there).
func addLocation(ctx context.Context, tx *sql.Tx, bucket, prefix string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO locations (bucket, prefix, first_ns) VALUES (?, ?, ?)`, bucket, prefix, now)
	return err
}
