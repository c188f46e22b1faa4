package export

import (
	"fmt"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
)

var t0 = time.Date(2026, 1, 6, 14, 0, 0, 0, time.UTC)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// seg is a segment [a, b) seconds after t0; flags: "u" uploaded, "l" local.
func seg(a, b float64, flags string) Segment {
	s := Segment{Camera: "door", Start: at(a), End: at(b)}
	for _, f := range flags {
		switch f {
		case 'u':
			s.Uploaded = true
		case 'l':
			s.Path = "/rec/x.mp4"
		}
	}
	return s
}

func logged(a, b float64, cause string) catalog.Gap {
	g := catalog.Gap{Camera: "door", Start: at(a), Cause: cause, Detail: cause + " detail"}
	if b >= 0 {
		g.End = at(b)
	}
	return g
}

// span and gap in the compact form the table states them.
type sp struct {
	a, b      float64
	n, up, lo int
}
type gp struct {
	a, b   float64
	cause  string
	causes int
}

func TestSpans(t *testing.T) {
	tests := []struct {
		name     string
		segs     []Segment
		logged   []catalog.Gap
		from, to float64
		spans    []sp
		gaps     []gp
	}{{
		name: "one run, cut to the range",
		segs: []Segment{seg(0, 10, "ul"), seg(10, 20, "ul"), seg(20.4, 30, "l")},
		from: 5, to: 25,
		spans: []sp{{5, 25, 3, 2, 3}},
	}, {
		name: "holes within a second are not gaps",
		segs: []Segment{seg(0, 10, "l"), seg(10.9, 20, "l"), seg(20.95, 30, "l")},
		from: 0, to: 30,
		spans: []sp{{0, 30, 3, 0, 3}},
	}, {
		name:   "a gap with its cause",
		segs:   []Segment{seg(0, 10, "ul"), seg(40, 50, "u")},
		logged: []catalog.Gap{logged(10, 40, "operator-stop")},
		from:   0, to: 50,
		spans: []sp{{0, 10, 1, 1, 1}, {40, 50, 1, 1, 0}},
		gaps:  []gp{{10, 40, "operator-stop", 1}},
	}, {
		name:   "two causes in one gap: the longer names it",
		segs:   []Segment{seg(0, 10, "l"), seg(60, 70, "l")},
		logged: []catalog.Gap{logged(10, 20, "stall"), logged(20, 60, "unreachable")},
		from:   0, to: 70,
		spans: []sp{{0, 10, 1, 0, 1}, {60, 70, 1, 0, 1}},
		gaps:  []gp{{10, 60, "unreachable", 2}},
	}, {
		name:   "gaps at both ends; an open gap reaches the end",
		segs:   []Segment{seg(20, 30, "l")},
		logged: []catalog.Gap{logged(0, 20, "daemon-down"), logged(30, -1, "auth")},
		from:   10, to: 45,
		spans: []sp{{20, 30, 1, 0, 1}},
		gaps:  []gp{{10, 20, "daemon-down", 1}, {30, 45, "auth", 1}},
	}, {
		name: "a gap the log does not explain",
		segs: []Segment{seg(0, 10, "u"), seg(15, 20, "u")},
		from: 0, to: 20,
		spans: []sp{{0, 10, 1, 1, 0}, {15, 20, 1, 1, 0}},
		gaps:  []gp{{10, 15, CauseUnknown, 0}},
	}, {
		name:   "footage gone for good is a gap, not a span",
		segs:   []Segment{seg(0, 10, "l"), seg(10, 20, ""), seg(20, 30, "u")},
		logged: []catalog.Gap{logged(10, 20, "retention")},
		from:   0, to: 30,
		spans: []sp{{0, 10, 1, 0, 1}, {20, 30, 1, 1, 0}},
		gaps:  []gp{{10, 20, "retention", 1}},
	}, {
		name:   "nothing in the range",
		segs:   []Segment{seg(0, 10, "l"), seg(100, 110, "l")},
		logged: []catalog.Gap{logged(10, 100, "stall")},
		from:   20, to: 80,
		gaps: []gp{{20, 80, "stall", 1}},
	}, {
		name: "unsorted and overlapping segments merge",
		segs: []Segment{seg(10, 25, "l"), seg(0, 12, "l"), seg(24, 30, "l")},
		from: 0, to: 30,
		spans: []sp{{0, 30, 3, 0, 3}},
	}, {
		name: "a copy of a segment's time counts once: it is covered",
		segs: []Segment{named(seg(0, 10, "u"), "x.conflict-0123456789ab"), named(seg(0, 10, "l"), "x"), seg(10, 20, "l")},
		from: 0, to: 20,
		spans: []sp{{0, 20, 2, 0, 2}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := Spans("door", tt.segs, tt.logged, at(tt.from), at(tt.to))
			var spans []sp
			var footage float64
			for _, s := range tl.Spans {
				spans = append(spans, sp{s.Start.Sub(t0).Seconds(), s.End.Sub(t0).Seconds(), s.Segments, s.UploadedSegments, s.LocalSegments})
				if s.Uploaded != (s.UploadedSegments == s.Segments) || s.Local != (s.LocalSegments == s.Segments) {
					t.Errorf("span %+v: uploaded/local flags disagree with the counts", s)
				}
				footage += s.End.Sub(s.Start).Seconds()
			}
			var gaps []gp
			for _, g := range tl.Gaps {
				gaps = append(gaps, gp{g.Start.Sub(t0).Seconds(), g.End.Sub(t0).Seconds(), g.Cause, len(g.Causes)})
				if g.Seconds != g.End.Sub(g.Start).Seconds() {
					t.Errorf("gap %+v: seconds", g)
				}
			}
			if j(spans) != j(tt.spans) {
				t.Errorf("spans %s, want %s", j(spans), j(tt.spans))
			}
			if j(gaps) != j(tt.gaps) {
				t.Errorf("gaps %s, want %s", j(gaps), j(tt.gaps))
			}
			if tl.FootageSeconds != footage || tl.Spans == nil || tl.Gaps == nil {
				t.Errorf("footage %v (spans add up to %v); spans and gaps must be lists, not null", tl.FootageSeconds, footage)
			}
		})
	}
}

// j prints a list for comparison; nil and empty print alike.
func j[T any](v []T) string {
	if len(v) == 0 {
		return "[]"
	}
	return fmt.Sprintf("%+v", v)
}

// named gives a segment a name (a base name without the extension).
func named(s Segment, base string) Segment {
	s.Name = "door_f1_20260106T140000Z_20260106T140010Z" + base[1:] + ".mp4"
	return s
}

// TestLayOut is the one overlap rule of spans and clips: each instant
// once, segments taken in layout order.
func TestLayOut(t *testing.T) {
	type pc struct {
		seg      int // index in the input
		from, to float64
		after    int // input index, -1 none
	}
	type cv struct{ seg, by int }
	tests := []struct {
		name     string
		segs     []Segment
		from, to float64
		pieces   []pc
		covered  []cv
	}{{
		name: "back to back",
		segs: []Segment{seg(0, 10, "l"), seg(10, 20, "l")},
		from: 0, to: 20,
		pieces: []pc{{0, 0, 10, -1}, {1, 10, 20, -1}},
	}, {
		name: "a clock step back: the later starts where the earlier ends",
		segs: []Segment{seg(7.5, 17.5, "l"), seg(0, 10, "l")},
		from: 1, to: 15,
		pieces: []pc{{1, 1, 10, -1}, {0, 10, 15, 1}},
	}, {
		name: "jitter under a second is no repeat: both play whole",
		segs: []Segment{seg(0, 10, "l"), seg(9.6, 20, "l")},
		from: 0, to: 20,
		pieces: []pc{{0, 0, 10, -1}, {1, 9.6, 20, -1}},
	}, {
		name: "a copy with the same times: the plain one plays, the copy is covered",
		segs: []Segment{named(seg(0, 10, "u"), "x.conflict-0123456789ab"), named(seg(0, 10, "u"), "x")},
		from: 0, to: 10,
		pieces:  []pc{{1, 0, 10, -1}},
		covered: []cv{{0, 1}},
	}, {
		name: "of two starting together the longer plays",
		segs: []Segment{seg(0, 6, "l"), seg(0, 10, "l")},
		from: 0, to: 10,
		pieces:  []pc{{1, 0, 10, -1}},
		covered: []cv{{0, 1}},
	}, {
		name: "covered by one that reaches further than the last",
		segs: []Segment{seg(0, 30, "l"), seg(5, 10, "l"), seg(12, 40, "l")},
		from: 0, to: 40,
		pieces:  []pc{{0, 0, 30, -1}, {2, 30, 40, 0}},
		covered: []cv{{1, 0}},
	}, {
		name: "outside the range: left out",
		segs: []Segment{seg(0, 10, "l"), seg(30, 40, "l")},
		from: 10, to: 30,
		pieces: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs := append([]Segment(nil), tt.segs...)
			for i := range segs {
				segs[i].Key = fmt.Sprint(i) // the input index, through the sort
			}
			order(segs)
			idx := func(i int) int {
				if i < 0 {
					return -1
				}
				var n int
				fmt.Sscan(segs[i].Key, &n)
				return n
			}
			pieces, cov := layOut(segs, at(tt.from), at(tt.to))
			var got []pc
			for _, p := range pieces {
				got = append(got, pc{idx(p.i), p.From.Sub(t0).Seconds(), p.To.Sub(t0).Seconds(), idx(p.After)})
			}
			var gotCov []cv
			for _, c := range cov {
				gotCov = append(gotCov, cv{idx(c.i), idx(c.By)})
			}
			if j(got) != j(tt.pieces) || j(gotCov) != j(tt.covered) {
				t.Errorf("pieces %s covered %s\nwant   %s covered %s", j(got), j(gotCov), j(tt.pieces), j(tt.covered))
			}
		})
	}
}
