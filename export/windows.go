package export

import (
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"
)

// An export cut to windows (the activity in a range, padded): the clip
// plays the footage of each window, one after the other, and leaves out
// the footage between them, which the manifest says (Manifest.Windows); a
// window's footage starts at the keyframe at or before it, like a clip's.

// ManifestWindows says that, and how, a clip was cut to windows.
type ManifestWindows struct {
	// By is what chose them: CutActivity.
	By string `json:"by"`
	// PadSeconds is how much before and after each interval is kept.
	PadSeconds float64 `json:"padSeconds"`
	// Windows are the ranges played, in order; the footage between them
	// is not in the clip (it is not a gap: it exists, it is not exported).
	Windows []Range `json:"windows"`
	Note    string  `json:"note"`
}

// CutActivity: the windows are the camera's activity intervals in the
// range, each widened by the pad and clipped to the range, those less
// than MinWindowGap apart joined.
const CutActivity = "activity"

// NoteActivity describes an activity cut in every such manifest.
const NoteActivity = "cut to the activity: each activity interval in the range, widened by padSeconds on both sides and clipped to the range, windows closer than 10 s joined; the clip plays the windows back to back (each from the keyframe at or before its start) and leaves out the footage between them"

// MinWindowGap: windows closer than this are one (the keyframe a window
// starts at would reach back into the one before).
const MinWindowGap = 10 * time.Second

// Windows turns intervals (in order or not) into the windows of a cut:
// each widened by pad, clipped to [from, to), overlapping or close ones
// joined.
func Windows(intervals []Range, pad time.Duration, from, to time.Time) []Range {
	ivs := make([]Range, 0, len(intervals))
	for _, iv := range intervals {
		w := Range{From: maxTime(iv.From.Add(-pad), from), To: minTime(iv.To.Add(pad), to)}
		if w.To.After(w.From) {
			ivs = append(ivs, w)
		}
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].From.Before(ivs[j].From) })
	var out []Range
	for _, w := range ivs {
		if n := len(out); n > 0 && w.From.Sub(out[n-1].To) < MinWindowGap {
			out[n-1].To = maxTime(out[n-1].To, w.To)
			continue
		}
		out = append(out, w)
	}
	for i := range out {
		out[i] = Range{From: millis(out[i].From), To: millis(out[i].To)}
	}
	return out
}

// checkWindows says whether windows are in order, apart, and in [from, to).
func checkWindows(ws []Range, from, to time.Time) error {
	for i, w := range ws {
		if !w.From.Before(w.To) || w.From.Before(from) || w.To.After(to) || (i > 0 && w.From.Before(ws[i-1].To)) {
			return fmt.Errorf("export: window %d (%s to %s) is not in order within the range", i, stamp(w.From), stamp(w.To))
		}
	}
	return nil
}

// windowed lays out the sources (in layout order) window by window: each
// window's pieces are its sources' (layOut within it), and a source that
// two windows use is opened twice (its second use reads through another
// descriptor), so that each part of the clip has a source of its own.
func windowed(srcs []*source, ws []Range) ([]*source, []piece, []covered, error) {
	var out []*source
	var pieces []piece
	var cov []covered
	used := map[*source]bool{}
	for _, w := range ws {
		var in []*source
		for _, s := range srcs {
			if s.End.After(w.From) && s.Start.Before(w.To) {
				in = append(in, s)
			}
		}
		base := len(out)
		for _, s := range in {
			if used[s] {
				t, err := s.twin()
				if err != nil {
					for _, o := range out[base:] {
						if o != s {
							o.file.Close()
						}
					}
					return nil, nil, nil, err
				}
				s = t
			}
			used[s] = true
			out = append(out, s)
		}
		ps, cs := layOut(segmentsOf(out[base:]), w.From, w.To)
		for k, p := range ps {
			p.i += base
			switch {
			case k == 0:
				p.After = -1 // a window starts at its keyframe: nothing before it to cut
			case p.After >= 0:
				p.After += base
			}
			pieces = append(pieces, p)
		}
		for _, c := range cs {
			cov = append(cov, covered{i: c.i + base, By: c.By + base})
		}
	}
	for _, s := range srcs { // sources no window plays
		if !used[s] {
			s.file.Close()
		}
	}
	return out, pieces, cov, nil
}

// twin is the source again, reading through a descriptor of its own.
func (src *source) twin() (*source, error) {
	fd, err := syscall.Dup(int(src.file.Fd()))
	if err != nil {
		return nil, fmt.Errorf("export: open %s again: %w", src.Name, err)
	}
	return &source{Segment: src.Segment, mp4: src.mp4, file: os.NewFile(uintptr(fd), src.file.Name()), read: src.read,
		kept: src.kept, sha256: src.sha256, bytes: src.bytes, note: src.note}, nil
}

// windowGaps are the gaps within the windows: the time between windows
// is left out of the clip, not missing.
func windowGaps(gaps []Gap, ws []Range) []Gap {
	var out []Gap
	for _, g := range gaps {
		for _, w := range ws {
			s, e := maxTime(g.Start, w.From), minTime(g.End, w.To)
			if !e.After(s) {
				continue
			}
			c := g
			c.Start, c.End, c.Seconds = s, e, e.Sub(s).Seconds()
			c.Causes = nil
			for _, k := range g.Causes {
				ks, ke := maxTime(k.Start, s), minTime(k.End, e)
				if ke.After(ks) {
					k.Start, k.End = ks, ke
					c.Causes = append(c.Causes, k)
				}
			}
			out = append(out, c)
		}
	}
	return out
}
