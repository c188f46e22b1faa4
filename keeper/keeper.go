// Package keeper keeps the catalog usable, and keeps everything else from
// depending on it: the catalog is a cache of what the disk and S3 hold, so
// losing it or finding it corrupt costs time, never recording and never
// footage.
//
// Run opens the catalog in the background while the cameras record. A
// catalog SQLite finds corrupt (when it is opened, migrated or first read,
// by a query later on, or by the full check run in the background after
// start-up and daily) is closed and moved aside (catalog.db.corrupt-<time>,
// kept, never deleted), and a new one is created, filled from the disk by
// Reconcile and, by the daemon's Ready hook, from S3. A catalog that cannot
// be opened at all (a full disk, a folder it cannot write) is retried. When
// the catalog is open and reconciled, the work held for it runs in order,
// then Use runs what needs it (uploads, retention, the rebuild from S3)
// until the catalog goes away again.
//
// Meanwhile Do holds the work that needs the catalog (closed segments to
// record, camera events for the gap log) in a bounded queue, and the
// reading methods (List, Get, Latest, Backlog, the gaps) answer
// catalog.ErrUnavailable. A closed segment dropped from a full queue is not
// lost: it is on disk, and the next reconcile records it.
//
// The keeper also maintains the catalog: it prunes old rows (of footage no
// longer on disk) and restores the reserve file that lets a full disk still
// record deletions.
package keeper

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/watch"
	"github.com/cctvd/cctvd/layout"
)

// Config is the keeper's configuration.
type Config struct {
	// Path is the catalog's file; SavePath the recordings folder.
	Path, SavePath string
	// Bucket and Prefix are s3Bucket and s3Path: the rows a catalog of an
	// earlier cctvd recorded as uploaded are taken to be in Bucket when it
	// is first opened (catalog.Options).
	Bucket, Prefix string
	// RetentionDays: rows of segments no longer on the local disk, and
	// closed gaps, older than this many days are pruned. 0 keeps them.
	RetentionDays int
	// ReserveBytes is the size of the reserve file beside the catalog.
	// Default catalog.DefaultReserveBytes.
	ReserveBytes int64
	// Retry is the pause before opening again a catalog that could not be
	// opened. Default 10s.
	Retry time.Duration
	// Maintain is the period of pruning and of restoring the reserve; the
	// first run is PruneAfter after the catalog is ready. Defaults 1h, 30s.
	Maintain, PruneAfter time.Duration
	// CheckAfter is when, after the catalog is ready, its full check
	// (SQLite's quick_check, which reads every page) runs in the
	// background; CheckEvery its period. Defaults 2min and 24h.
	CheckAfter, CheckEvery time.Duration
	// HoldLimit is how many operations wait for the catalog while it is
	// not available; beyond it the oldest are dropped. Default 10000.
	HoldLimit int
}

func (c *Config) setDefaults() {
	if c.ReserveBytes <= 0 {
		c.ReserveBytes = catalog.DefaultReserveBytes
	}
	if c.Retry <= 0 {
		c.Retry = 10 * time.Second
	}
	if c.Maintain <= 0 {
		c.Maintain = time.Hour
	}
	if c.PruneAfter <= 0 {
		c.PruneAfter = 30 * time.Second
	}
	if c.CheckAfter <= 0 {
		c.CheckAfter = 2 * time.Minute
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = 24 * time.Hour
	}
	if c.HoldLimit <= 0 {
		c.HoldLimit = 10000
	}
}

// Deps are the keeper's collaborators.
type Deps struct {
	Log zerolog.Logger
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// After waits on the monotonic clock; time.After by default.
	After func(time.Duration) <-chan time.Time
	// KeyFor is the uploader's key function, for Reconcile.
	KeyFor func(rel string) string
	// Ready, if set, is called each time a catalog is open and reconciled,
	// before the work held for it runs. fresh says the catalog was
	// created new (a first start, or a lost or corrupt catalog).
	Ready func(ctx context.Context, cat *catalog.Catalog, fresh bool) error
	// Use, if set, runs what needs the catalog until ctx ends.
	Use func(ctx context.Context, cat *catalog.Catalog) error
}

// State says whether the catalog can be used.
type State string

// The catalog states.
const (
	Opening     State = "opening"     // being opened, migrated, checked or reconciled
	Ready       State = "ready"       // open; uploads and retention run
	Unavailable State = "unavailable" // cannot be opened; retrying
	Stopped     State = "stopped"
)

// Status is the catalog's state, for the API, /readyz and the metrics.
type Status struct {
	State State     `json:"state"`
	Since time.Time `json:"since"`
	// LastError is why the catalog is unavailable.
	LastError string `json:"lastError,omitempty"`
	// Fresh is true when the catalog in use was created new at this start.
	Fresh bool `json:"fresh"`
	// MovedAside lists the corrupt catalogs this daemon moved aside.
	MovedAside []string `json:"movedAside,omitempty"`
	// Held counts the operations waiting for the catalog; Dropped those
	// dropped from a full queue (their segments are recorded by the next
	// reconcile).
	Held    int   `json:"held"`
	Dropped int64 `json:"dropped"`
	// Reconciled is the last start-up reconciliation's result.
	Reconciled *catalog.ReconcileResult `json:"reconciled,omitempty"`
	// Pruned counts the rows pruned since the daemon started.
	Pruned catalog.PruneResult `json:"pruned"`
}

// Keeper keeps the catalog. Run owns its life; every other method may be
// called from anywhere.
type Keeper struct {
	cfg    Config
	deps   Deps
	log    zerolog.Logger
	status *watch.Value[Status]
	days   atomic.Int64 // RetentionDays; a reload changes it

	mu  sync.RWMutex // held for reading by every call on cat
	cat *catalog.Catalog

	holdMu    sync.Mutex
	live      *catalog.Catalog // set while Do may run work at once
	replaying bool
	held      []func(*catalog.Catalog)
	inflight  sync.WaitGroup // Do's work running on live
}

// New returns a Keeper.
func New(cfg Config, deps Deps) *Keeper {
	cfg.setDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.After == nil {
		deps.After = time.After
	}
	if deps.KeyFor == nil {
		deps.KeyFor = func(rel string) string { return rel }
	}
	k := &Keeper{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "catalog").Logger(),
		status: watch.New(Status{State: Opening, Since: deps.Now()})}
	k.days.Store(int64(cfg.RetentionDays))
	return k
}

// SetRetentionDays changes RetentionDays from the next pruning on.
func (k *Keeper) SetRetentionDays(days int) { k.days.Store(int64(days)) }

// Status returns the catalog's state.
func (k *Keeper) Status() Status {
	s := k.status.Get()
	s.MovedAside = append([]string(nil), s.MovedAside...)
	k.holdMu.Lock()
	s.Held = len(k.held)
	k.holdMu.Unlock()
	return s
}

// WaitFor returns once cond holds for the status, or ctx ends.
func (k *Keeper) WaitFor(ctx context.Context, cond func(Status) bool) error {
	return k.status.WaitFor(ctx, cond)
}

func (k *Keeper) setState(s State, lastError string) {
	k.status.Update(func(st *Status) {
		if st.State != s {
			st.Since = k.deps.Now()
		}
		st.State, st.LastError = s, lastError
	})
}

// Run keeps the catalog until ctx ends, then closes it. Stop what records
// first: a segment closed after Run returned waits in memory and is
// recorded by the next start's reconcile.
func (k *Keeper) Run(ctx context.Context) error {
	defer k.setState(Stopped, "")
	pause := k.cfg.Retry
	for {
		k.setState(Opening, "")
		o, fresh, err := k.open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			k.log.Error().Err(err).Dur("retryIn", pause).
				Msg("cannot open the catalog; recording goes on, uploads and retention wait for it")
			k.setState(Unavailable, err.Error())
			select {
			case <-ctx.Done():
				return nil
			case <-k.deps.After(pause):
			}
			pause = min(2*pause, 10*k.cfg.Retry)
			continue
		}
		pause = k.cfg.Retry
		corrupt := k.serve(ctx, o, fresh)
		if corrupt == nil {
			return nil
		}
		if err := k.moveAside(corrupt); err != nil {
			k.log.Error().Err(err).Msg("cannot move the corrupt catalog aside; retrying")
			k.setState(Unavailable, err.Error())
			select {
			case <-ctx.Done():
				return nil
			case <-k.deps.After(k.cfg.Retry):
			}
		}
	}
}

// opened is an open catalog, the channel its corruption is reported on and
// its reserve file.
type opened struct {
	cat     *catalog.Catalog
	corrupt chan error
	reserve *catalog.Reserve
}

// open opens the catalog, moving a corrupt one (or one of a newer cctvd)
// aside and creating a new one in its place.
func (k *Keeper) open(ctx context.Context) (*opened, bool, error) {
	fi, statErr := os.Stat(k.cfg.Path)
	fresh := errors.Is(statErr, fs.ErrNotExist) || (statErr == nil && fi.Size() == 0)
	o, err := k.openOnce(ctx)
	if catalog.IsCorrupt(err) || errors.Is(err, catalog.ErrNewerSchema) {
		if merr := k.moveAside(err); merr != nil {
			return nil, false, merr
		}
		fresh = true
		o, err = k.openOnce(ctx)
	}
	if err != nil {
		return nil, false, err
	}
	if fresh {
		k.log.Info().Str("catalog", k.cfg.Path).Msg("created a new catalog; it is filled from the disk and from S3")
	}
	k.status.Update(func(st *Status) { st.Fresh = fresh })
	return o, fresh, nil
}

func (k *Keeper) openOnce(ctx context.Context) (*opened, error) {
	reserve := catalog.NewReserve(layout.Reserve(k.cfg.Path), k.cfg.ReserveBytes)
	sig := make(chan error, 1)
	opts := catalog.Options{Path: k.cfg.Path, SavePath: k.cfg.SavePath, Bucket: k.cfg.Bucket, Prefix: k.cfg.Prefix,
		Now: k.deps.Now, Reserve: reserve, Log: k.log,
		OnCorrupt: func(err error) {
			select {
			case sig <- err:
			default:
			}
		}}
	// Opening is not cut short by a stop: it may migrate.
	cat, err := catalog.OpenWith(context.WithoutCancel(ctx), opts)
	if catalog.IsFull(err) && reserve.Release() {
		k.log.Warn().Err(err).Msg("the catalog's filesystem is full: released the reserve to open the catalog")
		cat, err = catalog.OpenWith(context.WithoutCancel(ctx), opts)
	}
	if err != nil {
		return nil, err
	}
	if _, err := reserve.Ensure(); err != nil {
		k.log.Warn().Err(err).Msg("cannot create the catalog's reserve file")
	}
	return &opened{cat: cat, corrupt: sig, reserve: reserve}, nil
}

// moveAside moves the catalog's files aside after corruption was found.
func (k *Keeper) moveAside(why error) error {
	kind := "corrupt"
	if errors.Is(why, catalog.ErrNewerSchema) {
		kind = "newer"
	}
	dst, err := catalog.MoveAside(k.cfg.Path, kind, k.deps.Now())
	if err != nil {
		return err
	}
	k.log.Error().Err(why).Str("catalog", k.cfg.Path).Str("movedTo", dst).
		Msg("the catalog cannot be used: moved it aside (kept, never deleted); a new one is built from the disk and S3")
	k.status.Update(func(st *Status) { st.MovedAside = append(st.MovedAside, dst) })
	return nil
}

// serve makes an open catalog available and maintains it until ctx ends
// (nil) or corruption is found (the error).
func (k *Keeper) serve(ctx context.Context, o *opened, fresh bool) error {
	cat, sig := o.cat, o.corrupt
	k.mu.Lock()
	k.cat = cat
	k.mu.Unlock()
	closeCat := func() {
		k.mu.Lock()
		k.cat = nil
		k.mu.Unlock()
		if err := cat.Close(); err != nil {
			k.log.Warn().Err(err).Msg("closing the catalog")
		}
	}
	// corruption returns err when it means corruption, or what a query
	// reported meanwhile, or nil.
	corruption := func(err error) error {
		if catalog.IsCorrupt(err) {
			return err
		}
		select {
		case e := <-sig:
			return e
		default:
			return nil
		}
	}

	start := k.deps.Now()
	res, err := cat.Reconcile(ctx, k.deps.KeyFor)
	if ctx.Err() != nil {
		closeCat()
		return nil
	}
	if c := corruption(err); c != nil {
		closeCat()
		return c
	}
	if err != nil {
		// A full disk, an unreadable folder: the hourly cross-check tries again.
		k.log.Error().Err(err).Msg("cannot reconcile the catalog with the disk; it is used as it is")
	} else {
		k.log.Info().Int("added", res.Added).Int("missing", res.Missing).Int("returned", res.Returned).
			Dur("took", k.deps.Now().Sub(start)).Msg("catalog reconciled with the disk")
	}
	k.status.Update(func(st *Status) { st.Reconciled = &res })
	if k.deps.Ready != nil {
		if err := k.deps.Ready(ctx, cat, fresh); err != nil {
			if c := corruption(err); c != nil {
				closeCat()
				return c
			}
			k.log.Error().Err(err).Msg("catalog start-up")
		}
	}
	k.goLive(cat)
	k.setState(Ready, "")

	useCtx, cancelUse := context.WithCancel(ctx)
	defer cancelUse()
	useDone := make(chan error, 1)
	using := false
	runUse := func() {
		if k.deps.Use != nil {
			using = true
			go func() { useDone <- k.deps.Use(useCtx, cat) }()
		}
	}
	var restartUse <-chan time.Time
	runUse()
	stop := func() {
		k.goDark()
		cancelUse()
		if using {
			<-useDone
		}
		closeCat()
	}
	rebuild := func(err error, what string) error {
		k.log.Error().Err(err).Msg(what)
		k.setState(Opening, err.Error())
		stop()
		return err
	}

	prune, check := k.deps.After(k.cfg.PruneAfter), k.deps.After(k.cfg.CheckAfter)
	for {
		select {
		case <-ctx.Done():
			stop()
			return nil
		case err := <-sig:
			return rebuild(err, "a query found the catalog corrupt; rebuilding it")
		case err := <-useDone:
			using = false
			k.log.Error().Err(err).Dur("restartIn", k.cfg.Retry).Msg("uploads and retention stopped; restarting them")
			restartUse = k.deps.After(k.cfg.Retry)
		case <-restartUse:
			restartUse = nil
			runUse()
		case <-prune:
			k.maintain(ctx, cat, o.reserve)
			prune = k.deps.After(k.cfg.Maintain)
		case <-check:
			start := k.deps.Now()
			err := cat.QuickCheck(ctx)
			if c := corruption(err); c != nil {
				return rebuild(c, "the catalog's check found it corrupt; rebuilding it")
			}
			if err != nil && ctx.Err() == nil {
				k.log.Warn().Err(err).Msg("cannot check the catalog")
			} else if err == nil {
				k.log.Info().Dur("took", k.deps.Now().Sub(start)).Msg("catalog checked: intact")
			}
			check = k.deps.After(k.cfg.CheckEvery)
		}
	}
}

// maintain prunes old rows and restores the reserve.
func (k *Keeper) maintain(ctx context.Context, cat *catalog.Catalog, reserve *catalog.Reserve) {
	if created, err := reserve.Ensure(); err != nil {
		k.log.Warn().Err(err).Msg("cannot restore the catalog's reserve file")
	} else if created {
		k.log.Info().Str("reserve", reserve.Path()).Msg("the catalog's reserve file is back")
	}
	days := k.days.Load()
	if days <= 0 {
		return
	}
	before := k.deps.Now().Add(-time.Duration(days) * 24 * time.Hour)
	start := k.deps.Now()
	res, err := cat.Prune(ctx, before)
	k.status.Update(func(st *Status) {
		st.Pruned.Segments += res.Segments
		st.Pruned.Gaps += res.Gaps
	})
	if err != nil {
		if ctx.Err() == nil {
			k.log.Warn().Err(err).Msg("cannot prune the catalog")
		}
		return
	}
	if res.Segments > 0 || res.Gaps > 0 {
		k.log.Info().Int64("segments", res.Segments).Int64("gaps", res.Gaps).Time("before", before).
			Dur("took", k.deps.Now().Sub(start)).Msg("pruned catalog rows of footage no longer on disk")
	}
}

// goLive runs the work held for the catalog, in order, then lets Do run
// work at once.
func (k *Keeper) goLive(cat *catalog.Catalog) {
	k.holdMu.Lock()
	k.live, k.replaying = cat, true
	k.holdMu.Unlock()
	n := 0
	for {
		k.holdMu.Lock()
		batch := k.held
		k.held = nil
		if len(batch) == 0 {
			k.replaying = false
			k.holdMu.Unlock()
			break
		}
		k.holdMu.Unlock()
		for _, fn := range batch {
			fn(cat)
		}
		n += len(batch)
	}
	if n > 0 {
		k.log.Info().Int("operations", n).Msg("ran the work held while the catalog was not available")
	}
}

// goDark makes Do hold work again, and waits for work running on the
// catalog to end.
func (k *Keeper) goDark() {
	k.holdMu.Lock()
	k.live = nil
	k.holdMu.Unlock()
	k.inflight.Wait()
}

// Do runs fn with the catalog: at once when it is available, else once it
// is (in the order Do was called). Work beyond HoldLimit drops the oldest.
func (k *Keeper) Do(fn func(cat *catalog.Catalog)) {
	k.holdMu.Lock()
	if cat := k.live; cat != nil && !k.replaying {
		k.inflight.Add(1)
		k.holdMu.Unlock()
		defer k.inflight.Done()
		fn(cat)
		return
	}
	dropped := false
	if len(k.held) >= k.cfg.HoldLimit {
		k.held = k.held[1:]
		dropped = true
	}
	k.held = append(k.held, fn)
	k.holdMu.Unlock()
	if dropped {
		var first bool
		k.status.Update(func(st *Status) { st.Dropped++; first = st.Dropped == 1 })
		if first {
			k.log.Warn().Int("limit", k.cfg.HoldLimit).
				Msg("too much work waits for the catalog: dropping the oldest (closed segments are recorded by the next reconcile)")
		}
	}
}

// with runs fn on the catalog, or returns catalog.ErrUnavailable.
func with[T any](k *Keeper, fn func(cat *catalog.Catalog) (T, error)) (T, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.cat == nil {
		var zero T
		return zero, catalog.ErrUnavailable
	}
	return fn(k.cat)
}
