package keeper

import (
	"context"
	"time"

	"github.com/cctvd/cctvd/catalog"
)

// The catalog's reading (and gap-log) methods, answered while the catalog
// is available and catalog.ErrUnavailable otherwise. The keeper is what
// the API, the metrics and the gap log hold instead of the catalog, which
// comes and goes.

// List is catalog.List.
func (k *Keeper) List(ctx context.Context, f catalog.Filter) ([]catalog.Record, *catalog.Cursor, error) {
	type page struct {
		recs []catalog.Record
		next *catalog.Cursor
	}
	p, err := with(k, func(c *catalog.Catalog) (page, error) {
		recs, next, err := c.List(ctx, f)
		return page{recs, next}, err
	})
	return p.recs, p.next, err
}

// Get is catalog.Get.
func (k *Keeper) Get(ctx context.Context, id int64) (catalog.Record, error) {
	return with(k, func(c *catalog.Catalog) (catalog.Record, error) { return c.Get(ctx, id) })
}

// Latest is catalog.Latest.
func (k *Keeper) Latest(ctx context.Context, camera string) (catalog.Record, error) {
	return with(k, func(c *catalog.Catalog) (catalog.Record, error) { return c.Latest(ctx, camera) })
}

// Backlog is catalog.Backlog.
func (k *Keeper) Backlog(ctx context.Context) (catalog.Backlog, error) {
	return with(k, func(c *catalog.Catalog) (catalog.Backlog, error) { return c.Backlog(ctx) })
}

// AddGap is catalog.AddGap.
func (k *Keeper) AddGap(ctx context.Context, g catalog.Gap) (int64, error) {
	return with(k, func(c *catalog.Catalog) (int64, error) { return c.AddGap(ctx, g) })
}

// UpdateGap is catalog.UpdateGap.
func (k *Keeper) UpdateGap(ctx context.Context, g catalog.Gap) error {
	_, err := with(k, func(c *catalog.Catalog) (struct{}, error) { return struct{}{}, c.UpdateGap(ctx, g) })
	return err
}

// DeleteGap is catalog.DeleteGap.
func (k *Keeper) DeleteGap(ctx context.Context, id int64) error {
	_, err := with(k, func(c *catalog.Catalog) (struct{}, error) { return struct{}{}, c.DeleteGap(ctx, id) })
	return err
}

// OpenGaps is catalog.OpenGaps.
func (k *Keeper) OpenGaps(ctx context.Context) (map[string]catalog.Gap, error) {
	return with(k, func(c *catalog.Catalog) (map[string]catalog.Gap, error) { return c.OpenGaps(ctx) })
}

// Gaps is catalog.Gaps.
func (k *Keeper) Gaps(ctx context.Context, camera string, from, to time.Time) ([]catalog.Gap, error) {
	return with(k, func(c *catalog.Catalog) ([]catalog.Gap, error) { return c.Gaps(ctx, camera, from, to) })
}

// InRange is catalog.InRange (exports).
func (k *Keeper) InRange(ctx context.Context, camera string, from, to time.Time) ([]catalog.Record, error) {
	return with(k, func(c *catalog.Catalog) ([]catalog.Record, error) { return c.InRange(ctx, camera, from, to) })
}

// Before is catalog.Before (exports).
func (k *Keeper) Before(ctx context.Context, camera string, t time.Time) (catalog.Record, error) {
	return with(k, func(c *catalog.Catalog) (catalog.Record, error) { return c.Before(ctx, camera, t) })
}

// After is catalog.After (exports).
func (k *Keeper) After(ctx context.Context, camera string, t time.Time) (catalog.Record, error) {
	return with(k, func(c *catalog.Catalog) (catalog.Record, error) { return c.After(ctx, camera, t) })
}

// Stream is catalog.Stream (the streams discovery found).
func (k *Keeper) Stream(ctx context.Context, camera string) (catalog.Stream, error) {
	return with(k, func(c *catalog.Catalog) (catalog.Stream, error) { return c.Stream(ctx, camera) })
}

// PutStream is catalog.PutStream.
func (k *Keeper) PutStream(ctx context.Context, s catalog.Stream) error {
	_, err := with(k, func(c *catalog.Catalog) (struct{}, error) { return struct{}{}, c.PutStream(ctx, s) })
	return err
}

// Probe is catalog.Probe.
func (k *Keeper) Probe(ctx context.Context, camera string) (catalog.Probe, error) {
	return with(k, func(c *catalog.Catalog) (catalog.Probe, error) { return c.Probe(ctx, camera) })
}

// PutProbe is catalog.PutProbe.
func (k *Keeper) PutProbe(ctx context.Context, p catalog.Probe) error {
	_, err := with(k, func(c *catalog.Catalog) (struct{}, error) { return struct{}{}, c.PutProbe(ctx, p) })
	return err
}

// Locations is catalog.Locations (exports of footage uploaded before a
// change of s3Bucket or s3Path).
func (k *Keeper) Locations(ctx context.Context) ([]catalog.Location, error) {
	return with(k, func(c *catalog.Catalog) ([]catalog.Location, error) { return c.Locations(ctx) })
}

// PathTaken is catalog.PathTaken (segment names unique against the catalog).
func (k *Keeper) PathTaken(ctx context.Context, rel string) (bool, error) {
	return with(k, func(c *catalog.Catalog) (bool, error) { return c.PathTaken(ctx, rel) })
}

// LatestFeed is catalog.LatestFeed.
func (k *Keeper) LatestFeed(ctx context.Context, camera, feedID string) (catalog.Record, error) {
	return with(k, func(c *catalog.Catalog) (catalog.Record, error) { return c.LatestFeed(ctx, camera, feedID) })
}

// Reach is catalog.Reach.
func (k *Keeper) Reach(ctx context.Context, camera string) ([]catalog.FeedReach, error) {
	return with(k, func(c *catalog.Catalog) ([]catalog.FeedReach, error) { return c.Reach(ctx, camera) })
}

// AddUploadRequest is catalog.AddUploadRequest.
func (k *Keeper) AddUploadRequest(ctx context.Context, camera string, from, to time.Time) (catalog.UploadRequest, error) {
	return with(k, func(c *catalog.Catalog) (catalog.UploadRequest, error) {
		return c.AddUploadRequest(ctx, camera, from, to)
	})
}

// UploadRequests is catalog.UploadRequests.
func (k *Keeper) UploadRequests(ctx context.Context, since time.Time) ([]catalog.UploadRequest, error) {
	return with(k, func(c *catalog.Catalog) ([]catalog.UploadRequest, error) { return c.UploadRequests(ctx, since) })
}
