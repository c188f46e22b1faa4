package export

import (
	"sort"
	"time"

	"github.com/cctvd/cctvd/catalog"
)

// Abut is how far apart two segments may be and still count as one span:
// the wall-clock estimate of segment times jitters by a fraction of a
// second (gaplog.Tolerance).
const Abut = time.Second

// CauseUnknown is the cause of a gap the gap log does not explain (or
// when there is no gap log: an export from the bucket alone).
const CauseUnknown = "unknown"

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
// not gaps.
func Spans(camera string, segs []Segment, logged []catalog.Gap, from, to time.Time) Timeline {
	tl := Timeline{Camera: camera, From: from, To: to, Spans: []Span{}, Gaps: []Gap{}}
	segs = append([]Segment(nil), segs...)
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].Start.Before(segs[j].Start) })
	for _, s := range segs {
		if !s.available() || !s.End.After(from) || !s.Start.Before(to) {
			continue
		}
		start, end := maxTime(s.Start, from), minTime(s.End, to)
		n := len(tl.Spans)
		if n == 0 || start.Sub(tl.Spans[n-1].End) > Abut {
			tl.Spans = append(tl.Spans, Span{Start: start, End: end})
			n++
		}
		sp := &tl.Spans[n-1]
		sp.End = maxTime(sp.End, end)
		sp.Segments++
		if s.Uploaded {
			sp.UploadedSegments++
		}
		if s.Path != "" {
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
