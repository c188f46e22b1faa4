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
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
)

// CauseQuarantineLimit is the DeleteCause of a quarantined segment whose
// file retention deleted because the quarantine was over its bound.
const CauseQuarantineLimit = "retention-quarantine-limit"

// QuarantineStatus is the quarantine (savePath/.quarantine): damaged files
// kept instead of uploaded, which count toward the size limit and are
// bounded on their own: beyond LimitBytes the oldest go.
type QuarantineStatus struct {
	Bytes      int64 `json:"bytes"`
	Files      int64 `json:"files"`
	LimitBytes int64 `json:"limitBytes"`
	// DeletedFiles and DeletedBytes count the quarantined files deleted
	// since start because the quarantine was over its bound.
	DeletedFiles int64 `json:"deletedFiles"`
	DeletedBytes int64 `json:"deletedBytes"`
}

// qfile is one file in the quarantine.
type qfile struct {
	path  string
	size  int64
	mtime time.Time
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
		q.files[p] = qfile{path: p, size: fi.Size(), mtime: fi.ModTime()}
		q.bytes += fi.Size()
	}
}

func (q *quarantine) remove(path string) {
	if f, ok := q.files[path]; ok {
		delete(q.files, path)
		q.bytes -= f.size
	}
}

// oldestFirst lists the files by modification time (a file keeps its
// segment's through the rename into the quarantine), then path.
func (q *quarantine) oldestFirst() []qfile {
	out := make([]qfile, 0, len(q.files))
	for _, f := range q.files {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b qfile) int {
		return cmp.Or(a.mtime.Compare(b.mtime), cmp.Compare(a.path, b.path))
	})
	return out
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

// quarantineLimit is the quarantine's bound under cfg.
func quarantineLimit(cfg Config) int64 {
	return int64(float64(cfg.LimitBytes) * cfg.QuarantineShare)
}

// trimQuarantine deletes the oldest quarantined files while the
// quarantine is over its bound, down to the low-water mark of it: they
// are damaged copies, and each deletion is recorded (the file's catalog
// row, when it has one, says deleted, CauseQuarantineLimit), logged and
// counted. It returns the bytes of the files it could not delete.
func (r *Retention) trimQuarantine(ctx context.Context, cfg Config) (int64, error) {
	limit := quarantineLimit(cfg)
	if r.quar.bytes <= limit {
		return 0, nil
	}
	target := int64(float64(limit) * cfg.LowWater)
	r.log.Warn().Int64("quarantineBytes", r.quar.bytes).Int("quarantineFiles", len(r.quar.files)).Int64("quarantineLimit", limit).
		Msg("the quarantine is over its bound: deleting its oldest files (damaged copies)")
	var stuck int64
	for _, f := range r.quar.oldestFirst() {
		if r.quar.bytes-stuck <= target {
			break
		}
		if err := r.deleteQuarantined(ctx, f); err != nil {
			if ctx.Err() != nil {
				return stuck, err
			}
			stuck += f.size
			r.log.Error().Err(err).Str("file", f.path).Msg("cannot delete a quarantined file")
			continue
		}
		r.quar.remove(f.path)
		r.status.Update(func(st *Status) {
			st.Quarantine.DeletedFiles++
			st.Quarantine.DeletedBytes += f.size
			st.Quarantine.Bytes, st.Quarantine.Files = r.quar.bytes, int64(len(r.quar.files))
		})
		r.log.Warn().Str("file", f.path).Int64("bytes", f.size).Int64("quarantineBytes", r.quar.bytes).Int64("quarantineLimit", limit).
			Msg("deleted a quarantined file: the quarantine is over its bound")
	}
	return stuck, nil
}

// deleteQuarantined records, then deletes, one quarantined file.
func (r *Retention) deleteQuarantined(ctx context.Context, f qfile) error {
	rec, err := r.deps.Catalog.ByPath(ctx, f.path)
	switch {
	case errors.Is(err, catalog.ErrNotFound): // a staging file the segmenter could not salvage: no row
	case err != nil:
		return fmt.Errorf("look up its catalog row: %w", err)
	case rec.Local == catalog.Quarantined:
		if err := r.deps.Catalog.MarkDeleted(ctx, []int64{rec.ID}, CauseQuarantineLimit); err != nil {
			return fmt.Errorf("record its deletion: %w", err)
		}
	}
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if rec.ID != 0 && rec.Local == catalog.Quarantined {
			if uerr := r.deps.Catalog.MarkQuarantined(ctx, rec.ID, f.path, rec.LastError); uerr != nil {
				r.log.Error().Err(uerr).Str("file", f.path).Msg("cannot unmark a quarantined file")
			}
		}
		return err
	}
	return nil
}
