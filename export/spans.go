package export

import (
	"sort"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/segment"
)

// Abut is how far apart two segments may be and still count as one span:
// the wall-clock estimate of segment times jitters by a fraction of a
// second (gaplog.Tolerance).
const Abut = time.Second

// CauseUnknown is the cause of a gap the gap log does not explain (or
// when there is no gap log: an export from the bucket alone).
const CauseUnknown = "unknown"

// Why a segment of the range is not played (Manifest.Skipped), and the
// cause of a gap left by one that cannot be read.
const (
	// CauseCovered: the time it claims is held by segments laid before it
	// (the overlap rule, OverlapOnce).
	CauseCovered = "covered"
	// CauseDamaged: it cannot be read as a recording (empty, cut before
	// its first frame, not an MP4, or claiming more than it holds).
	CauseDamaged = "damaged"
)

// Timeline is the footage of a camera in a range: its spans and the gaps
// between them.
type Timeline struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Spans  []Span    `json:"spans"`
	Gaps   []Gap     `json:"gaps"`
	// FootageSeconds adds up the spans.
	FootageSeconds float64 `json:"footageSeconds"`
}

// Span is a continuous run of footage (segments abutting within Abut),
// cut to the range.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Segments counts its segments; UploadedSegments those S3 has and
	// LocalSegments those still on this box.
	Segments         int `json:"segments"`
	UploadedSegments int `json:"uploadedSegments"`
	LocalSegments    int `json:"localSegments"`
	// Uploaded: S3 has all of it. Local: all of it is on this box.
	Uploaded bool `json:"uploaded"`
	Local    bool `json:"local"`
	// Feed, for a camera with a sub feed, is the feed of the span's best
	// copy (FeedMain, or FeedSub where the main copy is gone); absent for
	// a camera of one feed.
	Feed string `json:"feed,omitempty"`
}

// Gap is an interval of the range without footage.
type Gap struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"`
	// Cause is the cause of the gap-log entry covering most of it, or
	// "unknown"; Detail is that entry's.
	Cause  string `json:"cause"`
	Detail string `json:"detail,omitempty"`
	// Causes are the gap-log entries overlapping it, cut to it, oldest
	// first.
	Causes []Cause `json:"causes,omitempty"`
}

// Cause is one gap-log entry within a gap.
type Cause struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Cause  string    `json:"cause"`
	Detail string    `json:"detail,omitempty"`
}

// Spans lays out a camera's footage in [from, to): segs are its segments
// (any order; those whose footage is gone are left out), logged the gap
// log's entries (an open one has a zero End). Holes shorter than Abut are
// not gaps. Segments claiming the same time count it once, by the rule
// clips are laid out with (layOut).
func Spans(camera string, segs []Segment, logged []catalog.Gap, from, to time.Time) Timeline {
	tl := Timeline{Camera: camera, From: from, To: to, Spans: []Span{}, Gaps: []Gap{}}
	for _, fp := range bestPieces(segs, from, to) {
		n := len(tl.Spans)
		if n == 0 || fp.From.Sub(tl.Spans[n-1].End) > Abut || tl.Spans[n-1].Feed != fp.feed {
			tl.Spans = append(tl.Spans, Span{Start: fp.From, End: fp.To, Feed: fp.feed})
			n++
		}
		sp := &tl.Spans[n-1]
		sp.End = maxTime(sp.End, fp.To)
		sp.Segments++
		if fp.seg.Uploaded {
			sp.UploadedSegments++
		}
		if fp.seg.Path != "" {
			sp.LocalSegments++
		}
	}
	cursor := from
	for i := range tl.Spans {
		sp := &tl.Spans[i]
		sp.Uploaded, sp.Local = sp.UploadedSegments == sp.Segments, sp.LocalSegments == sp.Segments
		tl.FootageSeconds += sp.End.Sub(sp.Start).Seconds()
		if sp.Start.Sub(cursor) > Abut {
			tl.Gaps = append(tl.Gaps, gapBetween(cursor, sp.Start, logged))
		}
		cursor = sp.End
	}
	if to.Sub(cursor) > Abut {
		tl.Gaps = append(tl.Gaps, gapBetween(cursor, to, logged))
	}
	return tl
}

// feedPiece is a piece of the best copy's layout: its segment and feed.
type feedPiece struct {
	piece
	seg  Segment
	feed string
}

// bestPieces lays out the footage of [from, to) in order. Of a camera
// with a sub feed (segments with Sub set) it is the best copy, as exports
// take it (SelectFeed): the main feed's footage, and the sub feed's where
// the main's is gone; each piece says its feed. One feed: every piece, as
// before, without a feed.
func bestPieces(segs []Segment, from, to time.Time) []feedPiece {
	var mains, subs []Segment
	for _, s := range segs {
		switch {
		case !s.available():
		case s.Sub:
			subs = append(subs, s)
		default:
			mains = append(mains, s)
		}
	}
	order(mains)
	pieces, _ := layOut(mains, from, to)
	out := make([]feedPiece, 0, len(pieces))
	mainFeed := ""
	if len(subs) > 0 {
		mainFeed = FeedMain
	}
	for _, pc := range pieces {
		out = append(out, feedPiece{piece: pc, seg: mains[pc.i], feed: mainFeed})
	}
	if len(subs) == 0 {
		return out
	}
	order(subs)
	subPieces, _ := layOut(subs, from, to)
	for _, h := range uncovered(mains, from, to) {
		for _, pc := range subPieces {
			a, b := maxTime(h.From, pc.From), minTime(h.To, pc.To)
			if b.After(a) {
				cut := pc
				cut.From, cut.To = a, b
				out = append(out, feedPiece{piece: cut, seg: subs[pc.i], feed: FeedSub})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out
}

// order sorts segments the way they are laid out: by start; of two
// starting together, the one ending later first; then a segment before
// its conflict copy (S3 held the plain key first); then by name. The box
// and the bucket order the same segments the same way.
func order(segs []Segment) {
	sort.SliceStable(segs, func(i, j int) bool { return layoutLess(segs[i], segs[j]) })
}

// layoutLess is order's: whether a is laid out before b.
func layoutLess(a, b Segment) bool {
	if !a.Start.Equal(b.Start) {
		return a.Start.Before(b.Start)
	}
	if !a.End.Equal(b.End) {
		return a.End.After(b.End)
	}
	if ca, cb := isConflictCopy(a.Name), isConflictCopy(b.Name); ca != cb {
		return cb
	}
	return a.Name < b.Name
}

func isConflictCopy(name string) bool {
	info, err := segment.Parse(name)
	return err == nil && info.Conflict != ""
}

// piece is the part of segment i (in layout order) a layout plays, in
// wall-clock time: [From, To).
type piece struct {
	i        int
	From, To time.Time
	// After is the segment whose footage ends where this one's piece
	// starts, when it overlapped it (-1: none).
	After int
}

// covered is a segment whose time in the range is all held by segments
// laid before it; By is the one whose footage reaches furthest.
type covered struct{ i, By int }

// layOut is the one rule by which segments claiming the same wall-clock
// time (a clock step back, a conflict copy, a rebuilt catalog holding
// both) are laid out, in spans and in clips: each instant once. segs are
// in layout order (order); each plays from where the footage laid before
// it ends, up to its own end, within [from, to); one whose time is all
// held already is covered. An overlap shorter than Abut is the wall-clock
// estimate's jitter (consecutive segments of one run), not repeated
// footage: the segment plays whole. A clip then moves each cut back to a
// keyframe (Builder.lay); the time played is the same.
func layOut(segs []Segment, from, to time.Time) ([]piece, []covered) {
	var pieces []piece
	var cov []covered
	cursor, by := from, -1 // the end of the footage laid so far, and whose
	for i, s := range segs {
		if !s.End.After(from) || !s.Start.Before(to) {
			continue
		}
		end := minTime(s.End, to)
		if !end.After(cursor) && by >= 0 {
			cov = append(cov, covered{i: i, By: by})
			continue
		}
		pc := piece{i: i, From: maxTime(s.Start, from), To: end, After: -1}
		if by >= 0 && cursor.Sub(pc.From) >= Abut {
			pc.From, pc.After = cursor, by
		}
		pieces = append(pieces, pc)
		if end.After(cursor) {
			cursor, by = end, i
		}
	}
	return pieces, cov
}

// gapBetween is the gap [start, end) with the logged causes overlapping it.
func gapBetween(start, end time.Time, logged []catalog.Gap) Gap {
	g := Gap{Start: start, End: end, Seconds: end.Sub(start).Seconds(), Cause: CauseUnknown}
	var longest time.Duration
	for _, l := range logged {
		lend := l.End
		if lend.IsZero() { // still open
			lend = end
		}
		s, e := maxTime(l.Start, start), minTime(lend, end)
		if !e.After(s) {
			continue
		}
		g.Causes = append(g.Causes, Cause{Start: s, End: e, Cause: l.Cause, Detail: l.Detail})
		if d := e.Sub(s); d > longest {
			longest, g.Cause, g.Detail = d, l.Cause, l.Detail
		}
	}
	sort.SliceStable(g.Causes, func(i, j int) bool { return g.Causes[i].Start.Before(g.Causes[j].Start) })
	return g
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
