package catalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cctvd/cctvd/internal/durable"
	"github.com/cctvd/cctvd/layout"
)

// QuickCheck runs SQLite's quick_check over the whole file. It reads every
// page, so it runs in the background; a damaged file returns an error that
// satisfies IsCorrupt.
func (c *Catalog) QuickCheck(ctx context.Context) error {
	rows, err := c.db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return c.check(fmt.Errorf("catalog: quick_check: %w", err))
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return c.check(fmt.Errorf("catalog: quick_check: %w", err))
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return c.check(fmt.Errorf("catalog: quick_check: %w", err))
	}
	if len(problems) > 0 {
		return c.check(fmt.Errorf("catalog: quick_check: %w: %s", ErrCorrupt, strings.Join(problems, "; ")))
	}
	return nil
}

// MoveAside renames a catalog that cannot be used (and its -wal and -shm
// files) to path.<why>-<UTC time>, keeping it for inspection, never
// deleting it; it returns the new name of the database file. The catalog
// must be closed.
func MoveAside(path, why string, now time.Time) (string, error) {
	dst := layout.Aside(path, why, now)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Rename(path+suffix, dst+suffix)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("catalog: move %s aside: %w", path+suffix, err)
		}
	}
	_ = durable.SyncDir(filepath.Dir(path)) // moved either way; the new catalog is synced as it is written
	return dst, nil
}
