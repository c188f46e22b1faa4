package live

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// ErrNoKeyframe: the camera's ffmpeg is writing no segment, or none with a
// whole fragment at a keyframe yet.
var ErrNoKeyframe = errors.New("live: no keyframe in an open segment")

// Keyframe is the newest keyframe of a camera's open segment, as a small
// MP4 (the segment's init segment and that fragment) a decoder reads.
type Keyframe struct {
	MP4 []byte
	// At is the keyframe's wall-clock time; zero while the run's epoch
	// is not known yet.
	At time.Time
	// Segment is the open segment's file name in the staging folder; ID
	// names the keyframe (segment and offset): the same ID, the same
	// picture.
	Segment, ID string
}

// NewestKeyframe reads the newest keyframe of the segment the camera's
// ffmpeg is writing, from the file (no viewer needed): a still from it is
// at most a group of pictures old, whatever the segment's length.
func (h *Hub) NewestKeyframe(camera string) (Keyframe, error) {
	if !layout.IsFeedStagingName(camera) { // a camera, or its sub feed (<camera>~sub)
		return Keyframe{}, fmt.Errorf("live: %q cannot be a camera's name", camera)
	}
	seg, ok, err := locate(layout.StagingDirOf(h.cfg.SavePath, camera))
	if err != nil {
		return Keyframe{}, err
	}
	if !ok {
		return Keyframe{}, ErrNoKeyframe
	}
	f, err := os.Open(seg.path())
	if errors.Is(err, os.ErrNotExist) {
		return Keyframe{}, ErrNoKeyframe // closed and moved this instant
	}
	if err != nil {
		return Keyframe{}, err
	}
	defer f.Close()
	r := &segmentReader{seg: seg, f: f, ended: true} // no waiting: what is there now
	in, err := r.readInit(nil)
	if errors.Is(err, errEnded) {
		return Keyframe{}, ErrNoKeyframe
	}
	if err != nil {
		return Keyframe{}, err
	}
	if err := r.skipToNewestKeyframe(in); err != nil {
		return Keyframe{}, err
	}
	at := r.off
	frag, err := r.nextFragment(nil, in)
	if errors.Is(err, errEnded) || (err == nil && !frag.Keyframe) {
		return Keyframe{}, ErrNoKeyframe
	}
	if err != nil {
		return Keyframe{}, err
	}
	b := make([]byte, 0, len(in.Bytes)+len(frag.Bytes))
	k := Keyframe{MP4: append(append(b, in.Bytes...), frag.Bytes...), Segment: staging.SegmentName(seg.run.ID, seg.index),
		ID: fmt.Sprintf("%s/%d/%d", seg.run.ID, seg.index, at)}
	if start, ok := segmentStart(seg.run, seg.index); ok {
		if w := wallStart(seg.meta, start); !w.IsZero() {
			k.At = w.Add(time.Duration(float64(frag.DecodeTime) / float64(in.Timescale) * float64(time.Second)))
		}
	}
	return k, nil
}
