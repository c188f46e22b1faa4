package retention

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/activity"
)

// With keepActiveDays, segments with recent activity are deleted after
// the quiet ones; older activity, or the setting off, keeps the plain
// order (oldest first).
func TestKeepActiveDays(t *testing.T) {
	for _, tt := range []struct {
		name    string
		days    int
		now     time.Time
		present []int
	}{
		{"off: oldest first", 0, t0.Add(24 * time.Hour), []int{6, 7, 8, 9}},
		{"on: the active segments stay", 7, t0.Add(24 * time.Hour), []int{1, 2, 3, 9}},
		{"on, but the activity is older than that", 7, t0.Add(30 * 24 * time.Hour), []int{6, 7, 8, 9}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "", 10, 1000, 10)
			for _, i := range []int{1, 2, 3} {
				r := e.recs[i]
				s := activity.Summary{Score: 0.2, Frames: 10, Intervals: []activity.Interval{{Start: time.Second, End: 2 * time.Second}}}
				if err := e.cat.SetActivity(context.Background(), r.Path, r.Camera, r.Start, r.End, s); err != nil {
					t.Fatal(err)
				}
			}
			now := tt.now
			r := New(Config{SavePath: e.save, LimitBytes: 5000, KeepActiveDays: tt.days},
				Deps{Log: zerolog.New(e.logs), Catalog: e.cat, Usage: plenty, Now: func() time.Time { return now }})
			if err := r.Decide(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.present(); !slices.Equal(got, tt.present) {
				t.Errorf("left on disk %v, want %v", got, tt.present)
			}
		})
	}
}
