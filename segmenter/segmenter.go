// Package segmenter turns what ffmpeg closes in the staging folders into
// named segments: it watches the folders (fsnotify and inotify), and when a segment
// is closed it moves it with an atomic rename to
//
//	savePath/<camera>/<YYYY-MM-DD>/<camera>_<feed>_<start>_<end>.mp4
//
// with start and end the UTC wall-clock times of its first frame and of the
// end of its last, then reports it (Deps.OnSegment).
//
// Closing is read from ffmpeg itself: the segment muxer appends
// "file,start,end" to the run's CSV list when it ends a segment and closes
// the file just after, before it opens the next. A listed segment is
// therefore closed once the next segment exists or the run has ended. The
// segmenter wakes only for what can change that (inotify's IN_CREATE,
// IN_CLOSE_WRITE and IN_MOVED_TO on the camera folders, see closeMask),
// never for ffmpeg's writes into the open segments. An inotify queue
// overflow (events lost) causes a pass over every folder at once; a folder
// whose pass left something only time resolves (a move or a sync that
// failed, an ffmpeg left by an earlier daemon still finishing, a folder the
// watch failed on) is passed again every Retry; and every folder is
// rescanned every Rescan as a safety net.
//
// A run that ended without listing its open segment (ffmpeg killed by the
// watchdog, the daemon killed, a power cut) leaves that file behind; it is
// salvaged: probed with ffprobe, named from its real content and reported
// like any other. At start-up every run left by an earlier daemon is
// salvaged the same way; a segment such a run had listed is checked first,
// since a power cut can leave it shorter than ffmpeg wrote it. A file that
// cannot be salvaged (no video in it) is moved to
// savePath/.quarantine/<camera>/ and logged; only retention deletes it,
// when the disk forces it and the quarantine is over its bound.
//
// As it closes, a segment is read once, from the page cache ffmpeg just
// filled, for its SHA-256 and CRC-64/NVME (package filesum), which go with
// it to the catalog: its upload then reads it once, sending it.
//
// Durability: a segment's data is flushed to disk before its rename, the
// folders are synced after it, and only then is it reported (see package
// internal/durable). The segment each ffmpeg is still writing is flushed every
// SyncInterval by a goroutine of its own, so a power cut loses at most about
// that much of it. A final name is never one the catalog already holds
// (Deps.NameTaken), even for a file long deleted: a wall clock stepped back
// repeats times.
package segmenter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/durable"
	"github.com/cctvd/cctvd/internal/filesum"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

// Config is the segmenter's configuration.
type Config struct {
	// SavePath is the recordings folder.
	SavePath string
	// Owner identifies this daemon process: runs owned by another are
	// leftovers of an earlier one.
	Owner string
	// ProbePath is the ffprobe binary. Default config.DefaultProbePath.
	ProbePath string
	// FeedIDs gives each staging folder's feed id (by its name: the
	// camera's, or <camera>~sub for its sub feed), for the rare run whose
	// metadata is missing.
	FeedIDs map[string]string
	// Rescan is the period of a full rescan of every folder, a safety net
	// for events missed other than by an overflow (which causes one at
	// once). Default 60s: the closes wake the segmenter, and a pass of 64
	// folders every 10 s was a tenth of its CPU when nothing closes.
	Rescan time.Duration
	// Retry is how soon a folder whose last pass left something to retry or
	// to wait for (see processRun) is passed again. Default 10s.
	Retry time.Duration
	// Debounce groups a burst of events into one pass. Default 50ms.
	Debounce time.Duration
	// OrphanKill: an ffmpeg left by a dead daemon that is still running
	// this long after it was first seen is killed. Default 15s.
	OrphanKill time.Duration
	// SyncInterval is how often the segments ffmpeg is writing are flushed
	// to disk. Default config.DefaultSyncInterval; negative: never (the
	// kernel flushes within about 30 s).
	SyncInterval time.Duration
}

// Deps are the segmenter's collaborators.
type Deps struct {
	Log zerolog.Logger
	// OnSegment receives every closed segment, in order for each camera.
	OnSegment func(segment.Segment)
	// OnQuarantine, if set, hears of every file that could not be salvaged.
	OnQuarantine func(camera, file string)
	// NameTaken, if set, says whether a segment path (relative to
	// savePath, slash-separated) is already recorded, in any state: such a
	// name gets the next "-N" suffix even when no file holds it any more.
	NameTaken func(rel string) bool
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// After waits on the monotonic clock (rescans, the debounce, the
	// flushes of open segments); time.After by default.
	After func(time.Duration) <-chan time.Time
}

// Segmenter watches the staging folders. Run owns all its state but the
// feed ids, which a reload may change.
type Segmenter struct {
	cfg  Config
	deps Deps
	log  zerolog.Logger
	runs map[string]*runState // by staging dir + run id
	// retry holds the folders whose last pass asked for another (a
	// failure, an orphan waited for); unwatched the folders whose watch
	// failed: both are passed again every Retry.
	retry, unwatched map[string]bool
	open             openSet // the segments being written, for syncOpen

	feedMu  sync.Mutex
	feedIDs map[string]string

	// woke, if set (tests), hears of every event of a camera folder that
	// reaches the watch loop.
	woke func(name string)
}

type runState struct {
	offset      int64 // bytes of the CSV list consumed
	pending     []row // listed, not yet moved (waiting for the next segment)
	lastEnd     map[int]float64
	orphanSince time.Time
	goneWarned  bool // said once that the run's ffmpeg is gone unrecorded
	// moved holds files renamed whose rename is not yet durable (a folder
	// sync failed): they are reported once it is.
	moved map[string]movedFile
}

// movedFile is a file renamed out of staging, not yet reported.
type movedFile struct {
	seg        segment.Segment // a segment, or
	quarantine string          // the file's path in quarantine
	seconds    float64
}

// row is one line of ffmpeg's segment list.
type row struct {
	file       string
	index      int
	start, end float64 // stream seconds
}

// New returns a Segmenter.
func New(cfg Config, deps Deps) *Segmenter {
	if cfg.Rescan == 0 {
		cfg.Rescan = 60 * time.Second
	}
	if cfg.Retry == 0 {
		cfg.Retry = 10 * time.Second
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 50 * time.Millisecond
	}
	if cfg.OrphanKill == 0 {
		cfg.OrphanKill = 15 * time.Second
	}
	if cfg.ProbePath == "" {
		cfg.ProbePath = config.DefaultProbePath
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = config.DefaultSyncInterval
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.After == nil {
		deps.After = time.After
	}
	if deps.OnSegment == nil {
		deps.OnSegment = func(segment.Segment) {}
	}
	return &Segmenter{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "segmenter").Logger(), runs: map[string]*runState{},
		retry: map[string]bool{}, unwatched: map[string]bool{}, feedIDs: cfg.FeedIDs}
}

// SetFeedIDs replaces the cameras' feed ids, after a reload.
func (s *Segmenter) SetFeedIDs(ids map[string]string) {
	s.feedMu.Lock()
	s.feedIDs = ids
	s.feedMu.Unlock()
}

func (s *Segmenter) feedID(camera string) string {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	if id := s.feedIDs[camera]; id != "" {
		return id
	}
	return "unknown"
}

// Run watches until ctx ends, then makes a last pass, so that segments
// finalised by a stopping ffmpeg are moved, and returns. Stop the
// supervisor first.
func (s *Segmenter) Run(ctx context.Context) error {
	root := layout.Staging(s.cfg.SavePath)
	if err := durable.MkdirAll(s.cfg.SavePath, layout.StagingName); err != nil {
		return fmt.Errorf("segmenter: %w", err)
	}
	if err := durable.Check(s.cfg.SavePath); err != nil {
		s.log.Warn().Err(err).Str("savePath", s.cfg.SavePath).
			Msg("savePath's filesystem cannot flush files to disk: a power cut may lose or empty recent segments")
	}
	syncCtx, stopSync := context.WithCancel(context.Background())
	var syncWG sync.WaitGroup
	syncWG.Go(func() { s.syncOpen(syncCtx) })
	defer syncWG.Wait()
	defer stopSync()
	// fsnotify on the staging root, for the camera folders appearing;
	// inotify with the mask of what can close a segment on each camera
	// folder (see closeMask).
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("segmenter: %w", err)
	}
	defer w.Close()
	cw, err := newCloseWatcher()
	if err != nil {
		return fmt.Errorf("segmenter: %w", err)
	}
	defer cw.Close()
	if err := w.Add(root); err != nil {
		return fmt.Errorf("segmenter: watch %s: %w", root, err)
	}
	// Watch first, then scan: nothing created in between is missed.
	dirs, err := s.cameraDirs(cw)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		s.processDir(d)
	}

	after := s.deps.After
	rescan := after(s.cfg.Rescan)
	var debounce <-chan time.Time // set while a pass is due
	var retry <-chan time.Time    // set while a folder waits for a retry
	dirty := map[string]bool{}
	for {
		// Armed here, before the first wait too: the start-up pass may
		// have left a folder to retry.
		if retry == nil && len(s.retry)+len(s.unwatched) > 0 {
			retry = after(s.cfg.Retry)
		}
		select {
		case <-ctx.Done():
			s.processAll(cw)
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("segmenter: watcher closed")
			}
			if filepath.Dir(ev.Name) == root && ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					s.watch(cw, ev.Name)
					dirty[ev.Name] = true
				}
			}
		case ev, ok := <-cw.Events:
			if !ok {
				return errors.New("segmenter: watcher closed")
			}
			if s.woke != nil {
				s.woke(ev.Name)
			}
			if meaningful(ev.Name) {
				dirty[ev.Dir] = true
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("segmenter: watcher closed")
			}
			s.log.Warn().Err(err).Msg("watch error, rescanning")
			s.processAll(cw)
		case err, ok := <-cw.Errors:
			if !ok {
				return errors.New("segmenter: watcher closed")
			}
			// An overflow loses events: a full pass finds what they said.
			s.log.Warn().Err(err).Msg("watch error, rescanning")
			s.processAll(cw)
		case <-debounce:
			debounce = nil
			for _, d := range sortedKeys(dirty) {
				s.processDir(d)
			}
			clear(dirty)
		case <-retry:
			retry = nil
			s.retryPass(cw)
		case <-rescan:
			rescan = after(s.cfg.Rescan)
			s.processAll(cw)
		}
		if debounce == nil && len(dirty) > 0 {
			debounce = after(s.cfg.Debounce)
		}
	}
}

// meaningful says whether an event of a camera folder (one closeMask lets
// through: a file created, closed after writing, or renamed into place)
// can change what is closed: a segment created (the one before it is
// closed) or closed, the list created or closed, the run's metadata put in
// place. Whatever else appears there (the metadata's temporary file) cannot.
func meaningful(name string) bool {
	kind, _, _ := staging.Classify(name)
	return kind != staging.Other
}

func (s *Segmenter) processAll(w *closeWatcher) {
	dirs, err := s.cameraDirs(w)
	if err != nil {
		s.log.Error().Err(err).Msg("cannot list staging folders")
		return
	}
	for _, d := range dirs {
		s.processDir(d)
	}
}

// cameraDirs lists the camera staging folders and makes sure each is watched.
func (s *Segmenter) cameraDirs(w *closeWatcher) ([]string, error) {
	root := layout.Staging(s.cfg.SavePath)
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("segmenter: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(root, e.Name())
		if !w.Watching(d) {
			s.watch(w, d)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

func (s *Segmenter) watch(w *closeWatcher, dir string) {
	if err := w.Add(dir); err != nil {
		if !s.unwatched[dir] {
			s.log.Error().Err(err).Str("dir", dir).Msg("cannot watch staging folder; passing it every retry period")
		}
		s.unwatched[dir] = true
		return
	}
	delete(s.unwatched, dir)
}

// retryPass passes again the folders that asked for it and those not
// watched (trying the watch again); a folder gone is forgotten.
func (s *Segmenter) retryPass(w *closeWatcher) {
	dirs := map[string]bool{}
	for d := range s.retry {
		dirs[d] = true
	}
	for d := range s.unwatched {
		dirs[d] = true
	}
	for _, d := range sortedKeys(dirs) {
		if s.unwatched[d] {
			if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
				delete(s.unwatched, d)
			} else {
				s.watch(w, d)
			}
		}
		s.processDir(d)
	}
}

// runFiles is what a staging folder holds for one run.
type runFiles struct {
	list, meta bool
	segs       []int
}

// processDir handles everything in one camera's staging folder, and notes
// whether the folder needs another pass without an event (s.retry).
func (s *Segmenter) processDir(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error().Err(err).Str("dir", dir).Msg("cannot read staging folder")
			s.retry[dir] = true
		} else {
			delete(s.retry, dir)
		}
		return
	}
	runs := map[string]*runFiles{}
	get := func(id string) *runFiles {
		if runs[id] == nil {
			runs[id] = &runFiles{}
		}
		return runs[id]
	}
	for _, e := range entries {
		kind, id, index := staging.Classify(e.Name())
		switch kind {
		case staging.List:
			get(id).list = true
		case staging.MetaFile:
			get(id).meta = true
		case staging.Segment:
			get(id).segs = append(get(id).segs, index)
		}
	}
	again := false
	for _, id := range sortedKeys(runs) {
		if s.processRun(dir, id, runs[id]) {
			again = true
		}
	}
	if again {
		s.retry[dir] = true
	} else {
		delete(s.retry, dir)
	}
}

// processRun handles one run's files. It says whether the run needs
// another pass that no event may bring: a move, a salvage, a folder sync or
// a removal failed (retried), or an ffmpeg left by an earlier daemon is
// still running (waited for, then killed after OrphanKill).
func (s *Segmenter) processRun(dir, id string, files *runFiles) (again bool) {
	run := staging.Run{Dir: dir, ID: id}
	base := filepath.Base(dir)
	camera, feed := layout.StagingFeed(base) // a sub feed's folder is <camera>~sub
	lc := s.log.With().Str("camera", camera)
	if feed != "" {
		lc = lc.Str("feed", feed)
	}
	log := lc.Str("run", id).Logger()
	key := filepath.Join(dir, id)
	st := s.runs[key]
	if st == nil {
		st = &runState{lastEnd: map[int]float64{}, moved: map[string]movedFile{}}
		s.runs[key] = st
	}
	// Renames made durable only now are reported first, in order.
	for _, file := range sortedKeys(st.moved) {
		if err := s.publish(log, run, st, file); err != nil {
			log.Error().Err(err).Str("file", file).Msg("segment renamed but not yet durable; will retry")
			return true
		}
	}
	meta, err := staging.ReadMeta(run.MetaPath())
	hasMeta := err == nil
	if err != nil && !errors.Is(err, staging.ErrNoMeta) {
		log.Warn().Err(err).Msg("unreadable run metadata; treating the run as ended")
	}
	if !hasMeta {
		meta = staging.Meta{RunID: id, Camera: camera, FeedID: s.feedID(base), Feed: feed}
	}
	if err := s.readList(run, st); err != nil {
		log.Error().Err(err).Msg("cannot read segment list")
		again = true
	}

	// A run this daemon did not start was left by an earlier one (a crash,
	// a kill, a power cut): what it listed may not all have reached the disk.
	foreign := !hasMeta || meta.Owner != s.cfg.Owner
	ended := !hasMeta || meta.Ended(s.cfg.Owner)
	if ended && !foreign && !meta.Exited && !st.goneWarned {
		// This daemon's ffmpeg is gone but its exit was never recorded (the
		// supervisor could not write it: a full or failing disk). What it
		// listed is closed; waiting for the next segment would hold its last
		// segments in staging until a restart.
		st.goneWarned = true
		log.Warn().Int("pid", meta.PID).Msg("ffmpeg of this run is gone but its exit is not recorded; treating the run as ended")
	}
	if foreign && !ended {
		// An ffmpeg of a daemon that died is finishing (it got SIGTERM by
		// Pdeathsig). Wait for it, within bounds, before salvaging.
		again = true
		now := s.deps.Now()
		if st.orphanSince.IsZero() {
			st.orphanSince = now
			log.Warn().Int("pid", meta.PID).Msg("ffmpeg left by an earlier daemon is still running; waiting for it")
		} else if now.Sub(st.orphanSince) > s.cfg.OrphanKill {
			log.Warn().Int("pid", meta.PID).Msg("killing ffmpeg left by an earlier daemon")
			if err := meta.Kill(); err != nil {
				log.Error().Err(err).Int("pid", meta.PID).Msg("cannot kill ffmpeg left by an earlier daemon")
			}
		}
	}

	have := map[int]bool{}
	newest := -1
	for _, i := range files.segs {
		have[i] = true
		newest = max(newest, i)
	}
	if !ended && newest >= 0 {
		s.open.set(key, run.SegmentPath(newest))
	} else {
		s.open.set(key, "")
	}
	// A live run of this daemon names nothing before its epoch has
	// settled (the supervisor's first estimate is seconds late): the
	// metadata's rename wakes the segmenter when it has.
	unsettled := !ended && !foreign && !meta.EpochSettled
	failed := false
	keep := st.pending[:0]
	for _, r := range st.pending {
		if failed || unsettled || (!ended && !have[r.index+1]) {
			keep = append(keep, r) // still open or closing, or after a failure (order)
			continue
		}
		var err error
		if foreign {
			err = s.finalizeListed(log, run, meta, st, r)
		} else {
			err = s.finalize(log, run, meta, st, r.file, r.start, r.end, false)
		}
		if err != nil {
			log.Error().Err(err).Str("file", r.file).Msg("cannot move segment; will retry")
			keep, failed = append(keep, r), true
		}
		delete(have, r.index)
	}
	st.pending = keep
	if !ended || failed {
		return again || failed
	}
	// Whatever is left of an ended run was never listed: salvage it.
	for _, i := range sortedKeys(have) {
		if err := s.salvage(log, run, meta, st, i); err != nil {
			log.Error().Err(err).Int("segment", i).Msg("cannot salvage segment; will retry")
			failed = true
			break
		}
	}
	if failed || len(st.moved) > 0 {
		return true // keep the run's list and metadata for the next pass
	}
	for _, p := range []string{run.ListPath(), run.MetaPath()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Error().Err(err).Msg("cannot remove finished run's files")
			again = true
		}
	}
	delete(s.runs, key)
	return again
}

// readList reads the rows ffmpeg appended to the run's list since last time.
func (s *Segmenter) readList(run staging.Run, st *runState) error {
	f, err := os.Open(run.ListPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(st.offset, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(bufio.NewReader(f))
	if err != nil {
		return err
	}
	complete := bytes.LastIndexByte(data, '\n') + 1 // only whole lines
	rows, err := parseList(data[:complete])
	st.offset += int64(complete)
	for _, r := range rows {
		st.lastEnd[r.index] = r.end
		st.pending = append(st.pending, r)
	}
	return err
}

// parseList parses the CSV rows "file,start,end" of a segment list.
func parseList(data []byte) ([]row, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = 3
	var rows []row
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("segment list: %w", err)
		}
		kind, _, index := staging.Classify(filepath.Base(rec[0]))
		start, err1 := strconv.ParseFloat(rec[1], 64)
		end, err2 := strconv.ParseFloat(rec[2], 64)
		if kind != staging.Segment || err1 != nil || err2 != nil || end < start {
			return rows, fmt.Errorf("segment list: bad row %q", strings.Join(rec, ","))
		}
		rows = append(rows, row{file: filepath.Base(rec[0]), index: index, start: start, end: end})
	}
}

// wallTimes maps a segment's stream times to wall-clock times. Without the
// run's epoch it falls back on the file's modification time as its end.
func wallTimes(meta staging.Meta, start, end float64, mtime time.Time) (time.Time, time.Time) {
	d := time.Duration((end - start) * float64(time.Second))
	if meta.Epoch.IsZero() {
		return mtime.Add(-d), mtime
	}
	s := meta.Epoch.Add(time.Duration(start * float64(time.Second)))
	return s, s.Add(d)
}

// finalize moves a closed segment to its final name, durably, and reports
// it. A file already moved is not an error.
func (s *Segmenter) finalize(log zerolog.Logger, run staging.Run, meta staging.Meta, st *runState, file string, start, end float64, salvaged bool) error {
	src := filepath.Join(run.Dir, file)
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // moved in an earlier pass
	}
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return removeEmpty(log, src)
	}
	if fragments, _, err := boxes(src); err == nil && fragments == 0 {
		return removeEmpty(log, src) // a header, no frame: nothing to keep or upload
	}
	ws, we := wallTimes(meta, start, end, fi.ModTime())
	seg := segment.Segment{Camera: meta.Camera, FeedID: meta.FeedID, Sub: meta.Feed == "sub", Start: ws.UTC(), End: we.UTC(), Size: fi.Size(),
		Salvaged: salvaged, Run: run.ID, Epoch: meta.Epoch}
	// 1. Its bytes on the disk before it has a name that says it is done.
	if err := durable.Datasync(src); err != nil {
		return err
	}
	// Its checksums, read from the page cache ffmpeg just filled, so that
	// its upload need not read it before sending it (package filesum).
	if sums, err := filesum.File(src); err != nil || sums.Size != seg.Size {
		log.Warn().Err(err).Str("file", file).Msg("cannot take the segment's checksums; its upload reads it first")
	} else {
		seg.SHA256, seg.CRC64, seg.CRC64Blocks = sums.SHA256, sums.CRC64, filesum.EncodeBlocks(sums.Blocks)
	}
	dst, err := s.move(log, src, seg)
	if err != nil {
		return err
	}
	seg.Path = dst
	st.moved[file] = movedFile{seg: seg, seconds: end - start}
	return s.publish(log, run, st, file)
}

// publish makes a rename durable (both folders synced) and only then
// reports the file; until it succeeds the file stays in st.moved.
func (s *Segmenter) publish(log zerolog.Logger, run staging.Run, st *runState, file string) error {
	m := st.moved[file]
	dst := m.quarantine
	if dst == "" {
		dst = m.seg.Path
	}
	if err := durable.SyncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := durable.SyncDir(run.Dir); err != nil {
		return err
	}
	delete(st.moved, file)
	// Reported first, logged after: who reads the line finds the file
	// already counted and handed on.
	if m.quarantine != "" {
		if s.deps.OnQuarantine != nil {
			s.deps.OnQuarantine(filepath.Base(run.Dir), file)
		}
		log.Error().Str("file", m.quarantine).Msg("segment cannot be salvaged; moved to quarantine")
		return nil
	}
	seg := m.seg
	s.deps.OnSegment(seg)
	ev := log.Info()
	if seg.Salvaged {
		ev = log.Warn()
	}
	ev.Str("segment", filepath.Base(seg.Path)).Float64("seconds", math.Round(m.seconds*1000)/1000).Int64("bytes", seg.Size).
		Bool("salvaged", seg.Salvaged).Msg("segment closed")
	return nil
}

// removeEmpty removes a segment ffmpeg opened and never wrote a frame to:
// there is no footage in it to keep.
func removeEmpty(log zerolog.Logger, path string) error {
	log.Info().Str("file", filepath.Base(path)).Msg("removing empty segment")
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// move renames src into its final folder under a name no file and no
// catalog row holds, without overwriting anything.
func (s *Segmenter) move(log zerolog.Logger, src string, seg segment.Segment) (string, error) {
	relDir := layout.DayRel(seg.Camera, seg.Start)
	if err := durable.MkdirAll(s.cfg.SavePath, relDir); err != nil {
		return "", err
	}
	dir := filepath.Join(s.cfg.SavePath, relDir)
	for seq := 0; seq < 1000; seq++ {
		name := segment.Name(seg.Camera, seg.FeedID, seg.Start, seg.End, seq)
		if s.deps.NameTaken != nil && s.deps.NameTaken(relDir+"/"+name) {
			log.Info().Str("name", name).Msg("name already in the catalog (a clock stepped back?): taking the next suffix")
			continue
		}
		err := durable.RenameNoReplace(src, filepath.Join(dir, name))
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, name), nil
	}
	return "", fmt.Errorf("move %s: too many segments named alike", src)
}

func sortedKeys[V any, K interface{ ~string | ~int }](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
