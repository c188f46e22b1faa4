// Package export hands footage over: the spans of a camera's footage in a
// time range with the gaps between them and their causes, one MP4 of the
// range built from its segments without re-encoding, from the box or from
// the S3 bucket alone, a manifest for chain of custody, and the check of a
// manifest against the bucket.
//
// The MP4 (package internal/mp4) starts at the keyframe at or before the
// range's start, with an edit list so that players begin at the start, and
// stops at the last frame before the range's end; its moov comes first
// (it plays while it downloads) and its creation time is the wall-clock
// time of its first frame. Gaps are skipped: the clip's timeline runs over
// footage only, and the manifest says where each source segment starts in
// it and where the gaps were. The same segments and range always give the
// same bytes, from the box or from the bucket.
//
// Every source is hashed (sha256) and checked against what the catalog or
// the object's metadata recorded. An S3 object is checked as it is
// downloaded: one that does not match fails the export. A local file is
// checked before any of its bytes is served, in the background ahead of
// the reader, so the first byte does not wait for the whole range: one
// that no longer matches fails the read, is remembered (Distrust), and the
// next build reads its S3 copy.
package export

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Segment is one recording a clip may be made of, as the catalog or the
// bucket knows it.
type Segment struct {
	Camera string
	FeedID string
	// Start and End are the wall-clock times of its first frame and of the
	// end of its last, to the millisecond (the precision of the object
	// metadata, so the box and the bucket cut the same frames).
	Start, End time.Time
	// Name is the file name; Key the S3 key, in Bucket (empty: the
	// configured bucket, for rows uploaded before the catalog kept theirs).
	Name, Key string
	Bucket    string
	// Bytes and SHA256 are the size and checksum recorded when it was
	// closed and uploaded; zero and empty when not known yet.
	Bytes  int64
	SHA256 string
	// ETag is S3's, when known.
	ETag string
	// Uploaded: S3 holds it, verified.
	Uploaded bool
	// Path is its local file, empty when it is not on this box.
	Path string
	// Sub: it is of its camera's sub feed (feeds.go).
	Sub bool
}

// available says whether the footage still exists somewhere.
func (s Segment) available() bool { return s.Path != "" || s.Uploaded }

// S3API is what exports need of an S3 client.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Where a source was read from, in the manifest.
const (
	ReadLocal = "local"
	ReadS3    = "s3"
)

// Where an export was made, in the manifest.
const (
	MadeOnBox      = "box"
	MadeFromBucket = "s3"
)

// ErrNoFootage is wrapped by a *NoFootageError.
var ErrNoFootage = errors.New("no footage in the range")

// NoFootageError says that a range holds no footage, and where the
// nearest footage is (nil when there is none that way).
type NoFootageError struct {
	Before, After *Range
	// Damaged, when set, says that the range has segments, none of which
	// can be read (Manifest.Skipped's detail of the first).
	Damaged string
}

func (e *NoFootageError) Error() string {
	msg := ErrNoFootage.Error()
	if e.Damaged != "" {
		msg += "; its segments cannot be read: " + e.Damaged
	}
	if e.Before != nil {
		msg += fmt.Sprintf("; the nearest before ends at %s", e.Before.To.Format(time.RFC3339))
	}
	if e.After != nil {
		msg += fmt.Sprintf("; the nearest after starts at %s", e.After.From.Format(time.RFC3339))
	}
	return msg
}

func (e *NoFootageError) Unwrap() error { return ErrNoFootage }

// ErrFormatChange is wrapped by a *FormatChangeError.
var ErrFormatChange = errors.New("the camera's video format changes in the range")

// FormatChangeError says that a range crosses a change of the camera's
// video format (resolution, codec, its parameters), which one MP4 track
// cannot hold without re-encoding: export the two sides separately.
type FormatChangeError struct {
	At       time.Time
	From, To string
}

func (e *FormatChangeError) Error() string {
	return fmt.Sprintf("%v: from %s to %s at %s; export the range up to it and the range from it separately",
		ErrFormatChange, e.From, e.To, e.At.Format(time.RFC3339Nano))
}

func (e *FormatChangeError) Unwrap() error { return ErrFormatChange }

// Range is an interval of wall-clock time, [From, To).
type Range struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// millis truncates a time to the millisecond, in UTC.
func millis(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
