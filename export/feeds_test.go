package export

import (
	"errors"
	"testing"
	"time"
)

// TestSelectFeed: the best copy of a range, main where it exists and sub
// where it is gone, never both in one clip; from the bucket alone the
// feed of the lower bitrate is the sub copy.
func TestSelectFeed(t *testing.T) {
	t0 := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	seg := func(feed string, sub bool, a, b int, bytes int64, local bool) Segment {
		s := Segment{Camera: "door", FeedID: feed, Start: at(a), End: at(b), Bytes: bytes, Sub: sub, Name: feed}
		if local {
			s.Path = "/x"
		}
		return s
	}
	main := func(a, b int, local bool) Segment { return seg("xx", false, a, b, 1000*int64(b-a), local) }
	sub := func(a, b int, known bool) Segment { return seg("xx-sub", known, a, b, 100*int64(b-a), true) }
	tests := []struct {
		name      string
		segs      []Segment
		feed      string
		wantFeed  string
		wantNote  bool
		wantParts []string // feed of each part, for a mixed range
		wantSegs  int
	}{
		{"one feed: as before", []Segment{main(0, 10, true), main(10, 20, true)}, FeedBest, "", false, nil, 2},
		{"main everywhere: main", []Segment{main(0, 30, true), sub(0, 30, true)}, FeedBest, FeedMain, false, nil, 1},
		{"main gone: sub, said", []Segment{main(0, 30, false), sub(0, 10, true), sub(10, 30, true)}, FeedBest, FeedSub, true, nil, 2},
		{"main gone, from the bucket (no row says sub)", []Segment{sub(0, 10, false), sub(10, 30, false)}, FeedBest, "", false, nil, 2},
		{"main gone in the middle: parts", []Segment{main(0, 10, true), main(10, 20, false), main(20, 30, true), sub(0, 30, true)},
			FeedBest, "", false, []string{FeedMain, FeedSub, FeedMain}, 0},
		{"bucket alone, main partly gone: the bitrate tells", []Segment{main(0, 10, true), sub(0, 10, false), sub(10, 30, false)},
			FeedBest, "", false, []string{FeedMain, FeedSub}, 0},
		{"a hole in both: main, gap", []Segment{main(0, 10, true), main(20, 30, true), sub(0, 10, true), sub(20, 30, true)}, FeedBest, FeedMain, false, nil, 2},
		{"the sub feed asked for", []Segment{main(0, 30, true), sub(0, 30, true)}, FeedSub, FeedSub, false, nil, 1},
		{"the main feed asked for", []Segment{main(0, 10, true), main(10, 30, false), sub(0, 30, true)}, FeedMain, FeedMain, false, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, feed, note, err := SelectFeed(tt.segs, at(0), at(30), tt.feed)
			var mixed *MixedError
			if tt.wantParts != nil {
				if !errors.As(err, &mixed) {
					t.Fatalf("no parts: %v, %s", err, feed)
				}
				if len(mixed.Parts) != len(tt.wantParts) {
					t.Fatalf("parts %+v", mixed.Parts)
				}
				for i, p := range mixed.Parts {
					if p.Feed != tt.wantParts[i] {
						t.Errorf("part %d is %s, want %s (%+v)", i, p.Feed, tt.wantParts[i], mixed.Parts)
					}
					if i > 0 && !p.From.Equal(mixed.Parts[i-1].To) {
						t.Errorf("parts %d and %d do not meet: %+v", i-1, i, mixed.Parts)
					}
				}
				if !mixed.Parts[0].From.Equal(at(0)) || !mixed.Parts[len(mixed.Parts)-1].To.Equal(at(30)) {
					t.Errorf("parts do not cover the range: %+v", mixed.Parts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if feed != tt.wantFeed || (note != "") != tt.wantNote || len(got) != tt.wantSegs {
				t.Errorf("feed %q, note %q, %d segments", feed, note, len(got))
			}
			for _, s := range got {
				if feed == FeedMain && s.Sub || feed == FeedSub && !s.Sub {
					t.Errorf("a %s clip holds %+v", feed, s)
				}
			}
		})
	}
}

// TestSpansOfTwoFeeds: a camera's timeline is its best copy, as exports
// take it: the main feed's footage, and the sub feed's where the main's is
// gone, each span saying its feed; one feed keeps its spans as before.
func TestSpansOfTwoFeeds(t *testing.T) {
	main := func(a, b float64, flags string) Segment { s := seg(a, b, flags); s.FeedID = "xx"; return s }
	sub := func(a, b float64, flags string) Segment {
		s := seg(a, b, flags)
		s.FeedID, s.Sub = "xx-sub", true
		return s
	}
	type want struct {
		a, b float64
		feed string
		n    int
	}
	tests := []struct {
		name string
		segs []Segment
		want []want
	}{
		{"one feed: no feed said", []Segment{main(0, 10, "l"), main(10, 20, "u")}, []want{{0, 20, "", 2}}},
		{"main everywhere: main spans, the sub copy not counted", []Segment{main(0, 10, "l"), main(10, 20, "l"), sub(0, 20, "u")},
			[]want{{0, 20, FeedMain, 2}}},
		{"main gone in the middle: the sub copy fills it", []Segment{main(0, 10, "l"), main(10, 20, ""), main(20, 30, "l"),
			sub(0, 15, "u"), sub(15, 30, "u")}, []want{{0, 10, FeedMain, 1}, {10, 20, FeedSub, 2}, {20, 30, FeedMain, 1}}},
		{"sub only", []Segment{sub(0, 10, "l"), sub(10, 20, "l")}, []want{{0, 20, FeedSub, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := Spans("door", tt.segs, nil, at(0), at(30))
			var got []want
			for _, s := range tl.Spans {
				got = append(got, want{s.Start.Sub(t0).Seconds(), s.End.Sub(t0).Seconds(), s.Feed, s.Segments})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("spans %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("span %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
