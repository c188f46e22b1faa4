package segmenter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/durable"
	"github.com/cctvd/cctvd/internal/media"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// finalizeListed finalizes a segment that a run left by an earlier daemon
// listed as closed. ffmpeg had written it whole, but a power cut may have
// kept only part of it on the disk, under a list row that says it is
// whole: such a file is salvaged (named from what it really holds), so a
// short file never takes the name, and the S3 key, of the whole one.
func (s *Segmenter) finalizeListed(log zerolog.Logger, run staging.Run, meta staging.Meta, st *runState, r row) error {
	src := filepath.Join(run.Dir, r.file)
	_, whole, err := boxes(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if whole {
		return s.finalize(log, run, meta, st, r.file, r.start, r.end, false)
	}
	log.Warn().Str("file", r.file).Msg("a listed segment is not whole on disk (power cut?): salvaging what it holds")
	return s.salvageFile(log, run, meta, st, r.file, r.start, true)
}

// salvage recovers segment i of an ended run that ffmpeg never listed.
func (s *Segmenter) salvage(log zerolog.Logger, run staging.Run, meta staging.Meta, st *runState, i int) error {
	// The open segment starts where the previous listed one ended.
	start, known := 0.0, i == 0
	if prev, ok := st.lastEnd[i-1]; ok {
		start, known = prev, true
	}
	return s.salvageFile(log, run, meta, st, staging.SegmentName(run.ID, i), start, known)
}

// salvageFile probes a segment ffmpeg did not close (or that did not reach
// the disk whole) and names it from what it holds, starting at stream time
// start when known, else ending at its modification time.
func (s *Segmenter) salvageFile(log zerolog.Logger, run staging.Run, meta staging.Meta, st *runState, file string, start float64, known bool) error {
	src := filepath.Join(run.Dir, file)
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return removeEmpty(log, src)
	}
	dur, err := media.Duration(context.Background(), s.cfg.ProbePath, src)
	if errors.Is(err, media.ErrNoFrames) {
		return removeEmpty(log, src)
	}
	if errors.Is(err, media.ErrNoVideo) {
		return s.quarantine(log, run, st, file, err)
	}
	if err != nil {
		return err
	}
	if !known {
		meta.Epoch = time.Time{} // stream start unknown: name it from its mtime
	}
	return s.finalize(log, run, meta, st, file, start, start+dur.Seconds(), true)
}

// quarantine moves a file that cannot be salvaged out of the way, durably
// and without replacing an earlier one, then reports it.
func (s *Segmenter) quarantine(log zerolog.Logger, run staging.Run, st *runState, file string, why error) error {
	src := filepath.Join(run.Dir, file)
	rel := layout.QuarantineRel(filepath.Base(run.Dir))
	if err := durable.Datasync(src); err != nil {
		return fmt.Errorf("quarantine %s: %w", file, err)
	}
	if err := durable.MkdirAll(s.cfg.SavePath, rel); err != nil {
		return fmt.Errorf("quarantine %s: %w", file, err)
	}
	dst := filepath.Join(s.cfg.SavePath, rel, file)
	for n := 1; ; n++ {
		err := durable.RenameNoReplace(src, dst)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || n > 1000 {
			return fmt.Errorf("quarantine %s: %w", file, err)
		}
		dst = filepath.Join(s.cfg.SavePath, rel, fmt.Sprintf("%s.%d", file, n))
	}
	log.Warn().Err(why).Str("file", file).Msg("no playable video in the segment")
	st.moved[file] = movedFile{quarantine: dst}
	return s.publish(log, run, st, file)
}
