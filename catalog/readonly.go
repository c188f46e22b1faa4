package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// ErrOlderSchema marks a catalog of an older cctvd, which a read-only
// open cannot migrate.
var ErrOlderSchema = errors.New("the catalog was written by an older cctvd")

// OpenReadOnly opens an existing catalog for reading only, as the
// command line does beside the daemon (cctvd export): SQLite's mode=ro,
// so it never writes the database, never migrates it, never checkpoints
// its WAL and never creates it; it reads what the daemon has committed,
// WAL included. Its schema must be this cctvd's: an older one wraps
// ErrOlderSchema (the daemon migrates it at its next start), a newer one
// ErrNewerSchema. Writes through it fail.
//
// SQLite needs the WAL's index (the -shm file) to read a WAL database:
// with the daemon running it exists and is shared; without it SQLite
// creates it beside the database, and, run by root, gives it (and the
// -wal) the database file's owner, so the daemon's user can open the
// catalog after a root export, even one killed while it read.
func OpenReadOnly(ctx context.Context, path, savePath string) (*Catalog, error) {
	if err := checkHeader(path); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&_pragma=busy_timeout(10000)&_pragma=cache_size(-2000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("catalog: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(2)
	c := &Catalog{db: db, path: path, savePath: savePath, now: time.Now}
	err = c.checkSchema(ctx)
	if err == nil {
		err = c.firstRead(ctx)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog %s (read-only): %w", path, err)
	}
	return c, nil
}

// checkSchema fails unless the catalog's schema is the one this cctvd
// writes.
func (c *Catalog) checkSchema(ctx context.Context) error {
	var version int
	if err := c.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	switch {
	case version > len(migrations):
		return fmt.Errorf("%w: schema version %d, this cctvd knows %d", ErrNewerSchema, version, len(migrations))
	case version < len(migrations):
		return fmt.Errorf("%w: schema version %d, this cctvd's is %d (the daemon migrates it when it starts)", ErrOlderSchema, version, len(migrations))
	}
	return nil
}
