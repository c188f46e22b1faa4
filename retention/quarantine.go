package retention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/layout"
)

// Causes of the deletion of a quarantined file, in Record.DeleteCause and
// OnDelete: a decision had to free space (the size limit or the floor)
// with the quarantine over its bound.
const (
	// CauseQuarantineLimit: the file may have held footage (S3 lacks it,
	// unless the row says uploaded).
	CauseQuarantineLimit = "retention-quarantine-limit"
	// CauseQuarantineNoFootage: the file held none (an MP4 header without
	// a frame, no video track, empty): nothing was lost.
	CauseQuarantineNoFootage = "retention-quarantine-no-footage"
)

// QuarantineStatus is the quarantine (savePath/.quarantine): damaged files
// kept instead of uploaded, which count toward the size limit and are
// bounded on their own: beyond LimitBytes, a decision that must free space
// deletes them after the uploaded recordings and before the others.
type QuarantineStatus struct {
	Bytes      int64 `json:"bytes"`
	Files      int64 `json:"files"`
	LimitBytes int64 `json:"limitBytes"`
	// Unbounded: storageConfig.quarantinePercent is 0, the quarantine has
	// no bound and retention never deletes its files (LimitBytes is 0).
	Unbounded bool `json:"unbounded,omitempty"`
	// DeletedFiles and DeletedBytes count the quarantined files deleted
	// since start because the quarantine was over its bound when space
	// had to be freed.
	DeletedFiles int64 `json:"deletedFiles"`
	DeletedBytes int64 `json:"deletedBytes"`
}

// qfile is one file in the quarantine.
type qfile struct {
	path  string
	size  int64
	ctime time.Time // when it moved in (a rename sets it; the mtime is the segment's)
}

// quarantine is retention's account of the quarantine's files. It is
// kept as files move in (QuarantineChanged names the camera folder a file
// went into, read again at the next decision) and out (deleted over the
// bound), and read whole from the disk at start and at each cross-check,
// which also finds files an operator removed. Run's goroutine only.
type quarantine struct {
	root   string
	loaded bool
	files  map[string]qfile // by path
	bytes  int64
}

// scanAll reads the whole quarantine: files in its folder and in each
// camera's folder in it.
func (q *quarantine) scanAll(root string) {
	q.root, q.loaded = root, true
	q.files, q.bytes = map[string]qfile{}, 0
	q.addDir(root)
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() {
			q.addDir(filepath.Join(root, e.Name()))
		}
	}
}

// scanDir reads one folder of the quarantine again.
func (q *quarantine) scanDir(dir string) {
	for p, f := range q.files {
		if filepath.Dir(p) == dir {
			delete(q.files, p)
			q.bytes -= f.size
		}
	}
	q.addDir(dir)
}

func (q *quarantine) addDir(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f := qfile{path: p, size: fi.Size(), ctime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			f.ctime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		}
		q.files[p] = f
		q.bytes += fi.Size()
	}
}

func (q *quarantine) remove(path string) {
	if f, ok := q.files[path]; ok {
		delete(q.files, path)
		q.bytes -= f.size
	}
}

// QuarantineChanged says a file moved into the camera's quarantine folder
// (the uploader found it damaged, or the segmenter could not salvage it):
// the next decision, which it asks for, counts it. It never blocks; ""
// has the whole quarantine read again.
func (r *Retention) QuarantineChanged(camera string) {
	r.qMu.Lock()
	if r.qDirty == nil {
		r.qDirty = map[string]bool{}
	}
	r.qDirty[camera] = true
	r.qMu.Unlock()
	r.Notify()
}

// syncQuarantine brings the account up to date with the folders reported
// since the last decision (the whole quarantine the first time).
func (r *Retention) syncQuarantine(save string) {
	r.qMu.Lock()
	dirty := r.qDirty
	r.qDirty = nil
	r.qMu.Unlock()
	root := layout.Quarantine(save)
	if !r.quar.loaded || r.quar.root != root || dirty[""] {
		r.quar.scanAll(root)
		return
	}
	for camera := range dirty {
		r.quar.scanDir(layout.QuarantineDir(save, camera))
	}
}

// quarantineLimit is the quarantine's bound under cfg (0 when it has none).
func quarantineLimit(cfg Config) int64 {
	if cfg.QuarantineUnbounded {
		return 0
	}
	return int64(float64(cfg.LimitBytes) * cfg.QuarantineShare)
}

// qcand is a quarantined file as a decision sees it: its row (ID 0 when
// it has none: a staging file the segmenter could not salvage, or one put
// there by hand) and whether its loss costs footage.
type qcand struct {
	qfile
	rec catalog.Record
	// noFootage: it holds none (mp4.NoFootage); offsite: S3 has it (the
	// row says uploaded: an earlier upload of the segment).
	noFootage, offsite bool
}

func (c qcand) expendable() bool { return c.noFootage || c.offsite }

func (c qcand) cause() string {
	if c.noFootage {
		return CauseQuarantineNoFootage
	}
	return CauseQuarantineLimit
}

// trimQuarantine is the part of a decision that must free space (cause,
// need bytes more) taken by the quarantine, when it is over its bound:
// it comes after the uploaded recordings and before the others (a damaged
// copy goes before an intact recording S3 lacks). It deletes first the
// files that hold no footage or that S3 has, then the others in the order
// they moved in (ctime), until need bytes are freed or the quarantine is
// down to the low-water mark of its bound; with expendableOnly (uploaded
// recordings could not be deleted, under the size limit), only the first
// kind. Each deletion is recorded in the file's row before the unlink,
// logged, counted and reported (OnDelete), as other retention deletions
// are. It returns the bytes freed, and those of the files whose deletion
// failed; err only when ctx ended.
func (r *Retention) trimQuarantine(ctx context.Context, cfg Config, cause string, need int64, expendableOnly bool) (freed, stuck int64, err error) {
	limit := quarantineLimit(cfg)
	if cfg.QuarantineUnbounded || r.quar.bytes <= limit || need <= 0 {
		return 0, 0, nil
	}
	target := int64(float64(limit) * cfg.LowWater)
	cands := r.quarantineOrder(ctx)
	r.log.Warn().Int64("quarantineBytes", r.quar.bytes).Int("quarantineFiles", len(r.quar.files)).Int64("quarantineLimit", limit).
		Str("cause", cause).Msg("space must be freed and the quarantine is over its bound: deleting its files (damaged copies) before any recording S3 lacks")
	for _, c := range cands {
		if freed >= need || r.quar.bytes-stuck <= target {
			break
		}
		if expendableOnly && !c.expendable() {
			continue
		}
		if err := r.deleteQuarantined(ctx, c); err != nil {
			if ctx.Err() != nil {
				return freed, stuck, ctx.Err()
			}
			stuck += c.size
			r.log.Error().Err(err).Str("file", c.path).Msg("cannot delete a quarantined file")
			continue
		}
		freed += c.size
		r.quar.remove(c.path)
		r.status.Update(func(st *Status) {
			st.Quarantine.DeletedFiles++
			st.Quarantine.DeletedBytes += c.size
			st.Quarantine.Bytes, st.Quarantine.Files = r.quar.bytes, int64(len(r.quar.files))
			if c.rec.Upload == catalog.Uploaded { // as the metric counts it (OnDelete)
				st.DeletedUploaded++
			} else {
				st.DeletedNotUploaded++
			}
		})
		ev := r.log.Warn()
		what := "deleted a quarantined file S3 does not have: the quarantine is over its bound and space had to be freed"
		switch {
		case c.noFootage:
			ev, what = r.log.Info(), "deleted a quarantined file that held no footage: the quarantine is over its bound"
		case c.offsite:
			ev, what = r.log.Info(), "deleted a quarantined file S3 has an earlier upload of: the quarantine is over its bound"
		}
		ev.Str("camera", c.rec.Camera).Str("file", c.path).Int64("bytes", c.size).Int64("quarantineBytes", r.quar.bytes).
			Int64("quarantineLimit", limit).Str("cause", cause).Msg(what)
		if r.deps.OnDelete != nil {
			r.deps.OnDelete(c.rec, c.cause())
		}
	}
	return freed, stuck, nil
}

// quarantineOrder lists the quarantine's files in the order they go:
// those that hold no footage or that S3 has, then the others; each kind
// by when it moved in (ctime), then path.
func (r *Retention) quarantineOrder(ctx context.Context) []qcand {
	out := make([]qcand, 0, len(r.quar.files))
	for _, f := range r.quar.files {
		c := qcand{qfile: f}
		rec, err := r.deps.Catalog.ByPath(ctx, f.path)
		switch {
		case err == nil:
			c.rec = rec
			c.offsite = rec.Upload == catalog.Uploaded
		case !errors.Is(err, catalog.ErrNotFound):
			r.log.Warn().Err(err).Str("file", f.path).Msg("cannot read a quarantined file's row; counting it as footage S3 lacks")
		}
		if c.rec.ID == 0 { // no row: what is known of it
			c.rec = catalog.Record{Camera: filepath.Base(filepath.Dir(f.path)), Path: f.path, Bytes: f.size,
				Upload: catalog.Pending, Local: catalog.Quarantined}
		}
		if file, err := os.Open(f.path); err == nil {
			c.noFootage = mp4.NoFootage(file, f.size)
			file.Close()
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b qcand) int {
		if a.expendable() != b.expendable() {
			if a.expendable() {
				return -1
			}
			return 1
		}
		return cmp.Or(a.ctime.Compare(b.ctime), cmp.Compare(a.path, b.path))
	})
	return out
}

// deleteQuarantined records, then deletes, one quarantined file. A file
// without a row (a staging file the segmenter could not salvage) has no
// record to make: its deletion is logged and reported all the same.
func (r *Retention) deleteQuarantined(ctx context.Context, c qcand) error {
	marked := c.rec.ID != 0 && c.rec.Local == catalog.Quarantined
	if marked {
		if err := r.deps.Catalog.MarkDeleted(ctx, []int64{c.rec.ID}, c.cause()); err != nil {
			return fmt.Errorf("record its deletion: %w", err)
		}
	}
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if marked {
			if uerr := r.deps.Catalog.MarkQuarantined(ctx, c.rec.ID, c.path, c.rec.LastError); uerr != nil {
				r.log.Error().Err(uerr).Str("file", c.path).Msg("cannot unmark a quarantined file")
			}
		}
		return err
	}
	return nil
}
