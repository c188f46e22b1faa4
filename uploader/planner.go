package uploader

import (
	"context"
	"math"
	"time"
)

// ProductionWindow is the span the cameras' production rate is measured
// over: the segments that began in it.
const ProductionWindow = time.Hour

// planEvery is how often the plan is made again.
const planEvery = 10 * time.Second

// StorageView is retention's view of savePath, for the plan.
type StorageView struct {
	// Known is false before retention's first measure.
	Known      bool
	LimitBytes int64
	UsedBytes  int64
}

// runPlanner makes the plan every planEvery until ctx ends. The period is
// the machine's (a ticker), not the injected clock: it orders nothing, and
// tests that drive the uploader's waits with a manual clock see only them.
func (u *Uploader) runPlanner(ctx context.Context) {
	t := time.NewTicker(planEvery)
	defer t.Stop()
	for {
		u.refreshPlan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-u.planWake:
		}
	}
}

// RefreshPlan asks for the plan to be made again now (it never blocks).
func (u *Uploader) RefreshPlan() {
	select {
	case u.planWake <- struct{}{}:
	default:
	}
}

// refreshPlan reads the catalog, the meter and retention's view, makes
// the plan and shows it; a deficit's start and end are logged, once each.
func (u *Uploader) refreshPlan(ctx context.Context) {
	cat := u.deps.Catalog
	b, err := cat.Backlog(ctx)
	if err != nil {
		return
	}
	prod, err := cat.Produced(ctx, u.clock.Now().Add(-ProductionWindow))
	if err != nil {
		return
	}
	upPresent, err := cat.UploadedPresent(ctx)
	if err != nil {
		return
	}
	in := PlanInput{BacklogBytes: b.Bytes, BacklogCount: b.Count, BacklogSeconds: b.Seconds, UploadedPresent: upPresent,
		RecordedByCamera: map[string]float64{}, Cap: Unlimited}
	for _, p := range prod {
		if p.Seconds > 0 {
			rate := float64(p.Bytes) / p.Seconds // the camera's bytes a second while it records
			in.RecordedByCamera[p.Camera] = rate
			in.Recorded += rate
		}
	}
	if lim := u.deps.Limiter; lim != nil {
		in.Up, in.UpKnown = lim.Meter().Rate()
		if c := lim.Mbps(); c > 0 { // paused: the cap says nothing of the rate when it is not
			in.Cap = c * 1e6 / 8
		}
		share := 1.0
		if u.deps.OpenShare != nil {
			share = u.deps.OpenShare()
		}
		in.Up *= share
		if !math.IsInf(in.Cap, 1) {
			in.Cap *= share
		}
	}
	if u.deps.Storage != nil {
		s := u.deps.Storage()
		in.StorageKnown, in.LimitBytes, in.UsedBytes = s.Known, s.LimitBytes, s.UsedBytes
	}
	fp, promise, perFeed := u.feedPlans(ctx, u.settings(), in)
	p := MakePlan(promise)
	deficit := p.State == PlanDeficit
	u.closeRequests(ctx)
	u.planMu.Lock()
	was := u.deficit
	u.planIn, u.deficit = in, deficit
	if was && !deficit { // the episode ends
		u.skipped, u.saidDeleted = nil, false
	}
	u.planMu.Unlock()
	var prev Plan
	u.update(func(s *Status) {
		prev = s.Plan
		p.Skipped, p.DeletedWaiting = prev.Skipped, prev.DeletedWaiting
		p.Since = prev.Since
		if p.State != prev.State || p.Since.IsZero() {
			p.Since = u.clock.Now()
		}
		s.Plan = p
		s.Feeds = nil
		if perFeed {
			s.Feeds = fp
		}
		s.BacklogBytes, s.BacklogSeconds = b.Bytes, b.Seconds
		s.RecordedMbps = mbps(in.Recorded)
		s.RecordedMbpsByCamera = make(map[string]float64, len(in.RecordedByCamera))
		for cam, r := range in.RecordedByCamera {
			s.RecordedMbpsByCamera[cam] = mbps(r)
		}
		s.AchievedMbps = 0
		if in.UpKnown {
			s.AchievedMbps = mbps(in.Up)
		}
	})
	switch {
	case deficit && !was:
		u.log.Warn().Str("plan", p.Message).Msg("upload deficit")
	case was && !deficit:
		u.log.Info().Str("plan", p.Message).Msg("the upload deficit is over")
	}
}

// planView is the last plan's input, and whether it is in deficit.
func (u *Uploader) planView() (PlanInput, bool) {
	u.planMu.Lock()
	defer u.planMu.Unlock()
	return u.planIn, u.deficit
}

// capPaused says whether the cap in force pauses the uploads.
func (u *Uploader) capPaused() bool {
	lim := u.deps.Limiter
	return lim != nil && lim.Mbps() == 0
}

// partSent counts a part S3 confirmed.
func (u *Uploader) partSent(size int64) {
	u.update(func(s *Status) {
		s.PartsSent++
		s.PartBytesSent += uint64(size)
	})
}
