package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cctvd/cctvd/segment"
)

// CauseNotOnDisk is the DeleteCause of a row rebuilt from an S3 object
// whose local file was already gone (clearAfterUpload or retention deleted
// it before the catalog was lost).
const CauseNotOnDisk = "not-on-disk"

// RowState is what a rebuild needs to know of an existing row.
type RowState struct {
	Upload UploadState
	Local  LocalState
	Bytes  int64
	SHA256 string
}

// RowStates returns the rows at these paths (relative to savePath, as S3
// keys mirror them), by path; paths without a row are left out.
func (c *Catalog) RowStates(ctx context.Context, rels []string) (map[string]RowState, error) {
	out := make(map[string]RowState, len(rels))
	if len(rels) == 0 {
		return out, nil
	}
	args := make([]any, len(rels))
	for i, r := range rels {
		args[i] = r
	}
	rows, err := c.db.QueryContext(ctx, `SELECT path, upload, local, bytes, sha256 FROM segments
		WHERE path IN (?`+strings.Repeat(",?", len(rels)-1)+`)`, args...)
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: row states: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var rel string
		var s RowState
		if err := rows.Scan(&rel, &s.Upload, &s.Local, &s.Bytes, &s.SHA256); err != nil {
			return nil, c.check(fmt.Errorf("catalog: row states: %w", err))
		}
		out[rel] = s
	}
	return out, c.check(rows.Err())
}

// RemoteObject is an object S3 holds for a segment, as a rebuild found it.
type RemoteObject struct {
	// Bucket and Key are where it is.
	Bucket string
	Key    string
	// Rel is the segment's path relative to savePath, which the key
	// mirrors under s3Path.
	Rel string
	// Info is what the name says; its Start and End are replaced by the
	// object's start and end metadata (to the millisecond) when it has them.
	Info         segment.Info
	Bytes        int64
	SHA256       string // from the object's metadata
	ETag         string
	LastModified time.Time
}

// ImportResult says what ImportRemote changed.
type ImportResult struct {
	// Added counts objects the catalog had no row for: they got one,
	// uploaded, with the local file deleted.
	Added int
	// Confirmed counts rows not uploaded, whose file is no longer on disk,
	// that S3 turned out to hold (same size, and same sha256 when the row
	// knows it): now uploaded.
	Confirmed int
}

// ImportRemote records, in one transaction with cursor (saved under
// stateKey, so that a rebuild resumes after a restart), objects found in
// S3: an object without a row gets one (uploaded, its local file deleted;
// Reconcile makes it present if the file turns up), and a row not uploaded
// whose file is gone is marked uploaded when S3 holds the same bytes. Rows
// of files present on disk are never changed here: the uploader checks S3
// for those before it uploads them.
func (c *Catalog) ImportRemote(ctx context.Context, objs []RemoteObject, stateKey, cursor string) (ImportResult, error) {
	var res ImportResult
	err := c.write(func() error {
		res = ImportResult{}
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		now := toNS(c.now())
		for _, o := range objs {
			md5 := ""
			if e := strings.Trim(o.ETag, `"`); len(e) == 32 && !strings.Contains(e, "-") {
				md5 = e
			}
			if o.Key == o.Rel || strings.HasSuffix(o.Key, "/"+o.Rel) {
				if err := addLocation(ctx, tx, o.Bucket, strings.TrimSuffix(strings.TrimSuffix(o.Key, o.Rel), "/"), now); err != nil {
					return fmt.Errorf("import %s: %w", o.Key, err)
				}
			}
			out, err := tx.ExecContext(ctx, `INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, sha256, md5,
					upload, bucket, s3_key, etag, uploaded_ns, local, deleted_ns, delete_cause, created_ns)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'uploaded', ?, ?, ?, ?, 'deleted', ?, ?, ?) ON CONFLICT(path) DO NOTHING`,
				o.Info.Camera, o.Info.FeedID, toNS(o.Info.Start), toNS(o.Info.End), o.Rel, o.Bytes, o.SHA256, md5,
				o.Bucket, o.Key, o.ETag, toNS(o.LastModified), now, CauseNotOnDisk, now)
			if err != nil {
				return fmt.Errorf("import %s: %w", o.Key, err)
			}
			if n, _ := out.RowsAffected(); n > 0 {
				res.Added++
				continue
			}
			out, err = tx.ExecContext(ctx, `UPDATE segments SET upload = 'uploaded', bucket = ?, s3_key = ?, etag = ?, uploaded_ns = ?, upload_id = '',
					last_error = '', verify_remote = 0, sha256 = CASE WHEN sha256 = '' THEN ? ELSE sha256 END
				WHERE path = ? AND upload != 'uploaded' AND local != 'present' AND bytes = ? AND (sha256 = '' OR sha256 = ?)`,
				o.Bucket, o.Key, o.ETag, toNS(o.LastModified), o.SHA256, o.Rel, o.Bytes, o.SHA256)
			if err != nil {
				return fmt.Errorf("import %s: %w", o.Key, err)
			}
			if n, _ := out.RowsAffected(); n > 0 {
				res.Confirmed++
			}
		}
		if stateKey != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO state (key, value) VALUES (?, ?)
				ON CONFLICT(key) DO UPDATE SET value = excluded.value`, stateKey, cursor); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
	if err != nil {
		return res, fmt.Errorf("catalog: %w", err)
	}
	return res, nil
}
