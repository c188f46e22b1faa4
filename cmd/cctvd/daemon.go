package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	oklog "github.com/oklog/run"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/api"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/gaplog"
	"github.com/cctvd/cctvd/internal/clock"
	"github.com/cctvd/cctvd/internal/desired"
	"github.com/cctvd/cctvd/internal/logging"
	"github.com/cctvd/cctvd/internal/logring"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/keeper"
	"github.com/cctvd/cctvd/live"
	"github.com/cctvd/cctvd/metrics"
	"github.com/cctvd/cctvd/rebuild"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/segmenter"
	"github.com/cctvd/cctvd/snapshot"
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
	// clock: its wall clock names footage and dates records; its
	// monotonic clock (CLOCK_BOOTTIME, which never steps) times
	// watchdogs, the stream's epoch, retries, every wait and the
	// detection of clock steps.
	clock clock.Clock

	cfgPtr   atomic.Pointer[config.Config] // replaced by a reload
	reloadMu sync.Mutex
	hup      chan os.Signal

	met  *metrics.Metrics
	vol  *volume.Guard
	keep *keeper.Keeper
	sup  *supervisor.Supervisor
	seg  *segmenter.Segmenter
	gap  *gaplog.Log
	gapq *gaplog.Queue // what the gap log hears, applied on its own goroutine
	exp  *export.Service
	snp  *snapshot.Service
	live *live.Hub
	api  *api.Server
	clk  *clockstep.Detector
	// alerts tells a person (webhooks, MQTT) what the components report.
	alerts *alerts.Service
	act    *activity.Service // activity.go
	// onActivity, when set, hears every activity interval's beginning and
	// end (SetActivityHook; for alerts).
	onActivity atomic.Pointer[func(activity.Event)]

	// desired holds the cameras operators stopped; loaded from the state
	// folder when recording starts (it may be on savePath's disk).
	desired atomic.Pointer[desired.Store]

	// lim caps the uploader's S3 connections, as pacer sets it (the
	// schedule, the API's cap).
	lim   *uploader.Limiter
	pacer *uploader.Pacer

	// What runs while the catalog is usable, and the S3 clients: s3c for
	// exports and the rebuild, upc the uploader's, through lim.
	partsMu    sync.Mutex
	s3c        *s3.Client
	upc        *s3.Client
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
func runDaemon(ctx context.Context, cfg *config.Config, cfgPath string, stdout io.Writer, getenv func(string) string, now func() time.Time) error {
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
	if getenv("GOGC") == "" {
		debug.SetGCPercent(60)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit, zerolog.DurationFieldInteger = time.Second, false

	d := &daemon{cfgPath: cfgPath, log: log, red: red, owner: owner(), hup: hup, getenv: getenv,
		clock: clock.Funcs{NowFunc: now, MonoFunc: clockstep.BootTime}}
	d.cfgPtr.Store(cfg)
	warnIfReadable(log, cfgPath)
	warnShortSecrets(log, cfg)
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
	s3c, err := uploader.NewClient(ctx, clientConfig(cfg))
	if err != nil {
		return err
	}
	d.s3c = s3c
	d.lim = uploader.NewLimiter()
	d.pacer = uploader.NewPacer(d.lim, uploader.ScheduleFrom(cfg.S3Config), cfg.S3Config.MaxUploadMbps, d.clock, log)
	if d.upc, err = uploader.NewClient(ctx, uploaderClientConfig(cfg, d.lim)); err != nil {
		return err
	}
	d.vol = volume.New(volumeConfig(cfg, d.getenv), volume.Deps{Log: log, Now: d.clock.Now, After: d.clock.After})
	d.keep = keeper.New(keeperConfig(cfg),
		keeper.Deps{Log: log, Now: d.clock.Now, After: d.clock.After, KeyFor: d.keyFor, Ready: d.catalogReady, Use: d.useCatalog})
	// Metrics read the components at scrape time, after they exist.
	d.met = metrics.New(metrics.Sources{
		Limiter:   d.lim,
		Cameras:   func() []supervisor.Status { return d.sup.Statuses() },
		Uploader:  d.uploaderStatus,
		Retention: d.retentionStatus,
		Backlog:   d.keep.Backlog,
		Volume:    d.vol.Status,
		Catalog:   d.keep.Status,
		Now:       d.clock.Now,
	})
	d.gap = gaplog.New(gaplog.Deps{Log: log, Catalog: gapCatalog{d.keep, d.config}, OnClosed: d.met.Gap, Now: d.clock.Now})
	d.gapq = gaplog.NewQueue(d.gap, 0)
	d.buildActivity()
	d.sup = supervisor.New(supervisorConfig(cfg, d.owner), cfg.Cameras, nil, supervisor.Deps{
		Log:         log,
		Redactor:    d.red,
		Now:         d.clock.Now,
		Mono:        d.clock.Mono,
		After:       d.clock.After,
		OnEvent:     d.cameraEvent,
		SaveStopped: d.saveStopped,
		Gate:        d.gate,
		Streams:     streamStore{d.keep},             // streams found by discovery, kept across restarts
		Probes:      probeStore{streamStore{d.keep}}, // mode auto's decisions, kept across restarts
		Frames:      d.frame,                         // the activity feeds
	})
	d.seg = segmenter.New(segmenterConfig(cfg, d.owner), segmenter.Deps{Log: log, OnSegment: d.segmentClosed, OnQuarantine: d.quarantined, NameTaken: d.nameTaken,
		Now: d.clock.Now, After: d.clock.After})
	d.clk = clockstep.New(clockstep.Config{}, clockstep.Deps{Log: log, Now: d.clock.Now, Mono: d.clock.Mono, After: d.clock.After, OnStep: func(s clockstep.Step) {
		d.met.ClockStep(s)
		d.clockStepFact(s)
		d.keep.Do(func(*catalog.Catalog) { d.gapq.ClockStep(s) })
	}})
	if err := d.buildAlerts(); err != nil {
		return err
	}

	// When the disk is there, the cameras operators stopped are known
	// before the API answers.
	if d.vol.Check().State == volume.OK {
		if err := os.MkdirAll(st.StateDir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", st.StateDir, err)
		}
		d.loadDesired(ctx)
		d.sup.Restore(d.stopped())
	}

	d.exp = export.NewService(exportConfig(cfg),
		export.ServiceDeps{Catalog: d.keep, S3: s3c, Log: log, Now: d.clock.Now, PrunedBefore: d.prunedBefore, Locations: d.keep.Locations})
	d.exp.Temp().Recordings(cfg.StorageConfig.LimitBytes(), d.recordingsHeld)
	d.live = live.New(liveConfig(cfg), live.Deps{Log: log})
	d.snp = snapshot.New(snapshotConfig(cfg), snapshot.Deps{Catalog: d.keep, Live: d.live, Log: log, Now: d.clock.Now})
	d.api, err = api.New(apiConfig(cfg),
		api.Deps{
			Log:            log,
			Supervisor:     d.sup,
			Catalog:        d.keep,
			Logs:           hub,
			Uploader:       d.uploaderStatus,
			Retention:      d.retentionStatus,
			Registry:       d.met.Registry,
			Redactor:       d.red,
			Ready:          d.ready,
			Gaps:           d.gap.Gaps,
			Reload:         d.reload,
			Volume:         d.vol.Status,
			CatalogState:   d.catalogStatus,
			Export:         d.exp,
			Snapshots:      d.snp,
			Live:           d.live,
			Alerts:         d.alerts,
			UploadLimit:    d.pacer,
			Activity:       d.activityIntervals,
			ActivityStatus: d.act.Status,
			UploadWake:     d.wakeUploader,
		})
	return err
}

// warnIfReadable warns when the config file, which holds secrets, can be
// read by other users (a group other than the daemon's counts), or when
// the daemon's own user could rewrite it (and with it the S3 credentials
// it is given): make install leaves it root:cctvd 0640.
func warnIfReadable(log zerolog.Logger, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	perm := fi.Mode().Perm()
	st, _ := fi.Sys().(*syscall.Stat_t)
	otherGroup := st == nil || int(st.Gid) != os.Getgid()
	if perm&0o007 != 0 || perm&0o020 != 0 || (perm&0o040 != 0 && otherGroup) {
		log.Warn().Str("config", path).Str("mode", perm.String()).
			Msg("the config file holds secrets and other users can read it: chmod 600 " + path + " (or 640, owned by root with the group cctvd runs as)")
	}
	if st != nil && uid() != 0 && int(st.Uid) == uid() && perm&0o200 != 0 {
		log.Warn().Str("config", path).
			Msg("cctvd's own user can rewrite its config (and the credentials in it): chown root:" + groupName() + " " + path + "; chmod 640 " + path)
	}
}

// uid is the daemon's user id; a variable for tests.
var uid = os.Getuid

func groupName() string {
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		return g.Name
	}
	return strconv.Itoa(os.Getgid())
}

// warnShortSecrets says which secrets are too short to be masked in free
// text, and whether the API token is short enough to guess.
func warnShortSecrets(log zerolog.Logger, cfg *config.Config) {
	if fields := cfg.ShortSecretFields(); len(fields) > 0 {
		log.Warn().Strs("fields", fields).Msgf("these secrets are shorter than %d characters: they are masked where they stand as credentials "+
			"(URLs, the config dump), not in free text; a longer one is safer", redact.MinSubstringLen)
	}
	if t := cfg.API.Token; t != "" && len(t) < minTokenLen {
		log.Warn().Msgf("api.token is shorter than %d characters, easy to guess: use a random one, such as the output of openssl rand -hex 16", minTokenLen)
	}
}

// minTokenLen is the API token length below which a warning says so.
const minTokenLen = 16

// reload re-reads the config file and applies it: an invalid file is
// rejected whole with nothing changed; cameras are added, removed and
// restarted as the supervisor's Apply says; S3 and storage settings apply
// from the next segment and the next decision.
func (d *daemon) reload(ctx context.Context) (api.ReloadResult, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.config()
	cfg, err := config.Load(d.cfgPath, d.getenv)
	if err == nil && (cfg.StorageConfig.SavePath != old.StorageConfig.SavePath || cfg.StorageConfig.StateDir != old.StorageConfig.StateDir) {
		err = errors.New("storageConfig.savePath and storageConfig.stateDir cannot change without a restart")
	}
	// The API's settings are checked against the API as it runs: a token
	// is required while the listener bound at start is not loopback-only,
	// whatever api.listen now says; the TLS pair is read again.
	var commitAPI func()
	if err == nil {
		commitAPI, err = d.api.Prepare(apiSettings(cfg))
	}
	var client, upClient *s3.Client
	if err == nil && clientConfig(cfg) != clientConfig(old) {
		client, err = uploader.NewClient(ctx, clientConfig(cfg))
		if err == nil {
			upClient, err = uploader.NewClient(ctx, uploaderClientConfig(cfg, d.lim))
		}
	}
	if err != nil {
		d.log.Error().Str("config", d.cfgPath).Msg("reload: config rejected, nothing changed: " + err.Error()) // the reasons, for whoever reads the journal after a reload
		return api.ReloadResult{}, fmt.Errorf("%w: %v", api.ErrConfigRejected, err)
	}
	warnIfReadable(d.log, d.cfgPath)
	warnShortSecrets(d.log, cfg)
	d.red.Add(cfg.Secrets()...)
	d.cfgPtr.Store(cfg)
	d.seg.SetFeedIDs(feedIDs(cfg))
	d.keep.SetRetentionDays(cfg.StorageConfig.CatalogDays())
	d.partsMu.Lock()
	if client != nil {
		d.s3c, d.upc = client, upClient
	}
	if d.up != nil {
		var s3api uploader.S3API
		if upClient != nil {
			s3api = upClient
		}
		d.up.Reconfigure(uploaderConfig(cfg), s3api)
	}
	if d.ret != nil {
		d.ret.Reconfigure(retentionConfig(cfg))
	}
	d.partsMu.Unlock()
	// The API's cap gives way when the config's cap or schedule changed.
	d.pacer.Reconfigure(uploader.ScheduleFrom(cfg.S3Config), cfg.S3Config.MaxUploadMbps)
	var exportClient export.S3API // nil: the S3 settings did not change
	if client != nil {
		exportClient = client
	}
	d.exp.Reconfigure(cfg.S3Config.S3Bucket, cfg.S3Config.S3Path, exportClient)
	et := exportTemp(cfg)
	d.exp.Temp().Configure(et.Dir, et.SavePath, et.MinFreeBytes)
	d.exp.Temp().Recordings(et.LimitBytes, d.recordingsHeld)
	d.snp.Reconfigure(snapshotConfig(cfg))
	commitAPI()
	applied := d.sup.Apply(cfg.Cameras, supervisorConfig(cfg, d.owner), d.stopped())
	for _, name := range applied.Removed {
		d.act.Forget(name)
	}
	if cfg.API.Listen != old.API.Listen || cfg.Log != old.Log || cfg.StorageConfig.SyncInterval != old.StorageConfig.SyncInterval ||
		!reflect.DeepEqual(cfg.Alerts, old.Alerts) {
		d.log.Warn().Msg("reload: api.listen, storageConfig.syncInterval, log and alerts settings take effect at the next restart")
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
	act, analysed := d.segmentActivity(seg)
	d.keep.Do(func(cat *catalog.Catalog) {
		if analysed { // before the row: the uploader puts it in the object's metadata
			d.recordActivity(cat, seg, act)
		}
		if _, err := cat.Add(context.Background(), seg, key); errors.Is(err, catalog.ErrPathTaken) {
			// The segmenter asks the catalog before it names a file, so this
			// is a bug: never let the new file pass for the old row.
			d.log.Error().Err(err).Str("segment", seg.Name()).
				Msg("BUG: a new segment got the name of a catalog row; it is not recorded, the file stays on disk for reconcile")
			return
		} else if err != nil {
			d.log.Error().Err(err).Str("segment", seg.Name()).Msg("cannot record segment in the catalog")
			return
		}
		d.gapq.Segment(gapSegment(seg))
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

// nameTaken says whether the catalog already holds a segment path. When
// the catalog cannot say (not open yet, or failing), the name is taken as
// free: the rename never replaces a file, and Add refuses a path a row
// holds, leaving the file on disk for reconcile.
func (d *daemon) nameTaken(rel string) bool {
	taken, err := d.keep.PathTaken(context.Background(), rel)
	if err != nil && !errors.Is(err, catalog.ErrUnavailable) {
		d.log.Error().Err(err).Str("path", rel).Msg("cannot check a segment name against the catalog")
	}
	return taken
}

// cameraEvent passes the supervisor's events to the gap log, in order with
// the segments, once the catalog is usable. It runs on the camera's
// goroutines and never blocks: the keeper holds it while the catalog is
// not usable, and the gap log's queue takes it when it is (no catalog
// write happens here).
func (d *daemon) cameraEvent(ev supervisor.Event) {
	d.keep.Do(func(*catalog.Catalog) { d.gapq.CameraEvent(gapEvent(ev)) })
}

func (d *daemon) quarantined(camera, file string) {
	d.quarantineChanged(camera)
	d.unsalvageableFact(camera, file)
	d.keep.Do(func(*catalog.Catalog) { d.gapq.Quarantined(camera, file) })
}

// quarantineChanged tells retention a file went into the camera's
// quarantine folder, so it counts now (and the quarantine's bound holds).
// Without retention running yet, its start reads the whole quarantine.
func (d *daemon) quarantineChanged(camera string) {
	d.partsMu.Lock()
	ret := d.ret
	d.partsMu.Unlock()
	if ret != nil {
		ret.QuarantineChanged(camera)
	}
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

// storageView is retention's view of savePath, for the upload plan.
func (d *daemon) storageView() uploader.StorageView {
	r := d.retentionStatus()
	return uploader.StorageView{Known: !r.LastDecision.IsZero(), LimitBytes: r.LimitBytes, UsedBytes: r.UsedBytes}
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

// recordingsHeld is what cctvd holds in savePath, as retention's last
// decision measured it (false before the first).
func (d *daemon) recordingsHeld() (int64, bool) {
	st := d.retentionStatus()
	return st.UsedBytes, !st.LastDecision.IsZero()
}

func (d *daemon) catalogStatus() api.CatalogStatus {
	cs := api.CatalogStatus{Status: d.keep.Status()}
	gq := d.gapq.Status()
	cs.GapLogWaiting, cs.GapLogDropped = gq.Waiting, gq.Dropped
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
// writable (access(2): no file is written per call), the supervisor not
// running, or the catalog not usable. Reasons are fixed texts; details,
// which may name paths, go to the log only.
func (d *daemon) ready() error {
	if v := d.vol.Status(); v.State != volume.OK {
		return &api.NotReadyError{Reason: "savePath's disk is " + string(v.State), Err: textErr(v.Message)}
	}
	if !d.supRunning.Load() {
		return &api.NotReadyError{Reason: "the camera supervisor is not running"}
	}
	if k := d.keep.Status(); k.State != keeper.Ready {
		return &api.NotReadyError{Reason: "the catalog is " + string(k.State), Err: textErr(k.LastError)}
	}
	savePath := d.config().StorageConfig.SavePath
	if err := unix.Access(savePath, unix.W_OK); err != nil {
		return &api.NotReadyError{Reason: "savePath is not writable", Err: fmt.Errorf("access %s: %w", savePath, err)}
	}
	return nil
}

// prunedBefore is when the catalog forgets footage no longer on the box
// (storageConfig.catalogRetentionDays); zero when it keeps every row.
func (d *daemon) prunedBefore() time.Time {
	days := d.config().StorageConfig.CatalogDays()
	if days == 0 {
		return time.Time{}
	}
	return d.clock.Now().AddDate(0, 0, -days)
}

// textErr is msg as an error, nil when empty.
func textErr(msg string) error {
	if msg == "" {
		return nil
	}
	return errors.New(msg)
}

// guard turns a panic in an actor into an error, logged (so masked)
// with its stack, that stops the daemon cleanly instead of printing the
// panic raw on stderr.
func (d *daemon) guard(name string, run func() error) func() error {
	return func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				d.log.Error().Str("component", name).Str("panic", fmt.Sprint(r)).Str("stack", string(debug.Stack())).Msg("panic")
				err = fmt.Errorf("%s panicked: %s", name, d.red.String(fmt.Sprint(r)))
			}
		}()
		return run()
	}
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
	g.Add(d.guard("storage", func() error { return d.storage(stCtx) }), func(error) {
		d.alerts.Stopping(2 * time.Second) // daemon-stop into the outbox while the state folder is ours
		stCancel()
	})
	// The alerts stop after the storage's interrupt (interrupts run in
	// order): their last deliveries get a grace of their own.
	alCtx, alCancel := context.WithCancel(context.Background())
	g.Add(d.guard("alerts", func() error { return d.alerts.Run(alCtx) }), func(error) { alCancel() })

	for _, c := range []struct {
		name string
		run  func(context.Context) error
	}{{"volume", d.vol.Run}, {"api", d.api.Run}, {"live", d.live.Run}, {"clockstep", d.clk.Run}, {"upload pacing", d.pacer.Run}, {"activity", d.act.Run}} {
		cctx, cancel := context.WithCancel(context.Background())
		g.Add(d.guard(c.name, func() error { return c.run(cctx) }), func(error) { cancel() })
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

	defer d.exp.Close() // after the API: clips no one reads any more
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
