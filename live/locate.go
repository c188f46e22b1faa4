package live

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/cctvd/cctvd/staging"
)

// openSegment is the segment a camera's ffmpeg is writing: the newest
// segment of the newest run still running.
type openSegment struct {
	run   staging.Run
	index int
	meta  staging.Meta
}

func (o openSegment) path() string { return o.run.SegmentPath(o.index) }

// same says whether o and p name the same file.
func (o openSegment) same(p openSegment) bool { return o.run == p.run && o.index == p.index }

// runFiles is what a staging folder holds of one run.
type runFiles struct {
	id     string
	meta   bool
	newest int // the highest segment number, -1 when none
}

// scanStaging lists the runs of a camera's staging folder, newest first
// (by the start in their metadata, then by id: a run id is its start's
// wall time, and the wall clock may have stepped back since an older run).
func scanStaging(dir string) ([]runFiles, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	byID := map[string]*runFiles{}
	get := func(id string) *runFiles {
		r, ok := byID[id]
		if !ok {
			r = &runFiles{id: id, newest: -1}
			byID[id] = r
		}
		return r
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		kind, id, index := staging.Classify(e.Name())
		switch kind {
		case staging.MetaFile:
			get(id).meta = true
		case staging.Segment:
			if r := get(id); index > r.newest {
				r.newest = index
			}
		}
	}
	out := make([]runFiles, 0, len(byID))
	for _, r := range byID {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id > out[j].id })
	return out, nil
}

// locate finds the segment the camera's ffmpeg is writing in its staging
// folder dir: the newest segment of a run whose ffmpeg is alive (its
// metadata says it has not exited, and its pid runs it). Of several (a
// leftover run not yet cleaned up), the one started last. ok is false when
// no ffmpeg is writing.
func locate(dir string) (openSegment, bool, error) {
	runs, err := scanStaging(dir)
	if errors.Is(err, os.ErrNotExist) {
		return openSegment{}, false, nil
	}
	if err != nil {
		return openSegment{}, false, err
	}
	var best openSegment
	var found bool
	for _, r := range runs {
		if !r.meta || r.newest < 0 {
			continue
		}
		run := staging.Run{Dir: dir, ID: r.id}
		m, err := staging.ReadMeta(run.MetaPath())
		if err != nil || m.Exited || !m.Alive() {
			continue
		}
		if !found || m.StartedAt.After(best.meta.StartedAt) {
			best, found = openSegment{run: run, index: r.newest, meta: m}, true
		}
	}
	return best, found, nil
}

// segmentStart is the stream time (seconds) at which segment index of the
// run starts: the end of the one before it in ffmpeg's list, 0 for the
// first. ok is false when the list does not have it (yet).
func segmentStart(run staging.Run, index int) (float64, bool) {
	if index == 0 {
		return 0, true
	}
	f, err := os.Open(run.ListPath())
	if err != nil {
		return 0, false
	}
	defer f.Close()
	want := staging.SegmentName(run.ID, index-1)
	r := csv.NewReader(f)
	r.FieldsPerRecord = 3
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return 0, false
		}
		if err != nil {
			return 0, false
		}
		if filepath.Base(rec[0]) == want {
			end, err := strconv.ParseFloat(rec[2], 64)
			return end, err == nil
		}
	}
}

// wallStart is the wall-clock time of the segment's stream time 0 (its
// first frame): the run's epoch plus where the segment starts in the
// stream. Zero while the epoch is unknown.
func wallStart(meta staging.Meta, start float64) time.Time {
	if meta.Epoch.IsZero() {
		return time.Time{}
	}
	return meta.Epoch.Add(time.Duration(start * float64(time.Second)))
}
