// Package segment defines a closed recording and its file name,
// {cameraName}_{videoFeedId}_{start}_{end}.mp4 with start and end in UTC
// (20260106T120000Z), and parses such names back.
//
// A camera name holds no '_' (config forbids it), so a name splits at its
// first '_' into camera and the rest; a feed id may hold '_'. When two
// segments would get the same name, the later gets a "-N" suffix before the
// extension instead of overwriting the first. When S3 already holds
// different content under a segment's key, the segment goes up beside it
// with ".conflict-<first 12 hex of its sha256>" before the extension
// (ConflictName); Parse reads such names too, so that the bucket alone
// (a rebuilt catalog, an export from S3) still finds that footage.
package segment

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is how times are written in names: UTC, to the second.
const TimeLayout = "20060102T150405Z"

// Ext is the container's extension.
const Ext = ".mp4"

// Segment is one closed recording file.
type Segment struct {
	Camera string
	FeedID string
	// Start and End are the UTC wall-clock times of the segment's first
	// frame and of the end of its last frame.
	Start, End time.Time
	// Path is the file's absolute local path.
	Path string
	// Size is the file's size in bytes.
	Size int64
	// Sub is true for a segment of its camera's sub feed.
	Sub bool
	// Salvaged is true for a file recovered from staging after ffmpeg
	// died without closing it (crash, kill, power cut).
	Salvaged bool
	// Run is the id of the ffmpeg run that recorded it.
	Run string
	// Epoch is the wall-clock time of the run's stream time 0 that Start
	// and End were computed from; zero when they come from the file's
	// modification time. Within a run it moves only when the wall clock
	// steps, so two segments of one run whose epochs differ were named on
	// two different clocks.
	Epoch time.Time
	// SHA256 (hex) and CRC64 (its CRC-64/NVME, base64) are the file's
	// checksums, taken in one read as it closed (package filesum); empty
	// when they could not be.
	SHA256, CRC64 string
	// CRC64Blocks are its CRC-64/NVME by 1 MiB block (filesum's
	// EncodeBlocks), from the same read.
	CRC64Blocks []byte
}

// Duration is End - Start.
func (s Segment) Duration() time.Duration { return s.End.Sub(s.Start) }

// Name is the file's base name.
func (s Segment) Name() string { return filepath.Base(s.Path) }

// Name returns the file name for a segment; seq > 0 adds the "-N" suffix
// that keeps a colliding name unique.
func Name(camera, feedID string, start, end time.Time, seq int) string {
	var b strings.Builder
	b.WriteString(camera)
	b.WriteByte('_')
	b.WriteString(feedID)
	b.WriteByte('_')
	b.WriteString(FormatTime(start))
	b.WriteByte('_')
	b.WriteString(FormatTime(end))
	if seq > 0 {
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(seq))
	}
	b.WriteString(Ext)
	return b.String()
}

// FormatTime writes t as in names: UTC, rounded to the nearest second.
func FormatTime(t time.Time) string { return t.UTC().Round(time.Second).Format(TimeLayout) }

// Info is what a file name says.
type Info struct {
	Camera, FeedID string
	Start, End     time.Time
	// Seq is the collision suffix, 0 when there is none.
	Seq int
	// Conflict is the content hash of a name ConflictName made, "" for
	// an ordinary name.
	Conflict string
}

// ErrNotSegment is returned by Parse for a name that is not a segment's.
var ErrNotSegment = errors.New("not a segment name")

var nameRe = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9.-]*)_([A-Za-z0-9][A-Za-z0-9._-]*)_([0-9]{8}T[0-9]{6}Z)_([0-9]{8}T[0-9]{6}Z)(?:-([1-9][0-9]{0,8}))?(?:\.conflict-([0-9a-f]{12}))?\.mp4$`)

// Parse reads a segment's base name back into its parts.
func Parse(name string) (Info, error) {
	m := nameRe.FindStringSubmatch(name)
	if m == nil {
		return Info{}, fmt.Errorf("%q: %w", name, ErrNotSegment)
	}
	start, err := time.Parse(TimeLayout, m[3])
	if err != nil {
		return Info{}, fmt.Errorf("%q: start: %w", name, ErrNotSegment)
	}
	end, err := time.Parse(TimeLayout, m[4])
	if err != nil {
		return Info{}, fmt.Errorf("%q: end: %w", name, ErrNotSegment)
	}
	if end.Before(start) {
		return Info{}, fmt.Errorf("%q: ends before it starts: %w", name, ErrNotSegment)
	}
	info := Info{Camera: m[1], FeedID: m[2], Start: start, End: end}
	if m[5] != "" {
		info.Seq, _ = strconv.Atoi(m[5])
	}
	info.Conflict = m[6]
	return info, nil
}

// Name is the canonical name of what was parsed.
func (i Info) Name() string {
	n := Name(i.Camera, i.FeedID, i.Start, i.End, i.Seq)
	if i.Conflict != "" {
		n = ConflictName(n, i.Conflict)
	}
	return n
}

// ConflictName is where a segment named name (a base name or an S3 key)
// goes when S3 holds different content under name: beside it, named for
// the segment's content, the first 12 hex digits of its sha256.
func ConflictName(name, sha256 string) string {
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + ".conflict-" + sha256[:min(12, len(sha256))] + ext
}
