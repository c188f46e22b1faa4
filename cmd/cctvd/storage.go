package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/desired"
	"github.com/cctvd/cctvd/internal/lockfile"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/rebuild"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
	"github.com/cctvd/cctvd/volume"
)

// storage records while savePath is cctvd's recordings disk: it waits for
// the volume guard to find it, records (and keeps the catalog) until the
// disk goes or ctx ends, and waits again. It returns nil when ctx ends, or
// an error that stops the daemon (another cctvd holds the state folder,
// the segmenter failed).
func (d *daemon) storage(ctx context.Context) error {
	isOK := func(s volume.Status) bool { return s.State == volume.OK }
	for {
		if d.vol.WaitFor(ctx, isOK) != nil {
			return nil
		}
		stage, cancel := context.WithCancelCause(ctx)
		go func() {
			if d.vol.WaitFor(stage, func(s volume.Status) bool { return !isOK(s) }) == nil {
				cancel(supervisor.ErrStorageUnavailable)
			}
		}()
		err := d.runStage(stage)
		cancel(nil)
		if err != nil || ctx.Err() != nil {
			return err
		}
		d.log.Error().Str("savePath", d.config().StorageConfig.SavePath).
			Msg("recording stopped: savePath's disk is gone; it resumes when the disk is back")
	}
}

// runStage records, and keeps the catalog, until ctx ends. It stops them in
// pipeline order: the supervisor (each ffmpeg finalises its segment), the
// segmenter (which moves those segments), then the catalog and its users.
func (d *daemon) runStage(ctx context.Context) error {
	st := d.config().StorageConfig
	if err := os.MkdirAll(st.StateDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", st.StateDir, err)
	}
	lock, err := lockfile.Acquire(layout.Lock(st.StateDir))
	if err != nil {
		return fmt.Errorf("another cctvd uses this savePath: %w", err)
	}
	defer lock.Release()
	d.alerts.SetPersistent(true) // the outbox may be read and written: the state folder is ours
	defer d.alerts.SetPersistent(false)
	d.loadDesired(ctx) // again: the disk may have come back since
	d.sup.Restore(d.stopped())

	supCtx, supCancel := context.WithCancelCause(context.Background())
	segCtx, segCancel := context.WithCancel(context.Background())
	keepCtx, keepCancel := context.WithCancel(context.Background())
	supDone, segDone, keepDone := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	d.supRunning.Store(true)
	go func() {
		supDone <- d.sup.Run(supCtx)
		d.supRunning.Store(false)
	}()
	go func() { segDone <- d.seg.Run(segCtx) }()
	go func() { keepDone <- d.keep.Run(keepCtx) }()

	var failed error
	select {
	case <-ctx.Done():
	case err := <-supDone:
		supDone <- err
		failed = fmt.Errorf("supervisor stopped: %w", err)
	case err := <-segDone:
		segDone <- err
		failed = fmt.Errorf("segmenter stopped: %w", err)
		if err == nil {
			failed = errors.New("segmenter stopped")
		}
	case err := <-keepDone:
		keepDone <- err
		failed = fmt.Errorf("catalog keeper stopped: %v", err)
	}
	// The disk gone: ffmpeg exits are reported as such (a gap with its
	// cause). A shutdown: as a shutdown.
	if cause := context.Cause(ctx); errors.Is(cause, supervisor.ErrStorageUnavailable) {
		supCancel(cause)
	} else {
		supCancel(nil)
	}
	<-supDone
	segCancel() // the supervisor's last segments are moved too
	if err := <-segDone; err != nil && failed == nil {
		failed = err
	}
	keepCancel()
	<-keepDone
	return failed
}

// loadDesired reads which cameras operators stopped. The first start after
// an upgrade finds them in the catalog (read-only, briefly); a file that
// cannot be read is taken as "none stopped": every camera records.
func (d *daemon) loadDesired(ctx context.Context) {
	st := d.config().StorageConfig
	store, exists, err := desired.Load(layout.Desired(st.StateDir))
	if err != nil {
		d.log.Error().Err(err).Msg("cannot read which cameras an operator stopped; every camera records")
	}
	if !exists {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		stopped, err := catalog.ReadStopped(rctx, layout.Catalog(st.StateDir))
		cancel()
		if err != nil {
			d.log.Warn().Err(err).Msg("cannot read from the catalog which cameras an operator stopped; every camera records")
			stopped = map[string]bool{}
		}
		if err := store.Replace(stopped); err != nil {
			d.log.Error().Err(err).Msg("cannot save which cameras an operator stopped")
		} else if len(stopped) > 0 {
			d.log.Info().Int("stopped", len(stopped)).Msg("read the cameras an operator stopped from the catalog; they are kept in " + layout.DesiredName + " from now on")
		}
	}
	d.desired.Store(store)
}

// catalogReady runs each time a catalog is open and reconciled, before the
// work held for it: a new catalog is marked for a rebuild from S3, and the
// gap log starts with the first one.
func (d *daemon) catalogReady(ctx context.Context, cat *catalog.Catalog, fresh bool) error {
	if fresh {
		if err := rebuild.Request(ctx, cat); err != nil {
			return err
		}
	}
	if subs := subFeeds(d.config()); len(subs) > 0 {
		// Rows rebuilt from the disk or the bucket cannot tell their feed.
		if n, err := cat.MarkSubFeeds(ctx, subs); err != nil {
			return err
		} else if n > 0 {
			d.log.Info().Int64("rows", n).Msg("catalog rows of the cameras' sub feeds marked as such")
		}
	}
	if d.gapStarted {
		return nil
	}
	if err := d.gap.Start(ctx, gapNames(d.config())); err != nil {
		return err
	}
	d.gapStarted = true
	return nil
}

// useCatalog runs what needs the catalog, with the settings in force, until
// ctx ends: the gap log's queue, the uploader, retention, and the rebuild
// from S3 when one is due.
func (d *daemon) useCatalog(ctx context.Context, cat *catalog.Catalog) error {
	cfg := d.config()
	d.partsMu.Lock()
	s3c := d.s3c
	up := uploader.New(uploaderConfig(cfg), uploader.Deps{Log: d.log, Catalog: cat, S3: d.upc, Redactor: d.red, Clock: d.clock,
		Limiter: d.lim, Storage: d.storageView, OpenShare: d.pacer.OpenShare, InWindow: d.inWindow,
		OnUploaded: d.met.Uploaded, OnFailed: d.met.UploadFailed, OnConflict: d.met.UploadConflict,
		OnQuarantined: func(r catalog.Record, why string, offsite bool) {
			d.met.Quarantined(r, why, offsite)
			d.quarantineChanged(r.Camera)
			d.quarantinedFact(r, why)
			if !offsite { // S3 keeps no earlier upload: the footage is lost
				d.gapq.Corrupt(gapRecord(r), why)
			}
		}})
	ret := retention.New(retentionConfig(cfg), retention.Deps{Log: d.log, Catalog: cat, KeyFor: d.keyFor, Now: d.clock.Now, After: d.clock.After, OnDelete: func(r catalog.Record, cause string) {
		d.met.Deleted(r, cause)
		up.SegmentDeleted(r)
		d.deletedFact(r, cause)
		d.gapq.Deleted(gapRecord(r), cause)
	}})
	reb := rebuild.New(rebuildConfig(cfg),
		rebuild.Deps{Log: d.log, S3: s3c, Catalog: cat, Now: d.clock.Now, After: d.clock.After})
	d.up, d.ret, d.reb = up, ret, reb
	d.partsMu.Unlock()
	var wg sync.WaitGroup
	for _, c := range []interface{ Run(context.Context) error }{d.gapq, up, ret, reb} {
		wg.Go(func() {
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				d.log.Error().Err(err).Msg("stopped on error")
			}
		})
	}
	wg.Wait()
	return nil
}
