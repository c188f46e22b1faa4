package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Stream is a camera's stream found by discovery: a cache, like the rest
// of the catalog; losing it costs one discovery.
type Stream struct {
	Camera string
	// Key is what the stream was found for (address, ports, user,
	// method, resolution and rate), as the supervisor writes it.
	Key string
	// URI is the stream's URL, without credentials.
	URI     string
	Source  string
	FoundAt time.Time
}

// Stream returns the stream found for a camera, or ErrNotFound.
func (c *Catalog) Stream(ctx context.Context, camera string) (Stream, error) {
	s := Stream{Camera: camera}
	var found int64
	err := c.db.QueryRowContext(ctx, `SELECT key, uri, source, found_ns FROM streams WHERE camera = ?`, camera).
		Scan(&s.Key, &s.URI, &s.Source, &found)
	if errors.Is(err, sql.ErrNoRows) {
		return Stream{}, ErrNotFound
	}
	if err != nil {
		return Stream{}, fmt.Errorf("catalog: stream of %s: %w", camera, err)
	}
	s.FoundAt = fromNS(found)
	return s, nil
}

// PutStream records the stream found for a camera, replacing the last.
func (c *Catalog) PutStream(ctx context.Context, s Stream) error {
	return c.exec(ctx, "record stream", `INSERT INTO streams (camera, key, uri, source, found_ns) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(camera) DO UPDATE SET key = excluded.key, uri = excluded.uri, source = excluded.source, found_ns = excluded.found_ns`,
		s.Camera, s.Key, s.URI, s.Source, toNS(s.FoundAt))
}
