package catalog

import (
	"context"
	"time"
)

// InRange returns a camera's segments overlapping [from, to), oldest
// first, whatever their upload and local state: what an export is made
// of, and the spans of footage it shows.
func (c *Catalog) InRange(ctx context.Context, camera string, from, to time.Time) ([]Record, error) {
	return c.many(ctx, `WHERE camera = ? AND start_ns < ? AND end_ns > ? ORDER BY start_ns, id`,
		camera, toNS(to), toNS(from))
}

// available selects segments whose footage still exists: on this box or
// in S3.
const available = `(local = 'present' OR upload = 'uploaded')`

// Before returns the camera's last available segment starting before t,
// and ErrNotFound when there is none.
func (c *Catalog) Before(ctx context.Context, camera string, t time.Time) (Record, error) {
	return c.one(ctx, `WHERE camera = ? AND start_ns < ? AND `+available+` ORDER BY start_ns DESC, id DESC LIMIT 1`, camera, toNS(t))
}

// After returns the camera's first available segment starting at or after
// t, and ErrNotFound when there is none.
func (c *Catalog) After(ctx context.Context, camera string, t time.Time) (Record, error) {
	return c.one(ctx, `WHERE camera = ? AND start_ns >= ? AND `+available+` ORDER BY start_ns, id LIMIT 1`, camera, toNS(t))
}
