package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	out, err := stopped(ctx, c.db)
	return out, c.check(err)
}

// ReadStopped reads the cameras an operator stopped from the catalog file
// at path, without migrating or writing it. It serves the first start after
// an upgrade from a cctvd that kept these states only in the catalog; a
// missing file, or one without the table, holds none.
func ReadStopped(ctx context.Context, path string) (map[string]bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err := checkHeader(path); err != nil { // before SQLite touches its -wal
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(2000)")
	if err != nil {
		return nil, fmt.Errorf("catalog: open %s: %w", path, err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'cameras'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	if n == 0 {
		return map[string]bool{}, nil
	}
	return stopped(ctx, db)
}

// stopped reads the cameras table. It is small: one row per camera ever
// configured.
func stopped(ctx context.Context, db *sql.DB) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx, qStopped)
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
	return c.one(ctx, qLatest, camera)
}

const (
	qStopped = `SELECT camera FROM cameras WHERE stopped = 1`
	qLatest  = `WHERE camera = ? ORDER BY start_ns DESC, id DESC LIMIT 1`
)
