package uploader

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// TestActivityGoesFirstUnderADeficit: with the plan in deficit, the
// queue takes each feed's segments with activity before the quiet ones
// (the sub feeds still before the mains); without a deficit, the order is
// the oldest first.
func TestActivityGoesFirstUnderADeficit(t *testing.T) {
	ctx := context.Background()
	save := t.TempDir()
	cat, err := catalog.Open(ctx, filepath.Join(save, ".cctvd", layout.CatalogName), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	t0 := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	add := func(i int, sub bool) catalog.Record {
		start := t0.Add(time.Duration(i) * 10 * time.Second)
		feed := "f1"
		if sub {
			feed = "f1-sub"
		}
		name := segment.Name("cam1", feed, start, start.Add(10*time.Second), 0)
		p := filepath.Join(save, layout.DayRel("cam1", start), name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		seg := segment.Segment{Camera: "cam1", FeedID: feed, Start: start, End: start.Add(10 * time.Second), Path: p, Size: 1, Sub: sub}
		r, err := cat.Add(ctx, seg, "rec/"+layout.DayRel("cam1", start)+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if sub { // the camera is analysed on its sub feed: motion in segment 2
			s := activity.Summary{Frames: 10}
			if i == 2 {
				s.Score, s.Intervals = 0.4, []activity.Interval{{Start: time.Second, End: 4 * time.Second, Peak: 2 * time.Second, Level: 0.3}}
			}
			if err := cat.SetActivity(ctx, p, "cam1", seg.Start, seg.End, s); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	var mains, subs []int64
	for i := range 4 {
		mains = append(mains, add(i, false).ID)
		subs = append(subs, add(i, true).ID)
	}
	u := New(Config{Bucket: "b", Feeds: config.UploadFeedsAll}, Deps{Log: zerolog.Nop(), Catalog: cat})
	for _, tt := range []struct {
		deficit bool
		want    []int64
	}{
		{false, append(append([]int64(nil), subs...), mains...)},
		{true, []int64{subs[2], subs[0], subs[1], subs[3], mains[2], mains[0], mains[1], mains[3]}},
	} {
		got, err := u.dueByPolicy(ctx, cat, Config{Feeds: config.UploadFeedsAll}, 8, nil, tt.deficit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("deficit %v: order %v, want %v (subs %v, mains %v)", tt.deficit, ids, tt.want, subs, mains)
		}
	}
}
