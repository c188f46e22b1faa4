package export

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/mp4"
)

// part is a source as a clip plays it: its samples [first, last) in
// decode order, over the wall-clock window [from, to).
type part struct {
	src         *source
	first, last int
	from, to    time.Time
	// startPTS is where playing starts (the first part's edit list);
	// endPTS where it stops, math.MaxInt64 at the source's end.
	startPTS, endPTS int64
	// cut says what of its window in the range it does not play, and why.
	cut []string
}

// cutParts lays out the opened sources of a range, in layout order with
// the pieces layOut gave them, as the parts a clip plays, and says which
// of them it skips. Where a source's piece starts after its own start
// because footage laid before it holds that time, it starts instead at
// its last keyframe at or before the piece's start, and the footage
// before it stops there (a part that would be left with nothing is
// skipped, covered): the time played is the pieces', each instant once.
// The first part starts at the keyframe at or before its start, which its
// edit list hides.
func cutParts(from, to time.Time, srcs []*source, pieces []piece, cov []covered) ([]*part, []ManifestSkipped, error) {
	var parts []*part
	var skipped []ManifestSkipped
	for _, c := range cov {
		s, by := srcs[c.i], srcs[c.By]
		skipped = append(skipped, skip(s.Segment, CauseCovered, fmt.Sprintf("its time in the range, %s to %s, is held by %s, laid before it",
			stamp(maxTime(s.Start, from)), stamp(minTime(s.End, to)), by.Name)))
	}
	for _, pc := range pieces {
		s := srcs[pc.i]
		seg := s.mp4
		if n := len(parts); n > 0 && !seg.Track.SameFormat(parts[n-1].src.mp4.Track) {
			prev := parts[n-1].src.mp4.Track
			e := &FormatChangeError{At: s.Start, From: prev.String(), To: seg.Track.String()}
			if e.From == e.To {
				e.To += " (other codec parameters)"
			}
			return nil, nil, e
		}
		p := &part{src: s, from: pc.From, to: pc.To}
		if len(parts) > 0 && pc.From.After(s.Start) {
			// The last keyframe at or before where its piece starts: where
			// the footage before it ends, or the range's start (two
			// segments a jitter apart both reaching back before it).
			limit := seg.PTS(0) + ticks(pc.From.Sub(s.Start), seg.Track.Timescale)
			k := 0
			for j := range seg.Samples {
				if seg.Samples[j].Sync && seg.PTS(j) <= limit {
					k = j
				}
			}
			kt := s.wall(seg.PTS(k))
			for pc.After >= 0 && len(parts) > 0 && !parts[len(parts)-1].from.Before(kt) { // all its window is s's now
				q := parts[len(parts)-1]
				parts = parts[:len(parts)-1]
				q.src.file.Close()
				skipped = append(skipped, skip(q.src.Segment, CauseCovered, fmt.Sprintf(
					"its time in the range is held by %s too, which plays from its keyframe at %s", s.Name, stamp(kt))))
			}
			switch {
			case len(parts) == 0: // s opens the clip
				p.from = maxTime(from, s.Start)
			case pc.After < 0: // no overlap to resolve: from its keyframe
				p.first, p.from = k, kt
			default:
				prev := parts[len(parts)-1]
				if prev.to.After(kt) {
					prev.cut = append(prev.cut, fmt.Sprintf("not played from %s to %s (%s): %s holds that time too and plays from its keyframe at %s",
						stamp(kt), stamp(prev.to), prev.to.Sub(kt), s.Name, stamp(kt)))
					prev.to = kt
				}
				if kt.After(maxTime(s.Start, from)) {
					p.cut = append(p.cut, fmt.Sprintf("not played from %s to %s (%s): %s, laid before it, holds that time",
						stamp(maxTime(s.Start, from)), stamp(kt), kt.Sub(maxTime(s.Start, from)), srcs[pc.After].Name))
				}
				p.first, p.from = k, kt
			}
		}
		parts = append(parts, p)
	}
	if len(parts) > 0 {
		// The first part: from the keyframe at or before its start.
		p := parts[0]
		seg := p.src.mp4
		p.first, p.startPTS = 0, seg.PTS(0)
		if p.from.After(p.src.Start) {
			p.startPTS += ticks(p.from.Sub(p.src.Start), seg.Track.Timescale)
			for k := range seg.Samples {
				if seg.Samples[k].Sync && seg.PTS(k) <= p.startPTS {
					p.first = k
				}
			}
		}
	}
	kept := parts[:0]
	for _, p := range parts {
		seg := p.src.mp4
		p.last, p.endPTS = len(seg.Samples), math.MaxInt64
		if p.to.Before(p.src.End) { // decode order, up to the last frame before its end
			limit := ticks(p.to.Sub(p.src.Start), seg.Track.Timescale)
			p.last = sort.Search(len(seg.Samples), func(k int) bool { return seg.Samples[k].DTS-seg.Samples[0].DTS >= limit })
			p.endPTS = seg.PTS(0) + limit
		}
		if p.last <= p.first {
			p.src.file.Close()
			if len(p.cut) > 0 {
				skipped = append(skipped, skip(p.src.Segment, CauseCovered, "nothing of it is left to play: "+p.cut[0]))
			}
			continue
		}
		kept = append(kept, p)
	}
	sort.SliceStable(skipped, func(i, j int) bool { return skipped[i].Start.Before(skipped[j].Start) })
	return kept, skipped, nil
}

func skip(s Segment, cause, detail string) ManifestSkipped {
	return ManifestSkipped{Name: s.Name, Key: s.Key, Start: s.Start, End: s.End, Cause: cause, Detail: detail}
}

// stamp is a wall-clock time in the manifest's words.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// damagedError is a segment that cannot be read as a recording: its time
// is a gap, unless another segment holds it, not a failed export.
type damagedError struct {
	seg Segment // its times refined from the object's metadata, when read
	err error
}

func (e *damagedError) Error() string { return e.err.Error() }
func (e *damagedError) Unwrap() error { return e.err }

// asDamaged makes an error reading s that says it is no recording (the
// MP4 reader's ErrFormat) a *damagedError; others stay as they are.
func asDamaged(s Segment, err error) error {
	var d *damagedError
	if err == nil || errors.As(err, &d) || !errors.Is(err, mp4.ErrFormat) {
		return err
	}
	return &damagedError{seg: s, err: err}
}

// damagedGaps are the gap-log entries the damaged segments of a range
// stand for: their time, with the cause.
func damagedGaps(bad []*damagedError) []catalog.Gap {
	var out []catalog.Gap
	for _, d := range bad {
		out = append(out, catalog.Gap{Camera: d.seg.Camera, Start: d.seg.Start, End: d.seg.End, Cause: CauseDamaged,
			Detail: d.seg.Name + " cannot be read: " + noPath(d.err)})
	}
	return out
}
