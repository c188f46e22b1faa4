package uploader

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/catalog"
)

// activityOnly is a stand-in catalog that knows one segment's activity
// and nothing else (any other call panics on the nil Catalog).
type activityOnly struct {
	Catalog
	sum   activity.Summary
	found bool
}

func (c activityOnly) SegmentActivity(context.Context, int64) (activity.Summary, bool, error) {
	return c.sum, c.found, nil
}

func TestActivityMetadataIsBounded(t *testing.T) {
	var busy activity.Summary
	for i := range 300 {
		st := time.Duration(i) * 2 * time.Second
		busy.Intervals = append(busy.Intervals, activity.Interval{Start: st, End: st + time.Second, Peak: st, Level: 0.5})
	}
	busy.Heatmap[0] = 7
	for _, tt := range []struct {
		name      string
		feedID    string
		found     bool
		act, heat bool
	}{
		{"a busy segment", "xx", true, true, true},
		{"not analysed", "xx", false, false, false},
		{"a long feed id leaves no room for the heatmap", strings.Repeat("f", 500), true, true, false},
		{"nor for the activity", strings.Repeat("f", 1500), true, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &attempter{u: &Uploader{deps: Deps{Catalog: activityOnly{sum: busy, found: tt.found}}, log: zerolog.Nop()}}
			meta := map[string]string{MetaCamera: strings.Repeat("c", 64), MetaFeedID: tt.feedID, MetaStart: "2026-01-06T12:00:00.000Z",
				MetaEnd: "2026-01-06T12:10:00.000Z", MetaSHA256: strings.Repeat("0", 64)}
			a.addActivity(context.Background(), catalog.Record{ID: 1}, meta)
			if _, ok := meta[MetaActivity]; ok != tt.act {
				t.Errorf("activity in the metadata: %t, want %t", ok, tt.act)
			}
			if _, ok := meta[MetaActivityHeatmap]; ok != tt.heat {
				t.Errorf("heatmap in the metadata: %t, want %t", ok, tt.heat)
			}
			if n := metaSize(meta); n > MaxMetadata && (tt.act || tt.heat) {
				t.Errorf("metadata of %d bytes, over S3's %d", n, MaxMetadata)
			}
			if tt.act {
				if _, err := activity.ParseMeta(meta[MetaActivity], meta[MetaActivityHeatmap]); err != nil {
					t.Errorf("the metadata does not read back: %v", err)
				}
			}
		})
	}
}
