package catalog

import (
	"context"
	"fmt"
	"time"
)

// Gap is an interval without footage while a camera should have been
// recording, and why.
type Gap struct {
	ID     int64
	Camera string
	Start  time.Time
	// End is zero while the gap is open.
	End    time.Time
	Cause  string
	Detail string
}

// AddGap records a gap; an open one has a zero End.
func (c *Catalog) AddGap(ctx context.Context, g Gap) (int64, error) {
	var id int64
	err := c.write(func() error {
		res, err := c.db.ExecContext(ctx, `INSERT INTO gaps (camera, start_ns, end_ns, cause, detail) VALUES (?, ?, ?, ?, ?)`,
			g.Camera, toNS(g.Start), toNS(g.End), g.Cause, g.Detail)
		if err == nil {
			id, err = res.LastInsertId()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("catalog: add gap: %w", err)
	}
	return id, nil
}

// UpdateGap rewrites a gap's start, end, cause and detail.
func (c *Catalog) UpdateGap(ctx context.Context, g Gap) error {
	return c.exec(ctx, "update gap", `UPDATE gaps SET start_ns = ?, end_ns = ?, cause = ?, detail = ? WHERE id = ?`,
		toNS(g.Start), toNS(g.End), g.Cause, g.Detail, g.ID)
}

// DeleteGap removes a gap that turned out to be no hole.
func (c *Catalog) DeleteGap(ctx context.Context, id int64) error {
	return c.exec(ctx, "delete gap", `DELETE FROM gaps WHERE id = ?`, id)
}

const qOpenGaps = `WHERE end_ns = 0 ORDER BY start_ns`

// OpenGaps returns the gaps still open, by camera.
func (c *Catalog) OpenGaps(ctx context.Context) (map[string]Gap, error) {
	gaps, err := c.gaps(ctx, qOpenGaps)
	if err != nil {
		return nil, err
	}
	out := map[string]Gap{}
	for _, g := range gaps {
		out[g.Camera] = g
	}
	return out, nil
}

// Gaps returns a camera's gaps overlapping [from, to) (zero: unbounded),
// oldest first; an open gap overlaps everything after its start.
func (c *Catalog) Gaps(ctx context.Context, camera string, from, to time.Time) ([]Gap, error) {
	q, args := `WHERE camera = ?`, []any{camera}
	if !from.IsZero() {
		q, args = q+` AND (end_ns = 0 OR end_ns > ?)`, append(args, toNS(from))
	}
	if !to.IsZero() {
		q, args = q+` AND start_ns < ?`, append(args, toNS(to))
	}
	return c.gaps(ctx, q+` ORDER BY start_ns, id`, args...)
}

func (c *Catalog) gaps(ctx context.Context, where string, args ...any) ([]Gap, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, camera, start_ns, end_ns, cause, detail FROM gaps `+where, args...)
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: gaps: %w", err))
	}
	defer rows.Close()
	var out []Gap
	for rows.Next() {
		var g Gap
		var start, end int64
		if err := rows.Scan(&g.ID, &g.Camera, &start, &end, &g.Cause, &g.Detail); err != nil {
			return nil, c.check(fmt.Errorf("catalog: gaps: %w", err))
		}
		g.Start, g.End = fromNS(start), fromNS(end)
		out = append(out, g)
	}
	return out, c.check(rows.Err())
}
