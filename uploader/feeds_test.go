package uploader

import (
	"math"
	"strings"
	"testing"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
)

// TestPlanFeeds: the site (4 cameras, main 4 Mbit/s, sub
// 0.3 Mbit/s, the link capped at 10 % of the mains): the sub feeds keep
// up while the mains fall behind, or are held; and a link too narrow even
// for the subs counts the main backlog, which retention deletes first, in
// the subs' room.
func TestPlanFeeds(t *testing.T) {
	const mbit = 1e6 / 8
	const gb = int64(1e9)
	mainL := catalog.FeedLoad{Recorded: 16 * mbit, BacklogBytes: 20 * gb, BacklogCount: 1000, BacklogSeconds: 10000}
	subL := catalog.FeedLoad{Recorded: 1.2 * mbit, BacklogBytes: 30e6, BacklogCount: 8, BacklogSeconds: 200}
	site := PlanInput{Recorded: 17.2 * mbit, Cap: 1.6 * mbit, StorageKnown: true, LimitBytes: 100 * gb, UsedBytes: 90 * gb,
		BacklogBytes: mainL.BacklogBytes + subL.BacklogBytes, BacklogSeconds: 10200, BacklogCount: 1008}
	tests := []struct {
		name    string
		in      PlanInput
		held    bool
		policy  string
		check   func(fp *FeedPlans, promise Plan) bool
		explain string
	}{
		{"sub: the subs keep up, the mains are held", site, true, config.UploadFeedsSub, func(fp *FeedPlans, p Plan) bool {
			return fp.Sub.State == PlanOK && fp.Sub.DrainSeconds > 0 && fp.MainHeld && fp.Main.State == PlanOK &&
				strings.Contains(fp.Main.Message, "on request only") && strings.Contains(fp.Main.Message, "20.0 GB") &&
				p.State == PlanOK && p.RecordedMbps == 1.2
		}, "the promise is the subs' plan"},
		{"sub+schedule: held outside the windows", site, true, config.UploadFeedsSubSchedule, func(fp *FeedPlans, p Plan) bool {
			return strings.Contains(fp.Main.Message, "schedule's windows") && p.State == PlanOK
		}, ""},
		{"all: the mains get what the subs leave and fall behind", site, false, config.UploadFeedsAll, func(fp *FeedPlans, p Plan) bool {
			return fp.Sub.State == PlanOK && fp.Main.State == PlanDeficit && math.Abs(fp.Main.UpMbps-0.4) < 0.01 && p.State == PlanDeficit
		}, "0.4 Mbit/s left for the mains; the whole is in deficit"},
		{"a link narrower than the subs: the main backlog is their room", func() PlanInput {
			in := site
			in.Cap = 0.2 * mbit
			return in
		}(), true, config.UploadFeedsSub, func(fp *FeedPlans, p Plan) bool {
			room := float64(10*gb + mainL.BacklogBytes) // under the limit, and the main backlog deleted first
			return fp.Sub.State == PlanDeficit && math.Abs(fp.Sub.LossInSeconds-room/(1.0*mbit)) < 1 && p.State == PlanDeficit
		}, "the subs' loss comes once the room and every main segment waiting are gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp, promise := PlanFeeds(tt.in, mainL, subL, tt.held, tt.policy)
			p := MakePlan(promise)
			if !tt.check(fp, p) {
				t.Errorf("%s\nsub  %+v\nmain %+v\npromise %+v", tt.explain, fp.Sub, fp.Main, p)
			}
		})
	}
}
