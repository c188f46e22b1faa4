package segmenter

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cctvd/cctvd/internal/durable"
)

// syncWorkers bounds the fdatasync calls under way at once: concurrent
// calls let ext4 commit its journal once for several files.
const syncWorkers = 8

// openSet is the segment each live run's ffmpeg is writing (the run's
// newest), by run. The watch loop keeps it; the sync loop reads it.
type openSet struct {
	mu    sync.Mutex
	paths map[string]string // run key -> segment path
}

func (o *openSet) set(run, path string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.paths == nil {
		o.paths = map[string]string{}
	}
	if path == "" {
		delete(o.paths, run)
	} else {
		o.paths[run] = path
	}
}

func (o *openSet) snapshot() map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]bool, len(o.paths))
	for _, p := range o.paths {
		out[p] = true
	}
	return out
}

// syncOpen flushes the segments ffmpeg is writing every SyncInterval, so a
// power cut loses at most that much of each (plus the half-second fragment
// ffmpeg has not written yet). Without it, ext4 keeps written data in
// memory for up to 30 s. It runs in its own goroutine: a slow disk delays
// the next round, never the watch loop.
func (s *Segmenter) syncOpen(ctx context.Context) {
	if s.cfg.SyncInterval < 0 {
		return
	}
	st := &syncState{files: map[string]*os.File{}, failed: map[string]bool{}}
	defer st.closeAll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.deps.After(s.cfg.SyncInterval):
		}
		s.syncRound(st)
	}
}

// syncState is the sync loop's own: the files it holds open (one open per
// segment, not per round) and the files whose flush failed (logged once).
type syncState struct {
	files  map[string]*os.File
	failed map[string]bool
}

func (st *syncState) closeAll() {
	for _, f := range st.files {
		f.Close()
	}
}

// syncRound flushes every open segment once: it starts writeback of all of
// them, then waits for each with fdatasync, a few at once. A segment seen
// for the first time also gets its folder synced, so its name survives.
func (s *Segmenter) syncRound(st *syncState) {
	want := s.open.snapshot()
	for p, f := range st.files {
		if !want[p] {
			f.Close()
			delete(st.files, p)
			delete(st.failed, p)
		}
	}
	newDirs := map[string]bool{}
	for p := range want {
		if st.files[p] != nil {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // closed and moved since
				s.log.Error().Err(err).Str("file", p).Msg("cannot open the segment being written to flush it")
			}
			continue
		}
		st.files[p] = f
		newDirs[filepath.Dir(p)] = true
	}
	for _, f := range st.files {
		// Start the writeback of every file before waiting for any.
		_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	type result struct {
		path string
		err  error
	}
	jobs := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(syncWorkers, len(st.files)) {
		wg.Go(func() {
			for p := range jobs {
				results <- result{p, unix.Fdatasync(int(st.files[p].Fd()))}
			}
		})
	}
	go func() {
		for p := range st.files {
			jobs <- p
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	for r := range results {
		if r.err != nil && !durable.CannotSync(r.err) && !st.failed[r.path] {
			st.failed[r.path] = true
			s.log.Error().Err(r.err).Str("file", r.path).Msg("cannot flush the segment being written to disk: a power cut may lose more of it")
		}
	}
	for d := range newDirs {
		if err := durable.SyncDir(d); err != nil {
			s.log.Error().Err(err).Msg("cannot sync a staging folder")
		}
	}
}
