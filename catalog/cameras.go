package catalog

import (
	"context"
	"fmt"
)

// SetStopped records that an operator stopped (or started) a camera, so
// that a camera stopped by hand stays stopped after a restart.
func (c *Catalog) SetStopped(ctx context.Context, camera string, stopped bool) error {
	return c.exec(ctx, "set camera state", `INSERT INTO cameras (camera, stopped, changed_ns) VALUES (?, ?, ?)
		ON CONFLICT(camera) DO UPDATE SET stopped = excluded.stopped, changed_ns = excluded.changed_ns`,
		camera, stopped, toNS(c.now()))
}

// Stopped returns the cameras an operator stopped.
func (c *Catalog) Stopped(ctx context.Context) (map[string]bool, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT camera FROM cameras WHERE stopped = 1`)
	if err != nil {
		return nil, fmt.Errorf("catalog: stopped cameras: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("catalog: stopped cameras: %w", err)
		}
		out[name] = true
	}
	return out, rows.Err()
}

// Latest returns the newest segment of a camera.
func (c *Catalog) Latest(ctx context.Context, camera string) (Record, error) {
	return c.one(ctx, `WHERE camera = ? ORDER BY start_ns DESC, id DESC LIMIT 1`, camera)
}
