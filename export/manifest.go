package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ManifestFormat names this manifest's layout.
const ManifestFormat = "cctvd-export/1"

// Manifest describes an export for chain of custody: what was asked, what
// the clip holds, every source with its S3 key, size and sha256, the gaps,
// and the clip's own sha256.
type Manifest struct {
	Format string `json:"format"`
	Camera string `json:"camera"`
	FeedID string `json:"feedId"`
	// Feed is the feed the clip is of, "main" or "sub", for a camera with
	// a sub feed (absent otherwise); FeedNote says why a sub copy was
	// handed over (the main copy is gone).
	Feed     string `json:"feed,omitempty"`
	FeedNote string `json:"feedNote,omitempty"`
	// Requested is the range asked for; Actual the wall-clock range the
	// clip plays (its first frame to the end of its last).
	Requested Range `json:"requested"`
	Actual    Range `json:"actual"`
	// DurationSeconds is how long the clip plays: the footage in the
	// range, gaps skipped.
	DurationSeconds float64 `json:"durationSeconds"`
	// Timeline, Trim and Overlap say how the clip was made, for whoever
	// reads it.
	Timeline string `json:"timeline"`
	Trim     string `json:"trim"`
	Overlap  string `json:"overlap"`
	// Made is where the export was made from: "box" (catalog, local files
	// and S3) or "s3" (the bucket alone).
	Made    string           `json:"madeFrom"`
	Bucket  string           `json:"bucket,omitempty"`
	Sources []ManifestSource `json:"sources"`
	// Skipped are the segments of the range the clip does not play: their
	// time is held by others (CauseCovered), or they cannot be read
	// (CauseDamaged; their time, unless another holds it, is a gap).
	Skipped []ManifestSkipped `json:"skipped,omitempty"`
	Gaps    []Gap             `json:"gaps"`
	// Windows, when set, says the clip was cut to these ranges of the
	// requested one (the activity in it): the footage between is left out.
	Windows *ManifestWindows `json:"cut,omitempty"`
	Export  ManifestExport   `json:"export"`
	// CctvdVersion made it, at ExportedAt.
	CctvdVersion string    `json:"cctvdVersion"`
	ExportedAt   time.Time `json:"exportedAt"`
}

// ManifestSource is one source segment of a clip.
type ManifestSource struct {
	Name string `json:"name"`
	// Key is its S3 key in Bucket (the source's own, when it is in
	// another bucket than the manifest's: uploaded before a change of
	// s3Bucket); Uploaded says whether S3 had it, verified, when the clip
	// was made.
	Key      string `json:"s3Key"`
	Bucket   string `json:"bucket,omitempty"`
	Uploaded bool   `json:"uploaded"`
	ETag     string `json:"etag,omitempty"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256"`
	// Read is where its bytes were read from: "local" or "s3".
	Read string `json:"read"`
	// Start and End are its wall-clock times; Used is the part of it the
	// clip plays, which starts ClipSeconds into the clip.
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Used        Range     `json:"used"`
	ClipSeconds float64   `json:"clipSeconds"`
	Note        string    `json:"note,omitempty"`
	// Cut says what of its time in the range the clip does not play from
	// it, and why: another source holds that time too (Overlap).
	Cut string `json:"cut,omitempty"`
}

// ManifestSkipped is a segment of the range the clip does not play.
type ManifestSkipped struct {
	Name  string    `json:"name"`
	Key   string    `json:"s3Key"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Cause is CauseCovered or CauseDamaged; Detail says by what, or what
	// is wrong with it.
	Cause  string `json:"cause"`
	Detail string `json:"detail"`
}

// ManifestExport is the clip itself.
type ManifestExport struct {
	// File is the clip's file name, beside the manifest.
	File        string `json:"file"`
	ContentType string `json:"contentType"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
	// ETag is the clip's HTTP entity tag (a digest of its sources and
	// cuts: the same sources and range give the same bytes).
	ETag string `json:"etag"`
}

// Descriptions of how clips are made, in every manifest.
const (
	TimelineGapsSkipped = "gaps skipped: the clip plays the footage in the range back to back; sources[].clipSeconds maps clip time to wall-clock time"
	OverlapOnce         = "each instant plays once: where segments claim the same wall-clock time (a clock step back, a conflict copy beside its object, a catalog rebuilt with both), they are taken by start (of two starting together the one ending later, then a segment before its conflict copy, then by name); a segment starts at its last keyframe at or before the end of the footage before it, which stops there (sources[].cut); one whose time is all held already is skipped (skipped[], covered); overlaps under 1 s are the wall-clock estimate's jitter, not repeated footage, and play whole. A segment that cannot be read is skipped (skipped[], damaged) and its time, unless another holds it, is a gap with that cause"
	TrimEditList        = "edit list: the clip holds the frames from the keyframe at or before the requested start, and an edit list makes players begin at the start; it stops at the last frame before the requested end"
)

// ManifestPath is the manifest's path beside a clip: clip.mp4 -> clip.json.
func ManifestPath(clipPath string) string {
	return strings.TrimSuffix(clipPath, filepath.Ext(clipPath)) + ".json"
}

// ReadManifest reads a manifest file.
func ReadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s is not a manifest: %w", path, err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%s is not a cctvd export manifest (format %q, want %q)", path, m.Format, ManifestFormat)
	}
	return &m, nil
}
