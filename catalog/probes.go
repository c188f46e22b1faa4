package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrationProbes keeps what mode auto decided from a camera's stream, so
// that a restarted daemon starts recording without probing first (the
// supervisor probes again in the background once it records). A cache:
// losing it costs one probe.
const migrationProbes = `CREATE TABLE probes (
		camera    TEXT PRIMARY KEY,
		key       TEXT    NOT NULL,
		decision  TEXT    NOT NULL,
		codec     TEXT    NOT NULL DEFAULT '',
		stream    TEXT    NOT NULL DEFAULT '',
		loose     INTEGER NOT NULL DEFAULT 0,
		probed_ns INTEGER NOT NULL
	);`

// Probe is a camera's stream as mode auto last found it.
type Probe struct {
	// Camera is the feed's staging name (the camera's, or its sub feed's).
	Camera string
	// Key is what the decision depends on (the stream's URL without
	// password, transport, resolution and rate), as the supervisor writes
	// it: a probe under another key is not used.
	Key string
	// Decision is "copy" or "transcode"; Codec the stream's codec; Stream
	// how ffprobe described it.
	Decision, Codec, Stream string
	// Loose: a start with tight probing failed before recording; ffmpeg
	// probes this stream in full.
	Loose    bool
	ProbedAt time.Time
}

// Probe returns the probe kept for a camera, or ErrNotFound.
func (c *Catalog) Probe(ctx context.Context, camera string) (Probe, error) {
	p := Probe{Camera: camera}
	var probed int64
	err := c.db.QueryRowContext(ctx, `SELECT key, decision, codec, stream, loose, probed_ns FROM probes WHERE camera = ?`, camera).
		Scan(&p.Key, &p.Decision, &p.Codec, &p.Stream, &p.Loose, &probed)
	if errors.Is(err, sql.ErrNoRows) {
		return Probe{}, ErrNotFound
	}
	if err != nil {
		return Probe{}, fmt.Errorf("catalog: probe of %s: %w", camera, err)
	}
	p.ProbedAt = fromNS(probed)
	return p, nil
}

// PutProbe records a camera's probe, replacing the last.
func (c *Catalog) PutProbe(ctx context.Context, p Probe) error {
	return c.exec(ctx, "record probe", `INSERT INTO probes (camera, key, decision, codec, stream, loose, probed_ns) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(camera) DO UPDATE SET key = excluded.key, decision = excluded.decision, codec = excluded.codec,
			stream = excluded.stream, loose = excluded.loose, probed_ns = excluded.probed_ns`,
		p.Camera, p.Key, p.Decision, p.Codec, p.Stream, p.Loose, toNS(p.ProbedAt))
}
