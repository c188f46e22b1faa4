package uploader

import (
	"context"
	"fmt"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
)

// The feed policy (s3Config.uploadFeeds), the first step of the queue's
// order (queue.go). Which segments are due, in this order:
//
//  1. the main-feed segments an open upload request covers (an incident:
//     POST /api/v1/cameras/{name}/upload), oldest first, ahead of
//     everything else;
//  2. the sub feeds' segments, in the configured order (oldest or
//     newest first);
//  3. the main feeds' segments, in that order: always with "all" (so a
//     camera's sub feed goes before its main), inside the schedule's open
//     windows with "sub+schedule", never with "sub" (held: on request
//     only).
//
// A camera without a sub feed has main rows only: with "all" and no
// request the queue is what it was. The plan keeps the sub feeds' promise
// (which goes up continuously) apart from the main feeds' (FeedPlans).

// FeedCatalog is what the feed policy reads of the catalog.
type FeedCatalog interface {
	DueFeed(ctx context.Context, sub, newest bool, limit int, skip map[int64]bool) ([]catalog.Record, error)
	RequestedDue(ctx context.Context, limit int, skip map[int64]bool) ([]catalog.Record, error)
	CloseUploadRequests(ctx context.Context, giveUpBefore time.Time) (int64, error)
	FeedLoads(ctx context.Context, since time.Time) (main, sub catalog.FeedLoad, err error)
	WaitingBeforeFeed(ctx context.Context, sub bool, start time.Time) (int64, error)
}

// RequestGiveUp: an upload request whose range ended this long ago is
// closed even when its camera never recorded past it.
const RequestGiveUp = 24 * time.Hour

// mainsHeld says whether the policy holds the main feeds now (the
// requested ranges go regardless).
func (u *Uploader) mainsHeld(cfg Config) bool {
	switch cfg.Feeds {
	case config.UploadFeedsSub:
		return true
	case config.UploadFeedsSubSchedule:
		return u.deps.InWindow == nil || !u.deps.InWindow()
	}
	return false
}

// activeCatalog is the catalog's order of a feed's due segments that had
// activity (catalog.DueActiveFeed).
type activeCatalog interface {
	DueActiveFeed(ctx context.Context, sub, newest bool, limit int, skip map[int64]bool) ([]catalog.Record, error)
}

// dueByPolicy returns up to window segments due, in the policy's order:
// requested ranges, then the sub feeds, then the main feeds (unless held);
// under a deficit, within each feed, the segments with activity first
// (the link goes to the footage someone will look for).
func (u *Uploader) dueByPolicy(ctx context.Context, fc FeedCatalog, cfg Config, window int, skip map[int64]bool, deficit bool) ([]catalog.Record, error) {
	seen := make(map[int64]bool, len(skip)+window)
	for id := range skip {
		seen[id] = true
	}
	var out []catalog.Record
	take := func(recs []catalog.Record) {
		for _, r := range recs {
			if len(out) < window && !seen[r.ID] {
				seen[r.ID] = true
				out = append(out, r)
			}
		}
	}
	req, err := fc.RequestedDue(ctx, window, seen)
	if err != nil {
		return nil, err
	}
	take(req)
	newest := cfg.Order == config.UploadNewest
	for _, sub := range []bool{true, false} {
		if len(out) >= window || (!sub && u.mainsHeld(cfg)) {
			continue
		}
		if ac, ok := fc.(activeCatalog); ok && deficit {
			recs, err := ac.DueActiveFeed(ctx, sub, newest, window-len(out), seen)
			if err != nil {
				return nil, err
			}
			take(recs)
			if len(out) >= window {
				continue
			}
		}
		recs, err := fc.DueFeed(ctx, sub, newest, window-len(out), seen)
		if err != nil {
			return nil, err
		}
		take(recs)
	}
	return out, nil
}

// closeRequests closes the upload requests whose range is in S3.
func (u *Uploader) closeRequests(ctx context.Context) {
	fc, ok := u.deps.Catalog.(FeedCatalog)
	if !ok {
		return
	}
	if n, err := fc.CloseUploadRequests(ctx, u.clock.Now().Add(-RequestGiveUp)); err != nil {
		u.log.Warn().Err(err).Msg("cannot close the upload requests done")
	} else if n > 0 {
		u.log.Info().Int64("requests", n).Msg("upload requests done: their main footage is in S3")
	}
}

// FeedPlans is the plan of each kind of feed, for cameras with a sub
// feed: the sub feeds' promise (continuously off-site) apart from the
// main feeds' (all, scheduled, or on request).
type FeedPlans struct {
	Sub  Plan `json:"sub"`
	Main Plan `json:"main"`
	// MainHeld says the policy holds the main feeds now: they go up on
	// request only ("sub"), or in the schedule's windows ("sub+schedule").
	MainHeld bool `json:"mainHeld"`
	// Policy is s3Config.uploadFeeds.
	Policy string `json:"policy"`
}

// feedPlans makes each kind of feed's plan from in (the whole plan's
// input) and the catalog's loads (PlanFeeds).
func (u *Uploader) feedPlans(ctx context.Context, cfg Config, in PlanInput) (*FeedPlans, PlanInput, bool) {
	fc, ok := u.deps.Catalog.(FeedCatalog)
	if !ok {
		return nil, in, false
	}
	main, sub, err := fc.FeedLoads(ctx, u.clock.Now().Add(-ProductionWindow))
	if err != nil || (sub.BacklogCount == 0 && sub.Recorded == 0) {
		return nil, in, false // no sub feed: one plan, as before
	}
	fp, promise := PlanFeeds(in, main, sub, u.mainsHeld(cfg), cfg.Feeds)
	return fp, promise, true
}

// PlanFeeds makes each kind of feed's plan from in (the whole plan's
// input) and each kind's load, in the uploader's and retention's orders:
//   - the sub feeds go up first, with the whole rate; retention deletes
//     every main segment waiting before any sub segment, so the room the
//     sub feeds have before retention reaches them holds the main
//     backlog too;
//   - the main feeds get the rate the sub feeds leave, and the disk's
//     room; held (uploadFeeds sub, or sub+schedule outside a window), only
//     their backlog is said.
//
// promise is the input of the plan the status leads with: what goes up
// continuously (the sub feeds' when the mains are held, else the whole).
func PlanFeeds(in PlanInput, main, sub catalog.FeedLoad, held bool, policy string) (fp *FeedPlans, promise PlanInput) {
	load := func(l catalog.FeedLoad) PlanInput {
		f := in
		f.BacklogBytes, f.BacklogCount, f.BacklogSeconds, f.Recorded = l.BacklogBytes, l.BacklogCount, l.BacklogSeconds, l.Recorded
		return f
	}
	subIn, mainIn := load(sub), load(main)
	subIn.UploadedPresent += main.BacklogBytes
	if up, known := in.upRate(); known {
		left := max(up-sub.Recorded, 0)
		mainIn.Up, mainIn.UpKnown, mainIn.Cap = left, true, left
	}
	fp = &FeedPlans{Sub: MakePlan(subIn), Main: MakePlan(mainIn), MainHeld: held, Policy: policy}
	if held {
		how := "on request only (s3Config.uploadFeeds sub)"
		if policy == config.UploadFeedsSubSchedule {
			how = "inside the upload schedule's windows (s3Config.uploadFeeds sub+schedule)"
		}
		fp.Main = Plan{State: PlanOK, UpMbps: 0, RecordedMbps: mbps(main.Recorded),
			Message: fmt.Sprintf("The main feeds go up %s: %s (%s of footage) held on the box.", how,
				formatBytes(main.BacklogBytes), formatDuration(main.BacklogSeconds))}
		return fp, subIn
	}
	return fp, in
}

// waitingBefore is what retention deletes before r (catalog
// WaitingBeforeFeed): of a camera with feeds, every main segment waiting
// goes before a sub segment.
func (u *Uploader) waitingBefore(ctx context.Context, r catalog.Record) (int64, error) {
	if fc, ok := u.deps.Catalog.(FeedCatalog); ok {
		return fc.WaitingBeforeFeed(ctx, r.Sub, r.Start)
	}
	return u.deps.Catalog.WaitingBefore(ctx, r.Start)
}
