package catalog

import (
	"context"
	"strings"
	"time"
)

// Filter selects recordings for List.
type Filter struct {
	// Camera, if set, selects one camera.
	Camera string
	// From and To, if set, select segments overlapping [From, To).
	From, To time.Time
	// Uploaded, if set, selects segments S3 has (true) or not (false).
	Uploaded *bool
	// Present, if set, selects segments whose local file exists (true) or not.
	Present *bool
	// Limit is the page size.
	Limit int
	// After continues a listing: the cursor of the previous page's last row.
	After *Cursor
}

// Cursor marks a place in a listing, newest first.
type Cursor struct {
	StartNS int64
	ID      int64
}

// List returns a page of recordings, newest first, and the cursor of the
// next page (nil on the last).
func (c *Catalog) List(ctx context.Context, f Filter) ([]Record, *Cursor, error) {
	var where []string
	var args []any
	if f.Camera != "" {
		where, args = append(where, "camera = ?"), append(args, f.Camera)
	}
	if !f.From.IsZero() {
		where, args = append(where, "end_ns > ?"), append(args, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		where, args = append(where, "start_ns < ?"), append(args, f.To.UnixNano())
	}
	if f.Uploaded != nil {
		op := "!="
		if *f.Uploaded {
			op = "="
		}
		where = append(where, "upload "+op+" 'uploaded'")
	}
	if f.Present != nil {
		op := "!="
		if *f.Present {
			op = "="
		}
		where = append(where, "local "+op+" 'present'")
	}
	if f.After != nil {
		where, args = append(where, "(start_ns, id) < (?, ?)"), append(args, f.After.StartNS, f.After.ID)
	}
	q := ""
	if len(where) > 0 {
		q = "WHERE " + strings.Join(where, " AND ")
	}
	limit := max(f.Limit, 1)
	recs, err := c.many(ctx, q+" ORDER BY start_ns DESC, id DESC LIMIT ?", append(args, limit+1)...)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) <= limit {
		return recs, nil, nil
	}
	recs = recs[:limit]
	last := recs[limit-1]
	return recs, &Cursor{StartNS: last.Start.UnixNano(), ID: last.ID}, nil
}
