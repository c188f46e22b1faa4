package catalog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cctvd/cctvd/segment"
)

// ReconcileResult says what Reconcile changed.
type ReconcileResult struct {
	// Added counts files on disk the catalog lacked (now pending, to be
	// checked against S3 before upload).
	Added int
	// Missing counts rows whose file is gone without cctvd deleting it.
	Missing int
	// Returned counts rows marked deleted or missing whose file is back.
	Returned int
	// Ignored counts files under camera folders that are not segments.
	Ignored int
}

// Reconcile makes the catalog agree with the disk: every segment file under
// savePath/<camera>/<day>/ gets a row (keyed by keyFor(its path relative to
// savePath)), and a row whose file is gone is marked missing. Run it at
// start-up, before anything else writes segments.
func (c *Catalog) Reconcile(ctx context.Context, keyFor func(rel string) string) (ReconcileResult, error) {
	var res ReconcileResult
	known := map[string]LocalState{}
	rows, err := c.db.QueryContext(ctx, `SELECT path, local FROM segments`)
	if err != nil {
		return res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	for rows.Next() {
		var rel string
		var local LocalState
		if err := rows.Scan(&rel, &local); err != nil {
			rows.Close()
			return res, fmt.Errorf("catalog: reconcile: %w", err)
		}
		known[rel] = local
	}
	rows.Close()

	type found struct {
		rel  string
		info segment.Info
		size int64
	}
	var add []found
	var back []string
	seen := map[string]bool{}
	cameras, err := os.ReadDir(c.savePath)
	if err != nil {
		return res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	for _, cam := range cameras {
		if !cam.IsDir() || strings.HasPrefix(cam.Name(), ".") {
			continue
		}
		days, err := os.ReadDir(filepath.Join(c.savePath, cam.Name()))
		if err != nil {
			return res, fmt.Errorf("catalog: reconcile: %w", err)
		}
		for _, day := range days {
			if !day.IsDir() {
				continue
			}
			files, err := os.ReadDir(filepath.Join(c.savePath, cam.Name(), day.Name()))
			if err != nil {
				return res, fmt.Errorf("catalog: reconcile: %w", err)
			}
			for _, f := range files {
				info, err := segment.Parse(f.Name())
				if err != nil || f.IsDir() || info.Camera != cam.Name() {
					res.Ignored++
					continue
				}
				rel := cam.Name() + "/" + day.Name() + "/" + f.Name()
				seen[rel] = true
				local, ok := known[rel]
				switch {
				case !ok:
					fi, err := f.Info()
					if err != nil {
						continue // vanished while we looked
					}
					add = append(add, found{rel, info, fi.Size()})
				case local != Present:
					back = append(back, rel)
				}
			}
		}
	}

	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	defer tx.Rollback()
	now := toNS(c.now())
	for _, f := range add {
		_, err := tx.ExecContext(ctx, `INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, s3_key, verify_remote, created_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT(path) DO NOTHING`,
			f.info.Camera, f.info.FeedID, toNS(f.info.Start), toNS(f.info.End), f.rel, f.size, keyFor(f.rel), now)
		if err != nil {
			return res, fmt.Errorf("catalog: reconcile: add %s: %w", f.rel, err)
		}
		res.Added++
	}
	for _, rel := range back {
		if _, err := tx.ExecContext(ctx, `UPDATE segments SET local = 'present', deleted_ns = 0, delete_cause = '', verify_remote = 1 WHERE path = ?`, rel); err != nil {
			return res, fmt.Errorf("catalog: reconcile: %w", err)
		}
		res.Returned++
	}
	for rel, local := range known {
		if local == Present && !seen[rel] {
			if _, err := tx.ExecContext(ctx, `UPDATE segments SET local = 'missing', deleted_ns = ?, delete_cause = ? WHERE path = ?`,
				now, CauseVanished, rel); err != nil {
				return res, fmt.Errorf("catalog: reconcile: %w", err)
			}
			res.Missing++
		}
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("catalog: reconcile: %w", err)
	}
	return res, nil
}
