package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	oklog "github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/lockfile"
	"github.com/cctvd/cctvd/internal/logging"
	"github.com/cctvd/cctvd/internal/logring"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/segmenter"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
)

// runDaemon builds every component from the config and runs them under ctx.
// On interrupt they stop in pipeline order: the supervisor first (every
// ffmpeg finalises its segment), then the segmenter (which moves those last
// segments and records them in the catalog), so nothing recorded is left
// behind; the uploader gets a grace period for uploads under way, and what
// it does not finish is uploaded after the next start.
func runDaemon(ctx context.Context, cfg *config.Config, cfgPath string, stdout io.Writer) error {
	hub := logring.NewHub(5000, 1000)
	red := redact.New(cfg.Secrets()...)
	log, _ := logging.New(logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format, Out: stdout, Hub: hub, Redactor: red})
	// Process-wide zerolog settings, set here and nowhere else.
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit, zerolog.DurationFieldInteger = time.Second, false

	for _, dir := range []string{cfg.StorageConfig.SavePath, cfg.StorageConfig.StateDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	lock, err := lockfile.Acquire(filepath.Join(cfg.StorageConfig.StateDir, "lock"))
	if err != nil {
		return fmt.Errorf("another cctvd uses this savePath: %w", err)
	}
	defer lock.Release()
	owner := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())

	cat, err := catalog.Open(ctx, filepath.Join(cfg.StorageConfig.StateDir, catalog.FileName), cfg.StorageConfig.SavePath, nil)
	if err != nil {
		return err
	}
	defer cat.Close()
	keyFor := func(rel string) string { return uploader.Key(cfg.S3Config.S3Path, rel) }
	rec, err := cat.Reconcile(ctx, keyFor)
	if err != nil {
		return err
	}
	log.Info().Int("added", rec.Added).Int("missing", rec.Missing).Int("returned", rec.Returned).Msg("catalog reconciled with the disk")

	s3c, err := uploader.NewClient(ctx, uploader.ClientConfigFrom(cfg))
	if err != nil {
		return err
	}
	up := uploader.New(uploader.Config{
		Bucket:           cfg.S3Config.S3Bucket,
		Prefix:           cfg.S3Config.S3Path,
		Concurrency:      cfg.S3Config.UploadConcurrency,
		PartSize:         int64(cfg.S3Config.PartSizeMB) << 20,
		PartConcurrency:  cfg.S3Config.PartConcurrency,
		ClearAfterUpload: cfg.StorageConfig.ClearAfterUpload,
	}, uploader.Deps{Log: log, Catalog: cat, S3: s3c, Redactor: red})

	sup := supervisor.New(supervisor.ConfigFrom(cfg, owner), cfg.Cameras, nil, supervisor.Deps{
		Log:      log,
		Redactor: red,
	})
	ret := retention.New(retention.Config{
		SavePath:     cfg.StorageConfig.SavePath,
		LimitBytes:   cfg.StorageConfig.LimitBytes(),
		LowWater:     cfg.StorageConfig.LowWaterPercent / 100,
		MinFreeBytes: int64(cfg.StorageConfig.MinFreeGB * 1e9),
	}, retention.Deps{Log: log, Catalog: cat, KeyFor: keyFor})

	feeds := map[string]string{}
	for _, c := range cfg.Cameras {
		feeds[c.CameraName] = c.VideoFeedID
	}
	seg := segmenter.New(segmenter.Config{
		SavePath:  cfg.StorageConfig.SavePath,
		Owner:     owner,
		ProbePath: cfg.FFmpeg.ProbePath,
		FeedIDs:   feeds,
	}, segmenter.Deps{
		Log: log,
		OnSegment: func(seg segment.Segment) {
			rel, err := filepath.Rel(cfg.StorageConfig.SavePath, seg.Path)
			if err != nil {
				log.Error().Err(err).Msg("segment outside savePath")
				return
			}
			// If this fails the file stays on disk, and the next start's
			// reconciliation adds it.
			if _, err := cat.Add(context.Background(), seg, keyFor(filepath.ToSlash(rel))); err != nil {
				log.Error().Err(err).Str("segment", seg.Name()).Msg("cannot record segment in the catalog")
				return
			}
			up.Notify()
			ret.Notify()
		},
	})

	var g oklog.Group
	// Signals: the first actor to return interrupts all the others.
	sigCtx, sigCancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-sigCtx.Done()
		return nil
	}, func(error) { sigCancel() })

	supCtx, supCancel := context.WithCancel(context.Background())
	supDone := make(chan struct{})
	g.Add(func() error {
		defer close(supDone)
		return sup.Run(supCtx)
	}, func(error) { supCancel() })

	segCtx, segCancel := context.WithCancel(context.Background())
	g.Add(func() error {
		return seg.Run(segCtx)
	}, func(error) {
		supCancel()
		<-supDone // the supervisor's last segments must be moved too
		segCancel()
	})

	retCtx, retCancel := context.WithCancel(context.Background())
	g.Add(func() error {
		return ret.Run(retCtx)
	}, func(error) { retCancel() })

	upCtx, upCancel := context.WithCancel(context.Background())
	g.Add(func() error {
		return up.Run(upCtx)
	}, func(error) { upCancel() })

	log.Info().Str("version", version).Str("config", cfgPath).Int("cameras", len(cfg.Cameras)).
		Str("savePath", cfg.StorageConfig.SavePath).Msg("cctvd starting")
	err = g.Run()
	if err != nil {
		log.Error().Err(err).Msg("cctvd stopped on error")
		return err
	}
	log.Info().Msg("cctvd stopped")
	return nil
}
