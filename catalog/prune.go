package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PruneResult says what Prune removed.
type PruneResult struct {
	Segments int64 `json:"segments"`
	Gaps     int64 `json:"gaps"`
}

const (
	qPruneSegments = `DELETE FROM segments WHERE id IN (SELECT id FROM segments
		WHERE upload IN ('pending', 'uploading', 'uploaded') AND local IN ('deleted', 'missing') AND start_ns < ? LIMIT ?)`
	qPruneGaps = `DELETE FROM gaps WHERE id IN (SELECT id FROM gaps WHERE end_ns > 0 AND end_ns < ? LIMIT ?)`
)

// pruneBatch is how many rows one transaction of Prune deletes, so that
// other writers wait for a moment at most.
const pruneBatch = 2000

// Prune keeps the catalog bounded: it deletes the rows of segments that
// started before `before` and whose file is no longer on the local disk
// (deleted by clearAfterUpload or retention, or vanished), and the closed
// gaps that ended before it. Rows of files still on disk are kept whatever
// their age: they are what retention and the uploader work on. It deletes
// in small transactions through the queue and gap indexes, so it neither
// holds the database nor reads every row.
func (c *Catalog) Prune(ctx context.Context, before time.Time) (PruneResult, error) {
	var res PruneResult
	cut := toNS(before)
	for _, q := range []struct {
		n   *int64
		sql string
	}{
		{&res.Segments, qPruneSegments},
		{&res.Gaps, qPruneGaps},
	} {
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			var n int64
			err := c.write(func() error {
				out, err := c.db.ExecContext(ctx, q.sql, cut, pruneBatch)
				if err == nil {
					n, err = out.RowsAffected()
				}
				return err
			})
			if err != nil {
				return res, fmt.Errorf("catalog: prune: %w", err)
			}
			*q.n += n
			if n < pruneBatch {
				break
			}
		}
	}
	return res, nil
}

// State reads a fact about the catalog itself (see SetState).
func (c *Catalog) State(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := c.db.QueryRowContext(ctx, `SELECT value FROM state WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, c.check(fmt.Errorf("catalog: state %s: %w", key, err))
	}
	return v, true, nil
}

// SetState records a fact about the catalog itself, such as the progress
// of a rebuild.
func (c *Catalog) SetState(ctx context.Context, key, value string) error {
	return c.exec(ctx, "set state "+key, `INSERT INTO state (key, value) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
}

// DeleteState forgets a fact recorded with SetState.
func (c *Catalog) DeleteState(ctx context.Context, key string) error {
	return c.exec(ctx, "delete state "+key, `DELETE FROM state WHERE key = ?`, key)
}
