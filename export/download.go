package export

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cctvd/cctvd/internal/mp4"
)

// sparse stores a download in its temporary file: the object's bytes at
// their own offsets, and only those of the samples a clip of the range
// may play (from the last keyframe at or before the range's start to the
// last sample before its end, the rule cutParts cuts by); the rest are
// holes, which take no space. The whole object still passes through it
// (it is hashed whole); fragment is told each fragment's samples before
// their bytes pass. It checks the temporary filesystem's floor as it
// grows.
type sparse struct {
	file *os.File
	// start and end are the range in the source's own timescale, from
	// its first sample: PTS at or before start (the keyframe), DTS before
	// end; allToEnd: the range reaches past the source's end.
	start, end int64
	allToEnd   bool
	keepFrom   int // the first sample kept

	off    int64    // bytes of the object seen so far
	want   []extent // byte ranges to keep, in file order, merged
	next   int      // the first extent of want not yet passed
	buf    []byte   // bytes to write at bufOff, contiguous
	bufOff int64

	space *TempSpace
	own   grant // the build's reservation
}

// extent is a byte range of a source file, [off, end).
type extent struct{ off, end int64 }

// newSparse stores into file the parts of a source recorded over
// [segStart, segEnd) that a clip of [from, to) plays.
// own is what the build reserved in space.
func newSparse(file *os.File, segStart, segEnd, from, to time.Time, space *TempSpace, own grant) *sparse {
	return &sparse{file: file, space: space, own: own, allToEnd: !to.Before(segEnd),
		start: int64(from.Sub(segStart)), end: int64(to.Sub(segStart))} // in nanoseconds until the timescale is known
}

// errOutOfOrder: sample data that is not after the fragment describing
// it, or not in file order (not a file cctvd's ffmpeg writes).
var errOutOfOrder = fmt.Errorf("%w: sample data before its fragment, or out of order", mp4.ErrFormat)

// fragment takes a fragment's samples, seg.Samples[first:].
func (s *sparse) fragment(seg *mp4.Segment, first int) error {
	if first == 0 { // the timescale is known: the range in its units
		ts := seg.Track.Timescale
		s.start, s.end = ticks(time.Duration(s.start), ts), ticks(time.Duration(s.end), ts)
	}
	for i := first; i < len(seg.Samples); i++ {
		smp := seg.Samples[i]
		if smp.Sync && seg.PTS(i)-seg.PTS(0) <= s.start && i > s.keepFrom {
			// A later keyframe at or before the start: what was kept
			// before it is not played.
			if err := s.drop(); err != nil {
				return err
			}
			s.keepFrom = i
		}
		if i < s.keepFrom || (!s.allToEnd && smp.DTS-seg.Samples[0].DTS >= s.end) {
			continue
		}
		e := extent{smp.Offset, smp.Offset + int64(smp.Size)}
		if e.off < s.off {
			return errOutOfOrder
		}
		if n := len(s.want); n > 0 && e.off < s.want[n-1].end {
			return errOutOfOrder
		}
		if n := len(s.want); n > 0 && e.off == s.want[n-1].end {
			s.want[n-1].end = e.end
		} else if e.end > e.off {
			s.want = append(s.want, e)
		}
	}
	return nil
}

// drop forgets what was kept so far and gives its space back.
func (s *sparse) drop() error {
	s.buf = s.buf[:0]
	if s.off > 0 {
		err := unix.Fallocate(int(s.file.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, s.off)
		if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("export: free a download's unused part: %w", err)
		}
	}
	s.want, s.next = s.want[:0], 0
	return nil
}

// Write takes the object's next bytes.
func (s *sparse) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		for s.next < len(s.want) && s.want[s.next].end <= s.off {
			s.next++
		}
		if s.next == len(s.want) || s.want[s.next].off >= s.off+int64(len(p)) { // nothing kept in p
			s.off += int64(len(p))
			break
		}
		e := s.want[s.next]
		if skip := e.off - s.off; skip > 0 {
			p, s.off = p[skip:], e.off
		}
		k := min(int64(len(p)), e.end-s.off)
		if err := s.keep(p[:k]); err != nil {
			return 0, err
		}
		p, s.off = p[k:], s.off+k
	}
	return n, nil
}

// keep stores p, which goes at s.off.
func (s *sparse) keep(p []byte) error {
	if len(s.buf) > 0 && (s.bufOff+int64(len(s.buf)) != s.off || len(s.buf)+len(p) > flushAt) {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if len(s.buf) == 0 {
		s.bufOff = s.off
	}
	s.buf = append(s.buf, p...)
	return nil
}

// flushAt is the most a download buffers before it writes (and checks
// the floor: a statfs per 256 KiB).
const flushAt = 256 << 10

// flush writes the buffered bytes, the floor allowing.
func (s *sparse) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	if err := s.space.allow(int64(len(s.buf)), s.own); err != nil {
		return err
	}
	if _, err := s.file.WriteAt(s.buf, s.bufOff); err != nil {
		return fmt.Errorf("export: save a download: %w", err)
	}
	s.buf = s.buf[:0]
	return nil
}

// finish writes what is buffered and returns the byte ranges stored.
func (s *sparse) finish() ([]extent, error) {
	if err := s.flush(); err != nil {
		return nil, err
	}
	return s.want, nil
}

// holds says whether the stored byte ranges hold [off, off+n).
func holds(kept []extent, off, n int64) bool {
	i := sort.Search(len(kept), func(i int) bool { return kept[i].end > off })
	return i < len(kept) && kept[i].off <= off && off+n <= kept[i].end
}

// checkStored checks that every sample a part plays was stored: a bug
// here would otherwise play zeros.
func checkStored(parts []*part) error {
	for _, p := range parts {
		if p.src.kept == nil {
			continue
		}
		for j := p.first; j < p.last; j++ {
			smp := p.src.mp4.Samples[j]
			if !holds(p.src.kept, smp.Offset, int64(smp.Size)) {
				return fmt.Errorf("%w: %s: sample %d (bytes %d to %d) was not kept from the download", ErrInternal, p.src.Name, j,
					smp.Offset, smp.Offset+int64(smp.Size))
			}
		}
	}
	return nil
}
