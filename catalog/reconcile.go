package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// ReconcileResult says what Reconcile changed.
type ReconcileResult struct {
	// Added counts files on disk the catalog lacked (now pending, to be
	// checked against S3 before upload).
	Added int `json:"added"`
	// Missing counts rows whose file is gone without cctvd deleting it.
	Missing int `json:"missing"`
	// Returned counts rows marked deleted or missing whose file is back.
	Returned int `json:"returned"`
	// Ignored counts files under camera folders that are not segments,
	// and folders in savePath that cannot be a camera's (lost+found).
	Ignored int `json:"ignored"`
	// Unreadable counts folders that could not be read (permissions, I/O
	// errors): logged and passed over; their rows are left as they are.
	Unreadable int `json:"unreadable,omitempty"`
}

const (
	// qDayRows reads one day folder's rows, a range of the path index.
	qDayRows = `SELECT path, local, upload, bytes, sha256 FROM segments WHERE path >= ? AND path < ? ORDER BY path`
	// qQuarantined reads the quarantined rows (few: damaged files kept).
	qQuarantined = `SELECT id, path FROM segments INDEXED BY segments_local WHERE local = 'quarantined' ORDER BY start_ns, id`
	// qNextPresent finds the next present row from a path on, through the
	// partial index of present paths (named: without statistics SQLite
	// would pick the index on local and sort every present row).
	qNextPresent = `SELECT path FROM segments INDEXED BY segments_present_path
		WHERE local = 'present' AND path >= ? ORDER BY path LIMIT 1`
)

// reconcileBatch is how many changes one transaction of Reconcile holds.
const reconcileBatch = 1000

// Reconcile makes the catalog agree with the disk: every segment file under
// savePath/<camera>/<day>/ gets a row (keyed by keyFor(its path relative to
// savePath)), a row whose file is back is present again (to be checked
// against S3 before any upload), and a row whose file is gone is marked
// missing.
//
// Its memory does not grow with the catalog: it walks the disk one day
// folder at a time and compares each with the rows of that folder (a range
// of the path index), then finds the present rows of folders that are gone
// by skipping through the index of present paths one day folder at a time.
// It may run while segments are being added: a day's rows are read before
// its folder is listed, so a segment added in between is left alone.
func (c *Catalog) Reconcile(ctx context.Context, keyFor func(rel string) string) (ReconcileResult, error) {
	r := &reconciler{c: c, keyFor: keyFor, now: toNS(c.now())}
	if err := r.unmoved(ctx); err != nil {
		return r.res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	if err := r.walk(ctx); err != nil {
		if ferr := r.flush(ctx); ferr != nil { // keep what was found
			c.log.Warn().Err(ferr).Msg("reconcile: cannot record what was found before the error")
		}
		return r.res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	if err := r.gone(ctx); err != nil {
		return r.res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	if err := r.flush(ctx); err != nil {
		return r.res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	// Files it found are rows of the main feed until marked: mark the
	// sub feeds' (feeds.go), or they would wait and go as main footage.
	if _, err := c.markSubFeeds(ctx, c.knownSubFeeds()); err != nil {
		return r.res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	return r.res, nil
}

type reconciler struct {
	c      *Catalog
	keyFor func(rel string) string
	now    int64
	res    ReconcileResult
	ops    []reconcileOp // not yet committed
}

type reconcileOp struct {
	// same: a returned file is, by size and sha256, the one its row says
	// S3 has (a retention crash between record and unlink): it stays
	// uploaded. Any other file back under the name is checked against S3.
	same bool
	kind int // opAdd, opReturned, opMissing, opMissingDay
	rel  string
	info segment.Info
	size int64
}

const (
	opAdd = iota
	opReturned
	opMissing
	opMissingDay // every present row under the folder rel
)

// unmoved puts back the rows of quarantines a crash cut short: the
// uploader records a file's quarantine (its row's path in the quarantine)
// before it moves the file there, so a crash in between leaves a row
// pointing into the quarantine where nothing is, and the file still in its
// day folder. That row is present at the file again (before the day
// folders are walked, which would otherwise add the file as a second
// row), to be checked, and quarantined, again. A row whose file is in
// neither place is left as it is.
func (r *reconciler) unmoved(ctx context.Context) error {
	rows, err := r.c.db.QueryContext(ctx, qQuarantined)
	if err != nil {
		return r.c.check(err)
	}
	type moved struct {
		id       int64
		rel, was string
	}
	var back []moved
	for rows.Next() {
		var m moved
		if err := rows.Scan(&m.id, &m.rel); err != nil {
			rows.Close()
			return r.c.check(err)
		}
		if _, err := os.Lstat(filepath.Join(r.c.savePath, filepath.FromSlash(m.rel))); !errors.Is(err, fs.ErrNotExist) {
			continue // in the quarantine (or unreadable: left alone)
		}
		was, ok := quarantinedFrom(path.Base(m.rel))
		if !ok {
			continue
		}
		if fi, err := os.Lstat(filepath.Join(r.c.savePath, filepath.FromSlash(was))); err == nil && fi.Mode().IsRegular() {
			m.was = was
			back = append(back, m)
		}
	}
	rows.Close()
	if err := r.c.check(rows.Err()); err != nil {
		return err
	}
	for _, m := range back {
		err := r.c.write(func() error {
			var taken int
			if err := r.c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM segments WHERE path = ?`, m.was).Scan(&taken); err != nil || taken > 0 {
				return err // another row has the file: the walk leaves it to that row
			}
			_, err := r.c.db.ExecContext(ctx, unquarantineSQL, m.was, m.id)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", m.was, err)
		}
		r.res.Returned++
		r.c.log.Warn().Str("segment", path.Base(m.was)).Msg("reconcile: a quarantine was recorded but its file never moved (a crash between the two): the segment is checked again")
	}
	return nil
}

// quarantinedFrom is where a file named name in a camera's quarantine
// came from, relative to savePath: its camera's day folder. The uploader
// names it as the segment, or, when that name is taken there, with ".N"
// before the extension.
func quarantinedFrom(name string) (string, bool) {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if i := strings.LastIndexByte(stem, '.'); i > 0 {
		if _, err := strconv.Atoi(stem[i+1:]); err == nil {
			stem = stem[:i]
		}
	}
	orig := stem + ext
	info, err := segment.Parse(orig)
	if err != nil {
		return "", false
	}
	return layout.DayRel(info.Camera, info.Start) + "/" + orig, true
}

// walk compares every day folder on disk with its rows.
func (r *reconciler) walk(ctx context.Context) error {
	save := r.c.savePath
	cameras, err := os.ReadDir(save)
	if err != nil {
		return err
	}
	for _, cam := range cameras {
		if !cam.IsDir() || layout.IsOwnDir(cam.Name()) {
			continue
		}
		if !layout.IsCameraDir(cam.Name()) {
			r.res.Ignored++
			continue
		}
		days, err := os.ReadDir(filepath.Join(save, cam.Name()))
		if err != nil {
			r.unreadable(cam.Name(), err)
			continue
		}
		for _, day := range days {
			if !day.IsDir() {
				continue
			}
			if err := r.day(ctx, cam.Name(), day.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

type knownRow struct {
	rel    string
	local  LocalState
	upload UploadState
	bytes  int64
	sha256 string
}

// day reconciles one day folder: a merge of its sorted listing with its
// rows sorted by path.
func (r *reconciler) day(ctx context.Context, camera, day string) error {
	prefix := camera + "/" + day + "/"
	rows, err := r.rowsUnder(ctx, prefix)
	if err != nil {
		return err
	}
	files, err := os.ReadDir(filepath.Join(r.c.savePath, camera, day)) // sorted by name
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // gone since listed: the second pass sees to its rows
		}
		r.unreadable(camera+"/"+day, err)
		return nil
	}
	i := 0
	for _, f := range files {
		info, perr := segment.Parse(f.Name())
		if perr != nil || f.IsDir() || info.Camera != camera {
			r.res.Ignored++
			continue
		}
		rel := prefix + f.Name()
		for ; i < len(rows) && rows[i].rel < rel; i++ {
			r.vanished(rows[i])
		}
		if i < len(rows) && rows[i].rel == rel {
			if rows[i].local != Present {
				fi, err := f.Info()
				if err != nil {
					i++
					continue // vanished while we looked
				}
				op := reconcileOp{kind: opReturned, rel: rel, size: fi.Size()}
				op.same = rows[i].upload == Uploaded && fi.Size() == rows[i].bytes && rows[i].sha256 != "" &&
					fileSHA256(filepath.Join(r.c.savePath, camera, day, f.Name())) == rows[i].sha256
				r.add(op)
			}
			i++
		} else {
			fi, err := f.Info()
			if err != nil {
				continue // vanished while we looked
			}
			r.add(reconcileOp{kind: opAdd, rel: rel, info: info, size: fi.Size()})
		}
		if err := r.maybeFlush(ctx); err != nil {
			return err
		}
	}
	for ; i < len(rows); i++ {
		r.vanished(rows[i])
	}
	return r.maybeFlush(ctx)
}

// unreadable passes over a folder that cannot be read, logged.
func (r *reconciler) unreadable(rel string, err error) {
	r.res.Unreadable++
	r.c.log.Warn().Err(err).Str("folder", rel).Msg("reconcile: cannot read a folder in savePath; passing over it")
}

func (r *reconciler) vanished(k knownRow) {
	if k.local == Present {
		r.add(reconcileOp{kind: opMissing, rel: k.rel})
	}
}

// rowsUnder returns the rows whose path starts with prefix (one day
// folder), sorted by path.
func (r *reconciler) rowsUnder(ctx context.Context, prefix string) ([]knownRow, error) {
	rows, err := r.c.db.QueryContext(ctx, qDayRows, prefix, prefixEnd(prefix))
	if err != nil {
		return nil, r.c.check(err)
	}
	defer rows.Close()
	var out []knownRow
	for rows.Next() {
		var k knownRow
		if err := rows.Scan(&k.rel, &k.local, &k.upload, &k.bytes, &k.sha256); err != nil {
			return nil, r.c.check(err)
		}
		out = append(out, k)
	}
	return out, r.c.check(rows.Err())
}

// prefixEnd is the least string greater than every string that starts with
// prefix, which ends in '/': the same string ending in '0', the next byte.
func prefixEnd(prefix string) string {
	return prefix[:len(prefix)-1] + "0"
}

// gone marks missing the present rows of day folders that no longer
// exist: it visits the present paths in order, one day folder at a time.
func (r *reconciler) gone(ctx context.Context) error {
	cursor := ""
	for {
		var rel string
		err := r.c.db.QueryRowContext(ctx, qNextPresent, cursor).Scan(&rel)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return r.c.check(err)
		}
		dir := path.Dir(rel) + "/"
		if _, err := os.Stat(filepath.Join(r.c.savePath, filepath.FromSlash(dir))); errors.Is(err, fs.ErrNotExist) {
			r.add(reconcileOp{kind: opMissingDay, rel: dir})
			if err := r.flush(ctx); err != nil { // committed before the cursor passes it
				return err
			}
		}
		cursor = prefixEnd(dir)
	}
}

func (r *reconciler) add(op reconcileOp) { r.ops = append(r.ops, op) }

func (r *reconciler) maybeFlush(ctx context.Context) error {
	if len(r.ops) < reconcileBatch {
		return nil
	}
	return r.flush(ctx)
}

// flush commits the pending changes in one transaction.
func (r *reconciler) flush(ctx context.Context) error {
	if len(r.ops) == 0 {
		return nil
	}
	var res ReconcileResult
	err := r.c.write(func() error {
		res = ReconcileResult{}
		tx, err := r.c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, op := range r.ops {
			switch op.kind {
			case opAdd:
				_, err = tx.ExecContext(ctx, `INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, s3_key, verify_remote, created_ns)
					VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT(path) DO NOTHING`,
					op.info.Camera, op.info.FeedID, toNS(op.info.Start), toNS(op.info.End), op.rel, op.size, r.keyFor(op.rel), r.now)
				res.Added++
			case opReturned:
				// The file under this name may not be the one the row was
				// made for (a name repeated after a clock step, once the old
				// file was gone): it is checked against S3 (size and sha256)
				// before the row counts as uploaded again, and uploaded
				// beside the old object when it differs. So the row keeps
				// nothing of the old object: it is back under the key it
				// belongs under (not the old object's conflict key, unless a
				// multipart upload under that key is still to be aborted),
				// and the decode check starts afresh (a trigger).
				if op.same {
					_, err = tx.ExecContext(ctx, `UPDATE segments SET local = 'present', deleted_ns = 0, delete_cause = ''
						WHERE path = ? AND local != 'present'`, op.rel)
				} else {
					_, err = tx.ExecContext(ctx, `UPDATE segments SET local = 'present', deleted_ns = 0, delete_cause = '', verify_remote = 1,
						upload = CASE WHEN upload = 'uploaded' THEN 'pending' ELSE upload END, bytes = ?, sha256 = '', crc64 = '', crc64_blocks = x'', md5 = '',
						s3_key = CASE WHEN upload_id = '' AND conflict_key != '' THEN conflict_key ELSE s3_key END,
						conflict_key = CASE WHEN upload_id = '' THEN '' ELSE conflict_key END,
						etag = '', verified = '', uploaded_ns = 0, bucket = '', attempts = 0, last_error = ''
						WHERE path = ? AND local != 'present'`, op.size, op.rel)
				}
				res.Returned++
			case opMissing:
				_, err = tx.ExecContext(ctx, `UPDATE segments SET local = 'missing', deleted_ns = ?, delete_cause = ?
					WHERE path = ? AND local = 'present'`, r.now, CauseVanished, op.rel)
				res.Missing++
			case opMissingDay:
				var n int64
				var out sql.Result
				out, err = tx.ExecContext(ctx, `UPDATE segments SET local = 'missing', deleted_ns = ?, delete_cause = ?
					WHERE local = 'present' AND path >= ? AND path < ?`, r.now, CauseVanished, op.rel, prefixEnd(op.rel))
				if err == nil {
					n, err = out.RowsAffected()
					res.Missing += int(n)
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", op.rel, err)
			}
		}
		return tx.Commit()
	})
	if err != nil {
		return err
	}
	r.res.Added += res.Added
	r.res.Returned += res.Returned
	r.res.Missing += res.Missing
	r.ops = r.ops[:0]
	return nil
}

// fileSHA256 is the hex sha256 of the file at path, "" when it cannot be
// read.
func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}
