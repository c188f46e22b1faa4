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

	oklog "github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/api"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/gaplog"
	"github.com/cctvd/cctvd/internal/lockfile"
	"github.com/cctvd/cctvd/internal/logging"
	"github.com/cctvd/cctvd/internal/logring"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/metrics"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/segmenter"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
)

// daemon holds every component, built explicitly from the config.
type daemon struct {
	cfgPath string
	log     zerolog.Logger
	red     *redact.Redactor
	owner   string
	// now is the wall clock (names, records); mono a clock that never
	// steps (watchdogs, the stream's epoch, clock-step detection).
	now  func() time.Time
	mono func() time.Duration

	cfgPtr   atomic.Pointer[config.Config] // replaced by a reload
	reloadMu sync.Mutex
	hup      chan os.Signal

	cat *catalog.Catalog
	met *metrics.Metrics
	sup *supervisor.Supervisor
	seg *segmenter.Segmenter
	up  *uploader.Uploader
	ret *retention.Retention
	gap *gaplog.Log
	api *api.Server
	clk *clockstep.Detector

	supRunning atomic.Bool
}

// runDaemon builds every component from the config and runs them under ctx.
// On interrupt they stop in pipeline order: the supervisor first (every
// ffmpeg finalises its segment), then the segmenter (which moves those last
// segments and records them in the catalog), so nothing recorded is left
// behind; the uploader gets a grace period for uploads under way, and what
// it does not finish is uploaded after the next start.
func runDaemon(ctx context.Context, cfg *config.Config, cfgPath string, stdout io.Writer, now func() time.Time) error {
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

	d := &daemon{cfgPath: cfgPath, log: log, red: red, owner: owner(), hup: hup, now: now, mono: clockstep.BootTime}
	d.cfgPtr.Store(cfg)
	warnIfReadable(log, cfgPath)
	// Opening the catalog is not cut short by a signal: it may migrate.
	d.cat, err = catalog.Open(context.WithoutCancel(ctx), filepath.Join(cfg.StorageConfig.StateDir, catalog.FileName), cfg.StorageConfig.SavePath, d.now)
	if err != nil {
		return err
	}
	defer d.cat.Close()
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

// build makes every component from the config.
func (d *daemon) build(ctx context.Context, hub *logring.Hub) error {
	cfg, log := d.config(), d.log
	rec, err := d.cat.Reconcile(ctx, d.keyFor)
	if err != nil {
		return err
	}
	log.Info().Int("added", rec.Added).Int("missing", rec.Missing).Int("returned", rec.Returned).Msg("catalog reconciled with the disk")
	stopped, err := d.cat.Stopped(ctx)
	if err != nil {
		return err
	}

	s3c, err := uploader.NewClient(ctx, uploader.ClientConfigFrom(cfg))
	if err != nil {
		return err
	}
	// Metrics read the components at scrape time, after they exist.
	d.met = metrics.New(metrics.Sources{
		Cameras:   func() []supervisor.Status { return d.sup.Statuses() },
		Uploader:  func() uploader.Status { return d.up.Status() },
		Retention: func() retention.Status { return d.ret.Status() },
		Backlog:   d.cat.Backlog,
		Now:       d.now,
	})
	d.gap = gaplog.New(gaplog.Deps{Log: log, Catalog: d.cat, OnClosed: d.met.Gap, Now: d.now})
	var names []string
	for _, c := range cfg.Cameras {
		names = append(names, c.CameraName)
	}
	if err := d.gap.Start(ctx, names); err != nil {
		return err
	}
	d.sup = supervisor.New(supervisor.ConfigFrom(cfg, d.owner), cfg.Cameras, stopped, supervisor.Deps{
		Log:      log,
		Redactor: d.red,
		Now:      d.now,
		Mono:     d.mono,
		OnEvent:  d.gap.CameraEvent,
		SaveStopped: func(camera string, stopped bool) error {
			return d.cat.SetStopped(context.Background(), camera, stopped)
		},
	})
	d.up = uploader.New(uploaderConfig(cfg), uploader.Deps{Log: log, Catalog: d.cat, S3: s3c, Redactor: d.red, OnUploaded: d.met.Uploaded, OnFailed: d.met.UploadFailed,
		Now: d.now})
	d.ret = retention.New(retentionConfig(cfg), retention.Deps{Log: log, Catalog: d.cat, KeyFor: d.keyFor, Now: d.now, OnDelete: func(r catalog.Record, cause string) {
		d.met.Deleted(r, cause)
		d.gap.Deleted(r, cause)
	}})

	syncEvery := cfg.StorageConfig.SyncInterval.Std()
	if syncEvery == 0 {
		syncEvery = -1 // off
	}
	d.seg = segmenter.New(segmenter.Config{
		SavePath:     cfg.StorageConfig.SavePath,
		Owner:        d.owner,
		ProbePath:    cfg.FFmpeg.ProbePath,
		FeedIDs:      feedIDs(cfg),
		SyncInterval: syncEvery,
	}, segmenter.Deps{Log: log, OnSegment: d.segmentClosed, OnQuarantine: d.gap.Quarantined, NameTaken: d.nameTaken, Now: d.now})
	d.clk = clockstep.New(clockstep.Config{}, clockstep.Deps{Log: log, Now: d.now, Mono: d.mono, OnStep: func(s clockstep.Step) {
		d.met.ClockStep(s)
		d.gap.ClockStep(s)
	}})

	d.api = api.New(api.Config{Listen: cfg.API.Listen, Token: cfg.API.Token, StopTimeout: cfg.FFmpeg.StopTimeout.Std() + 10*time.Second},
		api.Deps{
			Log:        log,
			Supervisor: d.sup,
			Catalog:    d.cat,
			Logs:       hub,
			Uploader:   d.up.Status,
			Retention:  d.ret.Status,
			Registry:   d.met.Registry,
			Redactor:   d.red,
			Ready:      d.ready,
			Gaps:       d.gap.Gaps,
			Reload:     d.reload,
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
	var client uploader.S3API
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
	stopped, err := d.cat.Stopped(ctx)
	if err != nil {
		return api.ReloadResult{}, err
	}
	d.seg.SetFeedIDs(feedIDs(cfg))
	d.up.Reconfigure(uploaderConfig(cfg), client)
	d.ret.Reconfigure(retentionConfig(cfg))
	d.api.SetToken(cfg.API.Token)
	applied := d.sup.Apply(cfg.Cameras, supervisor.ConfigFrom(cfg, d.owner), stopped)
	if cfg.API.Listen != old.API.Listen || cfg.Log != old.Log || cfg.StorageConfig.SyncInterval != old.StorageConfig.SyncInterval {
		d.log.Warn().Msg("reload: api.listen, storageConfig.syncInterval and log settings take effect at the next restart")
	}
	d.log.Info().Strs("added", applied.Added).Strs("removed", applied.Removed).Strs("changed", applied.Changed).Msg("config reloaded")
	return api.ReloadResult{Added: applied.Added, Removed: applied.Removed, Changed: applied.Changed}, nil
}

// segmentClosed records a closed segment and wakes the uploader and
// retention. If the catalog write fails, the file stays on disk and the next
// start's reconciliation adds it.
func (d *daemon) segmentClosed(seg segment.Segment) {
	d.met.Segment(seg)
	rel, err := filepath.Rel(d.config().StorageConfig.SavePath, seg.Path)
	if err != nil {
		d.log.Error().Err(err).Msg("segment outside savePath")
		return
	}
	if _, err := d.cat.Add(context.Background(), seg, d.keyFor(filepath.ToSlash(rel))); errors.Is(err, catalog.ErrPathTaken) {
		// The segmenter asks the catalog before it names a file, so this is
		// a bug: never let the new file pass for the old row.
		d.log.Error().Err(err).Str("segment", seg.Name()).
			Msg("BUG: a new segment got the name of a catalog row; it is not recorded, the file stays on disk for reconcile")
		return
	} else if err != nil {
		d.log.Error().Err(err).Str("segment", seg.Name()).Msg("cannot record segment in the catalog")
		return
	}
	d.gap.Segment(seg)
	d.up.Notify()
	d.ret.Notify()
}

// nameTaken says whether the catalog already holds a segment path. When
// the catalog cannot say, the name is taken as free: the rename never
// replaces a file, and Add refuses a path a row holds.
func (d *daemon) nameTaken(rel string) bool {
	taken, err := d.cat.PathTaken(context.Background(), rel)
	if err != nil {
		d.log.Error().Err(err).Str("path", rel).Msg("cannot check a segment name against the catalog")
	}
	return taken
}

// ready says why the daemon is not ready: savePath not writable, or the
// supervisor not running.
func (d *daemon) ready() error {
	if !d.supRunning.Load() {
		return errors.New("the camera supervisor is not running")
	}
	f, err := os.CreateTemp(d.config().StorageConfig.SavePath, ".ready-*")
	if err != nil {
		return fmt.Errorf("savePath is not writable: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// run runs every component as an actor: the first to return stops them
// all, in pipeline order.
func (d *daemon) run(ctx context.Context) error {
	var g oklog.Group
	sigCtx, sigCancel := context.WithCancel(ctx)
	g.Add(func() error {
		<-sigCtx.Done()
		return nil
	}, func(error) { sigCancel() })

	supCtx, supCancel := context.WithCancel(context.Background())
	supDone := make(chan struct{})
	g.Add(func() error {
		defer close(supDone)
		d.supRunning.Store(true)
		defer d.supRunning.Store(false)
		return d.sup.Run(supCtx)
	}, func(error) { supCancel() })

	segCtx, segCancel := context.WithCancel(context.Background())
	g.Add(func() error {
		return d.seg.Run(segCtx)
	}, func(error) {
		supCancel()
		<-supDone // the supervisor's last segments must be moved too
		segCancel()
	})

	for _, c := range []interface{ Run(context.Context) error }{d.up, d.ret, d.api, d.clk} {
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
