// Package staging is the on-disk contract between the supervisor, which runs
// ffmpeg into a camera's staging folder, and the segmenter, which turns what
// ffmpeg closes there into named segments under savePath.
//
// Each ffmpeg run has its own id, so no run overwrites another's files:
//
//	savePath/.staging/<camera>/<run>.json      run metadata (Meta), written by the supervisor
//	savePath/.staging/<camera>/<run>.csv       ffmpeg's segment list: file,start,end per closed segment
//	savePath/.staging/<camera>/<run>_00000.mp4 the segments, numbered from 0
//
// The folder (layout.StagingDir) is inside savePath, so moving a segment out
// of it is an atomic rename on the same filesystem.
package staging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/internal/durable"
)

// Run names the files of one ffmpeg run.
type Run struct {
	Dir string
	ID  string
}

// NewRunID returns a sortable id for a run starting at t.
func NewRunID(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s-%09d", t.Format("20060102T150405"), t.Nanosecond())
}

// ListPath is ffmpeg's CSV segment list.
func (r Run) ListPath() string { return filepath.Join(r.Dir, r.ID+".csv") }

// MetaPath is the run's metadata file.
func (r Run) MetaPath() string { return filepath.Join(r.Dir, r.ID+".json") }

// SegmentPath is the path of segment i.
func (r Run) SegmentPath(i int) string { return filepath.Join(r.Dir, SegmentName(r.ID, i)) }

// Pattern is the segment muxer's output pattern, with '%' in the folder
// escaped so that only the segment number is substituted.
func (r Run) Pattern() string {
	return filepath.Join(strings.ReplaceAll(r.Dir, "%", "%%"), r.ID+"_%05d.mp4")
}

// SegmentName is the base name of segment i of run id.
func SegmentName(id string, i int) string { return fmt.Sprintf("%s_%05d.mp4", id, i) }

// Kind says what a file in a staging folder is.
type Kind int

// The kinds of file in a staging folder.
const (
	Other Kind = iota
	List
	MetaFile
	Segment
)

// Classify tells what the file called name is, the run it belongs to and,
// for a segment, its number.
func Classify(name string) (kind Kind, runID string, index int) {
	switch {
	case strings.HasSuffix(name, ".csv"):
		return List, strings.TrimSuffix(name, ".csv"), 0
	case strings.HasSuffix(name, ".json"):
		return MetaFile, strings.TrimSuffix(name, ".json"), 0
	case strings.HasSuffix(name, ".mp4"):
		id, num, ok := strings.Cut(strings.TrimSuffix(name, ".mp4"), "_")
		if !ok || id == "" {
			return Other, "", 0
		}
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 {
			return Other, "", 0
		}
		return Segment, id, i
	}
	return Other, "", 0
}

// Meta is what the supervisor records about a run for the segmenter.
type Meta struct {
	RunID  string `json:"runId"`
	Camera string `json:"camera"`
	FeedID string `json:"feedId"`
	// Feed is "sub" for a run of the camera's sub feed (its folder is
	// <camera>~sub), empty for its main feed.
	Feed string `json:"feed,omitempty"`
	// Owner identifies the daemon process that started the run. A run
	// whose owner is not the running daemon is left over from a crash.
	Owner string `json:"owner"`
	// PID is ffmpeg's process id, 0 until it started.
	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	// Epoch is the wall-clock time of stream time 0: a frame at stream
	// time t was recorded at Epoch + t. Zero until ffmpeg's progress shows it.
	Epoch time.Time `json:"epoch,omitzero"`
	// EpochSettled is set once Epoch rests on a progress block written
	// after ffmpeg caught up with what it buffered while probing the
	// stream: its first block comes seconds late, so an epoch from it alone
	// names segments seconds late. The segmenter names no segment of a live
	// run of its own daemon before it is set.
	EpochSettled bool `json:"epochSettled,omitempty"`
	// Exited is set once ffmpeg has exited and nothing more will be written.
	Exited   bool      `json:"exited,omitempty"`
	ExitedAt time.Time `json:"exitedAt,omitzero"`
}

// WriteMeta writes m to path atomically (temporary file, fsync, rename,
// folder fsync), so a reader or a crash never sees half of it, and after a
// power cut the run's epoch is there to name what it recorded.
func WriteMeta(path string, m Meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("write run meta: %w", err)
	}
	if err := durable.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write run meta %s: %w", path, err)
	}
	return nil
}

// Ended says whether the run's files are final: nothing writes to them any
// more. That is the contract between the supervisor, which runs ffmpeg, and
// the segmenter, which must not name or salvage a file still being written.
// A run of the daemon owner has ended once its metadata says so (the
// supervisor writes Exited after ffmpeg's exit). A run of another daemon
// (one that crashed, was killed, or lost power) has ended once its ffmpeg is
// gone: the kernel sends it SIGTERM when its daemon dies (Pdeathsig), and it
// may take a moment to finalise its segment. A run of the owner whose
// ffmpeg is gone without Exited written (the supervisor could not write it:
// a full or failing disk) has ended too.
func (m Meta) Ended(owner string) bool {
	return m.Exited || ((m.Owner != owner || m.PID > 0) && !m.Alive())
}

// Alive says whether the run's ffmpeg is running: its pid is alive and its
// command line names the run, so a pid reused by another process is not
// mistaken for it.
func (m Meta) Alive() bool {
	if m.PID <= 0 || m.RunID == "" {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(m.PID) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(m.RunID))
}

// Kill ends a leftover run: SIGKILL to its ffmpeg's process group (the
// supervisor starts each ffmpeg as a group of its own). For a run whose
// daemon is gone and whose ffmpeg does not finish by itself.
func (m Meta) Kill() error {
	if !m.Alive() {
		return nil
	}
	if err := syscall.Kill(-m.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill the ffmpeg of run %s: %w", m.RunID, err)
	}
	return nil
}

// ErrNoMeta is returned by ReadMeta when the run has no metadata file.
var ErrNoMeta = errors.New("no run metadata")

// ReadMeta reads a run's metadata.
func ReadMeta(path string) (Meta, error) {
	var m Meta
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, fmt.Errorf("%s: %w", path, ErrNoMeta)
	}
	if err != nil {
		return m, fmt.Errorf("read run meta: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("read run meta %s: %w", path, err)
	}
	return m, nil
}
