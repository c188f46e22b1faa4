package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	oklog "github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/api"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/gaplog"
	"github.com/cctvd/cctvd/internal/desired"
	"github.com/cctvd/cctvd/internal/logging"
	"github.com/cctvd/cctvd/internal/logring"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/keeper"
	"github.com/cctvd/cctvd/metrics"
	"github.com/cctvd/cctvd/rebuild"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/segmenter"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
	"github.com/cctvd/cctvd/volume"
)

// daemon holds every component, built explicitly from the config.
//
// What it runs comes up in three rings. The API, the metrics and the volume
// guard run from the start. Recording (the supervisor and the segmenter)
// runs while savePath is cctvd's recordings disk, and stops while it is
// missing. The catalog is opened beside recording, never before it: until
// it is usable, closed segments stay on disk and wait (with the camera
// events for the gap log) in the keeper's queue, and what needs the catalog
// (uploads, retention, the rebuild from S3) starts once it is.
type daemon struct {
	cfgPath string
	log     zerolog.Logger
	red     *redact.Redactor
	owner   string
	getenv  func(string) string

	cfgPtr   atomic.Pointer[config.Config] // replaced by a reload
	reloadMu sync.Mutex
	hup      chan os.Signal

	met  *metrics.Metrics
	vol  *volume.Guard
	keep *keeper.Keeper
	sup  *supervisor.Supervisor
	seg  *segmenter.Segmenter
	gap  *gaplog.Log
	api  *api.Server

	// desired holds the cameras operators stopped; loaded from the state
	// folder when recording starts (it may be on savePath's disk).
	desired atomic.Pointer[desired.Store]

	// What runs while the catalog is usable, and the S3 client.
	partsMu    sync.Mutex
	s3c        *s3.Client
	up         *uploader.Uploader
	ret        *retention.Retention
	reb        *rebuild.Rebuilder
	gapStarted bool // Run's stage goroutine only

	supRunning atomic.Bool
}

// runDaemon builds every component from the config and runs them under ctx.
// On interrupt they stop in pipeline order: the supervisor first (every
// ffmpeg finalises its segment), then the segmenter (which moves those last
// segments and records them in the catalog), then the catalog's users (the
// uploader gets a grace period for uploads under way; what it does not
// finish is uploaded after the next start), then the catalog.
func runDaemon(ctx context.Context, cfg *config.Config, cfgPath string, stdout io.Writer, getenv func(string) string) error {
	// SIGHUP reloads the config; caught from the start, so that one sent
	// during start-up does not kill the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	hub := logring.NewHub(5000, 1000)
	red := redact.New(cfg.Secrets()...)
	log := logging.New(logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format, Out: stdout, Hub: hub, Redactor: red})
	// Process-wide settings, set here and nowhere else. A lower GC target
	// keeps the resident set small on NVR boards, for a little CPU
	// (measured: 37 MB instead of 42 MB with 64 cameras); GOGC overrides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(60)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit, zerolog.DurationFieldInteger = time.Second, false

	d := &daemon{cfgPath: cfgPath, log: log, red: red, owner: owner(), hup: hup, getenv: getenv}
	d.cfgPtr.Store(cfg)
	warnIfReadable(log, cfgPath)
	if err := d.build(ctx, hub); err != nil {
		if ctx.Err() != nil { // SIGINT/SIGTERM during start-up: a stop, not a failure
			log.Info().Err(err).Msg("cctvd stopped during start-up")
			return nil
		}
		return err
	}
	return d.run(ctx)
}

func (d *daemon) config() *config.Config { return d.cfgPtr.Load() }

// keyFor is the S3 key of a segment at rel (relative to savePath), under
// the current s3Path.
func (d *daemon) keyFor(rel string) string { return uploader.Key(d.config().S3Config.S3Path, rel) }

// build makes every component from the config. Nothing here touches
// savePath: it may be an empty folder where a disk should be.
func (d *daemon) build(ctx context.Context, hub *logring.Hub) error {
	cfg, log := d.config(), d.log
	st := cfg.StorageConfig
	s3c, err := uploader.NewClient(ctx, uploader.ClientConfigFrom(cfg))
	if err != nil {
		return err
	}
	d.s3c = s3c
	d.vol = volume.New(volume.Config{SavePath: st.SavePath, AnchorDir: volume.AnchorDir(st.SavePath, st.StateDir, d.getenv)},
		volume.Deps{Log: log})
	d.keep = keeper.New(keeper.Config{Path: filepath.Join(st.StateDir, catalog.FileName), SavePath: st.SavePath,
		RetentionDays: st.CatalogDays()},
		keeper.Deps{Log: log, KeyFor: d.keyFor, Ready: d.catalogReady, Use: d.useCatalog})
	// Metrics read the components at scrape time, after they exist.
	d.met = metrics.New(metrics.Sources{
		Cameras:   func() []supervisor.Status { return d.sup.Statuses() },
		Uploader:  d.uploaderStatus,
		Retention: d.retentionStatus,
		Backlog:   d.keep.Backlog,
		Volume:    d.vol.Status,
		Catalog:   d.keep.Status,
	})
	d.gap = gaplog.New(gaplog.Deps{Log: log, Catalog: d.keep, OnClosed: d.met.Gap})
	d.sup = supervisor.New(supervisor.ConfigFrom(cfg, d.owner), cfg.Cameras, nil, supervisor.Deps{
		Log:         log,
		Redactor:    d.red,
		OnEvent:     d.cameraEvent,
		SaveStopped: d.saveStopped,
		Gate:        d.gate,
	})
	d.seg = segmenter.New(segmenter.Config{
		SavePath:  st.SavePath,
		Owner:     d.owner,
		ProbePath: cfg.FFmpeg.ProbePath,
		FeedIDs:   feedIDs(cfg),
	}, segmenter.Deps{Log: log, OnSegment: d.segmentClosed, OnQuarantine: d.quarantined})

	// When the disk is there, the cameras operators stopped are known
	// before the API answers.
	if d.vol.Check().State == volume.OK {
		if err := os.MkdirAll(st.StateDir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", st.StateDir, err)
		}
		d.loadDesired(ctx)
		d.sup.Restore(d.stopped())
	}

	d.api = api.New(api.Config{Listen: cfg.API.Listen, Token: cfg.API.Token, StopTimeout: cfg.FFmpeg.StopTimeout.Std() + 10*time.Second},
		api.Deps{
			Log:          log,
			Supervisor:   d.sup,
			Catalog:      d.keep,
			Logs:         hub,
			Uploader:     d.uploaderStatus,
			Retention:    d.retentionStatus,
			Registry:     d.met.Registry,
			Redactor:     d.red,
			Ready:        d.ready,
			Gaps:         d.gap.Gaps,
			Reload:       d.reload,
			Volume:       d.vol.Status,
			CatalogState: d.catalogStatus,
		})
	return nil
}

func uploaderConfig(cfg *config.Config) uploader.Config {
	return uploader.Config{
		Bucket:           cfg.S3Config.S3Bucket,
		Prefix:           cfg.S3Config.S3Path,
		Concurrency:      cfg.S3Config.UploadConcurrency,
		PartSize:         int64(cfg.S3Config.PartSizeMB) << 20,
		PartConcurrency:  cfg.S3Config.PartConcurrency,
		ClearAfterUpload: cfg.StorageConfig.ClearAfterUpload,
	}
}

func retentionConfig(cfg *config.Config) retention.Config {
	return retention.Config{
		SavePath:     cfg.StorageConfig.SavePath,
		LimitBytes:   cfg.StorageConfig.LimitBytes(),
		LowWater:     cfg.StorageConfig.LowWaterPercent / 100,
		MinFreeBytes: int64(cfg.StorageConfig.MinFreeGB * 1e9),
	}
}

func feedIDs(cfg *config.Config) map[string]string {
	ids := map[string]string{}
	for _, c := range cfg.Cameras {
		ids[c.CameraName] = c.VideoFeedID
	}
	return ids
}

// warnIfReadable warns when the config file, which holds secrets, can be
// read by other users.
func warnIfReadable(log zerolog.Logger, path string) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn().Str("config", path).Str("mode", fi.Mode().Perm().String()).
			Msg("the config file holds secrets and other users can read it: chmod 600 " + path)
	}
}

// reload re-reads the config file and applies it: an invalid file is
// rejected whole with nothing changed; cameras are added, removed and
// restarted as the supervisor's Apply says; S3 and storage settings apply
// from the next segment and the next decision.
func (d *daemon) reload(ctx context.Context) (api.ReloadResult, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.config()
	cfg, err := config.Load(d.cfgPath, os.Getenv)
	if err == nil && (cfg.StorageConfig.SavePath != old.StorageConfig.SavePath || cfg.StorageConfig.StateDir != old.StorageConfig.StateDir) {
		err = errors.New("storageConfig.savePath and storageConfig.stateDir cannot change without a restart")
	}
	var client *s3.Client
	if err == nil && uploader.ClientConfigFrom(cfg) != uploader.ClientConfigFrom(old) {
		client, err = uploader.NewClient(ctx, uploader.ClientConfigFrom(cfg))
	}
	if err != nil {
		d.log.Error().Str("config", d.cfgPath).Msg("reload: config rejected, nothing changed: " + err.Error())
		return api.ReloadResult{}, fmt.Errorf("%w: %v", api.ErrConfigRejected, err)
	}
	warnIfReadable(d.log, d.cfgPath)
	d.red.Add(cfg.Secrets()...)
	d.cfgPtr.Store(cfg)
	d.seg.SetFeedIDs(feedIDs(cfg))
	d.keep.SetRetentionDays(cfg.StorageConfig.CatalogDays())
	d.partsMu.Lock()
	if client != nil {
		d.s3c = client
	}
	if d.up != nil {
		var s3api uploader.S3API
		if client != nil {
			s3api = client
		}
		d.up.Reconfigure(uploaderConfig(cfg), s3api)
	}
	if d.ret != nil {
		d.ret.Reconfigure(retentionConfig(cfg))
	}
	d.partsMu.Unlock()
	d.api.SetToken(cfg.API.Token)
	applied := d.sup.Apply(cfg.Cameras, supervisor.ConfigFrom(cfg, d.owner), d.stopped())
	if cfg.API.Listen != old.API.Listen || cfg.Log != old.Log {
		d.log.Warn().Msg("reload: api.listen and log settings take effect at the next restart")
	}
	d.log.Info().Strs("added", applied.Added).Strs("removed", applied.Removed).Strs("changed", applied.Changed).Msg("config reloaded")
	return api.ReloadResult{Added: applied.Added, Removed: applied.Removed, Changed: applied.Changed}, nil
}

// gate checks, before each ffmpeg start, that savePath is still cctvd's
// disk: a restart right after the disk vanished (before the next poll)
// must not record onto the filesystem under the mount point.
func (d *daemon) gate() error {
	if st := d.vol.Check(); st.State != volume.OK {
		return fmt.Errorf("%w: %s", supervisor.ErrStorageUnavailable, st.Message)
	}
	return nil
}

// stopped returns the cameras operators stopped, as far as they are known.
func (d *daemon) stopped() map[string]bool {
	if s := d.desired.Load(); s != nil {
		return s.Stopped()
	}
	return map[string]bool{}
}

// saveStopped persists an operator's start or stop, before it is carried out.
func (d *daemon) saveStopped(camera string, stopped bool) error {
	s := d.desired.Load()
	if s == nil {
		return errors.New("the state folder is not available yet: savePath's disk is missing")
	}
	return s.Set(camera, stopped)
}

// segmentClosed records a closed segment, now or once the catalog is
// usable, and wakes the uploader and retention. If the catalog write
// fails, the file stays on disk and the next reconciliation adds it.
func (d *daemon) segmentClosed(seg segment.Segment) {
	d.met.Segment(seg)
	rel, err := filepath.Rel(d.config().StorageConfig.SavePath, seg.Path)
	if err != nil {
		d.log.Error().Err(err).Msg("segment outside savePath")
		return
	}
	key := d.keyFor(filepath.ToSlash(rel))
	d.keep.Do(func(cat *catalog.Catalog) {
		if _, err := cat.Add(context.Background(), seg, key); err != nil {
			d.log.Error().Err(err).Str("segment", seg.Name()).Msg("cannot record segment in the catalog")
			return
		}
		d.gap.Segment(seg)
		d.partsMu.Lock()
		up, ret := d.up, d.ret
		d.partsMu.Unlock()
		if up != nil {
			up.Notify()
		}
		if ret != nil {
			ret.Notify()
		}
	})
}

// cameraEvent passes the supervisor's events to the gap log, in order with
// the segments, once the catalog is usable.
func (d *daemon) cameraEvent(ev supervisor.Event) {
	d.keep.Do(func(*catalog.Catalog) { d.gap.CameraEvent(ev) })
}

func (d *daemon) quarantined(camera, file string) {
	d.keep.Do(func(*catalog.Catalog) { d.gap.Quarantined(camera, file) })
}

func (d *daemon) uploaderStatus() uploader.Status {
	d.partsMu.Lock()
	up := d.up
	d.partsMu.Unlock()
	if up == nil {
		return uploader.Status{State: uploader.Idle}
	}
	return up.Status()
}

func (d *daemon) retentionStatus() retention.Status {
	d.partsMu.Lock()
	ret := d.ret
	d.partsMu.Unlock()
	if ret == nil {
		return retention.Status{LimitBytes: d.config().StorageConfig.LimitBytes()}
	}
	return ret.Status()
}

func (d *daemon) catalogStatus() api.CatalogStatus {
	cs := api.CatalogStatus{Status: d.keep.Status()}
	d.partsMu.Lock()
	reb := d.reb
	d.partsMu.Unlock()
	if reb != nil {
		if st := reb.Status(); st.State != rebuild.Idle {
			cs.RebuildFromS3 = &st
		}
	}
	return cs
}

// ready says why the daemon is not ready: savePath's disk missing or not
// writable, the supervisor not running, or the catalog not usable.
func (d *daemon) ready() error {
	if v := d.vol.Status(); v.State != volume.OK {
		if v.Message == "" {
			return fmt.Errorf("savePath's disk: %s", v.State)
		}
		return fmt.Errorf("savePath's disk: %s", v.Message)
	}
	if !d.supRunning.Load() {
		return errors.New("the camera supervisor is not running")
	}
	if k := d.keep.Status(); k.State != keeper.Ready {
		if k.LastError != "" {
			return fmt.Errorf("the catalog is %s: %s", k.State, k.LastError)
		}
		return fmt.Errorf("the catalog is %s", k.State)
	}
	f, err := os.CreateTemp(d.config().StorageConfig.SavePath, ".ready-*")
	if err != nil {
		return fmt.Errorf("savePath is not writable: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// run runs every component as an actor: the first to return stops them
// all. Recording and the catalog run inside the storage actor, which
// stops them in pipeline order.
func (d *daemon) run(ctx context.Context) error {
	var g oklog.Group
	sigCtx, sigCancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-sigCtx.Done()
		return nil
	}, func(error) { sigCancel() })

	stCtx, stCancel := context.WithCancel(context.Background())
	g.Add(func() error { return d.storage(stCtx) }, func(error) { stCancel() })

	for _, c := range []interface{ Run(context.Context) error }{d.vol, d.api} {
		cctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return c.Run(cctx) }, func(error) { cancel() })
	}

	// SIGHUP reloads the config.
	hupCtx, hupCancel := context.WithCancel(context.Background())
	g.Add(func() error {
		for {
			select {
			case <-d.hup:
				d.log.Info().Msg("SIGHUP: reloading the config")
				_, _ = d.reload(hupCtx) // logged by reload
			case <-hupCtx.Done():
				return nil
			}
		}
	}, func(error) { hupCancel() })

	cfg := d.config()
	d.log.Info().Str("version", version).Str("config", d.cfgPath).Int("cameras", len(cfg.Cameras)).
		Str("savePath", cfg.StorageConfig.SavePath).Msg("cctvd starting")
	if err := g.Run(); err != nil {
		d.log.Error().Err(err).Msg("cctvd stopped on error")
		return err
	}
	d.log.Info().Msg("cctvd stopped")
	return nil
}

// owner identifies this daemon process in staging metadata.
func owner() string { return fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()) }
