package export

import (
	"fmt"
	"testing"

	"github.com/cctvd/cctvd/internal/mp4"
)

// synthetic is a source recorded over [a, b) seconds after t0 at fps,
// a keyframe every gop seconds (timescale 1000, no file: cutParts reads
// only the sample tables).
func synthetic(name string, a, b, fps, gop float64) *source {
	seg := &mp4.Segment{Track: mp4.Track{Timescale: 1000}}
	step := int64(1000 / fps)
	every := int(gop * fps)
	for i := 0; float64(i)/fps < b-a-1e-9; i++ {
		seg.Samples = append(seg.Samples, mp4.Sample{DTS: int64(i) * step, Duration: uint32(step), Size: 100, Offset: int64(i) * 100, Sync: i%every == 0})
	}
	return &source{Segment: Segment{Name: name, Start: at(a), End: at(b)}, mp4: seg}
}

// TestCutParts: overlaps are cut at the later source's keyframe, the
// earlier stopping there; an earlier one left with nothing is skipped,
// covered; a source a jitter after the one before it, reaching back before
// the range, starts at its keyframe.
func TestCutParts(t *testing.T) {
	type want struct {
		name        string
		from, to    float64 // wall seconds
		first, last int
	}
	tests := []struct {
		name     string
		srcs     []*source
		from, to float64
		parts    []want
		skipped  []string
	}{{
		name: "a clock step back of 2.5 s",
		srcs: []*source{synthetic("a", 0, 6, 10, 2), synthetic("b", 3.5, 7.5, 10, 2)},
		from: 1, to: 7.5,
		parts: []want{{"a", 1, 5.5, 0, 55}, {"b", 5.5, 7.5, 20, 40}},
	}, {
		name: "the later's keyframe before the earlier's window: the earlier is covered",
		srcs: []*source{synthetic("a", 0, 6, 10, 2), synthetic("b", 3, 9, 10, 4)},
		from: 4, to: 9,
		parts:   []want{{"b", 4, 9, 0, 60}},
		skipped: []string{"a"},
	}, {
		name: "jitter, both reaching back before the range",
		srcs: []*source{synthetic("a", 0, 10, 10, 2), synthetic("b", 9.5, 20, 10, 0.2)},
		from: 9.8, to: 20,
		parts: []want{{"a", 9.8, 10, 80, 100}, {"b", 9.7, 20, 2, 105}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs := segmentsOf(tt.srcs)
			pieces, cov := layOut(segs, at(tt.from), at(tt.to))
			parts, skipped, err := cutParts(at(tt.from), at(tt.to), tt.srcs, pieces, cov)
			if err != nil {
				t.Fatal(err)
			}
			var got []want
			for _, p := range parts {
				got = append(got, want{p.src.Name, p.from.Sub(t0).Seconds(), p.to.Sub(t0).Seconds(), p.first, p.last})
			}
			var names []string
			for _, s := range skipped {
				names = append(names, s.Name)
				if s.Cause != CauseCovered || s.Detail == "" {
					t.Errorf("skipped %+v", s)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.parts) || fmt.Sprint(names) != fmt.Sprint(tt.skipped) {
				t.Errorf("parts %v, skipped %v\nwant  %v, skipped %v", got, names, tt.parts, tt.skipped)
			}
		})
	}
}
