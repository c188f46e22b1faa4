// Package retention keeps savePath under clearWhenFilePathReachGB, and the
// filesystem above a free-space floor, by deleting the oldest recordings.
//
// What savePath holds is counted as cctvd's own files: the closed segments
// (the catalog's running total, one row to read), the segments being
// written (the staging folders, a few files per camera) and quarantined
// files (read at start-up and at each hourly cross-check, which also
// reconciles the catalog with the disk when the two disagree, and kept in
// between as files move in and out). The state folder (catalog) is not
// counted; files cctvd does not own are not counted against the limit, but
// they do count against the free-space floor.
//
// The quarantine (damaged files kept instead of uploaded: copies S3 lacks,
// unless an earlier upload is there) has a bound of its own, a share of
// the limit (2% by default), and is never touched while nothing forces a
// deletion. When a decision must free space (the size limit or the floor)
// and the quarantine is over its bound, its files go after the uploaded
// recordings and before the recordings S3 lacks (a damaged copy before an
// intact one): first those that hold no footage or that S3 has, then the
// others in the order they moved in; each is recorded in its row first,
// logged, counted and reported like any other deletion. A bound of 0 (no
// bound) keeps them all. When a decision cannot reach its target, the
// status says why in plain words (Status.Shortfall): what is left that
// retention may not delete.
//
// When savePath reaches the limit, segments are deleted until it is below a
// low-water mark (95% of the limit by default), so a new segment does not
// delete one old one each time. When the filesystem's free space falls below
// the floor (default 1 GB, or 5% of a smaller filesystem), segments are
// deleted the same way until it is back above it, so recording never stops
// on a full disk.
//
// Order: uploaded segments first, oldest first; then the quarantine's
// files over its bound; then segments S3 does not have, only when no
// uploaded one is left and the limit still holds; each such deletion is a
// warning, a counter and a cause in the catalog. A segment being written
// is never touched: it is not in the catalog yet.
//
// A deletion is recorded in the catalog before the file is unlinked. On a
// full filesystem the catalog first gives back its reserve file to make
// that write possible; if it still cannot write, uploaded segments (and
// only those: S3 has them) are unlinked without the record, the freed
// space lets the catalog write again, and the next decision reconciles the
// catalog with the disk.
package retention

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/shirou/gopsutil/v4/disk"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/watch"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// Config is retention's configuration.
type Config struct {
	// SavePath is the recordings folder.
	SavePath string
	// LimitBytes is clearWhenFilePathReachGB in bytes.
	LimitBytes int64
	// LowWater is the fraction of the limit that a size-limit cleanup
	// brings savePath down to. Default config.DefaultLowWaterPercent %.
	LowWater float64
	// MinFreeBytes is the free-space floor; 0 means the default: 1 GB, or
	// 5% of the filesystem if that is less.
	MinFreeBytes int64
	// Interval is the period of a decision without a new segment. Default 1min.
	Interval time.Duration
	// CrossCheck is the period of the check against the disk. Default 1h.
	CrossCheck time.Duration
	// MinGap is the least time between two decisions: a burst of closed
	// segments makes one decision. Default 1s.
	MinGap time.Duration
	// QuarantineShare is the fraction of the limit the quarantine may
	// hold; beyond it, a decision that must free space deletes its files
	// (after the uploaded recordings, before the others). Default
	// config.DefaultQuarantinePercent %.
	QuarantineShare float64
	// QuarantineUnbounded: the quarantine has no bound (quarantinePercent
	// 0); retention never deletes its files.
	QuarantineUnbounded bool
	// KeepActiveDays: segments with activity that started less than this
	// many days ago go after the others (uploaded ones still first); 0
	// keeps no such order.
	KeepActiveDays int
}

func (c *Config) setDefaults() {
	if c.LowWater <= 0 || c.LowWater >= 1 {
		c.LowWater = config.DefaultLowWaterPercent / 100.0
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.CrossCheck <= 0 {
		c.CrossCheck = time.Hour
	}
	if c.MinGap <= 0 {
		c.MinGap = time.Second
	}
	if c.QuarantineShare <= 0 || c.QuarantineShare >= 1 {
		c.QuarantineShare = config.DefaultQuarantinePercent / 100.0
	}
}

// DefaultFloor is the free-space floor of a filesystem of total bytes.
func DefaultFloor(total uint64) int64 {
	return min(int64(1e9), int64(total/20))
}

// Catalog is what retention needs of the catalog.
type Catalog interface {
	Totals(ctx context.Context) (catalog.Totals, error)
	RetentionCandidates(ctx context.Context, n int) ([]catalog.Record, error)
	RetentionCandidatesKeepingActive(ctx context.Context, n int, since time.Time) ([]catalog.Record, error)
	MarkDeleted(ctx context.Context, ids []int64, cause string) error
	MarkPresent(ctx context.Context, id int64) error
	ByPath(ctx context.Context, path string) (catalog.Record, error)
	MarkQuarantined(ctx context.Context, id int64, path, why string) error
	Reconcile(ctx context.Context, keyFor func(rel string) string) (catalog.ReconcileResult, error)
}

// Usage is a filesystem's size and free space, in bytes.
type Usage struct {
	Total, Free uint64
}

// DiskUsage reads a filesystem's usage.
type DiskUsage func(ctx context.Context, path string) (Usage, error)

// GopsutilUsage is DiskUsage through gopsutil (statfs; Free is what an
// unprivileged process may still use).
func GopsutilUsage(ctx context.Context, path string) (Usage, error) {
	u, err := disk.UsageWithContext(ctx, path)
	if err != nil {
		return Usage{}, fmt.Errorf("disk usage of %s: %w", path, err)
	}
	return Usage{Total: u.Total, Free: u.Free}, nil
}

// Deps are retention's collaborators.
type Deps struct {
	Log     zerolog.Logger
	Catalog Catalog
	// Usage reads the filesystem; GopsutilUsage by default.
	Usage DiskUsage
	// KeyFor is the uploader's key function, for reconciliation.
	KeyFor func(rel string) string
	// OnDelete, if set, is called for every deleted segment.
	OnDelete func(r catalog.Record, cause string)
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// After waits on the monotonic clock; time.After by default.
	After func(time.Duration) <-chan time.Time
}

// Status is retention's state for the API and metrics.
type Status struct {
	UsedBytes  int64 `json:"usedBytes"`
	LimitBytes int64 `json:"limitBytes"`
	FreeBytes  int64 `json:"freeBytes"`
	FloorBytes int64 `json:"floorBytes"`
	TotalBytes int64 `json:"totalBytes"`
	// DeletedUploaded and DeletedNotUploaded count deletions since start.
	DeletedUploaded    int64     `json:"deletedUploaded"`
	DeletedNotUploaded int64     `json:"deletedNotUploaded"`
	LastDecision       time.Time `json:"lastDecision,omitzero"`
	// Decisions counts the decisions Run finished (deletions done).
	Decisions int64  `json:"decisions"`
	LastError string `json:"lastError,omitempty"`
	// Quarantine is the damaged files kept in savePath/.quarantine.
	Quarantine QuarantineStatus `json:"quarantine"`
	// Shortfall says, in plain words, why the last decision could not
	// bring savePath under its target or the free space above its floor
	// (what is left that retention may not delete); empty when it could.
	Shortfall string `json:"shortfall,omitempty"`
}

// Retention deletes old recordings. Run owns the decisions; Notify, Status
// and Reconfigure may be called from anywhere.
type Retention struct {
	cfgMu sync.Mutex
	cfg   Config // under cfgMu
	deps  Deps
	log   zerolog.Logger
	wake  chan struct{}

	quar quarantine // Run's goroutine only
	// qDirty are the cameras whose quarantine folder took a file since
	// the last decision ("": read all of it), under qMu.
	qMu    sync.Mutex
	qDirty map[string]bool
	// repair: files were unlinked without their record (a full disk); the
	// next decision reconciles the catalog first.
	repair bool

	status *watch.Value[Status]
}

// New returns a Retention.
func New(cfg Config, deps Deps) *Retention {
	cfg.setDefaults()
	if deps.Usage == nil {
		deps.Usage = GopsutilUsage
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.After == nil {
		deps.After = time.After
	}
	if deps.KeyFor == nil {
		deps.KeyFor = func(rel string) string { return rel }
	}
	return &Retention{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "retention").Logger(),
		wake: make(chan struct{}, 1), status: watch.New(Status{LimitBytes: cfg.LimitBytes})}
}

// Reconfigure changes the limits for the next decision (SavePath stays).
func (r *Retention) Reconfigure(cfg Config) {
	cfg.setDefaults()
	r.cfgMu.Lock()
	cfg.SavePath = r.cfg.SavePath
	r.cfg = cfg
	r.cfgMu.Unlock()
	r.status.Update(func(st *Status) { st.LimitBytes = cfg.LimitBytes })
	r.Notify()
}

func (r *Retention) config() Config {
	r.cfgMu.Lock()
	defer r.cfgMu.Unlock()
	return r.cfg
}

// Notify asks for a decision, as after a segment closed. It never blocks.
func (r *Retention) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Status returns retention's latest figures.
func (r *Retention) Status() Status {
	return r.status.Get()
}

// WaitFor returns once cond holds for the status, or ctx ends.
func (r *Retention) WaitFor(ctx context.Context, cond func(Status) bool) error {
	return r.status.WaitFor(ctx, cond)
}

// Run decides after every notification and every Interval until ctx ends.
// (The catalog was reconciled with the disk at start-up; the first full
// cross-check is an hour later.)
func (r *Retention) Run(ctx context.Context) error {
	cfg := r.config()
	r.quar.scanAll(layout.Quarantine(cfg.SavePath))
	after := r.deps.After
	tick, check := after(cfg.Interval), after(cfg.CrossCheck)
	for {
		err := r.Decide(ctx)
		failed := err != nil && ctx.Err() == nil
		if failed { // logged before the status says so: who waits on it finds the line
			r.log.Error().Err(err).Msg("retention decision failed")
		}
		r.status.Update(func(st *Status) {
			st.Decisions++
			if failed {
				st.LastError = err.Error()
			}
		})
		select { // notifications during the gap wait for its end
		case <-ctx.Done():
			return nil
		case <-after(cfg.MinGap):
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-tick:
			tick = after(cfg.Interval)
		case <-check:
			check = after(cfg.CrossCheck)
			r.crossCheck(ctx)
		}
	}
}

// batch is how many candidates one catalog read fetches.
const batch = 64

// maxUnlinkFailures ends a decision whose unlinks keep failing (a
// read-only or failing disk): it would otherwise walk, mark and unmark
// every row of the catalog.
const maxUnlinkFailures = 16

// Decide measures and deletes what must go. It reads the catalog's totals,
// the staging folders, the quarantine's account and the filesystem's free
// space; it never walks the recordings.
func (r *Retention) Decide(ctx context.Context) error {
	cfg := r.config()
	if r.repair {
		res, err := r.deps.Catalog.Reconcile(ctx, r.deps.KeyFor)
		if err != nil {
			return fmt.Errorf("repair the catalog after deleting unrecorded files: %w", err)
		}
		r.repair = false
		r.log.Info().Int("missing", res.Missing).Msg("catalog repaired after files were deleted on a full disk")
	}
	r.syncQuarantine(cfg.SavePath)
	r.status.Update(func(st *Status) {
		st.Quarantine.Bytes, st.Quarantine.Files, st.Quarantine.LimitBytes = r.quar.bytes, int64(len(r.quar.files)), quarantineLimit(cfg)
		st.Quarantine.Unbounded = cfg.QuarantineUnbounded
	})
	h, usage, err := r.measure(ctx)
	if err != nil {
		return err
	}
	used := h.total()
	floor := cfg.MinFreeBytes
	if floor <= 0 {
		floor = DefaultFloor(usage.Total)
	}
	now := r.deps.Now()
	r.status.Update(func(st *Status) {
		st.UsedBytes, st.FreeBytes, st.FloorBytes, st.TotalBytes = used, int64(usage.Free), floor, int64(usage.Total)
		st.LastDecision, st.LastError, st.Shortfall = now, "", ""
	})

	target := int64(float64(cfg.LimitBytes) * cfg.LowWater)
	var sizeExcess, freeDeficit int64
	if used >= cfg.LimitBytes {
		sizeExcess = used - target
	}
	if int64(usage.Free) < floor {
		freeDeficit = floor + floor/20 - int64(usage.Free) // 5% above the floor, not hovering on it
	}
	if sizeExcess <= 0 && freeDeficit <= 0 {
		return nil
	}
	cause := catalog.CauseSizeLimit
	toFree := sizeExcess
	if freeDeficit > sizeExcess {
		cause, toFree = catalog.CauseFreeSpace, freeDeficit
	}
	r.log.Info().Int64("used", used).Int64("limit", cfg.LimitBytes).Uint64("free", usage.Free).Int64("floor", floor).
		Int64("toFree", toFree).Str("cause", cause).Msg("deleting the oldest recordings")

	var freed int64
	// What could not go, for the shortfall: unlinks that failed, and
	// segments S3 lacks kept because uploaded ones could not go.
	var stuck kept
	defer func() {
		h, usage, err := r.measure(ctx)
		if err != nil {
			return
		}
		var short string
		if still := toReach(cause, h.total(), target, int64(usage.Free), floor); still > 0 {
			short = shortfall(cause, still, h, usage, quarantineLimit(cfg), stuck)
		}
		r.status.Update(func(st *Status) { st.UsedBytes, st.FreeBytes, st.Shortfall = h.total(), int64(usage.Free), short })
	}()
	// failed are the segments whose unlink failed in this decision (an
	// immutable file, a read-only folder): back to present in the
	// catalog, passed over so that the rest still go.
	failed := map[int64]bool{}
	var unlinkErr error
	trimmed := false // the quarantine's turn, between the uploaded and the others, came
	for freed < toFree {
		cands, err := r.candidates(ctx, cfg, now, batch+len(failed))
		if err != nil {
			return err
		}
		cands = slices.DeleteFunc(cands, func(c catalog.Record) bool { return failed[c.ID] })
		if len(failed) > 0 && cause != catalog.CauseFreeSpace {
			// Candidates come uploaded first: an uploaded segment that could
			// not go is not replaced by footage S3 lacks. Only a filesystem
			// running out (recording would stop) deletes that.
			n := len(cands)
			cands = slices.DeleteFunc(cands, func(c catalog.Record) bool { return c.Upload != catalog.Uploaded })
			stuck.notUploaded = stuck.notUploaded || len(cands) < n
		}
		if len(failed) >= maxUnlinkFailures {
			r.log.Warn().Int("failed", len(failed)).Int64("stillToFree", toFree-freed).Msg("too many recordings could not be deleted; the next decision tries again")
			break
		}
		if !trimmed && (len(cands) == 0 || cands[0].Upload != catalog.Uploaded) {
			// The uploaded recordings are gone (or could not go): the
			// quarantine over its bound comes next, before footage S3
			// lacks; under the size limit, after uploaded ones that could
			// not go, only its files that cost no footage.
			trimmed = true
			qFreed, qStuck, err := r.trimQuarantine(ctx, cfg, cause, toFree-freed, len(failed) > 0 && cause != catalog.CauseFreeSpace)
			freed, stuck.quarantine = freed+qFreed, stuck.quarantine+qStuck
			if err != nil {
				return err
			}
			continue
		}
		if len(cands) == 0 {
			r.log.Warn().Int64("stillToFree", toFree-freed).Msg("nothing left to delete: every recording is gone or being written")
			break
		}
		// Take just enough of the batch, and never uploaded and
		// not-uploaded segments in one: whether the second kind goes may
		// depend on how the first did (above).
		n := 0
		for n < len(cands) && freed < toFree && cands[n].Upload == cands[0].Upload {
			freed += cands[n].Bytes
			n++
		}
		cands = cands[:n]
		ids := make([]int64, n)
		for i, c := range cands {
			ids[i] = c.ID
		}
		if err := r.deps.Catalog.MarkDeleted(ctx, ids, cause); err != nil {
			if !catalog.IsFull(err) {
				return err
			}
			return r.unrecorded(ctx, cands, cause, err)
		}
		for i, c := range cands {
			if len(failed) >= maxUnlinkFailures {
				// Give up: the rest of the batch, marked with it, is on
				// disk still.
				for _, rest := range cands[i:] {
					if err := r.deps.Catalog.MarkPresent(ctx, rest.ID); err != nil {
						r.log.Error().Err(err).Str("segment", rest.Name()).Msg("cannot unmark recording")
					}
				}
				break
			}
			if err := r.remove(ctx, c, cause); err != nil {
				freed -= c.Bytes
				failed[c.ID] = true
				stuck.failed += c.Bytes
				r.log.Error().Err(err).Str("segment", c.Name()).Msg("cannot delete recording")
				if unlinkErr == nil {
					unlinkErr = err // the next decision tries it again
				}
			}
		}
	}
	return unlinkErr
}

// candidates are the next n segments to delete, in retention's order:
// uploaded ones first, oldest first; with KeepActiveDays, within each kind
// those with recent activity last.
func (r *Retention) candidates(ctx context.Context, cfg Config, now time.Time, n int) ([]catalog.Record, error) {
	if cfg.KeepActiveDays <= 0 {
		return r.deps.Catalog.RetentionCandidates(ctx, n)
	}
	return r.deps.Catalog.RetentionCandidatesKeepingActive(ctx, n, now.AddDate(0, 0, -cfg.KeepActiveDays))
}

// unrecorded deletes, on a full disk where the catalog cannot record the
// deletions, the uploaded segments among cands, without their record, and
// has the next decision repair the catalog from the disk.
func (r *Retention) unrecorded(ctx context.Context, cands []catalog.Record, cause string, markErr error) error {
	var n int
	for _, c := range cands {
		if c.Upload != catalog.Uploaded {
			continue // only with a durable record: S3 does not have it
		}
		if err := os.Remove(c.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.log.Error().Err(err).Str("segment", c.Name()).Msg("cannot delete recording")
			continue
		}
		_ = os.Remove(filepath.Dir(c.Path))
		n++
		r.status.Update(func(st *Status) { st.DeletedUploaded++ })
		if r.deps.OnDelete != nil {
			r.deps.OnDelete(c, cause)
		}
	}
	if n == 0 {
		return fmt.Errorf("the disk is full and the catalog cannot record deletions, and no uploaded recording is left to delete without a record: %w", markErr)
	}
	r.repair = true
	r.log.Error().Err(markErr).Int("deleted", n).
		Msg("the disk is full and the catalog cannot record deletions: deleted uploaded recordings without their record; the catalog is repaired from the disk next")
	return nil
}

// remove deletes one marked file and its day folder once empty.
func (r *Retention) remove(ctx context.Context, c catalog.Record, cause string) error {
	if err := os.Remove(c.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if uerr := r.deps.Catalog.MarkPresent(ctx, c.ID); uerr != nil {
			r.log.Error().Err(uerr).Msg("cannot unmark recording")
		}
		return err
	}
	_ = os.Remove(filepath.Dir(c.Path)) // the day folder, if this emptied it
	r.status.Update(func(st *Status) {
		if c.Upload == catalog.Uploaded {
			st.DeletedUploaded++
		} else {
			st.DeletedNotUploaded++
		}
	})
	if c.Upload == catalog.Uploaded {
		r.log.Debug().Str("segment", c.Name()).Str("cause", cause).Msg("deleted uploaded recording")
	} else {
		r.log.Warn().Str("camera", c.Camera).Str("segment", c.Name()).Str("cause", cause).
			Msg("deleted a recording S3 does not have: nothing uploaded was left to delete")
	}
	if r.deps.OnDelete != nil {
		r.deps.OnDelete(c, cause)
	}
	return nil
}

// held is what cctvd holds in savePath, in bytes.
type held struct {
	segments, staging, quarantine int64
}

func (h held) total() int64 { return h.segments + h.staging + h.quarantine }

// measure returns what cctvd holds in savePath and the filesystem's usage.
func (r *Retention) measure(ctx context.Context) (held, Usage, error) {
	t, err := r.deps.Catalog.Totals(ctx)
	if err != nil {
		return held{}, Usage{}, err
	}
	save := r.config().SavePath
	h := held{segments: t.Bytes, staging: dirBytes(layout.Staging(save), 2), quarantine: r.quar.bytes}
	u, err := r.deps.Usage(ctx, save)
	if err != nil {
		return held{}, Usage{}, err
	}
	return h, u, nil
}

// crossCheck walks savePath once: it sums the quarantine, and compares the
// segment files on disk with the catalog's totals; when they disagree it
// reconciles the catalog with the disk.
func (r *Retention) crossCheck(ctx context.Context) {
	save := r.config().SavePath
	r.quar.scanAll(layout.Quarantine(save))
	var onDisk int64
	var files int64
	entries, _ := os.ReadDir(save)
	for _, e := range entries {
		if e.IsDir() && e.Name()[0] != '.' {
			n, b := countTree(filepath.Join(save, e.Name()))
			files, onDisk = files+n, onDisk+b
		}
	}
	t, err := r.deps.Catalog.Totals(ctx)
	if err != nil {
		r.log.Error().Err(err).Msg("cross-check: cannot read the catalog")
		return
	}
	if t.Bytes == onDisk && t.Count == files {
		return
	}
	r.log.Warn().Int64("catalogBytes", t.Bytes).Int64("diskBytes", onDisk).Int64("catalogFiles", t.Count).Int64("diskFiles", files).
		Msg("the catalog and the disk disagree; reconciling")
	res, err := r.deps.Catalog.Reconcile(ctx, r.deps.KeyFor)
	if err != nil {
		r.log.Error().Err(err).Msg("cross-check: reconcile failed")
		return
	}
	r.log.Info().Int("added", res.Added).Int("missing", res.Missing).Int("returned", res.Returned).Msg("catalog reconciled with the disk")
}

// dirBytes sums the sizes of the files under dir, depth levels down.
func dirBytes(dir string, depth int) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if e.IsDir() {
			if depth > 1 {
				n += dirBytes(filepath.Join(dir, e.Name()), depth-1)
			}
			continue
		}
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// countTree counts the segment files under a camera folder and sums their sizes.
func countTree(dir string) (files, bytes int64) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if _, err := segment.Parse(d.Name()); err != nil {
			return nil // not a segment: the catalog does not count it either
		}
		if fi, err := d.Info(); err == nil {
			files++
			bytes += fi.Size()
		}
		return nil
	})
	return files, bytes
}
