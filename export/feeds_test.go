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
